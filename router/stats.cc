// cacherouter's counters. See stats.h.
#include "router/stats.h"

#include <unistd.h>

#include "common/version.h"
#include "protocol/memcache/server_codec.h"

namespace cachetier::router {

using native::Status;

void count_store(WorkerStats& s, bool compared, const client::Reply& r) {
  s.cmd_set.add();
  if (!compared || !r.transport.is_ok()) return;
  if (r.code == Status::kOk) s.cas_hits.add();
  if (r.code == Status::kNotFound) s.cas_misses.add();
  if (r.code == Status::kExists) s.cas_badval.add();
}

void count_delete(WorkerStats& s, const client::Reply& r) {
  if (!r.transport.is_ok()) return;
  if (r.code == Status::kOk) s.delete_hits.add();
  if (r.code == Status::kNotFound || r.code == Status::kExists) s.delete_misses.add();
}

void count_arith(WorkerStats& s, bool incr, const client::Reply& r) {
  if (!r.transport.is_ok()) return;
  if (r.code == Status::kOk && (r.lease & native::kCreated) == 0) {
    (incr ? s.incr_hits : s.decr_hits).add();
  }
  if (r.code == Status::kNotFound) (incr ? s.incr_misses : s.decr_misses).add();
}

uint64_t total(const std::vector<const WorkerStats*>& workers, Counter WorkerStats::*field) {
  uint64_t t = 0;
  for (const WorkerStats* w : workers) t += (w->*field).load();
  return t;
}

void write_node_stats(ByteBuffer& b, const std::string& shard, const Node& n) {
  using memcache::write_stat;
  const std::string q = "node:" + n.addr() + ":";
  write_stat(b, q + "shard", shard);
  write_stat(b, q + "state", state_name(n.state()));
  write_stat(b, q + "requests", n.counters.requests.load());
  write_stat(b, q + "errors", n.counters.errors.load());
  write_stat(b, q + "timeouts", n.counters.timeouts.load());
  write_stat(b, q + "failovers", n.counters.failovers.load());
  write_stat(b, q + "marked_down", n.counters.marked_down.load());
  write_stat(b, q + "missed_keys", static_cast<uint64_t>(n.missed_size()));
  write_stat(b, q + "repaired", n.counters.repaired.load());
  write_stat(b, q + "backfills", n.counters.backfills.load());
  write_stat(b, q + "flushed", n.counters.flushed.load());
  write_stat(b, q + "resolve_failures", n.counters.resolve_failures.load());
}

void write_stats(ByteBuffer& b, const std::vector<const WorkerStats*>& workers,
                 const RouterInfo& info, const Topology& topo) {
  using memcache::write_stat;
  auto sum = [&](Counter WorkerStats::*field) { return total(workers, field); };
  const uint64_t opened = sum(&WorkerStats::opened), closed = sum(&WorkerStats::closed);
  write_stat(b, "pid", static_cast<uint64_t>(getpid()));
  write_stat(b, "uptime", static_cast<uint64_t>((now_ms() - info.started_ms) / 1000));
  write_stat(b, "version", CACHETIER_VERSION "-cacherouter");
  write_stat(b, "threads", static_cast<uint64_t>(info.threads));
  write_stat(b, "curr_connections", opened > closed ? opened - closed : 0);
  write_stat(b, "total_connections", opened);
  write_stat(b, "rejected_connections", sum(&WorkerStats::rejected));
  write_stat(b, "auth_errors", sum(&WorkerStats::auth_errors));
  if (info.tls) {
    write_stat(b, "ssl_handshake_errors", sum(&WorkerStats::ssl_handshake_errors));
    write_stat(b, "ssl_new_sessions", sum(&WorkerStats::ssl_new_sessions));
    const int64_t age = static_cast<int64_t>(std::time(nullptr)) - info.tls_loaded_at;
    write_stat(b, "time_since_server_cert_refresh",
               static_cast<uint64_t>(std::max<int64_t>(0, age)));
  }
  static const std::pair<std::string_view, Counter WorkerStats::*> kCounters[] = {
      {"cmd_get", &WorkerStats::cmd_get},
      {"cmd_set", &WorkerStats::cmd_set},
      {"cmd_touch", &WorkerStats::cmd_touch},
      {"cmd_flush", &WorkerStats::cmd_flush},
      {"get_hits", &WorkerStats::get_hits},
      {"get_misses", &WorkerStats::get_misses},
      {"touch_hits", &WorkerStats::touch_hits},
      {"touch_misses", &WorkerStats::touch_misses},
      {"delete_hits", &WorkerStats::delete_hits},
      {"delete_misses", &WorkerStats::delete_misses},
      {"incr_hits", &WorkerStats::incr_hits},
      {"incr_misses", &WorkerStats::incr_misses},
      {"decr_hits", &WorkerStats::decr_hits},
      {"decr_misses", &WorkerStats::decr_misses},
      {"cas_hits", &WorkerStats::cas_hits},
      {"cas_misses", &WorkerStats::cas_misses},
      {"cas_badval", &WorkerStats::cas_badval},
      {"client_errors", &WorkerStats::client_errors},
      {"clients_paused", &WorkerStats::clients_paused},
      {"clients_dropped", &WorkerStats::clients_dropped},
  };
  for (const auto& [name, field] : kCounters) write_stat(b, name, sum(field));
  write_stat(b, "config_generation", topo.generation);
  write_stat(b, "reloads", info.reloads);
  write_stat(b, "reload_errors", info.reload_errors);
  write_stat(b, "dns_refreshes", info.dns_refreshes);
  write_stat(b, "dns_changes", info.dns_changes);
  write_stat(b, "dns_failures", info.dns_failures);
  const int64_t now = now_ms();
  const Migration* mig = topo.migration.get();
  const bool active = mig != nullptr && mig->active(now);
  const MigrationCounters& mc = *topo.migration_counters;
  write_stat(b, "migration:active", active ? 1 : 0);
  write_stat(b, "migration:remaining_ms", active ? uint64_t(mig->until_ms - now) : 0);
  write_stat(b, "migration:moved_permille", active ? uint64_t(mig->moved_share * 1000 + 0.5) : 0);
  write_stat(b, "migration:reads", mc.reads.load());
  write_stat(b, "migration:old_owner_hits", mc.old_owner_hits.load());
  write_stat(b, "migration:backfills", mc.backfills.load());
  write_stat(b, "migration:invalidations", mc.invalidations.load());
  for (const Shard& sh : topo.shards) {
    std::string p = "shard:" + sh.name + ":";
    write_stat(b, p + "requests", sh.counters->requests.load());
    write_stat(b, p + "errors", sh.counters->errors.load());
    write_stat(b, p + "all_down", sh.counters->all_down.load());
    for (const auto& n : sh.replicas) write_node_stats(b, sh.name, *n);
  }
}

}  // namespace cachetier::router
