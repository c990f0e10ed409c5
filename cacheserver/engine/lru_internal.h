// The LruEngine's internals shared by its files (lru_engine.h gives the structure and the lock
// order): the item layout, the index shards, the slab classes and the large pool. Included by
// the engine's own .cc files only.
#pragma once

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <limits>
#include <mutex>
#include <vector>

#include "cacheserver/engine/lru_engine.h"
#include "common/status.h"

namespace cachetier::engine {

// One cached item in a slab chunk, key and value right after the header:
//   [hnext cas exptime atime flags vlen klen cls bits][key][value]   (35-byte header)
// `bits` is touched through atomic_ref: the CLOCK hand clears the reference bit without the
// shard lock. Everything else changes only under the item's shard lock.
struct Item {
  Item* hnext;  // hash chain; free-list link while the chunk is free
  uint64_t cas;
  uint32_t exptime;  // 0 never, 1 expired, else unix seconds
  uint32_t atime;
  uint32_t client_flags;
  uint32_t vlen;
  uint8_t klen;
  uint8_t cls;
  uint8_t bits;

  static constexpr uint8_t kLinked = 1;  // in the index (set and cleared under the shard lock)
  static constexpr uint8_t kRef = 2;     // CLOCK reference bit
  static constexpr uint8_t kFetched = 4;
  static constexpr uint8_t kStale = 8;
  static constexpr uint8_t kWinSent = 16;
  static constexpr uint8_t kVersioned = 32;  // 8 bytes of version follow the value
  static constexpr uint8_t kTombstone = 64;  // a versioned delete: reads as a miss
  // A slab chunk handed out and not yet released (set and cleared under its class lock): with
  // kLinked clear, an item being stored or unlinked and not yet freed, whose page must stay.
  static constexpr uint8_t kAllocated = 128;

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
  // The chunk must have been allocated with room for it.
  void set_version(uint64_t v) {
    std::memcpy(data() + klen + vlen, &v, sizeof(v));
    set_bits(kVersioned);
  }
  bool tombstone() const { return (load_bits() & kTombstone) != 0; }
};

inline constexpr size_t kHeaderSize = offsetof(Item, bits) + 1;
static_assert(kHeaderSize == 35);
inline constexpr size_t kSmallestChunk = 40;
inline constexpr size_t kLinearLimit = 1024;  // 8-byte class steps up to here, ~6% steps above
inline constexpr size_t kMaxDigits = 20;      // a 64-bit counter
inline constexpr uint8_t kLargeClass = 255;   // Item::cls of an item with its own allocation
// Before a large item: its slot index in the large pool, then its capacity (the bytes from
// the item on that its allocation holds: an appended list grows into it in place).
inline constexpr size_t kLargePrefix = 16;

// glibc's chunk size for a malloc of n bytes (large items are charged what they really take).
inline size_t malloc_cost(size_t n) {
  if (n >= 128 * 1024) return (n + 8 + 4095) & ~size_t{4095};
  return std::max<size_t>(32, (n + 8 + 15) & ~size_t{15});
}

inline char* large_block(Item* it) { return reinterpret_cast<char*>(it) - kLargePrefix; }
inline size_t& large_capacity(Item* it) {
  return *reinterpret_cast<size_t*>(large_block(it) + sizeof(size_t));
}

// Bytes an item occupies before rounding: header, key, value and its version if any.
inline size_t item_size(const Item* it) {
  return kHeaderSize + it->klen + it->vlen +
         ((it->load_bits() & Item::kVersioned) ? sizeof(uint64_t) : 0);
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
// destructor returns them to their classes after the lock is released (lock order).
class LruEngine::Graveyard {
 public:
  explicit Graveyard(LruEngine& engine) : engine_(engine) {}
  ~Graveyard() {
    for (int i = 0; i < n_; ++i) engine_.release(items_[i]);
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

struct alignas(64) Shard {
  std::mutex mu;
  Item** buckets = nullptr;
  size_t mask = 0;
  size_t count = 0;
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

struct Page {
  char* mem;
  uint32_t used;  // slots handed out at least once (initialized)
};

struct LargePool {
  std::mutex mu;
  std::vector<Item*> items;
  size_t hand = 0;
  Counter evictions;  // written under mu
};

struct SlabClass {
  std::mutex mu;
  uint32_t size = 0;
  uint32_t per_page = 0;
  std::vector<Page> pages;
  std::atomic<size_t> npages{0};
  Item* free = nullptr;
  size_t fresh_hint = 0;  // a page that may still have never-used slots
  size_t hand_page = 0;
  uint32_t hand_slot = 0;
  Counter evictions;  // live items evicted from this class's pages; written under mu

  Item* slot(const Page& p, uint32_t i) const {
    return reinterpret_cast<Item*>(p.mem + size_t{i} * size);
  }
};

}  // namespace cachetier::engine
