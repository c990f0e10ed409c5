// Key ids for cachebench, with memtier_benchmark's --key-pattern letters:
//   R  uniform random in [min, max]
//   S  sequential from min, wrapping (each client on its own)
//   P  parallel sequential: the range is split evenly among all clients, each walks its part
//   G  gaussian around --key-median (default the middle) with --key-stddev (default range/6),
//      clamped to the range
//   Z  zipf over the range with exponent --key-zipf-exp (default 1.0): id min is the hottest
#pragma once

#include <cmath>
#include <cstdint>
#include <random>

namespace cachetier::bench {

// Zipf(s) over 1..n by rejection inversion (Hörmann and Derflinger, 1996): O(1) per sample,
// no table, any n.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double s) : n_(double(n)), s_(s) {
    h_x1_ = H(1.5) - 1.0;
    h_n_ = H(n_ + 0.5);
    cut_ = 2.0 - Hinv(H(2.5) - h(2.0));
  }
  template <typename Rng>
  uint64_t operator()(Rng& rng) {
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    for (;;) {
      double u = h_n_ + u01(rng) * (h_x1_ - h_n_);
      double x = Hinv(u);
      double k = std::floor(x + 0.5);
      if (k < 1) k = 1;
      if (k > n_) k = n_;
      if (k - x <= cut_ || u >= H(k + 0.5) - h(k)) return static_cast<uint64_t>(k);
    }
  }

 private:
  double h(double x) const { return std::exp(-s_ * std::log(x)); }
  // H(x) = integral of x^-s; written with log1p/expm1 forms so s near 1 stays exact.
  double H(double x) const {
    double lx = std::log(x);
    return helper2((1.0 - s_) * lx) * lx;
  }
  double Hinv(double y) const {
    double t = y * (1.0 - s_);
    if (t < -1.0) t = -1.0;
    return std::exp(helper1(t) * y);
  }
  static double helper1(double x) {  // log1p(x) / x
    return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
  }
  static double helper2(double x) {  // expm1(x) / x
    return std::abs(x) > 1e-8 ? std::expm1(x) / x
                              : 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x));
  }
  double n_, s_, h_x1_, h_n_, cut_;
};

struct KeyPatternOptions {
  uint64_t min = 0, max = 10000000;
  double median = -1;  // G: < 0 = middle of the range
  double stddev = -1;  // G: < 0 = range / 6
  double zipf_exp = 1.0;
};

class KeyGen {
 public:
  // client: this client's index among `clients` (all threads); seed: per-client when
  // --distinct-client-seed, else per-thread.
  KeyGen(char pattern, const KeyPatternOptions& o, uint64_t client, uint64_t clients, uint64_t seed)
      : pattern_(pattern),
        min_(o.min),
        span_(o.max - o.min + 1),
        rng_(seed),
        gauss_(o.median >= 0 ? o.median : double(o.min) + double(o.max - o.min) / 2.0,
               o.stddev > 0 ? o.stddev : double(o.max - o.min) / 6.0 + 1e-9),
        zipf_(o.max - o.min + 1, o.zipf_exp) {
    if (pattern == 'P') {
      uint64_t part = span_ / (clients == 0 ? 1 : clients);
      if (part == 0) part = 1;
      part_start_ = (client * part) % span_;
      part_len_ = client + 1 == clients ? span_ - part_start_ : part;
      if (part_len_ == 0) part_len_ = 1;
    }
  }

  uint64_t next() {
    switch (pattern_) {
      case 'S':
        return min_ + (seq_++ % span_);
      case 'P':
        return min_ + part_start_ + (seq_++ % part_len_);
      case 'G': {
        double v = std::round(gauss_(rng_));
        double lo = double(min_), hi = double(min_ + span_ - 1);
        if (v < lo) v = lo;
        if (v > hi) v = hi;
        return static_cast<uint64_t>(v);
      }
      case 'Z':
        return min_ + zipf_(rng_) - 1;
      default:
        return min_ + rng_() % span_;
    }
  }

 private:
  char pattern_;
  uint64_t min_, span_;
  uint64_t seq_ = 0, part_start_ = 0, part_len_ = 1;
  std::mt19937_64 rng_;
  std::normal_distribution<double> gauss_;
  ZipfSampler zipf_;
};

}  // namespace cachetier::bench
