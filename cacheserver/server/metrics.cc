// cacheserver's /metrics (--metrics-port): memcached_exporter's names and labels, so memcached
// dashboards work unchanged, then cachetier_* series. Every value is read at scrape time from
// the same per-worker counters `stats` sums; nothing here runs on the request path.
#include <sys/resource.h>

#include <string>

#include "cacheserver/server/server.h"
#include "cacheserver/server/worker.h"
#include "common/metrics/exposition.h"
#include "common/version.h"

namespace cachetier::server {

namespace {

double seconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

}  // namespace

void Server::collect_metrics(metrics::MetricsSink& m) {
  auto sum = [&](Counter process::Counters::*field) { return static_cast<double>(total(field)); };
  uint64_t rd = 0, wr = 0;
  for (auto& w : workers_) {
    rd += w->bytes_read().load();
    wr += w->bytes_written().load();
  }
  const engine::EngineStats es = engine_.stats();
  const int64_t now = engine_.clock().now();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  using P = process::Counters;

  metrics::process_metrics(m);
  m.gauge("memcached_up", "Could the memcached server be reached.", 1);
  // A gauge (memcached_exporter says counter; promtool wants counters to end in _total).
  m.gauge("memcached_uptime_seconds", "Number of seconds since the server started.",
          static_cast<double>(now - started_at_));
  m.gauge("memcached_time_seconds", "current UNIX time according to the server.",
          static_cast<double>(now));
  m.gauge("memcached_version", "The version of this memcached server.", 1,
          {{"version", CACHETIER_VERSION}});
  m.counter("memcached_process_user_cpu_seconds_total", "Accumulated user time for this process.",
            seconds(ru.ru_utime));
  m.counter("memcached_process_system_cpu_seconds_total",
            "Accumulated system time for this process.", seconds(ru.ru_stime));
  m.counter("memcached_read_bytes_total", "Total number of bytes read by this server from network.",
            static_cast<double>(rd));
  m.counter("memcached_written_bytes_total",
            "Total number of bytes sent by this server to network.", static_cast<double>(wr));
  m.gauge("memcached_current_connections", "Current number of open connections.",
          static_cast<double>(curr_connections_.load()));
  m.gauge("memcached_max_connections", "Maximum number of clients allowed.",
          static_cast<double>(config_.conn_limit));
  m.counter("memcached_connections_total",
            "Total number of connections opened since the server started running.",
            static_cast<double>(total_connections_.load()));
  m.counter("memcached_connections_rejected_total",
            "Total number of connections rejected for the -c limit.",
            static_cast<double>(rejected_connections_.load()));
  m.gauge("memcached_current_bytes", "Current number of bytes used to store items.",
          static_cast<double>(es.bytes));
  m.gauge("memcached_limit_bytes", "Number of bytes this server is allowed to use for storage.",
          static_cast<double>(es.limit));
  m.gauge("memcached_current_items", "Current number of items stored by this instance.",
          static_cast<double>(es.curr_items));
  m.counter("memcached_items_total",
            "Total number of items stored during the life of this instance.",
            static_cast<double>(es.total_items));
  m.counter("memcached_items_evicted_total",
            "Total number of valid items removed from cache to free memory for new items.",
            static_cast<double>(es.evictions));
  m.counter("memcached_items_reclaimed_total",
            "Total number of expired items whose memory was freed for reuse.",
            static_cast<double>(es.reclaimed));

  metrics::command_metrics(
      m, "memcached_commands_total",
      "Total number of all requests broken down by command (get, set, etc.) and status.",
      metrics::command_counts<P>([&](Counter P::*f) { return total(f); }));

  // cachetier's own.
  m.gauge("cachetier_memory_charged_bytes",
          "Memory charged to -m: items, allocator rounding and the index.",
          static_cast<double>(es.memory_used));
  m.gauge("cachetier_hash_bytes", "Bytes of the hash index.", static_cast<double>(es.hash_bytes));
  m.counter("cachetier_items_evicted_unfetched_total", "Evicted items that were never read.",
            static_cast<double>(es.evicted_unfetched));
  m.counter("cachetier_items_expired_unfetched_total", "Expired items that were never read.",
            static_cast<double>(es.expired_unfetched));
  for (const engine::ClassStats& c : engine_.class_stats()) {
    const std::string id = std::to_string(c.id);
    const std::string size = c.chunk_size == 0 ? "large" : std::to_string(c.chunk_size);
    m.counter("cachetier_class_evictions_total",
              "Live items evicted, per stats-slabs class (1 the small queue's segments, 2 the "
              "main queue's; chunk_size large: items in mappings of their own).",
              static_cast<double>(c.evictions), {{"class", id}, {"chunk_size", size}});
    if (c.chunk_size != 0) {
      m.gauge("cachetier_class_pages", "Segments held per stats-slabs class.",
              static_cast<double>(c.pages), {{"class", id}, {"chunk_size", size}});
    }
  }
  m.gauge("cachetier_threads", "Worker threads.", static_cast<double>(config_.threads));
  if (config_.tls) {
    m.counter("cachetier_ssl_handshake_errors_total", "TLS handshakes that failed.",
              sum(&P::ssl_handshake_errors));
    m.counter("cachetier_ssl_new_sessions_total", "TLS sessions established.",
              sum(&P::ssl_new_sessions));
    m.gauge("cachetier_ssl_cert_refresh_age_seconds",
            "Seconds since the server certificate was last loaded.",
            static_cast<double>(now - tls_.loaded_at()));
  }
  if (auth_required()) {
    m.counter("cachetier_auth_commands_total", "Authentication attempts.", sum(&P::auth_cmds));
    m.counter("cachetier_auth_errors_total", "Refused authentication attempts.",
              sum(&P::auth_errors));
  }
  for (size_t f = 0; f < process::kFamilies; ++f) {
    metrics::HistogramSnapshot h;
    for (auto& w : workers_) h.add(w->latency(f));
    m.histogram("cachetier_request_duration_seconds",
                "Time from the read that brought a request to its reply being ready to write, "
                "per command family (both protocols).",
                h, {{"family", process::kFamilyNames[f]}});
  }
}

}  // namespace cachetier::server
