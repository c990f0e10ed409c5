// Counter: a statistic with one writer thread and any number of readers. The writer adds
// without a locked instruction; readers see a value that is at most slightly old.
#pragma once

#include <atomic>
#include <cstdint>

namespace cachetier {

class Counter {
 public:
  void add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t load() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

}  // namespace cachetier
