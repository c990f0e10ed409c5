// LatencyHistogram: log-linear buckets (HdrHistogram-style) over nanoseconds: 128 linear
// sub-buckets per power of two, so any recorded value is reported within 1% relative error,
// in fixed memory (58 KB). Histograms of several threads merge by adding counts.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace cachetier::bench {

// SubBits sub-buckets per power of two: 7 (128) gives < 1% error; the per-second series uses 4
// (16, ~6%) to stay small.
template <int SubBits>
class BasicLatencyHistogram {
 public:
  static constexpr int kSubBits = SubBits;
  static constexpr int kBuckets = (64 - kSubBits) << kSubBits;

  void record(uint64_t ns) {
    counts_[index(ns)]++;
    ++total_;
    sum_ += ns;
    if (ns > max_) max_ = ns;
    if (ns < min_) min_ = ns;
  }
  template <int S>
  void merge(const BasicLatencyHistogram<S>& o) {
    static_assert(S == SubBits, "merge histograms of the same resolution");
    for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    sum_ += o.sum_;
    if (o.max_ > max_) max_ = o.max_;
    if (o.min_ < min_) min_ = o.min_;
  }
  uint64_t count() const { return total_; }
  double mean_ns() const { return total_ ? double(sum_) / double(total_) : 0; }
  // The value at percentile p (0..100): the midpoint of the bucket that holds it.
  uint64_t percentile(double p) const {
    if (total_ == 0) return 0;
    auto rank = static_cast<uint64_t>(p / 100.0 * double(total_) + 0.5);
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return midpoint(i);
    }
    return max_;
  }
  uint64_t max() const { return max_; }
  uint64_t min() const { return total_ ? min_ : 0; }
  uint64_t sum_ns() const { return sum_; }

  static int index(uint64_t v) {
    if (v < (uint64_t{1} << kSubBits)) return static_cast<int>(v);
    int e = 63 - std::countl_zero(v);  // v in [2^e, 2^(e+1))
    int shift = e - kSubBits;
    return ((shift + 1) << kSubBits) + static_cast<int>((v >> shift) & ((1u << kSubBits) - 1));
  }
  static uint64_t midpoint(int i) {
    if (i < (1 << kSubBits)) return static_cast<uint64_t>(i);
    int shift = (i >> kSubBits) - 1;
    uint64_t low = (uint64_t{1} << (shift + kSubBits)) |
                   (static_cast<uint64_t>(i & ((1 << kSubBits) - 1)) << shift);
    return low + (uint64_t{1} << shift) / 2;
  }

 private:
  template <int>
  friend class BasicLatencyHistogram;
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0, sum_ = 0, max_ = 0, min_ = UINT64_MAX;
};

using LatencyHistogram = BasicLatencyHistogram<7>;

}  // namespace cachetier::bench
