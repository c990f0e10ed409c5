// LruEngine: the default Engine. Segment-structured storage with S3-FIFO eviction (SOSP'23),
// one eviction order across all item sizes; the index sharded by key hash so that hits on
// different shards never share a lock. (The name stays from its first, LRU-like, design.)
//
//   index:    2^shard_bits shards, chosen by the top bits of xxh3(key); each has a mutex and a
//             open-addressing table of 8-byte slots, each an item's address tagged with 16
//             more bits of its hash (hash_index.cc).
//   memory:   items are appended, 8-byte aligned, to segments: seg_size bytes of one arena
//             (64 KiB-1 MiB, from the budget), or for an item over a quarter segment a mapping
//             of its own (a jumbo segment). A writer appends at one of a few heads (its thread's
//             slot); a full head's segment is sealed into the small queue.
//   eviction: S3-FIFO over segments, oldest first. The small queue (10% of the bytes to start
//             with, then 5-90% as keys come back from the ghost table: adapt_small) holds
//             what is new; the main queue what was read. Evicting a segment visits its items:
//               from small: read since it came in -> copied to the main queue's head, else
//                           evicted (and its key's fingerprint kept in the ghost table);
//               from main:  read -> copied to the head again with one read less, else evicted
//                           (and kept in the ghost table's other half).
//             A write whose key is in the ghost table (evicted not long ago) comes
//             in as read once, so it goes on to main. A hit only bumps the item's count under
//             its shard lock; no list is touched. The whole segment is then free for any size:
//             memory follows the evictions. A segment whose items are all gone (deleted,
//             expired and reclaimed, overwritten) is freed at once.
//   budget:   backed segments + jumbo mappings + index + ghost table <= memory limit. A slice
//             of the limit (1/16) is set aside so the index can grow; two segments are kept
//             free for the evictor's copies.
//
// Lock order: shard -> (evictor's destination) -> seg_mu_; head -> seg_mu_; evict_mu_ ->
// shard. Nothing allocates while holding a shard lock or an item it unlinked and has not
// released yet (the evictor waits for those before it reuses their segment).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cacheserver/engine/engine.h"
#include "common/counter.h"

namespace cachetier::engine {

struct LruEngineConfig {
  size_t memory_limit = 64 << 20;  // bytes
  unsigned shard_bits = 6;
  size_t initial_buckets_per_shard = 1024;
  size_t segment_size = 0;  // a power of two (rounded down); 0: the budget / 64, in 64 KiB-1 MiB
  size_t max_item_size = 1 << 20;  // largest value
};

struct Item;
struct Shard;
struct Segment;
struct SegmentQueue;
struct AppendHead;

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

  // Bytes one item of this key and value size occupies in its segment, for docs and tests.
  size_t item_cost(size_t key_len, size_t value_len) const;
  size_t segment_size() const { return seg_size_; }
  // Every allocation in every segment released or linked, every count consistent: for tests.
  bool check_invariants(std::string* why) const;

 private:
  class Graveyard;  // items unlinked under a shard lock, freed after it is released

  Shard& shard_for(uint64_t hash) const;
  Item* find_locked(Shard& s, uint64_t hash, std::string_view key);
  bool dead_locked(const Item* it, int64_t now) const;
  // Into the index. Where the table is full and the budget leaves no room to grow it, an item
  // on the key's probe path is evicted into `dead`.
  void link_locked(Shard& s, uint64_t hash, Item* it, Graveyard& dead);
  void unlink_locked(Shard& s, uint64_t hash, Item* it);  // hash: of its key
  // Puts `to` (a copy of `from`) in `from`'s slot.
  void relink_locked(Shard& s, uint64_t hash, Item* from, Item* to);
  uint64_t next_cas_locked(Shard& s);
  size_t slot_of_locked(const Shard& s, uint64_t hash, const Item* it) const;
  // The first slot on the key's probe path that holds no item: a tombstone, else the empty one.
  size_t free_slot_locked(const Shard& s, uint64_t hash) const;
  // A slot for the key when the table is at its fill limit (rehashed, grown or an item
  // evicted).
  size_t make_room_locked(Shard& s, uint64_t hash, Graveyard& dead);
  // The table rebuilt with `cap` slots (a power of two), without tombstones.
  bool rehash_locked(Shard& s, size_t cap);
  // Its size rebuilt for its items: smaller where they fill less than 1/8 of it.
  size_t shrunk_size(const Shard& s) const;
  // Removes `it` from the index if it is dead; returns true if it was removed. The caller
  // frees it after releasing the shard lock.
  bool drop_if_dead_locked(Shard& s, uint64_t hash, Item*& it, int64_t now, bool* expired,
                           Item** to_free);

