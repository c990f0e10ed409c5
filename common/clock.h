// Clock: the engine's source of unix time in seconds. Injectable so tests can move time
// forward without sleeping.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>

namespace cachetier {

class Clock {
 public:
  virtual ~Clock() = default;
  // Current unix time in seconds. Thread-safe.
  virtual int64_t now() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t now() const override { return static_cast<int64_t>(::time(nullptr)); }
};

// The system's time plus an offset that only grows (cacheserver --debug-clock: tests move a
// real server's time forward with RESP's DEBUG ADVANCE-CLOCK instead of sleeping).
class OffsetClock final : public Clock {
 public:
  int64_t now() const override {
    return static_cast<int64_t>(::time(nullptr)) + offset_.load(std::memory_order_relaxed);
  }
  void advance(int64_t seconds) { offset_.fetch_add(seconds, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> offset_{0};
};

// A clock that moves only when told to; for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start) : now_(start) {}
  int64_t now() const override { return now_.load(std::memory_order_relaxed); }
  void advance(int64_t seconds) { now_.fetch_add(seconds, std::memory_order_relaxed); }
  void set(int64_t t) { now_.store(t, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace cachetier
