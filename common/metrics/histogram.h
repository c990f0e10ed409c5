// LatencyHistogram: a latency distribution with one writer thread (a worker) and any number of
// readers (a metrics scrape). Like Counter, the writer adds without a locked instruction; a
// reader sums the writers' buckets at read time. Bounds are fixed (250 ns .. 1 s), so histograms
// of different threads add bucket by bucket.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <ctime>

#include "common/counter.h"

namespace cachetier::metrics {

// Monotonic nanoseconds (vDSO clock_gettime: no system call).
inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// Upper bounds in nanoseconds, 250 ns .. 1 s (a node handles a read batch in about a
// microsecond, a router's backends answer in tens to hundreds); the last bucket is +Inf.
inline constexpr std::array<uint64_t, 20> kLatencyBoundsNs = {
    250,        500,        1'000,      2'500,       5'000,       10'000,       25'000,
    50'000,     100'000,    250'000,    500'000,     1'000'000,   2'500'000,    5'000'000,
    10'000'000, 25'000'000, 50'000'000, 100'000'000, 250'000'000, 1'000'000'000};

namespace detail {
// The first bucket a value of each bit width can fall into. Adjacent bounds are at least 2x
// apart, so from there at most one more comparison finds the bucket.
inline constexpr std::array<uint8_t, 65> kFirstBucket = [] {
  std::array<uint8_t, 65> t{};
  for (size_t width = 0; width <= 64; ++width) {
    const uint64_t smallest = width == 0 ? 0 : uint64_t{1} << (width - 1);
    size_t i = 0;
    while (i < kLatencyBoundsNs.size() && smallest > kLatencyBoundsNs[i]) ++i;
    t[width] = static_cast<uint8_t>(i);
  }
  return t;
}();
}  // namespace detail

// The index of the bucket `ns` falls into (kLatencyBoundsNs.size() for +Inf).
inline size_t latency_bucket(uint64_t ns) {
  size_t i = detail::kFirstBucket[static_cast<size_t>(std::bit_width(ns))];
  while (i < kLatencyBoundsNs.size() && ns > kLatencyBoundsNs[i]) ++i;
  return i;
}

class LatencyHistogram {
 public:
  static constexpr size_t kBuckets = kLatencyBoundsNs.size() + 1;

  // `n` observations of `ns` each (a read batch answers several requests at once).
  void record(uint64_t ns, uint64_t n = 1) {
    buckets_[latency_bucket(ns)].add(n);
    sum_ns_.add(ns * n);
  }
  uint64_t bucket(size_t i) const { return buckets_[i].load(); }
  uint64_t sum_ns() const { return sum_ns_.load(); }

 private:
  std::array<Counter, kBuckets> buckets_{};
  Counter sum_ns_;
};

// The sum of several writers' histograms, as read by a scrape.
struct HistogramSnapshot {
  std::array<uint64_t, LatencyHistogram::kBuckets> buckets{};  // not cumulative
  uint64_t sum_ns = 0;

  void add(const LatencyHistogram& h) {
    for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += h.bucket(i);
    sum_ns += h.sum_ns();
  }
  uint64_t count() const {
    uint64_t n = 0;
    for (uint64_t b : buckets) n += b;
    return n;
  }
};

}  // namespace cachetier::metrics