  // ---- memory (segment_allocator.cc) ----
  void init_segments(size_t segment_size);
  void free_segments();
  // An item with room for `extra` bytes after the value (a version: kVersioned is set, the
  // version 0); a jumbo item gets `slack` bytes more if the budget allows, to grow into in
  // place (append_in_place_locked). Never called with a shard lock held or an unreleased item.
  Item* allocate(size_t key_len, size_t value_len, size_t extra = 0, size_t slack = 0);
  // Gives back an allocation: unlinked, or never linked (then, if it is the last one at its
  // head, its bytes too).
  void release(Item* it);
  Item* allocate_small(size_t bytes);
  Item* allocate_jumbo(size_t bytes);
  Segment& segment_of(const Item* it) const;
  bool is_jumbo(const Item* it) const;
  size_t jumbo_capacity(const Item* it) const;
  // A free segment for a head (never the evictor's reserve); evicts when there is none.
  uint32_t take_segment();
  // Under seg_mu_: a free backed segment, or a new one if the budget allows.
  uint32_t pop_free_locked(bool may_use_reserve);
  bool charge(size_t bytes);  // data bytes, within the budget
  // What the budget keeps for the index: its reserve, or its tables and the growth it waits
  // for (index_wants_), whichever is more.
  int64_t index_claim() const;
  // The budget left beside the segments, the ghost table and `index` bytes of index.
  int64_t room_beside(int64_t index) const;
  // Segments + index claim + ghost table over the limit: the index wants to grow, and a
  // segment freed (or free) goes back to the kernel instead of to the free list.
  bool over_budget() const;
  void unback_locked(uint32_t id);  // under seg_mu_: a free (or emptied) segment's memory
  // Into the small (or main) queue; freed at once if nothing in it is held any more.
  void seal(uint32_t id, bool main);
  void queue_push_locked(SegmentQueue& q, uint32_t id);
  void queue_remove_locked(SegmentQueue& q, uint32_t id);
  SegmentQueue& queue_of_locked(const Segment& g);
  // A sealed segment whose last allocation was released: freed now (seg_mu_ not held).
  void free_if_empty(uint32_t id);
  void recycle_locked(uint32_t id);
  // ---- eviction (evictor.cc) ----
  // Evicts one segment (or finds that another thread did); false if nothing can go.
  // `cheap`: only a compaction of a mostly-garbage segment (compaction_victim_locked).
  bool evict_segment(bool cheap = false);
  // Under seg_mu_: the sealed segment with the fewest live bytes, to compact (its items all
  // kept) when sealed segments are more than an eighth garbage or, `cheap`, when it is at most
  // a quarter live; else none.
  uint32_t compaction_victim_locked(bool cheap) const;
  void evict_items(uint32_t id, bool from_small, bool compact);
  bool evict_jumbo(uint32_t id, bool from_small);
  // Room at the evictor's destination in main (or in small, for compaction), evict_mu_ held.
  Item* copy_to(bool main, size_t bytes);
  // The ghost table: two halves, keys evicted unread from the small queue and from the main
  // queue. ghost_take clears the key's fingerprint and says where it was evicted from.
  enum class Ghost { kNone, kSmall, kMain };
  void ghost_put(uint64_t hash, bool from_main);
  Ghost ghost_take(uint64_t hash);
  // A key back from a ghost: the small queue's share grows (small was too short to see its
  // second read) or shrinks (main was too small to keep it), by 1/1000 of the budget, within
  // 5%-90% (ARC's rule, for S3-FIFO's queues; a hot set that drifts wants a longer small).
  void adapt_small(bool grow);
  bool append_in_place_locked(Shard& s, Item* old, const StoreRequest& req, int64_t now,
                              StoreResult& r);
  // What a write in place ends with: the item as a new one (not fetched, no lease state, a
  // new CAS, its reads kept) and the store's result.
  void renew_in_place_locked(Shard& s, Item* it, const StoreRequest& req, int64_t now,
                             StoreResult& r);
  // A plain set of a value as long as the live item's (and as versioned): written over it
  // under the shard lock. No allocation, and no garbage left behind.
  bool overwrite_in_place(Shard& s, uint64_t hash, const StoreRequest& req, StoreResult& r);

  const Clock& clock_;
  const size_t limit_;
  const unsigned shard_bits_;
  const size_t max_item_size_;
  const size_t index_reserve_;
  size_t seg_size_ = 0, jumbo_threshold_ = 0, nseg_ = 0, ghost_bytes_ = 0;
  size_t min_slots_ = 16;   // a table's first size: it never shrinks below
  unsigned seg_shift_ = 0;  // seg_size_ is a power of two
  // Bytes the small queue may hold before it is evicted from (adapt_small; relaxed).
  std::atomic<size_t> small_cap_{0};
  size_t small_min_ = 0, small_max_ = 0, small_step_ = 0;
  std::unique_ptr<Shard[]> shards_;
  char* arena_ = nullptr;            // nseg_ normal segments, reserved and backed as used
  std::unique_ptr<Segment[]> segs_;  // normal ids [0, nseg_), jumbo ids after
  size_t nsegs_total_ = 0;
  mutable std::mutex seg_mu_;  // queues, free lists, states
  std::unique_ptr<SegmentQueue> small_, main_;
  std::vector<uint32_t> free_, unbacked_, free_jumbo_;
  std::unique_ptr<AppendHead[]> heads_;
  unsigned nheads_ = 1;
  std::mutex evict_mu_;
  uint32_t dest_[2] = {UINT32_MAX, UINT32_MAX};  // the evictor's, in small and main (evict_mu_)
  uint32_t* ghost_ = nullptr;  // fingerprints, read and written through atomic_ref (relaxed)
  size_t ghost_half_ = 0;      // slots per half (a power of two): small's, then main's
  std::atomic<int64_t> data_bytes_{0};  // backed segments + jumbo mappings
  std::atomic<int64_t> index_bytes_{0};
  // Bytes a full shard's table needs to double and the budget did not have: segments shed
  // that much (over_budget), then the next insert there grows it (up to a quarter of the
  // limit), so memory moves to the index when items are small.
  std::atomic<int64_t> index_wants_{0};
  std::atomic<int64_t> flush_at_{0};
  Counter small_evictions_, main_evictions_;

  std::mutex reclaimer_mu_;
  std::condition_variable reclaimer_cv_;
  bool reclaimer_stop_ = false;
  std::thread reclaimer_;
};

}  // namespace cachetier::engine
