// The LruEngine's internals shared by its files (lru_engine.h gives the structure and the lock
// order): the item layout, the index shards, the segments, their queues and the append heads.
// Included by the engine's own .cc files only.
#pragma once

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <limits>
#include <mutex>
#include <vector>

#include "cacheserver/engine/lru_engine.h"
#include "common/status.h"

namespace cachetier::engine {

// One cached item in a segment, key and value right after the header:
//   [cas exptime atime flags vlen klen meta bits][key][value][version?]  (27-byte header)
// Items follow each other in their segment at 8-byte alignment. `bits` is touched through
// atomic_ref (the evictor reads kLinked before it takes the shard lock); everything else
// changes only under the item's shard lock, and klen, vlen and kVersioned (which give the
// item's length, so the next item's place) never change once the item is allocated, except
// for a jumbo item's in-place append.
struct Item {
  uint64_t cas;
  uint32_t exptime;  // 0 never, 1 expired, else unix seconds
  uint32_t atime;
  uint32_t client_flags;
  uint32_t vlen;
  uint8_t klen;
  // Under the shard lock: the low 2 bits count reads since it entered its queue (S3-FIFO,
  // 0-3); the high 6 bits, bytes past its length (in 8s) that it owns in its segment (an
  // incr's new item allocated for 20 digits and holding fewer).
  uint8_t meta;
  uint8_t bits;

  static constexpr uint8_t kLinked = 1;   // in the index (set and cleared under the shard lock)
  static constexpr uint8_t kPending = 2;  // allocated, neither linked nor released yet
  static constexpr uint8_t kFetched = 4;
  static constexpr uint8_t kStale = 8;
  static constexpr uint8_t kWinSent = 16;
  static constexpr uint8_t kVersioned = 32;  // 8 bytes of version follow the value
  static constexpr uint8_t kTombstone = 64;  // a versioned delete: reads as a miss

  uint8_t load_bits() const {
    return std::atomic_ref<uint8_t>(const_cast<uint8_t&>(bits)).load(std::memory_order_acquire);
  }
  void set_bits(uint8_t b) {
    std::atomic_ref<uint8_t>(bits).fetch_or(b, std::memory_order_acq_rel);
  }
  void clear_bits(uint8_t b) {
    std::atomic_ref<uint8_t>(bits).fetch_and(static_cast<uint8_t>(~b), std::memory_order_acq_rel);
  }
  void store_bits(uint8_t b) { std::atomic_ref<uint8_t>(bits).store(b, std::memory_order_release); }

