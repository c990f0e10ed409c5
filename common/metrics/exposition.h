// The Prometheus endpoint of cacheserver and cacherouter: GET /metrics in the text format,
// served by prometheus-cpp's pull exposer (civetweb, its own threads). Nothing is registered
// in advance and nothing is counted twice: at each scrape `collect` reads the processes' own
// per-thread counters into a MetricsSink, which becomes the families the exposer writes.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/metrics/histogram.h"
#include "common/status.h"

namespace prometheus {
class Exposer;
struct MetricFamily;
}  // namespace prometheus

namespace cachetier::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Collects one scrape's samples; samples with the same name join one family.
class MetricsSink {
 public:
  MetricsSink();
  ~MetricsSink();
  void counter(std::string_view name, std::string_view help, double value,
               const Labels& labels = {});
  void gauge(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  // Bounds in seconds (kLatencyBoundsNs), the sum in seconds.
  void histogram(std::string_view name, std::string_view help, const HistogramSnapshot& h,
                 const Labels& labels = {});
  std::vector<prometheus::MetricFamily> take();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class MetricsEndpoint {
 public:
  using CollectFn = std::function<void(MetricsSink&)>;
  // Listens on `address` ("HOST:PORT", "[V6]:PORT"; port 0 = ephemeral) and serves /metrics
  // from `collect`, called on the exposer's threads (it must be thread-safe).
  static Result<std::unique_ptr<MetricsEndpoint>> start(const std::string& address,
                                                        CollectFn collect);
  ~MetricsEndpoint();
  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;
  struct Collector;
  std::shared_ptr<Collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

// memcached's command counters (its `stats` names), for memcached_exporter's
// NAME{command,status} series.
struct CommandCounts {
  uint64_t get_hits = 0, get_misses = 0, delete_hits = 0, delete_misses = 0;
  uint64_t incr_hits = 0, incr_misses = 0, decr_hits = 0, decr_misses = 0;
  uint64_t cas_hits = 0, cas_misses = 0, cas_badval = 0, touch_hits = 0, touch_misses = 0;
  uint64_t cmd_set = 0, cmd_flush = 0;
};

// Writes `name` as memcached_exporter derives it: get/delete/incr/decr/cas/touch with hit and
// miss, cas badval, flush hit, and set hit = cmd_set less the cas commands (counted above).
void command_metrics(MetricsSink& m, std::string_view name, std::string_view help,
                     const CommandCounts& c);

// CommandCounts from a per-worker counter struct with memcached's field names
// (process::Counters, router::WorkerStats): `sum(&Stats::field)` totals one over the workers.
template <class Stats, class Sum>
CommandCounts command_counts(Sum&& sum) {
  CommandCounts c;
  c.get_hits = sum(&Stats::get_hits);
  c.get_misses = sum(&Stats::get_misses);
  c.delete_hits = sum(&Stats::delete_hits);
  c.delete_misses = sum(&Stats::delete_misses);
  c.incr_hits = sum(&Stats::incr_hits);
  c.incr_misses = sum(&Stats::incr_misses);
  c.decr_hits = sum(&Stats::decr_hits);
  c.decr_misses = sum(&Stats::decr_misses);
  c.cas_hits = sum(&Stats::cas_hits);
  c.cas_misses = sum(&Stats::cas_misses);
  c.cas_badval = sum(&Stats::cas_badval);
  c.touch_hits = sum(&Stats::touch_hits);
  c.touch_misses = sum(&Stats::touch_misses);
  c.cmd_set = sum(&Stats::cmd_set);
  c.cmd_flush = sum(&Stats::cmd_flush);
  return c;
}

// The process's own series under Prometheus's standard names: process_cpu_seconds_total,
// process_resident_memory_bytes, process_start_time_seconds (from /proc/self).
void process_metrics(MetricsSink& m);

// "HOST:PORT" for an endpoint on `host` and `port` (IPv6 in brackets).
std::string join_host_port(const std::string& host, int port);

}  // namespace cachetier::metrics
