// An offline cache simulator over a trace (trace_file.h): the hit ratio an eviction policy
// reaches with a byte budget, as the reference (exact LRU) and the ceiling (Belady) for what
// the servers reach when the same trace is replayed against them (cachebench --trace).
//
// The model is the servers' look-aside use: a get that misses fills the key in (with the
// record's size and ttl), a set stores, a delete removes. An object costs its key, its value
// and `per_object` bytes (the server's header and index share), and the cached objects' cost
// never exceeds `budget`. An object due to expire (at the trace's time) is a miss when read.
//
// Policies:
//   lru     exact LRU (a hit moves to the head; the tail goes)
//   fifo    insertion order
//   clock   FIFO with one reference bit (reinserted once per hit since the last pass)
//   sieve   SIEVE (NSDI'24): FIFO order, a visited bit, a hand that keeps visited objects in
//           place and evicts the first unvisited one
//   s3fifo  S3-FIFO (SOSP'23): a small FIFO (small_ratio of the bytes), a main FIFO with 2-bit
//           frequencies and reinsertion, and a ghost FIFO of keys evicted from the small queue
//           (keys in it are admitted straight to main); SimConfig::adaptive adds a ghost of
//           keys evicted from main and moves the small queue's share with ghost hits
//   opt     Belady: evicts the object whose next read is farthest away (never read again
//           first), and may decline to keep what it just filled. With equal sizes this is the
//           optimum; with mixed sizes it is the classic size-blind bound, a reference
//           ceiling rather than a proof of optimality.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/trace/trace_file.h"
#include "common/status.h"

namespace cachetier::bench::trace {

// A trace in memory, keys interned to dense ids.
struct Trace {
  struct Request {
    uint32_t id;  // key id, or the phase's index for a phase marker
    uint32_t size;
    uint32_t ttl;
    uint32_t time_s;
    Op op;
  };
  std::vector<Request> requests;
  std::vector<uint8_t> key_len;     // by id
  std::vector<std::string> phases;  // "all" when the trace names none
  size_t keys() const { return key_len.size(); }
};

Result<Trace> load_trace(Reader& reader);

enum class Policy { kLru, kFifo, kClock, kSieve, kS3Fifo, kOpt };
const char* policy_name(Policy p);
// "lru", "fifo", "clock", "sieve", "s3fifo", "opt"; false for anything else.
bool parse_policy(std::string_view name, Policy& p);

struct SimConfig {
  uint64_t budget = 64 << 20;   // bytes
  uint32_t per_object = 0;      // bytes added to key + value
  double small_ratio = 0.1;     // s3fifo: the small queue's share of the budget
  unsigned move_threshold = 1;  // s3fifo: hits in the small queue that earn the main queue
  bool fill = true;             // a get that misses stores the object (cachebench's default)
  double ghost_ratio = 1.0;     // s3fifo: the ghost's bytes as a share of the main queue's
  // s3fifo: the small queue's share adapts (as cacheserver's engine does): a key back from
  // the small queue's ghost grows it by adapt_step of the budget, one back from the main
  // queue's ghost shrinks it, within [small_min, small_max].
  bool adaptive = false;
  double adapt_step = 0.001, small_min = 0.05, small_max = 0.9;
};

struct PhaseResult {
  std::string name;
  uint64_t gets = 0, hits = 0;
  double hit_ratio() const { return gets == 0 ? 0.0 : double(hits) / double(gets); }
};

struct SimResult {
  uint64_t gets = 0, hits = 0, evictions = 0;
  uint64_t peak_bytes = 0;  // the most the cached objects cost at once (<= budget)
  std::vector<PhaseResult> phases;
  double hit_ratio() const { return gets == 0 ? 0.0 : double(hits) / double(gets); }
};

SimResult simulate(const Trace& trace, Policy policy, const SimConfig& config);

}  // namespace cachetier::bench::trace
