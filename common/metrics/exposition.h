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

// The process's own series under Prometheus's standard names: process_cpu_seconds_total,
// process_resident_memory_bytes, process_start_time_seconds (from /proc/self).
void process_metrics(MetricsSink& m);

// "HOST:PORT" for an endpoint on `host` and `port` (IPv6 in brackets).
std::string join_host_port(const std::string& host, int port);

}  // namespace cachetier::metrics
