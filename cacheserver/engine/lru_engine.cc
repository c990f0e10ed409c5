// LruEngine implementation. See lru_engine.h for the structure and the lock order.
#include "cacheserver/engine/lru_engine.h"

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "common/status.h"

namespace cachetier::engine {

int64_t resolve_exptime(int64_t raw, int64_t now) {
  if (raw == 0) return 0;
  if (raw < 0) return kExpiredNow;
  if (raw <= kRelativeTtlLimit) return now + raw;
  return raw <= now ? kExpiredNow : raw;
}

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

namespace {
constexpr size_t kHeaderSize = offsetof(Item, bits) + 1;
static_assert(kHeaderSize == 35);
constexpr size_t kSmallestChunk = 40;
constexpr size_t kLinearLimit = 1024;  // 8-byte class steps up to here, ~6% steps above
constexpr size_t kMaxDigits = 20;      // a 64-bit counter
constexpr uint8_t kLargeClass = 255;   // Item::cls of an item with its own allocation
constexpr size_t kLargePrefix = 16;    // slot index in the large pool, before the item

// glibc's chunk size for a malloc of n bytes (large items are charged what they really take).
size_t malloc_cost(size_t n) {
  if (n >= 128 * 1024) return (n + 8 + 4095) & ~size_t{4095};
  return std::max<size_t>(32, (n + 8 + 15) & ~size_t{15});
}

char* large_block(Item* it) { return reinterpret_cast<char*>(it) - kLargePrefix; }

// Bytes an item occupies before rounding: header, key, value and its version if any.
size_t item_size(const Item* it) {
  return kHeaderSize + it->klen + it->vlen +
         ((it->load_bits() & Item::kVersioned) ? sizeof(uint64_t) : 0);
}

uint32_t to_stamp(int64_t exptime) {
  if (exptime == 0) return 0;
  if (exptime < 0) return 1;
  return static_cast<uint32_t>(std::min<int64_t>(exptime, std::numeric_limits<uint32_t>::max()));
}

uint64_t hash_key(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

ItemView view_of(const Item* it) {
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

bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Parses an item value as memcached's incr/decr does (strtoull): leading white space, an
// optional '+', decimal digits that fit 64 bits, then the end or white space (whatever follows
// it is ignored).
bool parse_counter(std::string_view v, uint64_t& out) {
  size_t i = 0;
  while (i < v.size() && is_space(v[i])) ++i;
  if (i < v.size() && v[i] == '+') ++i;
  if (i == v.size() || v[i] < '0' || v[i] > '9') return false;
  auto [p, ec] = std::from_chars(v.data() + i, v.data() + v.size(), out);
  if (ec != std::errc()) return false;
  return p == v.data() + v.size() || is_space(*p);
}

}  // namespace

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

  Item* slot(const Page& p, uint32_t i) const {
    return reinterpret_cast<Item*>(p.mem + size_t{i} * size);
  }
};

// ---------------------------------------------------------------------------------------------

LruEngine::LruEngine(const LruEngineConfig& config, const Clock& clock)
    : clock_(clock),
      limit_(config.memory_limit),
      shard_bits_(config.shard_bits),
      page_size_(std::max<size_t>(config.page_size, 4096)),
      large_threshold_(page_size_ / 4),
      max_item_size_(config.max_item_size),
      index_reserve_(config.memory_limit / 16),
      shards_(new Shard[size_t{1} << config.shard_bits]),
      large_(std::make_unique<LargePool>()) {
  // Size classes: 8-byte steps to 1 KiB, then ~6% steps up to a quarter page.
  std::vector<size_t> sizes;
  for (size_t s = kSmallestChunk; s <= std::min(kLinearLimit, large_threshold_); s += 8) {
    sizes.push_back(s);
  }
  for (size_t s = sizes.back(); s < large_threshold_;) {
    s = std::min(large_threshold_, (s + s / 16 + 7) & ~size_t{7});
    sizes.push_back(s);
  }
  CT_RELEASE_ASSERT(sizes.size() < kLargeClass);
  for (size_t s : sizes) {
    auto c = std::make_unique<SlabClass>();
    c->size = static_cast<uint32_t>(s);
    c->per_page = static_cast<uint32_t>(page_size_ / s);
    classes_.push_back(std::move(c));
  }
  size_t n = size_t{1} << shard_bits_;
  // The initial index must fit its reserve.
  size_t buckets = std::max<size_t>(16, config.initial_buckets_per_shard);
  while (buckets > 16 && buckets * sizeof(Item*) * n > index_reserve_) buckets /= 2;
  for (size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    s.buckets = static_cast<Item**>(std::calloc(buckets, sizeof(Item*)));
    if (s.buckets == nullptr) fatal_out_of_memory("hash buckets", buckets * sizeof(Item*));
    s.mask = buckets - 1;
    index_bytes_ += static_cast<int64_t>(buckets * sizeof(Item*));
  }
}

LruEngine::~LruEngine() {
  stop_reclaimer();
  size_t n = size_t{1} << shard_bits_;
  for (size_t i = 0; i < n; ++i) std::free(shards_[i].buckets);
  for (auto& c : classes_) {
    for (Page& p : c->pages) std::free(p.mem);
  }
  for (Item* it : large_->items) std::free(large_block(it));
}

size_t LruEngine::item_cost(size_t key_len, size_t value_len) const {
  size_t bytes = kHeaderSize + key_len + value_len;
  if (bytes > large_threshold_) return malloc_cost(bytes + kLargePrefix);
  return classes_[static_cast<size_t>(class_for(bytes))]->size;
}

int LruEngine::class_for(size_t bytes) const {
  if (bytes > large_threshold_) return -1;
  if (bytes <= kLinearLimit) {
    return static_cast<int>((std::max(bytes, kSmallestChunk) - kSmallestChunk + 7) / 8);
  }
  size_t lo = 0, hi = classes_.size() - 1;
  while (lo < hi) {  // first class whose size fits
    size_t mid = (lo + hi) / 2;
    if (classes_[mid]->size >= bytes)
      hi = mid;
    else
      lo = mid + 1;
  }
  return static_cast<int>(lo);
}

// ---- allocation ----

bool LruEngine::reserve_budget(size_t bytes) {
  const auto want = static_cast<int64_t>(bytes);
  const auto limit = static_cast<int64_t>(limit_);
  for (;;) {
    int64_t cur = data_bytes_.load(std::memory_order_relaxed);
    int64_t index = std::max<int64_t>(index_bytes_.load(std::memory_order_relaxed),
                                      static_cast<int64_t>(index_reserve_));
    if (cur + want + index > limit) return false;
    if (data_bytes_.compare_exchange_weak(cur, cur + want, std::memory_order_relaxed)) return true;
  }
}

bool LruEngine::take_fresh_page_locked(SlabClass& c) {
  if (!reserve_budget(page_size_)) return false;
  // Pages are not touched here: the kernel backs them as slots are first used.
  char* mem = static_cast<char*>(std::malloc(page_size_));
  if (mem == nullptr) fatal_out_of_memory("slab page", page_size_);
  c.pages.push_back({mem, 0});
  c.npages.store(c.pages.size(), std::memory_order_relaxed);
  c.fresh_hint = c.pages.size() - 1;
  return true;
}

bool LruEngine::evict_item(Item* it) {
  uint64_t hash = hash_key(it->key());
  Shard& s = shard_for(hash);
  if (!s.mu.try_lock()) return false;
  if ((it->load_bits() & Item::kLinked) == 0) {  // a store replaced it meanwhile
    s.mu.unlock();
    return false;
  }
  bool fetched = (it->load_bits() & Item::kFetched) != 0;
  if (dead_locked(it, clock_.now())) {
    if (!fetched) ++s.expired_unfetched;
  } else {
    ++s.evictions;
    if (!fetched) ++s.evicted_unfetched;
  }
  unlink_locked(s, it);
  s.mu.unlock();
  it->store_bits(0);
  return true;
}

Item* LruEngine::evict_one_locked(SlabClass& c) {
  if (c.pages.empty()) return nullptr;
  size_t initialized = 0;
  for (const Page& p : c.pages) initialized += p.used;
  // Two full turns of the hand clear every reference bit once; give up after that.
  size_t budget = 2 * initialized + c.pages.size() + 1;
  while (budget-- > 0) {
    if (c.hand_page >= c.pages.size()) {
      c.hand_page = 0;
      c.hand_slot = 0;
    }
    Page& p = c.pages[c.hand_page];
    if (c.hand_slot >= p.used) {
      c.hand_page = (c.hand_page + 1) % c.pages.size();
      c.hand_slot = 0;
      continue;
    }
    Item* it = c.slot(p, c.hand_slot++);
    uint8_t b = it->load_bits();
    if ((b & Item::kLinked) == 0) continue;
    if (b & Item::kRef) {
      it->clear_bits(Item::kRef);
      continue;
    }
    if (evict_item(it)) return it;
  }
  return nullptr;
}

char* LruEngine::detach_page(const SlabClass* requester) {
  // The victim: the class holding the most pages; one with a single page gives it up only
  // when nobody has more (the requester has none then, or memory is all in large items).
  SlabClass* victim = nullptr;
  size_t most = 0;
  size_t n = classes_.size();
  size_t start = steal_cursor_.fetch_add(1, std::memory_order_relaxed);
  for (size_t k = 0; k < n; ++k) {
    SlabClass* v = classes_[(start + k) % n].get();
    size_t np = v->npages.load(std::memory_order_relaxed);
    if (v != requester && np > most) {
      most = np;
      victim = v;
    }
  }
  if (victim == nullptr || !victim->mu.try_lock()) return nullptr;
  std::lock_guard vlock(victim->mu, std::adopt_lock);
  if (victim->pages.empty()) return nullptr;
  size_t idx = victim->hand_page % victim->pages.size();
  Page page = victim->pages[idx];
  // Evict everything on the page; if a shard is busy, put back what was taken and give up.
  std::vector<Item*> evicted;
  for (uint32_t i = 0; i < page.used; ++i) {
    Item* it = victim->slot(page, i);
    if ((it->load_bits() & Item::kLinked) == 0) continue;
    if (!evict_item(it)) {
      for (Item* e : evicted) {
        e->hnext = victim->free;
        victim->free = e;
      }
      return nullptr;
    }
    evicted.push_back(it);
  }
  // Drop the page's chunks from the victim's free list.
  Item** link = &victim->free;
  while (*link != nullptr) {
    char* p = reinterpret_cast<char*>(*link);
    if (p >= page.mem && p < page.mem + page_size_) {
      *link = (*link)->hnext;
    } else {
      link = &(*link)->hnext;
    }
  }
  victim->pages[idx] = victim->pages.back();
  victim->pages.pop_back();
  victim->npages.store(victim->pages.size(), std::memory_order_relaxed);
  victim->fresh_hint = 0;
  victim->hand_slot = 0;
  if (victim->hand_page >= victim->pages.size()) victim->hand_page = 0;
  return page.mem;
}

bool LruEngine::steal_page(SlabClass& c) {
  char* mem = detach_page(&c);
  if (mem == nullptr) {
    // No slab page to take: memory may be held by large items.
    if (!large_->mu.try_lock()) return false;
    std::lock_guard llock(large_->mu, std::adopt_lock);
    while (!reserve_budget(page_size_)) {
      if (!evict_large_locked()) return false;
    }
    mem = static_cast<char*>(std::malloc(page_size_));
    if (mem == nullptr) fatal_out_of_memory("slab page", page_size_);
  }
  c.pages.push_back({mem, 0});
  c.npages.store(c.pages.size(), std::memory_order_relaxed);
  c.fresh_hint = c.pages.size() - 1;
  return true;
}

Item* LruEngine::allocate(size_t key_len, size_t value_len, size_t extra) {
  size_t bytes = kHeaderSize + key_len + value_len + extra;
  Item* it = bytes > large_threshold_ ? allocate_large(bytes) : allocate_small(bytes);
  if (it == nullptr) return nullptr;
  it->hnext = nullptr;
  it->klen = static_cast<uint8_t>(key_len);
  it->vlen = static_cast<uint32_t>(value_len);
  it->cas = 0;
  it->exptime = 0;
  it->client_flags = 0;
  it->atime = static_cast<uint32_t>(clock_.now());
  return it;
}

Item* LruEngine::allocate_small(size_t bytes) {
  int ci = class_for(bytes);
  SlabClass& c = *classes_[static_cast<size_t>(ci)];
  std::lock_guard lock(c.mu);
  Item* it = nullptr;
  for (int attempt = 0; attempt < 4 && it == nullptr; ++attempt) {
    if (c.free != nullptr) {
      it = c.free;
      c.free = it->hnext;
      break;
    }
    // A never-used slot in some page.
    for (size_t k = 0; k < c.pages.size(); ++k) {
      size_t pi = (c.fresh_hint + k) % c.pages.size();
      Page& p = c.pages[pi];
      if (p.used < c.per_page) {
        c.fresh_hint = pi;
        it = c.slot(p, p.used++);
        break;
      }
    }
    if (it != nullptr) break;
    if (take_fresh_page_locked(c)) continue;
    // The budget is spent: a class with pages evicts its own coldest item; one without
    // (or whose items are all busy) takes a page from another class or from large items.
    if ((it = evict_one_locked(c)) != nullptr) break;
    if (!steal_page(c)) break;
  }
  if (it == nullptr) return nullptr;
  it->cls = static_cast<uint8_t>(ci);
  it->store_bits(0);
  return it;
}

Item* LruEngine::allocate_large(size_t bytes) {
  if (bytes > kHeaderSize + 255 + max_item_size_) return nullptr;
  size_t cost = malloc_cost(bytes + kLargePrefix);
  LargePool& lp = *large_;
  std::lock_guard lock(lp.mu);
  while (!reserve_budget(cost)) {
    if (evict_large_locked()) continue;
    // Give back a slab page (another class's lock is only try_locked).
    char* mem = detach_page(nullptr);
    if (mem == nullptr) return nullptr;
    std::free(mem);
    data_bytes_.fetch_sub(static_cast<int64_t>(page_size_), std::memory_order_relaxed);
  }
  auto* block = static_cast<char*>(std::malloc(bytes + kLargePrefix));
  if (block == nullptr) fatal_out_of_memory("large item", bytes);
  auto* it = reinterpret_cast<Item*>(block + kLargePrefix);
  *reinterpret_cast<size_t*>(block) = lp.items.size();
  lp.items.push_back(it);
  it->cls = kLargeClass;
  it->store_bits(0);
  return it;
}

bool LruEngine::evict_large_locked() {
  LargePool& lp = *large_;
  size_t budget = 2 * lp.items.size() + 1;
  while (budget-- > 0 && !lp.items.empty()) {
    if (lp.hand >= lp.items.size()) lp.hand = 0;
    Item* it = lp.items[lp.hand++];
    uint8_t b = it->load_bits();
    if ((b & Item::kLinked) == 0) continue;  // being stored right now
    if (b & Item::kRef) {
      it->clear_bits(Item::kRef);
      continue;
    }
    if (evict_item(it)) {
      free_large_locked(it);
      return true;
    }
  }
  return false;
}

void LruEngine::free_large_locked(Item* it) {
  LargePool& lp = *large_;
  size_t slot = *reinterpret_cast<size_t*>(large_block(it));
  Item* moved = lp.items.back();
  lp.items[slot] = moved;
  *reinterpret_cast<size_t*>(large_block(moved)) = slot;
  lp.items.pop_back();
  size_t cost = malloc_cost(item_size(it) + kLargePrefix);
  std::free(large_block(it));
  data_bytes_.fetch_sub(static_cast<int64_t>(cost), std::memory_order_relaxed);
}

void LruEngine::release(Item* it) {
  if (it == nullptr) return;
  if (it->cls == kLargeClass) {
    std::lock_guard lock(large_->mu);
    free_large_locked(it);
    return;
  }
  SlabClass& c = *classes_[it->cls];
  std::lock_guard lock(c.mu);
  it->store_bits(0);
  it->hnext = c.free;
  c.free = it;
}

// ---- index ----

Shard& LruEngine::shard_for(uint64_t hash) const { return shards_[hash >> (64 - shard_bits_)]; }

bool LruEngine::dead_locked(const Item* it, int64_t now) const {
  if (it->exptime != 0 && static_cast<int64_t>(it->exptime) <= now) return true;
  int64_t flush = flush_at_.load(std::memory_order_relaxed);
  return flush != 0 && now >= flush && static_cast<int64_t>(it->atime) < flush;
}

Item* LruEngine::find_locked(Shard& s, uint64_t hash, std::string_view key) {
  for (Item* it = s.buckets[hash & s.mask]; it != nullptr; it = it->hnext) {
    if (it->klen == key.size() && std::memcmp(it->data(), key.data(), key.size()) == 0) return it;
  }
  return nullptr;
}

void LruEngine::link_locked(Shard& s, uint64_t hash, Item* it) {
  Item*& head = s.buckets[hash & s.mask];
  it->hnext = head;
  head = it;
  it->set_bits(Item::kLinked);  // unreferenced until its first hit: a full sweep does not
                                // turn CLOCK into FIFO
  ++s.count;
  if (it->exptime != 0) ++s.ttl_items;
  s.item_bytes += item_size(it);
}

void LruEngine::unlink_locked(Shard& s, Item* it) {
  uint64_t hash = hash_key(it->key());
  for (Item** p = &s.buckets[hash & s.mask]; *p != nullptr; p = &(*p)->hnext) {
    if (*p == it) {
      *p = it->hnext;
      break;
    }
  }
  it->clear_bits(Item::kLinked);
  --s.count;
  if (it->exptime != 0) --s.ttl_items;
  s.item_bytes -= item_size(it);
}

uint64_t LruEngine::next_cas_locked(Shard& s) {
  // Unique across shards: the low bits name the shard.
  return (++s.cas_counter << shard_bits_) | static_cast<uint64_t>(&s - shards_.get());
}

void LruEngine::maybe_grow_locked(Shard& s) {
  size_t buckets = s.mask + 1;
  if (s.count <= 2 * buckets) return;
  size_t grown = buckets * 2;
  auto extra = static_cast<int64_t>((grown - buckets) * sizeof(Item*));
  // The index may use its reserve and whatever pages have not taken; otherwise chains grow.
  if (data_bytes_.load(std::memory_order_relaxed) + index_bytes_.load(std::memory_order_relaxed) +
          extra >
      static_cast<int64_t>(limit_)) {
    return;
  }
  auto* fresh = static_cast<Item**>(std::calloc(grown, sizeof(Item*)));
  if (fresh == nullptr) return;
  for (size_t b = 0; b < buckets; ++b) {
    for (Item* it = s.buckets[b]; it != nullptr;) {
      Item* next = it->hnext;
      Item*& head = fresh[hash_key(it->key()) & (grown - 1)];
      it->hnext = head;
      head = it;
      it = next;
    }
  }
  std::free(s.buckets);
  index_bytes_.fetch_add(extra, std::memory_order_relaxed);
  s.buckets = fresh;
  s.mask = grown - 1;
  s.reclaim_cursor = 0;
}

bool LruEngine::drop_if_dead_locked(Shard& s, Item*& it, int64_t now, bool* expired,
                                    Item** to_free) {
  if (it == nullptr || !dead_locked(it, now)) return false;
  bool by_ttl = it->exptime != 0 && static_cast<int64_t>(it->exptime) <= now;
  if (expired) *expired = by_ttl;
  if (by_ttl && (it->load_bits() & Item::kFetched) == 0) ++s.expired_unfetched;
  unlink_locked(s, it);
  *to_free = it;
  it = nullptr;
  return true;
}

// ---- operations ----

LookupResult LruEngine::lookup(std::string_view key, const LookupOptions& opts, ItemVisitor visit) {
  LookupResult r;
  uint64_t hash = hash_key(key);
  Shard& s = shard_for(hash);
  int64_t now = clock_.now();
  Graveyard dead(*this);
  Item* spare = nullptr;  // placeholder allocated for vivify
  for (int pass = 0; pass < 2; ++pass) {
    std::unique_lock lock(s.mu);
    Item* it = find_locked(s, hash, key);
    Item* gone = nullptr;
    if (drop_if_dead_locked(s, it, now, &r.expired, &gone)) dead.add(gone);
    Item* tomb = nullptr;  // a deleted key: a miss, and replaced by a vivified placeholder
    if (it != nullptr && it->tombstone()) {
      tomb = it;
      it = nullptr;
    }
    if (it == nullptr) {
      if (!opts.vivify) break;
      if (spare == nullptr) {  // allocate without the shard lock, then look again
        lock.unlock();
        spare = allocate(key.size(), 0, sizeof(uint64_t));  // room for a tombstone's version
        if (spare == nullptr) break;
        std::memcpy(spare->data(), key.data(), key.size());
        continue;
      }
      // Vivify: an empty placeholder that tells later clients someone is recaching. It keeps
      // a tombstone's version, so a write older than that delete still cannot land.
      it = spare;
      spare = nullptr;
      if (tomb != nullptr) {
        if (tomb->version() != 0) it->set_version(tomb->version());
        unlink_locked(s, tomb);
        dead.add(tomb);
      }
      it->exptime = to_stamp(opts.vivify_exptime);
      it->cas = opts.new_cas != 0 ? opts.new_cas : next_cas_locked(s);
      link_locked(s, hash, it);
      it->set_bits(Item::kWinSent);
      ++s.total_items;
      maybe_grow_locked(s);
      r.hit = true;
      ItemView v = view_of(it);
      v.won = true;
      v.created = true;
      v.prior_exptime = 0;
      visit(v);
      if (opts.bump) it->set_bits(Item::kRef | Item::kFetched);  // its first hit
      break;
    }
    r.expired = false;
    r.hit = true;
    uint8_t b = it->load_bits();
    const bool stale = (b & Item::kStale) != 0;
    const uint32_t prior = it->exptime;
    if (opts.update_exptime) {
      bool had = it->exptime != 0;
      it->exptime = to_stamp(opts.exptime);
      s.ttl_items += (it->exptime != 0) - static_cast<int>(had);
    }
    bool won = false, already = opts.leases && (b & Item::kWinSent) != 0;
    bool wants_win = opts.leases && stale;
    const uint32_t judged = opts.recache_after_touch ? it->exptime : prior;
    if (opts.leases && opts.recache && judged != 0 &&
        static_cast<int64_t>(judged) < opts.recache_before) {
      wants_win = true;
    }
    if (wants_win && !already) {
      won = true;
      it->set_bits(Item::kWinSent);
    }
    ItemView v = view_of(it);
    v.prior_exptime = prior;
    v.stale = opts.leases && stale;
    v.won = won;
    v.win_already_sent = already;
    visit(v);
    if (opts.bump) {
      if ((b & (Item::kRef | Item::kFetched)) != (Item::kRef | Item::kFetched)) {
        it->set_bits(Item::kRef | Item::kFetched);
      }
      it->atime = static_cast<uint32_t>(now);
    }
    break;
  }
  release(spare);
  return r;
}

StoreResult LruEngine::store(const StoreRequest& req) {
  uint64_t hash = hash_key(req.key);
  Shard& s = shard_for(hash);
  const bool concat = req.mode == StoreMode::kAppend || req.mode == StoreMode::kPrepend;
  if (req.key.empty() || req.key.size() > 255) return {EngineStatus::kNotStored, 0, 0};
  size_t old_len = 0;
  if (concat) {  // the new item's size depends on the old one
    std::lock_guard lock(s.mu);
    Item* old = find_locked(s, hash, req.key);
    if (old != nullptr && !old->tombstone()) old_len = old->vlen;
  }
  for (int attempt = 0; attempt < 8; ++attempt) {
    size_t vlen = req.value.size() + old_len;
    if (vlen > max_item_size_) return {EngineStatus::kTooLarge, 0, 0};
    // Allocate and fill outside the shard lock.
    Item* it = allocate(req.key.size(), vlen, req.version != 0 ? sizeof(uint64_t) : 0);
    if (it == nullptr) return {EngineStatus::kNoMemory, 0, 0};
    std::memcpy(it->data(), req.key.data(), req.key.size());
    if (!concat) std::memcpy(it->value_ptr(), req.value.data(), req.value.size());

    int64_t now = clock_.now();
    Graveyard dead(*this);
    StoreResult r;
    {
      std::lock_guard lock(s.mu);
      Item* old = find_locked(s, hash, req.key);
      Item* gone = nullptr;
      if (drop_if_dead_locked(s, old, now, nullptr, &gone)) dead.add(gone);
      // A tombstone is no item for add/replace/cas, but its version still counts.
      Item* tomb = nullptr;
      if (old != nullptr && old->tombstone()) {
        tomb = old;
        old = nullptr;
      }
      bool mark_stale = false;
      EngineStatus fail = EngineStatus::kOk;
      uint64_t held = old != nullptr ? old->version() : tomb != nullptr ? tomb->version() : 0;
      if (req.version != 0 && held > req.version) {
        fail = EngineStatus::kOlderVersion;
      } else if (req.compare_cas) {
        if (old == nullptr) {
          // Nothing to compare with: a CAS store is NOT_FOUND; append, prepend and add go on
          // to their own rule for a missing item (memcached).
          if (req.mode == StoreMode::kSet || req.mode == StoreMode::kReplace) {
            fail = EngineStatus::kNotFound;
          }
        } else if (old->cas != *req.compare_cas) {
          if (req.invalidate && *req.compare_cas < old->cas) {
            mark_stale = true;
          } else {
            fail = EngineStatus::kExists;
          }
        }
      }
      if (fail == EngineStatus::kOk) {
        switch (req.mode) {
          case StoreMode::kAdd:
            if (old != nullptr) fail = EngineStatus::kNotStored;
            break;
          case StoreMode::kReplace:
            if (old == nullptr) fail = EngineStatus::kNotStored;
            break;
          case StoreMode::kAppend:
          case StoreMode::kPrepend:
            if (old == nullptr && !req.vivify) fail = EngineStatus::kNotStored;
            break;
          case StoreMode::kSet:
            break;
        }
      }
      size_t have = concat && old != nullptr ? old->vlen : 0;
      if (fail == EngineStatus::kOk && concat && have != old_len) {
        old_len = have;  // the item changed size since we looked: size the chunk again
        dead.add(it);    // freed with the rest once the lock is released
        continue;
      }
      if (fail != EngineStatus::kOk) {
        dead.add(it);
        r.status = fail;
      } else {
        char* v = it->value_ptr();
        if (concat && old != nullptr) {
          if (req.mode == StoreMode::kAppend) {
            std::memcpy(v, old->value_ptr(), old->vlen);
            std::memcpy(v + old->vlen, req.value.data(), req.value.size());
          } else {
            std::memcpy(v, req.value.data(), req.value.size());
            std::memcpy(v + req.value.size(), old->value_ptr(), old->vlen);
          }
          it->client_flags = old->client_flags;
          it->exptime = old->exptime;
        } else {
          if (concat) std::memcpy(v, req.value.data(), req.value.size());
          it->client_flags = req.client_flags;
          it->exptime = to_stamp(concat ? req.vivify_exptime : req.exptime);
        }
        uint8_t keep = 0;
        if (mark_stale) {
          keep = Item::kStale | (old->load_bits() & Item::kWinSent);
          it->exptime = old->exptime;
        }
        if (Item* prev = old != nullptr ? old : tomb; prev != nullptr) {
          unlink_locked(s, prev);
          dead.add(prev);
        }
        it->cas = req.new_cas != 0 ? req.new_cas : next_cas_locked(s);
        if (req.version != 0) it->set_version(req.version);
        link_locked(s, hash, it);
        if (keep != 0) it->set_bits(keep);
        ++s.total_items;
        maybe_grow_locked(s);
        r.cas = it->cas;
        r.size = it->vlen;
        r.stale = mark_stale;
      }
    }
    return r;
  }
  return {EngineStatus::kNoMemory, 0, 0};  // the key kept changing size under us
}

StoreResult LruEngine::remove(const DeleteRequest& req) {
  uint64_t hash = hash_key(req.key);
  Shard& s = shard_for(hash);
  int64_t now = clock_.now();
  Item* fresh = nullptr;  // the emptied item (drop_value) or the tombstone (version)
  if (req.drop_value || req.version != 0) {
    fresh = allocate(req.key.size(), 0, req.version != 0 ? sizeof(uint64_t) : 0);
    if (fresh == nullptr) return {EngineStatus::kNoMemory, 0, 0};
    std::memcpy(fresh->data(), req.key.data(), req.key.size());
  }
  Graveyard dead(*this);
  StoreResult r;
  {
    std::lock_guard lock(s.mu);
    Item* it = find_locked(s, hash, req.key);
    Item* gone = nullptr;
    if (drop_if_dead_locked(s, it, now, nullptr, &gone)) dead.add(gone);
    const bool live = it != nullptr && !it->tombstone();
    if (req.compare_cas && (!live || it->cas != *req.compare_cas)) {
      r.status = live ? EngineStatus::kExists : EngineStatus::kNotFound;
    } else if (req.version != 0) {
      // Versioned delete: leave a tombstone unless the key holds a newer version.
      if (it != nullptr && it->version() > req.version) {
        r.status = EngineStatus::kOlderVersion;
      } else {
        r.status = it != nullptr && !it->tombstone() ? EngineStatus::kOk : EngineStatus::kNotFound;
        if (it != nullptr) {
          unlink_locked(s, it);
          dead.add(it);
        }
        fresh->exptime = to_stamp(req.tombstone_exptime);
        fresh->cas = next_cas_locked(s);
        fresh->set_version(req.version);
        fresh->set_bits(Item::kTombstone);
        link_locked(s, hash, fresh);
        maybe_grow_locked(s);
        r.cas = fresh->cas;
        fresh = nullptr;
      }
    } else if (!live) {
      r.status = EngineStatus::kNotFound;
    } else if (req.invalidate) {
      it->set_bits(Item::kStale);
      it->clear_bits(Item::kWinSent);
      it->cas = req.new_cas != 0 ? req.new_cas : next_cas_locked(s);
      if (req.update_exptime) {
        bool had = it->exptime != 0;
        it->exptime = to_stamp(req.exptime);
        s.ttl_items += (it->exptime != 0) - static_cast<int>(had);
      }
      r.cas = it->cas;
      r.size = it->vlen;
    } else if (fresh != nullptr) {
      fresh->client_flags = it->client_flags;
      fresh->exptime = it->exptime;
      unlink_locked(s, it);
      dead.add(it);
      fresh->cas = req.new_cas != 0 ? req.new_cas : next_cas_locked(s);
      link_locked(s, hash, fresh);
      r.cas = fresh->cas;
      fresh = nullptr;
    } else {
      unlink_locked(s, it);
      dead.add(it);
    }
  }
  release(fresh);
  return r;
}

ArithResult LruEngine::arith(const ArithRequest& req) {
  uint64_t hash = hash_key(req.key);
  Shard& s = shard_for(hash);
  // Room for any 64-bit result, allocated before taking the shard lock (unused when the result
  // fits in place).
  Item* fresh = allocate(req.key.size(), kMaxDigits);
  if (fresh == nullptr) return {EngineStatus::kNoMemory, 0, 0, 0, 0, false};
  std::memcpy(fresh->data(), req.key.data(), req.key.size());
  int64_t now = clock_.now();
  Graveyard dead(*this);
  ArithResult r;
  {
    std::lock_guard lock(s.mu);
    Item* it = find_locked(s, hash, req.key);
    Item* gone = nullptr;
    if (drop_if_dead_locked(s, it, now, nullptr, &gone)) dead.add(gone);
    if (it != nullptr && it->tombstone()) {  // deleted: missing, and replaced if vivifying
      if (req.vivify) {
        unlink_locked(s, it);
        dead.add(it);
      }
      it = nullptr;
    }
    uint64_t value = 0;
    if (it == nullptr) {
      if (req.vivify)
        value = req.initial;
      else
        r.status = EngineStatus::kNotFound;
    } else if (it->vlen == 0) {
      r.status = EngineStatus::kNonNumeric;  // before the CAS check, as memcached
    } else if (req.compare_cas && it->cas != *req.compare_cas) {
      r.status = EngineStatus::kExists;
    } else {
      uint64_t cur;
      if (!parse_counter(it->value(), cur)) {
        r.status = EngineStatus::kNonNumeric;
      } else if (req.incr) {
        value = cur + req.delta;  // wraps at 2^64 as memcached does
      } else {
        value = cur > req.delta ? cur - req.delta : 0;
      }
    }
    char digits[kMaxDigits];
    size_t n = static_cast<size_t>(std::to_chars(digits, digits + kMaxDigits, value).ptr - digits);
    if (r.status != EngineStatus::kOk) {
      dead.add(fresh);
    } else if (it != nullptr && n <= it->vlen) {
      // In place, padded with spaces; the item keeps its flags and marks.
      std::memcpy(it->value_ptr(), digits, n);
      std::memset(it->value_ptr() + n, ' ', it->vlen - n);
      r.prior_exptime = it->exptime;
      if (req.update_exptime) {
        bool had = it->exptime != 0;
        it->exptime = to_stamp(req.exptime);
        s.ttl_items += (it->exptime != 0) - static_cast<int>(had);
      }
      it->cas = req.new_cas != 0 ? req.new_cas : next_cas_locked(s);
      it->atime = static_cast<uint32_t>(now);
      r.value = value;
      r.cas = it->cas;
      r.exptime = it->exptime;
      dead.add(fresh);
    } else {
      std::memcpy(fresh->value_ptr(), digits, n);
      fresh->vlen = static_cast<uint32_t>(n);
      if (it != nullptr) {
        fresh->client_flags = it->client_flags;
        fresh->exptime = it->exptime;
        r.prior_exptime = it->exptime;
        unlink_locked(s, it);
        dead.add(it);
        if (req.update_exptime) fresh->exptime = to_stamp(req.exptime);
      } else {
        fresh->exptime = to_stamp(req.vivify_exptime);
        r.created = true;
      }
      fresh->cas = req.new_cas != 0 ? req.new_cas : next_cas_locked(s);
      link_locked(s, hash, fresh);
      ++s.total_items;
      maybe_grow_locked(s);
      r.value = value;
      r.cas = fresh->cas;
      r.exptime = fresh->exptime;
    }
  }
  return r;
}

void LruEngine::flush(int64_t at) {
  int64_t now = clock_.now();
  if (at > now) {
    flush_at_.store(at, std::memory_order_relaxed);
    return;
  }
  flush_at_.store(0, std::memory_order_relaxed);
  size_t n = size_t{1} << shard_bits_;
  std::vector<Item*> dead;
  for (size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    {
      std::lock_guard lock(s.mu);
      for (size_t b = 0; b <= s.mask; ++b) {
        for (Item* it = s.buckets[b]; it != nullptr; it = it->hnext) {
          it->clear_bits(Item::kLinked);
          dead.push_back(it);
        }
        s.buckets[b] = nullptr;
      }
      s.count = s.ttl_items = 0;
      s.item_bytes = 0;
    }
    for (Item* it : dead) release(it);
    dead.clear();
  }
}

size_t LruEngine::reclaim_expired(size_t budget) {
  size_t n = size_t{1} << shard_bits_;
  size_t per_shard = std::max<size_t>(1, budget / n);
  size_t freed = 0;
  int64_t now = clock_.now();
  int64_t flush = flush_at_.load(std::memory_order_relaxed);
  bool flush_due = flush != 0 && now >= flush;
  std::vector<Item*> dead;
  for (size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    {
      std::lock_guard lock(s.mu);
      if (s.ttl_items == 0 && !flush_due) continue;  // nothing here can expire
      for (size_t k = 0; k < per_shard && k <= s.mask; ++k) {
        size_t b = s.reclaim_cursor;
        s.reclaim_cursor = (s.reclaim_cursor + 1) & s.mask;
        for (Item* it = s.buckets[b]; it != nullptr;) {
          Item* next = it->hnext;
          if (dead_locked(it, now)) {
            if ((it->load_bits() & Item::kFetched) == 0) ++s.expired_unfetched;
            ++s.reclaimed;
            unlink_locked(s, it);
            dead.push_back(it);
          }
          it = next;
        }
      }
    }
    freed += dead.size();
    for (Item* it : dead) release(it);
    dead.clear();
  }
  return freed;
}

EngineStats LruEngine::stats() const {
  EngineStats st;
  size_t n = size_t{1} << shard_bits_;
  for (size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    st.curr_items += s.count;
    st.total_items += s.total_items;
    st.bytes += s.item_bytes;
    st.hash_bytes += (s.mask + 1) * sizeof(Item*);
    st.evictions += s.evictions;
    st.evicted_unfetched += s.evicted_unfetched;
    st.expired_unfetched += s.expired_unfetched;
    st.reclaimed += s.reclaimed;
  }
  st.memory_used = static_cast<uint64_t>(data_bytes_.load(std::memory_order_relaxed) +
                                         index_bytes_.load(std::memory_order_relaxed));
  st.limit = limit_;
  return st;
}

void LruEngine::start_reclaimer(int period_ms) {
  reclaimer_stop_ = false;
  reclaimer_ = std::thread([this, period_ms] {
    std::unique_lock lock(reclaimer_mu_);
    while (!reclaimer_stop_) {
      reclaimer_cv_.wait_for(lock, std::chrono::milliseconds(period_ms));
      if (reclaimer_stop_) break;
      lock.unlock();
      reclaim_expired(size_t{1} << 14);
      lock.lock();
    }
  });
}

void LruEngine::stop_reclaimer() {
  if (!reclaimer_.joinable()) return;
  {
    std::lock_guard lock(reclaimer_mu_);
    reclaimer_stop_ = true;
  }
  reclaimer_cv_.notify_all();
  reclaimer_.join();
}

}  // namespace cachetier::engine
