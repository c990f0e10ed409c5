// LruEngine: the default Engine. Items live in 2^shard_bits shards chosen by the top bits of
// the key's xxh3 hash; each shard has its own mutex, chained hash table and exact LRU list, so
// hits on different shards never share a lock. Memory is charged to one global budget: every
// item allocation (as glibc rounds it) and every bucket array. A store that would exceed the
// budget first evicts from the tail of its own shard, then from other shards it can try-lock.
//
//   shard k:  buckets[] -> Item -> Item (hnext chains)
//             lru_head (most recent) <-> ... <-> lru_tail (next to evict)
//
// Lock order: a thread holds at most one shard lock, except that while holding one it may
// try_lock another to evict from it (never blocking, so no deadlock).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cacheserver/engine/engine.h"

namespace cachetier::engine {

struct LruEngineConfig {
  size_t memory_limit = 64 << 20;  // bytes
  unsigned shard_bits = 6;
  size_t initial_buckets_per_shard = 1024;
};

struct Item;
struct Shard;

class LruEngine final : public Engine {
 public:
  // `clock` must outlive the engine.
  LruEngine(const LruEngineConfig& config, const Clock& clock);
  ~LruEngine() override;
  LruEngine(const LruEngine&) = delete;
  LruEngine& operator=(const LruEngine&) = delete;

  LookupResult lookup(std::string_view key, const LookupOptions& opts, ItemVisitor visit) override;
  StoreResult store(const StoreRequest& req) override;
  StoreResult remove(const DeleteRequest& req) override;
  ArithResult arith(const ArithRequest& req) override;
  void flush(int64_t at) override;
  size_t reclaim_expired(size_t budget) override;
  EngineStats stats() const override;
  const Clock& clock() const override { return clock_; }

  // Starts/stops a thread that calls reclaim_expired every `period_ms`.
  void start_reclaimer(int period_ms = 100);
  void stop_reclaimer();

  // What one item of this key and value size costs against the limit (for docs and tests).
  static size_t item_cost(size_t key_len, size_t value_len);

 private:
  Shard& shard_for(uint64_t hash) const;
  Item* find_locked(Shard& s, uint64_t hash, std::string_view key);
  bool dead_locked(const Item* it, int64_t now) const;
  void unlink_locked(Shard& s, Item* it);
  void link_locked(Shard& s, uint64_t hash, Item* it);
  void free_item_locked(Shard& s, Item* it);
  // Charges `cost` bytes to the budget, evicting as needed. Never evicts `keep`.
  bool make_room_locked(Shard& s, size_t cost, const Item* keep);
  bool evict_one_locked(Shard& s, const Item* keep);
  Item* new_item_locked(Shard& s, std::string_view key, size_t value_len, const Item* keep);
  // Puts `fresh` where `old` was (or adds it), giving it a CAS.
  void replace_locked(Shard& s, uint64_t hash, Item* old, Item* fresh, uint64_t new_cas);
  void maybe_grow_locked(Shard& s);
  uint64_t next_cas_locked(Shard& s);

  const Clock& clock_;
  const size_t limit_;
  const unsigned shard_bits_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> flush_at_{0};

  std::mutex reclaimer_mu_;
  std::condition_variable reclaimer_cv_;
  bool reclaimer_stop_ = false;
  std::thread reclaimer_;
};

}  // namespace cachetier::engine