  char* data() { return reinterpret_cast<char*>(&bits) + 1; }
  const char* data() const { return reinterpret_cast<const char*>(&bits) + 1; }
  std::string_view key() const { return {data(), klen}; }
  std::string_view value() const { return {data() + klen, vlen}; }
  char* value_ptr() { return data() + klen; }
  uint64_t version() const {
    if ((load_bits() & kVersioned) == 0) return 0;
    uint64_t v;
    std::memcpy(&v, data() + klen + vlen, sizeof(v));
    return v;
  }
  // The item must have been allocated with room for it (then kVersioned is set already).
  void set_version(uint64_t v) {
    std::memcpy(data() + klen + vlen, &v, sizeof(v));
    set_bits(kVersioned);
  }
  bool tombstone() const { return (load_bits() & kTombstone) != 0; }
};

inline constexpr size_t kHeaderSize = offsetof(Item, bits) + 1;
static_assert(kHeaderSize == 27);
inline constexpr size_t kMaxDigits = 20;  // a 64-bit counter
// Before a jumbo item, in its own mapping: its segment's id, then its capacity (the bytes from
// the item on: an appended list grows into it in place).
inline constexpr size_t kJumboPrefix = 16;
inline constexpr uint32_t kNoSegment = std::numeric_limits<uint32_t>::max();
// Free segments (or budget to back them) only the evictor may take, for the items it keeps.
inline constexpr size_t kReserve = 2;

inline size_t align8(size_t n) { return (n + 7) & ~size_t{7}; }

// Zeroed memory for the index's tables and the ghost table: a page or more is a mapping of its
// own, whose pages take memory only once written and go back to the kernel when it is freed
// (a freed heap chunk stays resident); less comes from calloc. nullptr if it fails.
void* alloc_zeroed(size_t bytes);
void free_zeroed(void* p, size_t bytes);

// Bytes an item occupies before alignment: header, key, value and its version if any.
inline size_t item_size(const Item* it) {
  return kHeaderSize + it->klen + it->vlen +
         ((it->load_bits() & Item::kVersioned) ? sizeof(uint64_t) : 0);
}

inline unsigned freq_of(const Item* it) { return it->meta & 3u; }
inline void set_freq(Item* it, unsigned f) {
  it->meta = static_cast<uint8_t>((it->meta & ~3u) | std::min(f, 3u));
}
// Where the next item of its segment starts.
inline size_t stride_of(const Item* it) {
  return align8(item_size(it)) + static_cast<size_t>(it->meta >> 2) * 8;
}

inline uint32_t to_stamp(int64_t exptime) {
  if (exptime == 0) return 0;
  if (exptime < 0) return 1;
  return static_cast<uint32_t>(std::min<int64_t>(exptime, std::numeric_limits<uint32_t>::max()));
}

inline uint64_t hash_key(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

inline ItemView view_of(const Item* it) {
  ItemView v;
  v.key = it->key();
  v.value = it->value();
  v.client_flags = it->client_flags;
  v.cas = it->cas;
  v.exptime = it->exptime;
  v.prior_exptime = it->exptime;
  v.last_access = it->atime;
  v.fetched_before = (it->load_bits() & Item::kFetched) != 0;
  v.version = it->version();
  return v;
}

// Items one operation removed from the index. Declared before the shard lock is taken, so its
// destructor releases them after the lock is released (lock order).
class LruEngine::Graveyard {
 public:
  explicit Graveyard(LruEngine& engine) : engine_(engine) {}
  ~Graveyard() { flush(); }
  // Releases what it holds now: before an allocation, which may wait for these (their
  // segment cannot be reused while one of its items is held).
  void flush() {
    for (int i = 0; i < n_; ++i) engine_.release(items_[i]);
    n_ = 0;
  }
  Graveyard(const Graveyard&) = delete;
  Graveyard& operator=(const Graveyard&) = delete;
  void add(Item* it) {
    CT_RELEASE_ASSERT(n_ < kCapacity);
    items_[n_++] = it;
  }

 private:
  static constexpr int kCapacity = 4;
  LruEngine& engine_;
  Item* items_[kCapacity] = {};
  int n_ = 0;
};

// An index slot: 0 empty, 1 a tombstone (a deleted entry that later probes must pass over),
// else the item's address (below 2^48) with 16 bits of its key's hash above it, so that a
// probe compares keys only where the tag matches and a move or a removal finds its slot
// without reading any item.
inline constexpr uint64_t kSlotEmpty = 0, kSlotTomb = 1;
inline constexpr uint64_t kSlotPtrMask = (uint64_t{1} << 48) - 1;
inline uint64_t slot_tag(uint64_t hash) { return (hash >> 32) << 48; }
inline uint64_t make_slot(uint64_t hash, const Item* it) {
  return slot_tag(hash) | reinterpret_cast<uintptr_t>(it);
}
inline Item* slot_item(uint64_t v) { return reinterpret_cast<Item*>(v & kSlotPtrMask); }
inline bool slot_used(uint64_t v) { return v > kSlotTomb; }
// Used slots and tombstones together stay at most 7/8 of a table: linear probing's probes
// grow as 1/(1-load)^2, about 32 slots (4 cache lines) for a miss at 7/8.
inline size_t fill_limit(size_t cap) { return cap - cap / 8; }

struct alignas(64) Shard {
  std::mutex mu;
  // Open addressing with linear probing from hash & mask; used + tombstones stay at most 7/8.
  uint64_t* slots = nullptr;
  size_t mask = 0;
  size_t count = 0;
  size_t tombs = 0;
  size_t ttl_items = 0;  // linked items with an expiry: the reclaimer skips shards without
  uint64_t cas_counter = 0;
  uint64_t item_bytes = 0;
  uint64_t total_items = 0;
  uint64_t evictions = 0;
  uint64_t evicted_unfetched = 0;
  uint64_t expired_unfetched = 0;
  uint64_t reclaimed = 0;
  size_t reclaim_cursor = 0;
};

// A segment: a stretch of memory items are appended to, and the unit the evictor takes.
// Normal segments are seg_size_ bytes of the arena; a jumbo segment is one item's own mapping.
// Queue links and state change under seg_mu_; `write` under the owning head's lock (or the
// evictor's, for its destination) while open, and not at all once sealed.
struct Segment {
  // kOpen: a head's; kDest: the evictor's destination (bound for main).
  enum State : uint8_t { kUnbacked, kFree, kOpen, kDest, kSmall, kMain, kEvicting };
  char* mem = nullptr;
  size_t size = 0;   // bytes it can hold (a jumbo: its mapping)
  size_t write = 0;  // bytes handed out
  // Allocations in it not yet released (linked items count): it is reused only at zero.
  std::atomic<uint32_t> refs{0};
  // Allocations not yet linked or released: the evictor reads a sealed segment's items only
  // at zero (their headers are written by then).
  std::atomic<uint32_t> pending{0};
  // Bytes its items in the index take, padding included (the rest of `write` is garbage:
  // overwritten, deleted). Padding is not garbage: a compaction copies it along, so counting
  // it as garbage made a cache of items that pad most (7 bytes in 8) compact forever.
  std::atomic<int64_t> live{0};
  uint32_t prev = kNoSegment, next = kNoSegment;
  State state = kUnbacked;
  bool jumbo = false;
};

// A FIFO of sealed segments (oldest at head), linked through Segment::prev/next.
struct SegmentQueue {
  uint32_t head = kNoSegment, tail = kNoSegment;
  size_t bytes = 0, count = 0;
};

// Where new items are appended: a segment per head, each head its own lock (threads spread
// over the heads by a per-thread slot).
struct alignas(64) AppendHead {
  std::mutex mu;
  uint32_t seg = kNoSegment;
};

}  // namespace cachetier::engine
