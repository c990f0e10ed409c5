// LogBudget: at most N log lines per second for one kind of event (a flood of bad TLS
// handshakes is counted exactly but written out only this often). One thread only.
#pragma once

#include <cstdint>

namespace cachetier {

class LogBudget {
 public:
  explicit LogBudget(int per_second = 10) : per_second_(per_second) {}
  // True if a line may be written at `now_ms` (any monotonic milliseconds).
  bool allow(uint64_t now_ms) {
    const uint64_t second = now_ms / 1000;
    if (second != second_) {
      second_ = second;
      used_ = 0;
    }
    return ++used_ <= per_second_;
  }

 private:
  int per_second_;
  uint64_t second_ = 0;
  int used_ = 0;
};

}  // namespace cachetier
