// common/metrics: the latency histogram's buckets and sums, and the sink a scrape fills.
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>
#include <limits>
#include <sstream>
#include <thread>

#include "common/metrics/exposition.h"
#include "common/metrics/histogram.h"

namespace cachetier::metrics {

TEST_CASE("latency buckets: a value on a bound falls in that bound's bucket", "[metrics]") {
  CHECK(latency_bucket(0) == 0);
  CHECK(latency_bucket(250) == 0);
  CHECK(latency_bucket(251) == 1);
  CHECK(latency_bucket(1'000) == 2);
  CHECK(latency_bucket(1'000'000'000) == kLatencyBoundsNs.size() - 1);
  CHECK(latency_bucket(1'000'000'001) == kLatencyBoundsNs.size());  // +Inf
  CHECK(latency_bucket(std::numeric_limits<uint64_t>::max()) == kLatencyBoundsNs.size());
}

TEST_CASE("histograms of several writers add bucket by bucket", "[metrics]") {
  LatencyHistogram a, b;
  std::thread ta([&] {
    for (int i = 0; i < 1000; ++i) a.record(800);  // bucket 2 (<= 1 us)
  });
  std::thread tb([&] {
    for (int i = 0; i < 500; ++i) b.record(40'000, 2);  // bucket 7 (<= 50 us), twice each
  });
  ta.join();
  tb.join();
  HistogramSnapshot s;
  s.add(a);
  s.add(b);
  CHECK(s.count() == 2000);
  CHECK(s.buckets[2] == 1000);
  CHECK(s.buckets[7] == 1000);
  CHECK(s.sum_ns == 1000 * 800 + 1000 * 40'000);
}

TEST_CASE("the sink groups samples by name, cumulative buckets, seconds", "[metrics]") {
  MetricsSink m;
  m.counter("x_total", "help x", 3, {{"a", "1"}});
  m.gauge("y", "help y", 2.5);
  m.counter("x_total", "help x", 4, {{"a", "2"}});
  LatencyHistogram h;
  h.record(300);        // <= 500 ns
  h.record(2'000'000);  // <= 2.5 ms
  HistogramSnapshot s;
  s.add(h);
  m.histogram("lat_seconds", "help lat", s, {{"f", "get"}});
  std::vector<prometheus::MetricFamily> fam = m.take();
  REQUIRE(fam.size() == 3);
  CHECK(fam[0].name == "x_total");
  CHECK(fam[0].metric.size() == 2);
  CHECK(fam[0].metric[1].counter.value == 4);
  CHECK(fam[0].metric[1].label[0].value == "2");
  CHECK(fam[1].metric[0].gauge.value == 2.5);
  const auto& hist = fam[2].metric[0].histogram;
  CHECK(hist.sample_count == 2);
  CHECK(hist.sample_sum == 0.0020003);
  REQUIRE(hist.bucket.size() == kLatencyBoundsNs.size() + 1);
  CHECK(hist.bucket[0].cumulative_count == 0);
  CHECK(hist.bucket[1].cumulative_count == 1);
  CHECK(hist.bucket[1].upper_bound == 500e-9);
  CHECK(hist.bucket[12].cumulative_count == 2);  // 2.5 ms
  CHECK(hist.bucket.back().cumulative_count == 2);
  CHECK(hist.bucket.back().upper_bound == std::numeric_limits<double>::infinity());
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, fam);
  CHECK(text.str().find("x_total{a=\"1\"} 3") != std::string::npos);
  CHECK(text.str().find("lat_seconds_bucket{f=\"get\",le=\"+Inf\"} 2") != std::string::npos);
}

TEST_CASE("an endpoint on a taken port is an error, not an exception", "[metrics]") {
  auto first = MetricsEndpoint::start("127.0.0.1:0", [](MetricsSink&) {});
  REQUIRE(first.is_ok());
  const int port = first.value()->port();
  CHECK(port > 0);
  auto second = MetricsEndpoint::start("127.0.0.1:" + std::to_string(port), [](MetricsSink&) {});
  REQUIRE_FALSE(second.is_ok());
  CHECK(second.status().message().find("cannot listen on 127.0.0.1:" + std::to_string(port)) !=
        std::string::npos);
  CHECK(join_host_port("::1", 80) == "[::1]:80");
  CHECK(join_host_port("10.0.0.1", 80) == "10.0.0.1:80");
}

}  // namespace cachetier::metrics
