// The Prometheus endpoint. See exposition.h.
#include "common/metrics/exposition.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ctime>
#include <exception>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

namespace cachetier::metrics {

struct MetricsSink::Impl {
  std::vector<prometheus::MetricFamily> families;
  std::map<std::string, size_t, std::less<>> index;

  prometheus::ClientMetric& add(std::string_view name, std::string_view help,
                                prometheus::MetricType type, const Labels& labels) {
    auto it = index.find(name);
    if (it == index.end()) {
      prometheus::MetricFamily f;
      f.name = std::string(name);
      f.help = std::string(help);
      f.type = type;
      families.push_back(std::move(f));
      it = index.emplace(std::string(name), families.size() - 1).first;
    }
    prometheus::ClientMetric m;
    for (const auto& [k, v] : labels) m.label.push_back({k, v});
    families[it->second].metric.push_back(std::move(m));
    return families[it->second].metric.back();
  }
};

MetricsSink::MetricsSink() : impl_(std::make_unique<Impl>()) {}
MetricsSink::~MetricsSink() = default;

void MetricsSink::counter(std::string_view name, std::string_view help, double value,
                          const Labels& labels) {
  impl_->add(name, help, prometheus::MetricType::Counter, labels).counter.value = value;
}

void MetricsSink::gauge(std::string_view name, std::string_view help, double value,
                        const Labels& labels) {
  impl_->add(name, help, prometheus::MetricType::Gauge, labels).gauge.value = value;
}

void MetricsSink::histogram(std::string_view name, std::string_view help,
                            const HistogramSnapshot& h, const Labels& labels) {
  prometheus::ClientMetric& m = impl_->add(name, help, prometheus::MetricType::Histogram, labels);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    cumulative += h.buckets[i];
    prometheus::ClientMetric::Bucket b;
    b.cumulative_count = cumulative;
    b.upper_bound = i < kLatencyBoundsNs.size() ? static_cast<double>(kLatencyBoundsNs[i]) / 1e9
                                                : std::numeric_limits<double>::infinity();
    m.histogram.bucket.push_back(b);
  }
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = static_cast<double>(h.sum_ns) / 1e9;
}

std::vector<prometheus::MetricFamily> MetricsSink::take() { return std::move(impl_->families); }

struct MetricsEndpoint::Collector : prometheus::Collectable {
  explicit Collector(CollectFn c) : collect(std::move(c)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    MetricsSink sink;
    collect(sink);
    return sink.take();
  }
  MetricsEndpoint::CollectFn collect;
};

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::start(const std::string& address,
                                                                CollectFn collect) {
  std::unique_ptr<MetricsEndpoint> e(new MetricsEndpoint());
  try {
    // One thread is enough for a scraper or two; civetweb's default would start 50.
    e->exposer_ = std::make_unique<prometheus::Exposer>(address, 2);
  } catch (const std::exception& ex) {
    return Status(StatusCode::kInvalidArgument,
                  "metrics: cannot listen on " + address + ": " + ex.what());
  }
  e->collector_ = std::make_shared<Collector>(std::move(collect));
  e->exposer_->RegisterCollectable(e->collector_);
  std::vector<int> ports = e->exposer_->GetListeningPorts();
  e->port_ = ports.empty() ? 0 : ports.front();
  return e;
}

MetricsEndpoint::~MetricsEndpoint() = default;

void command_metrics(MetricsSink& m, std::string_view name, std::string_view help,
                     const CommandCounts& c) {
  auto one = [&](const char* command, const char* status, uint64_t v) {
    m.counter(name, help, static_cast<double>(v), {{"command", command}, {"status", status}});
  };
  const std::pair<const char*, std::pair<uint64_t, uint64_t>> hit_miss[] = {
      {"get", {c.get_hits, c.get_misses}},    {"delete", {c.delete_hits, c.delete_misses}},
      {"incr", {c.incr_hits, c.incr_misses}}, {"decr", {c.decr_hits, c.decr_misses}},
      {"cas", {c.cas_hits, c.cas_misses}},    {"touch", {c.touch_hits, c.touch_misses}},
  };
  for (const auto& [command, hm] : hit_miss) {
    one(command, "hit", hm.first);
    one(command, "miss", hm.second);
  }
  one("cas", "badval", c.cas_badval);
  one("flush", "hit", c.cmd_flush);
  const uint64_t cas = c.cas_hits + c.cas_misses + c.cas_badval;
  one("set", "hit", c.cmd_set > cas ? c.cmd_set - cas : 0);
}

void process_metrics(MetricsSink& m) {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  m.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
            secs(ru.ru_utime) + secs(ru.ru_stime));
  // /proc/self/stat: field 22 is the start time in clock ticks after boot, 24 the RSS in pages.
  std::ifstream stat("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return;
  std::istringstream fields(text.substr(paren + 2));
  std::vector<std::string> f((std::istream_iterator<std::string>(fields)),
                             std::istream_iterator<std::string>());
  if (f.size() < 22) return;  // f[0] is field 3 (state)
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  m.gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
          std::stod(f[21]) * page);
  std::ifstream up("/proc/uptime");
  double uptime = 0;
  up >> uptime;
  const double started_after_boot = std::stod(f[19]) / ticks;
  m.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
          static_cast<double>(std::time(nullptr)) - uptime + started_after_boot);
}

std::string join_host_port(const std::string& host, int port) {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

}  // namespace cachetier::metrics
