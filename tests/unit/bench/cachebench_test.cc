// cachebench's building blocks: key patterns (distribution checks) and the latency histogram
// (accuracy against known samples).
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <vector>

#include "bench/cachebench/histogram.h"
#include "bench/cachebench/keys.h"
#include "bench/cachebench/report.h"

using namespace cachetier::bench;

TEST_CASE("cachebench keys: R is uniform over the range", "[bench]") {
  KeyPatternOptions o;
  o.min = 100;
  o.max = 199;
  KeyGen g('R', o, 0, 1, 42);
  std::vector<int> counts(100, 0);
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    uint64_t k = g.next();
    REQUIRE(k >= 100);
    REQUIRE(k <= 199);
    ++counts[k - 100];
  }
  for (int c : counts) CHECK(std::abs(c - n / 100) < n / 100 / 10);  // within 10% of 2000
}

TEST_CASE("cachebench keys: S walks the range in order and wraps", "[bench]") {
  KeyPatternOptions o;
  o.min = 5;
  o.max = 9;
  KeyGen g('S', o, 0, 1, 1);
  std::vector<uint64_t> got;
  for (int i = 0; i < 7; ++i) got.push_back(g.next());
  CHECK(got == std::vector<uint64_t>{5, 6, 7, 8, 9, 5, 6});
}

TEST_CASE("cachebench keys: P splits the range among clients", "[bench]") {
  KeyPatternOptions o;
  o.min = 1;
  o.max = 100;
  std::map<uint64_t, int> owner;
  for (uint64_t c = 0; c < 4; ++c) {
    KeyGen g('P', o, c, 4, 1);
    for (int i = 0; i < 25; ++i) {
      uint64_t k = g.next();
      CHECK(owner.count(k) == 0);  // no two clients share a key
      owner[k] = int(c);
    }
  }
  CHECK(owner.size() == 100);  // together they cover the range once
  CHECK(owner.begin()->first == 1);
  CHECK(owner.rbegin()->first == 100);
}

TEST_CASE("cachebench keys: G centres on the median with the given spread", "[bench]") {
  KeyPatternOptions o;
  o.min = 0;
  o.max = 60000;
  KeyGen g('G', o, 0, 1, 7);
  const int n = 100000;
  double sum = 0, sq = 0;
  for (int i = 0; i < n; ++i) {
    double k = double(g.next());
    sum += k;
    sq += k * k;
  }
  double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  CHECK(std::abs(mean - 30000) < 200);
  CHECK(std::abs(sd - 10000) < 300);  // default stddev: range / 6
}

TEST_CASE("cachebench keys: Z follows a zipf law", "[bench]") {
  for (double s : {0.99, 1.0, 1.2}) {
    KeyPatternOptions o;
    o.min = 1;
    o.max = 1000000;
    o.zipf_exp = s;
    KeyGen g('Z', o, 0, 1, 3);
    std::map<uint64_t, int> counts;
    const int n = 400000;
    for (int i = 0; i < n; ++i) {
      uint64_t k = g.next();
      REQUIRE(k >= 1);
      REQUIRE(k <= 1000000);
      ++counts[k];
    }
    INFO("s = " << s);
    // Frequency ratio of ranks 1 and 2 is 2^s, of 1 and 4 is 4^s (within 10%).
    double r12 = double(counts[1]) / counts[2], r14 = double(counts[1]) / counts[4];
    CHECK(std::abs(r12 / std::pow(2.0, s) - 1) < 0.1);
    CHECK(std::abs(r14 / std::pow(4.0, s) - 1) < 0.1);
  }
}

