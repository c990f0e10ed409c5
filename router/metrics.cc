// cacherouter's /metrics (metrics_listen:): the workers' counters summed and every shard and
// node of the current topology, read at scrape time; nothing here runs on the request path.
// The command counters use memcached_exporter's command and status labels, under
// cachetier_router_ names (a router is not a memcached).
#include <string>

#include "common/metrics/exposition.h"
#include "common/version.h"
#include "router/router.h"
#include "router/worker.h"

namespace cachetier::router {

void Router::collect_metrics(metrics::MetricsSink& m) const {
  const std::vector<const WorkerStats*> stats = worker_stats();
  auto sum = [&](Counter WorkerStats::*field) { return static_cast<double>(total(stats, field)); };
  auto num = [](uint64_t v) { return static_cast<double>(v); };
  const std::shared_ptr<const Topology> topo = topology();
  using S = WorkerStats;

  metrics::process_metrics(m);
  m.gauge("cachetier_router_uptime_seconds", "Seconds since the router started.",
          static_cast<double>(now_ms() - started_ms_) / 1000.0);
  m.gauge("cachetier_router_version", "The router's version.", 1, {{"version", CACHETIER_VERSION}});
  m.gauge("cachetier_router_threads", "Worker threads.", cfg_.threads);
  const double opened = sum(&S::opened), closed = sum(&S::closed);
  m.gauge("cachetier_router_current_connections", "Client connections open.",
          opened > closed ? opened - closed : 0);
  m.counter("cachetier_router_connections_total", "Client connections accepted.", opened);
  m.counter("cachetier_router_connections_rejected_total",
            "Client connections refused for max_connections.", sum(&S::rejected));
  m.gauge("cachetier_router_max_connections", "max_connections.", cfg_.max_connections);

  metrics::command_metrics(
      m, "cachetier_router_commands_total",
      "Client requests by command and outcome (memcached_exporter's labels).",
      metrics::command_counts<S>([&](Counter S::*f) { return total(stats, f); }));
  m.counter("cachetier_router_client_errors_total", "Requests answered with a protocol error.",
            sum(&S::client_errors));
  m.counter("cachetier_router_clients_paused_total",
            "Times a client was not read for replies it had not read.", sum(&S::clients_paused));
  m.counter("cachetier_router_clients_dropped_total", "Clients closed past client_output_hard.",
            sum(&S::clients_dropped));
  m.counter("cachetier_router_auth_errors_total", "Refused client credentials.",
            sum(&S::auth_errors));
  if (cfg_.tls) {
    m.counter("cachetier_router_ssl_handshake_errors_total", "Client TLS handshakes that failed.",
              sum(&S::ssl_handshake_errors));
    m.counter("cachetier_router_ssl_new_sessions_total", "Client TLS sessions established.",
              sum(&S::ssl_new_sessions));
  }
  static const char* const kFrontends[] = {"text", "native", "resp"};
  for (size_t f = 0; f < 3; ++f) {
    metrics::HistogramSnapshot h;
    for (const WorkerStats* w : stats) h.add(w->client_latency[f]);
    m.histogram("cachetier_router_request_duration_seconds",
                "Client requests, from the read that brought them to their reply being ready, "
                "per front end (memcache text, native, RESP).",
                h, {{"frontend", kFrontends[f]}});
  }
  m.gauge("cachetier_router_config_generation", "The running topology's generation.",
          num(topo->generation));
  m.counter("cachetier_router_reloads_total", "Configuration reloads applied.",
            num(reloads_.load()));
  m.counter("cachetier_router_reload_errors_total", "Configuration reloads refused.",
            num(reload_errors_.load()));
  m.counter("cachetier_router_dns_refreshes_total", "Resolutions of the discover: names.",
            num(dns_refreshes_.load()));
  m.counter("cachetier_router_dns_changes_total",
            "Changed sets of discovered addresses, applied as reloads.", num(dns_changes_.load()));
  m.counter("cachetier_router_dns_failures_total", "discover: names that did not resolve.",
            num(dns_failures_.load()));
  {
    const int64_t now = now_ms();
    const Migration* mig = topo->migration.get();
    const bool active = mig != nullptr && mig->active(now);
    const MigrationCounters& mc = *topo->migration_counters;
    m.gauge("cachetier_router_migration_active",
            "1 while keys that changed owner in a ring change are migrated on read.",
            active ? 1 : 0);
    m.gauge("cachetier_router_migration_remaining_seconds", "Time left in the migration window.",
            active ? double(mig->until_ms - now) / 1000 : 0);
    m.gauge("cachetier_router_migration_moved_ratio",
            "The share of keys whose owner changed in the migration under way.",
            active ? mig->moved_share : 0);
    m.counter("cachetier_router_migration_reads_total",
              "Reads of keys whose owner changed, from both owners.", num(mc.reads.load()));
    m.counter("cachetier_router_migration_old_owner_hits_total",
              "Migrated reads answered by the previous owner.", num(mc.old_owner_hits.load()));
    m.counter("cachetier_router_migration_backfills_total",
              "Items copied from a previous owner into the new one.", num(mc.backfills.load()));
    m.counter("cachetier_router_migration_invalidations_total",
              "Versioned deletes sent to a previous owner after a change on the new one.",
              num(mc.invalidations.load()));
  }

  for (const Shard& sh : topo->shards) {
    const metrics::Labels sl = {{"shard", sh.name}};
    m.counter("cachetier_router_shard_requests_total", "Requests routed to the shard.",
              num(sh.counters->requests.load()), sl);
    m.counter("cachetier_router_shard_errors_total", "Requests the shard answered with an error.",
              num(sh.counters->errors.load()), sl);
    m.counter("cachetier_router_shard_all_down_total",
              "Requests that found every replica of the shard down.",
              num(sh.counters->all_down.load()), sl);
    for (const auto& n : sh.replicas) {
      const metrics::Labels nl = {{"shard", sh.name}, {"node", n->addr()}};
      const NodeCounters& c = n->counters;
      m.counter("cachetier_router_node_requests_total", "Requests sent to the node.",
                num(c.requests.load()), nl);
      m.counter("cachetier_router_node_errors_total", "Requests to the node that failed.",
                num(c.errors.load()), nl);
      m.counter("cachetier_router_node_timeouts_total", "Requests to the node that timed out.",
                num(c.timeouts.load()), nl);
      m.counter("cachetier_router_node_failovers_total",
                "Reads that moved from this node to a sibling.", num(c.failovers.load()), nl);
      m.counter("cachetier_router_node_markdowns_total", "Times the node was marked down.",
                num(c.marked_down.load()), nl);
      m.counter("cachetier_router_node_repairs_total", "Missed keys repaired on the node.",
                num(c.repaired.load()), nl);
      m.counter("cachetier_router_node_backfills_total",
                "Values copied to the node from a sibling while it warmed.",
                num(c.backfills.load()), nl);
      m.counter("cachetier_router_node_flushes_total",
                "Times the node was emptied to resynchronize it.", num(c.flushed.load()), nl);
      m.counter("cachetier_router_node_resolve_failures_total",
                "Times the node's name did not resolve.", num(c.resolve_failures.load()), nl);
      m.gauge("cachetier_router_node_missed_keys", "Keys the node missed, waiting for repair.",
              num(n->missed_size()), nl);
      const NodeState st = n->state();
      m.gauge("cachetier_router_node_up", "1 when the node serves reads.",
              st == NodeState::kUp ? 1 : 0, nl);
      for (NodeState s : {NodeState::kUp, NodeState::kDown, NodeState::kSyncing}) {
        metrics::Labels l = nl;
        l.emplace_back("state", std::string(state_name(s)));
        m.gauge("cachetier_router_node_state", "The node's state (1 for the current one).",
                st == s ? 1 : 0, l);
      }
      metrics::HistogramSnapshot h;
      for (int w = 0; w < n->workers(); ++w) h.add(n->backend_latency(w));
      m.histogram("cachetier_router_backend_request_duration_seconds",
                  "Requests to the node, from send to reply.", h, nl);
    }
  }
}

}  // namespace cachetier::router
