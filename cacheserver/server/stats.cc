// cacheserver's `stats`: memcached's names, the workers' counters summed at read time.
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdio>

#include "cacheserver/server/server.h"
#include "cacheserver/server/worker.h"
#include "common/version.h"
#include "protocol/memcache/server_codec.h"

namespace cachetier::server {

uint64_t Server::total(Counter process::Counters::*field) const {
  uint64_t t = 0;
  for (const auto& w : workers_) t += (w->counters().*field).load();
  return t;
}

bool Server::write_stats(std::string_view arg, ByteBuffer& out) {
  using memcache::write_stat;
  if (arg.empty()) {
    auto sum = [&](Counter process::Counters::*field) { return total(field); };
    uint64_t rd = 0, wr = 0;
    for (auto& w : workers_) {
      rd += w->bytes_read().load();
      wr += w->bytes_written().load();
    }
    engine::EngineStats es = engine_.stats();
    int64_t now = engine_.clock().now();
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    char buf[64];
    write_stat(out, "pid", static_cast<uint64_t>(getpid()));
    write_stat(out, "uptime", static_cast<uint64_t>(now - started_at_));
    write_stat(out, "time", static_cast<uint64_t>(now));
    write_stat(out, "version", CACHETIER_VERSION);
    write_stat(out, "pointer_size", uint64_t{sizeof(void*) * 8});
    std::snprintf(buf, sizeof(buf), "%ld.%06ld", static_cast<long>(ru.ru_utime.tv_sec),
                  static_cast<long>(ru.ru_utime.tv_usec));
    write_stat(out, "rusage_user", buf);
    std::snprintf(buf, sizeof(buf), "%ld.%06ld", static_cast<long>(ru.ru_stime.tv_sec),
                  static_cast<long>(ru.ru_stime.tv_usec));
    write_stat(out, "rusage_system", buf);
    write_stat(out, "max_connections", static_cast<uint64_t>(config_.conn_limit));
    write_stat(out, "curr_connections", curr_connections_.load());
    write_stat(out, "total_connections", total_connections_.load());
    write_stat(out, "rejected_connections", rejected_connections_.load());
    if (auth_required()) {
      write_stat(out, "auth_cmds", sum(&process::Counters::auth_cmds));
      write_stat(out, "auth_errors", sum(&process::Counters::auth_errors));
    }
    if (config_.tls) {
      write_stat(out, "ssl_handshake_errors", sum(&process::Counters::ssl_handshake_errors));
      write_stat(out, "ssl_new_sessions", sum(&process::Counters::ssl_new_sessions));
      write_stat(out, "time_since_server_cert_refresh",
                 static_cast<uint64_t>(std::max<int64_t>(0, now - tls_.loaded_at())));
    }
    write_stat(out, "cmd_get", sum(&process::Counters::cmd_get));
    write_stat(out, "cmd_set", sum(&process::Counters::cmd_set));
    write_stat(out, "cmd_flush", sum(&process::Counters::cmd_flush));
    write_stat(out, "cmd_touch", sum(&process::Counters::cmd_touch));
    write_stat(out, "get_hits", sum(&process::Counters::get_hits));
    write_stat(out, "get_misses", sum(&process::Counters::get_misses));
    write_stat(out, "get_expired", sum(&process::Counters::get_expired));
    write_stat(out, "delete_misses", sum(&process::Counters::delete_misses));
    write_stat(out, "delete_hits", sum(&process::Counters::delete_hits));
    write_stat(out, "incr_misses", sum(&process::Counters::incr_misses));
    write_stat(out, "incr_hits", sum(&process::Counters::incr_hits));
    write_stat(out, "decr_misses", sum(&process::Counters::decr_misses));
    write_stat(out, "decr_hits", sum(&process::Counters::decr_hits));
    write_stat(out, "cas_misses", sum(&process::Counters::cas_misses));
    write_stat(out, "cas_hits", sum(&process::Counters::cas_hits));
    write_stat(out, "cas_badval", sum(&process::Counters::cas_badval));
    write_stat(out, "touch_hits", sum(&process::Counters::touch_hits));
    write_stat(out, "touch_misses", sum(&process::Counters::touch_misses));
    write_stat(out, "bytes_read", rd);
    write_stat(out, "bytes_written", wr);
    write_stat(out, "limit_maxbytes", es.limit);
    write_stat(out, "threads", static_cast<uint64_t>(config_.threads));
    write_stat(out, "hash_bytes", es.hash_bytes);
    write_stat(out, "expired_unfetched", es.expired_unfetched);
    write_stat(out, "evicted_unfetched", es.evicted_unfetched);
    write_stat(out, "evictions", es.evictions);
    write_stat(out, "reclaimed", es.reclaimed);
    write_stat(out, "curr_items", es.curr_items);
    write_stat(out, "total_items", es.total_items);
    write_stat(out, "bytes", es.bytes);
    write_stat(out, "memory_used", es.memory_used);
    return true;
  }
  if (arg == "settings") {
    write_stat(out, "maxbytes", static_cast<uint64_t>(config_.memory_limit));
    write_stat(out, "maxconns", static_cast<uint64_t>(config_.conn_limit));
    uint64_t native_port = 0, resp_port = 0;
    for (const Listening& l : listeners_) {
      if (l.proto == Proto::kNative) native_port = static_cast<uint64_t>(l.port);
      if (l.proto == Proto::kResp) resp_port = static_cast<uint64_t>(l.port);
    }
    write_stat(out, "tcpport", static_cast<uint64_t>(listeners_[0].port));
    write_stat(out, "native_port", native_port);
    write_stat(out, "resp_port", resp_port);
    write_stat(out, "max_frame", static_cast<uint64_t>(config_.max_frame));
    write_stat(out, "interface", listeners_[0].host);
    write_stat(out, "ssl_enabled", config_.tls ? "yes" : "no");
    write_stat(out, "auth_enabled_ascii", auth_required() ? "yes" : "no");
    write_stat(out, "flush_enabled", config_.flush_enabled ? "yes" : "no");
    if (config_.tls) {
      const net::TlsOptions& t = config_.tls_options;
      write_stat(out, "ssl_chain_cert", t.cert_chain);
      write_stat(out, "ssl_key", t.key.empty() ? t.cert_chain : t.key);
      write_stat(out, "ssl_ca_cert", t.ca.empty() ? "NULL" : t.ca);
      write_stat(out, "ssl_verify_mode", static_cast<uint64_t>(t.verify_mode));
      write_stat(out, "ssl_min_version", t.min_version);
      write_stat(out, "ssl_ciphers", t.ciphers.empty() ? "NULL" : t.ciphers);
      write_stat(out, "ssl_handshake_timeout_ms",
                 static_cast<uint64_t>(config_.tls_handshake_timeout_ms));
    }
    write_stat(out, "verbosity", static_cast<uint64_t>(verbosity_.load()));
    write_stat(out, "num_threads", static_cast<uint64_t>(config_.threads));
    write_stat(out, "item_size_max", static_cast<uint64_t>(config_.max_item_size));
    write_stat(out, "evictions", "on");
    write_stat(out, "cas_enabled", "yes");
    write_stat(out, "max_line", static_cast<uint64_t>(config_.max_line));
    write_stat(out, "output_high_water", static_cast<uint64_t>(config_.output_high_water));
    write_stat(out, "output_limit", static_cast<uint64_t>(config_.output_limit));
    return true;
  }
  if (arg == "slabs") {
    // memcached's per-class rows; the large pool (items above the largest class, malloc'd one
    // by one) is the last class with chunk_size 0.
    uint64_t active = 0;
    for (const engine::ClassStats& c : engine_.class_stats()) {
      const std::string p = std::to_string(c.id) + ":";
      write_stat(out, p + "chunk_size", c.chunk_size);
      write_stat(out, p + "chunks_per_page", c.chunks_per_page);
      write_stat(out, p + "total_pages", c.pages);
      write_stat(out, p + "total_chunks", c.pages * c.chunks_per_page);
      if (c.chunk_size == 0) write_stat(out, p + "used_chunks", c.items);
      write_stat(out, p + "evicted", c.evictions);
      ++active;
    }
    write_stat(out, "active_slabs", active);
    write_stat(out, "total_malloced", engine_.stats().memory_used);
    return true;
  }
  if (arg == "conns") {
    const uint64_t now_ms = uv_hrtime() / 1'000'000;
    for (auto& w : workers_) w->write_conns(out, now_ms);
    return true;
  }
  if (arg == "items") {
    // One set of counters for the whole engine (it evicts by CLOCK per size class, but counts
    // per engine): reported as a single class.
    engine::EngineStats es = engine_.stats();
    write_stat(out, "items:1:number", es.curr_items);
    write_stat(out, "items:1:evicted", es.evictions);
    write_stat(out, "items:1:evicted_unfetched", es.evicted_unfetched);
    write_stat(out, "items:1:expired_unfetched", es.expired_unfetched);
    write_stat(out, "items:1:reclaimed", es.reclaimed);
    return true;
  }
  return false;
}

}  // namespace cachetier::server