TEST_CASE("cachebench histogram: percentiles within 1% of the exact values", "[bench]") {
  LatencyHistogram h;
  std::vector<uint64_t> samples;
  std::mt19937_64 rng(9);
  std::lognormal_distribution<double> d(12.0, 1.5);  // ~160 us median, long tail
  for (int i = 0; i < 100000; ++i) {
    auto v = static_cast<uint64_t>(d(rng)) + 1000;
    samples.push_back(v);
    h.record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    uint64_t exact = samples[static_cast<size_t>(p / 100.0 * samples.size()) - 1];
    double got = double(h.percentile(p));
    INFO("p" << p << " exact " << exact << " got " << got);
    CHECK(std::abs(got / double(exact) - 1.0) < 0.01);
  }
  // Extremes of the range: 1 us and 60 s.
  LatencyHistogram e;
  e.record(1000);
  e.record(60'000'000'000ull);
  CHECK(std::abs(double(e.percentile(1)) / 1000.0 - 1) < 0.01);
  CHECK(std::abs(double(e.percentile(100)) / 60e9 - 1) < 0.01);
  // Merging adds counts.
  LatencyHistogram a, b;
  a.record(5000);
  b.record(7000);
  a.merge(b);
  CHECK(a.count() == 2);
}

namespace {
RunTotals sample_run() {
  RunTotals t;
  t.sets = 100;
  t.gets = 900;
  t.hits = 800;
  t.misses = 100;
  t.errors = 2;
  t.bytes = 1024 * 10;
  t.set_rx = 1024;
  t.set_tx = 1024;
  t.get_rx = 1024 * 6;
  t.get_tx = 1024 * 2;
  t.seconds = 2.0;
  for (int i = 1; i <= 100; ++i) t.set_lat.record(uint64_t(i) * 10000);  // 0.01..1 ms
  for (int i = 1; i <= 900; ++i) t.get_lat.record(uint64_t(i) * 1000);   // 0.001..0.9 ms
  t.series.resize(2);
  t.series[0].get.count = 600;
  t.series[0].hits = 500;
  t.series[0].get.lat.record(200000);
  t.series[1].set.count = 400;
  t.series[1].errors = 2;
  t.series[1].set.lat.record(400000);
  return t;
}
}  // namespace

TEST_CASE("cachebench report: memtier's ALL STATS table", "[bench]") {
  Options o;
  RunTotals t = sample_run();
  std::string table = all_stats_table(o, t);
  CHECK(table.rfind("ALL STATS\n====", 0) == 0);
  for (const char* col : {"Type", "Ops/sec", "Hits/sec", "Misses/sec", "Avg. Latency",
                          "p50 Latency", "p99 Latency", "p99.9 Latency", "KB/sec"}) {
    INFO(col);
    CHECK(table.find(col) != std::string::npos);
  }
  // Rows in memtier's order; rates are per second over the run (2 s).
  size_t sets = table.find("\nSets "), gets = table.find("\nGets "), waits = table.find("\nWaits "),
         totals = table.find("\nTotals ");
  CHECK(sets < gets);
  CHECK(gets < waits);
  CHECK(waits < totals);
  CHECK(table.find("50.00", sets) < gets);    // 100 sets / 2 s
  CHECK(table.find("450.00", gets) < waits);  // 900 gets / 2 s
  CHECK(table.find("400.00", gets) < waits);  // 800 hits / 2 s
  CHECK(table.find("500.00", totals) != std::string::npos);
  CHECK(table.find("Errors: 2") != std::string::npos);
  o.percentiles = {90, 99.99};
  std::string custom = all_stats_table(o, t);
  CHECK(custom.find("p90 Latency") != std::string::npos);
  CHECK(custom.find("p99.99 Latency") != std::string::npos);
  CHECK(custom.find("p50 Latency") == std::string::npos);
}

TEST_CASE("cachebench report: memtier's JSON keys, CSV and HTML", "[bench]") {
  Options o;
  RunTotals t = sample_run();
  std::string j = json_report(o, t);
  for (const char* key : {"\"ALL STATS\"",
                          "\"Sets\"",
                          "\"Gets\"",
                          "\"Waits\"",
                          "\"Totals\"",
                          "\"Ops/sec\": 500.00",
                          "\"Count\": 1000",
                          "\"Hits/sec\": 400.00",
                          "\"Misses/sec\": 50.00",
                          "\"Latency\"",
                          "\"KB/sec\": 5.00",
                          "\"Percentile Latencies\": {\"p50.00\"",
                          "\"p99.90\"",
                          "\"Errors\": 2",
                          "\"Time-Serie\"",
                          "\"configuration\"",
                          "\"run information\": {\"Threads\": 4",
                          "\"Connection Errors\": 0",
                          "\"KB/sec RX/TX\": 5.00",
                          "\"KB/sec RX\": 3.50",
                          "\"KB/sec TX\": 1.50",
                          "\"Accumulated Latency\"",
                          "\"Min Latency\"",
                          "\"Start time\"",
                          "\"Finish time\"",
                          "\"Interrupted\": \"false\"",
                          "\"Time-Serie\": {\"0\": {\"Bytes RX\""}) {
    INFO(key);
    CHECK(j.find(key) != std::string::npos);
  }
  // Balanced braces and brackets: a well-formed document (the integration test parses it).
  int depth = 0;
  for (char c : j) {
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    REQUIRE(depth >= 0);
  }
  CHECK(depth == 0);
  std::string csv = csv_series(t);
  CHECK(csv.rfind("second,ops,hits,misses,errors,p50_ms,p99_ms\n0,600,500,0,0,", 0) == 0);
  CHECK(csv.find("\n1,400,0,0,2,") != std::string::npos);
  std::string html = html_report(o, t);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("new uPlot(") != std::string::npos);          // the charts' script, inlined
  CHECK(html.find("var uPlot=function") != std::string::npos);  // uPlot itself
  CHECK(html.find("ALL STATS") != std::string::npos);
  CHECK(html.find("</html>") != std::string::npos);
}
