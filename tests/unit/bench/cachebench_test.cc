// cachebench's building blocks: key patterns (distribution checks) and the latency histogram
// (accuracy against known samples).
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <vector>

#include "bench/cachebench/histogram.h"
#include "bench/cachebench/keys.h"

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
