// LruEngine: the default Engine. Approximate LRU (CLOCK) over slab-allocated items, sharded by
// key hash so that hits on different shards never share a lock.
//
//   index:  2^shard_bits shards, chosen by the top bits of xxh3(key); each has a mutex and a
//           chained hash table (items link through `hnext`).
//   memory: items up to a quarter page live in chunks of fixed-size pages (64 KiB) carved into
//           size classes (8-byte steps up to 1 KiB, ~6% steps above). Each class has a mutex,
//           a free list and a CLOCK hand that sweeps its pages:
//
//             class c:  page0 [it|it|free|it ...]  page1 [it|it|...  ]   hand -> (page, slot)
//                       a hit sets the item's reference bit; the hand clears set bits and
//                       evicts the first item whose bit is already clear.
//
//           When a class needs memory and the budget has no page left, it evicts with its own
//           hand; a class without pages takes a whole page from the class holding the most.
//           Larger items get an allocation each, in a "large" pool with its own CLOCK hand;
//           large items and pages give memory back to each other when one side needs it.
//   budget: pages + large items + index bytes <= memory limit. A slice of the limit (1/16) is
//           set aside so the index can grow when items have taken the rest.
//
// Lock order: a shard lock is never held while blocking on a class lock. Allocation and freeing
// take one class lock (or the large pool's); eviction holds it and only try_locks shards and
// other classes, so no two threads can wait on each other.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cacheserver/engine/engine.h"
#include "common/counter.h"

namespace cachetier::engine {

struct LruEngineConfig {
  size_t memory_limit = 64 << 20;  // bytes
  unsigned shard_bits = 6;
  size_t initial_buckets_per_shard = 1024;
  size_t page_size = 64 << 10;     // slab page; items above a quarter of it are "large"
  size_t max_item_size = 1 << 20;  // largest value
};

struct Item;
struct Shard;
struct SlabClass;
struct LargePool;

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
  std::vector<ClassStats> class_stats() const override;
  const Clock& clock() const override { return clock_; }

  // Starts/stops a thread that calls reclaim_expired every `period_ms`.
  void start_reclaimer(int period_ms = 200);
  void stop_reclaimer();

  // Bytes one item of this key and value size occupies (its chunk), for docs and tests.
  size_t item_cost(size_t key_len, size_t value_len) const;
  size_t page_size() const { return page_size_; }

 private:
  class Graveyard;  // items unlinked under a shard lock, freed after it is released

  Shard& shard_for(uint64_t hash) const;
  Item* find_locked(Shard& s, uint64_t hash, std::string_view key);
  bool dead_locked(const Item* it, int64_t now) const;
  void link_locked(Shard& s, uint64_t hash, Item* it);
  void unlink_locked(Shard& s, Item* it);
  uint64_t next_cas_locked(Shard& s);
  void maybe_grow_locked(Shard& s);
  // Removes `it` from the index if it is dead; returns true if it was removed. The caller
  // frees it after releasing the shard lock.
  bool drop_if_dead_locked(Shard& s, Item*& it, int64_t now, bool* expired, Item** to_free);

  // Allocation: never called with a shard lock held.
  // Allocation with room for `extra` bytes after the value (a version); a large item gets
  // `slack` bytes more if the budget allows, to grow into in place (append_in_place_locked).
  Item* allocate(size_t key_len, size_t value_len, size_t extra = 0, size_t slack = 0);
  void release(Item* it);
  Item* allocate_small(size_t bytes);
  Item* allocate_large(size_t bytes);
  // An append that fits in a large item's capacity, done in place: O(appended bytes) where a
  // new item would copy the whole value (a hint list appended to per missed write).
  bool append_in_place_locked(Shard& s, Item* old, const StoreRequest& req, int64_t now,
                              StoreResult& r);
  int class_for(size_t bytes) const;
  bool reserve_budget(size_t bytes);
  bool take_fresh_page_locked(SlabClass& c);
  // Empties one page of another class (only try_locks it); returns its memory or nullptr.
  char* detach_page(const SlabClass* requester);
  bool steal_page(SlabClass& c);
  Item* evict_one_locked(SlabClass& c);
  // Unlinks `it` for its memory; a live item (not an expired one) counts in `class_evictions`.
  bool evict_item(Item* it, Counter& class_evictions);
  // Frees one large item by CLOCK (large pool lock held); false if none could go.
  bool evict_large_locked();
  void free_large_locked(Item* it);

  const Clock& clock_;
  const size_t limit_;
  const unsigned shard_bits_;
  const size_t page_size_;
  const size_t large_threshold_;
  const size_t max_item_size_;
  const size_t index_reserve_;
  std::unique_ptr<Shard[]> shards_;
  std::vector<std::unique_ptr<SlabClass>> classes_;
  std::unique_ptr<LargePool> large_;
  std::atomic<int64_t> data_bytes_{0};  // pages + large items
  std::atomic<int64_t> index_bytes_{0};
  std::atomic<int64_t> flush_at_{0};
  std::atomic<size_t> steal_cursor_{0};

  std::mutex reclaimer_mu_;
  std::condition_variable reclaimer_cv_;
  bool reclaimer_stop_ = false;
  std::thread reclaimer_;
};

}  // namespace cachetier::engine
