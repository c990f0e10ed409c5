// LruEngine implementation. See lru_engine.h for the structure and the lock order.
#include "cacheserver/engine/lru_engine.h"

#include <xxhash.h>

#include <algorithm>
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

// One cached item, allocated with its key and value right after the header:
//   [hnext prev next cas exptime atime flags vlen klen bits][key][value]
struct Item {
  Item* hnext;
  Item* prev;  // towards the LRU head (more recent)
  Item* next;  // towards the LRU tail
  uint64_t cas;
  uint32_t exptime;  // 0 never, 1 expired, else unix seconds
  uint32_t atime;
  uint32_t client_flags;
  uint32_t vlen;
  uint8_t klen;
  uint8_t bits;

  static constexpr uint8_t kFetched = 1;
  static constexpr uint8_t kStale = 2;
  static constexpr uint8_t kWinSent = 4;

  char* data() { return reinterpret_cast<char*>(&bits) + 1; }
  const char* data() const { return reinterpret_cast<const char*>(&bits) + 1; }
  std::string_view key() const { return {data(), klen}; }
  std::string_view value() const { return {data() + klen, vlen}; }
  char* value_ptr() { return data() + klen; }
};

namespace {
constexpr size_t kHeaderSize = offsetof(Item, bits) + 1;

// glibc's chunk size for a malloc of n bytes: n plus an 8-byte header, rounded up to 16, at
// least 32; large (mmap-ed) blocks round to pages.
size_t malloc_cost(size_t n) {
  if (n >= 128 * 1024) return (n + 8 + 4095) & ~size_t{4095};
  return std::max<size_t>(32, (n + 8 + 15) & ~size_t{15});
}

uint32_t to_stamp(int64_t exptime) {
  if (exptime == 0) return 0;
  if (exptime < 0) return 1;
  return static_cast<uint32_t>(std::min<int64_t>(exptime, std::numeric_limits<uint32_t>::max()));
}
int64_t from_stamp(uint32_t s) { return s; }

uint64_t hash_key(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

ItemView view_of(const Item* it) {
  ItemView v;
  v.key = it->key();
  v.value = it->value();
  v.client_flags = it->client_flags;
  v.cas = it->cas;
  v.exptime = from_stamp(it->exptime);
  v.last_access = it->atime;
  v.fetched_before = (it->bits & Item::kFetched) != 0;
  return v;
}

// Parses an item value as memcached's incr/decr does: decimal digits, optionally followed by
// spaces (left by an older decr), at most 20 digits.
bool parse_counter(std::string_view v, uint64_t& out) {
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return false;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() && p == v.data() + v.size();
}
}  // namespace

struct alignas(64) Shard {
  std::mutex mu;
  Item** buckets = nullptr;
  size_t mask = 0;
  size_t count = 0;
  Item* lru_head = nullptr;
  Item* lru_tail = nullptr;
  uint64_t cas_counter = 0;
  uint64_t item_bytes = 0;
  uint64_t total_items = 0;
  uint64_t evictions = 0;
  uint64_t evicted_unfetched = 0;
  uint64_t expired_unfetched = 0;
  uint64_t reclaimed = 0;
  size_t reclaim_cursor = 0;
};

size_t LruEngine::item_cost(size_t key_len, size_t value_len) {
  return malloc_cost(kHeaderSize + key_len + value_len);
}

LruEngine::LruEngine(const LruEngineConfig& config, const Clock& clock)
    : clock_(clock),
      limit_(config.memory_limit),
      shard_bits_(config.shard_bits),
      shards_(new Shard[size_t{1} << config.shard_bits]) {
  size_t n = size_t{1} << shard_bits_;
  size_t buckets = std::max<size_t>(16, config.initial_buckets_per_shard);
  for (size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    s.buckets = static_cast<Item**>(std::calloc(buckets, sizeof(Item*)));
    if (s.buckets == nullptr) fatal_out_of_memory("hash buckets", buckets * sizeof(Item*));
    s.mask = buckets - 1;
    used_ += static_cast<int64_t>(malloc_cost(buckets * sizeof(Item*)));
    s.cas_counter = 0;
  }
}

LruEngine::~LruEngine() {
  stop_reclaimer();
  size_t n = size_t{1} << shard_bits_;
  for (size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    for (Item* it = s.lru_head; it != nullptr;) {
      Item* next = it->next;
      std::free(it);
      it = next;
    }
    std::free(s.buckets);
  }
}

Shard& LruEngine::shard_for(uint64_t hash) const {
  return shards_[hash >> (64 - shard_bits_)];
}

bool LruEngine::dead_locked(const Item* it, int64_t now) const {
  if (it->exptime != 0 && from_stamp(it->exptime) <= now) return true;
  int64_t flush = flush_at_.load(std::memory_order_relaxed);
  return flush != 0 && now >= flush && it->atime < flush;
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
  it->prev = nullptr;
  it->next = s.lru_head;
  if (s.lru_head) s.lru_head->prev = it;
  s.lru_head = it;
  if (s.lru_tail == nullptr) s.lru_tail = it;
  ++s.count;
  s.item_bytes += kHeaderSize + it->klen + it->vlen;
}

void LruEngine::unlink_locked(Shard& s, Item* it) {
  uint64_t hash = hash_key(it->key());
  for (Item** p = &s.buckets[hash & s.mask]; *p != nullptr; p = &(*p)->hnext) {
    if (*p == it) {
      *p = it->hnext;
      break;
    }
  }
  if (it->prev) it->prev->next = it->next; else s.lru_head = it->next;
  if (it->next) it->next->prev = it->prev; else s.lru_tail = it->prev;
  --s.count;
  s.item_bytes -= kHeaderSize + it->klen + it->vlen;
}

void LruEngine::free_item_locked(Shard& s, Item* it) {
  used_.fetch_sub(static_cast<int64_t>(item_cost(it->klen, it->vlen)), std::memory_order_relaxed);
  std::free(it);
}

bool LruEngine::evict_one_locked(Shard& s, const Item* keep) {
  Item* victim = s.lru_tail;
  if (victim == keep && victim != nullptr) victim = victim->prev;
  if (victim == nullptr) return false;
  int64_t now = clock_.now();
  if (dead_locked(victim, now)) {
    if ((victim->bits & Item::kFetched) == 0) ++s.expired_unfetched;
  } else {
    ++s.evictions;
    if ((victim->bits & Item::kFetched) == 0) ++s.evicted_unfetched;
  }
  unlink_locked(s, victim);
  free_item_locked(s, victim);
  return true;
}

bool LruEngine::make_room_locked(Shard& s, size_t cost, const Item* keep) {
  const auto want = static_cast<int64_t>(cost);
  const auto limit = static_cast<int64_t>(limit_);
  if (want > limit) return false;
  size_t n = size_t{1} << shard_bits_;
  size_t home = static_cast<size_t>(&s - shards_.get());
  size_t probe = 0;  // shards tried beyond the home shard since the last successful eviction
  for (;;) {
    int64_t cur = used_.load(std::memory_order_relaxed);
    if (cur + want <= limit) {
      if (used_.compare_exchange_weak(cur, cur + want, std::memory_order_relaxed)) return true;
      continue;
    }
    if (probe == 0 && evict_one_locked(s, keep)) continue;
    // The home shard is empty: evict from the others we can lock without waiting.
    bool evicted = false;
    for (; probe < n && !evicted; ++probe) {
      Shard& o = shards_[(home + 1 + probe) % n];
      if (&o == &s || !o.mu.try_lock()) continue;
      evicted = evict_one_locked(o, nullptr);
      o.mu.unlock();
    }
    if (!evicted) return false;
  }
}

Item* LruEngine::new_item_locked(Shard& s, std::string_view key, size_t value_len,
                                 const Item* keep) {
  size_t bytes = kHeaderSize + key.size() + value_len;
  if (!make_room_locked(s, malloc_cost(bytes), keep)) return nullptr;
  auto* it = static_cast<Item*>(std::malloc(bytes));
  if (it == nullptr) fatal_out_of_memory("item", bytes);
  it->hnext = it->prev = it->next = nullptr;
  it->cas = 0;
  it->exptime = 0;
  it->atime = static_cast<uint32_t>(clock_.now());
  it->client_flags = 0;
  it->vlen = static_cast<uint32_t>(value_len);
  it->klen = static_cast<uint8_t>(key.size());
  it->bits = 0;
  std::memcpy(it->data(), key.data(), key.size());
  return it;
}

uint64_t LruEngine::next_cas_locked(Shard& s) {
  // Unique across shards: the low bits name the shard.
  return (++s.cas_counter << shard_bits_) | static_cast<uint64_t>(&s - shards_.get());
}

void LruEngine::replace_locked(Shard& s, uint64_t hash, Item* old, Item* fresh, uint64_t new_cas) {
  if (old != nullptr) {
    unlink_locked(s, old);
    free_item_locked(s, old);
  }
  fresh->cas = new_cas != 0 ? new_cas : next_cas_locked(s);
  link_locked(s, hash, fresh);
  ++s.total_items;
  maybe_grow_locked(s);
}

void LruEngine::maybe_grow_locked(Shard& s) {
  size_t buckets = s.mask + 1;
  if (s.count <= buckets + buckets / 2) return;
  size_t grown = buckets * 2;
  size_t cost = malloc_cost(grown * sizeof(Item*));
  // The index competes with items for the budget; if it cannot grow, chains just get longer.
  int64_t cur = used_.load(std::memory_order_relaxed);
  if (cur + static_cast<int64_t>(cost) > static_cast<int64_t>(limit_) / 8 * 7) return;
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
  used_.fetch_add(static_cast<int64_t>(cost) - static_cast<int64_t>(malloc_cost(buckets * sizeof(Item*))),
                  std::memory_order_relaxed);
  s.buckets = fresh;
  s.mask = grown - 1;
  s.reclaim_cursor = 0;
}

LookupResult LruEngine::lookup(std::string_view key, const LookupOptions& opts, ItemVisitor visit) {
  LookupResult r;
  uint64_t hash = hash_key(key);
  Shard& s = shard_for(hash);
  int64_t now = clock_.now();
  std::lock_guard lock(s.mu);
  Item* it = find_locked(s, hash, key);
  if (it != nullptr && dead_locked(it, now)) {
    r.expired = it->exptime != 0 && from_stamp(it->exptime) <= now;
    if ((it->bits & Item::kFetched) == 0 && r.expired) ++s.expired_unfetched;
    unlink_locked(s, it);
    free_item_locked(s, it);
    it = nullptr;
  }
  if (it == nullptr) {
    if (!opts.vivify) return r;
    // Vivify: an empty placeholder so that the other clients see it and wait for the winner.
    it = new_item_locked(s, key, 0, nullptr);
    if (it == nullptr) return r;
    it->exptime = to_stamp(opts.vivify_exptime);
    it->bits = Item::kWinSent;
    replace_locked(s, hash, nullptr, it, 0);
    r.hit = true;
    r.won = true;
    ItemView v = view_of(it);
    v.won = true;
    visit(v);
    return r;
  }
  r.hit = true;
  r.stale = (it->bits & Item::kStale) != 0;
  bool wants_win = r.stale;
  if (opts.recache && it->exptime != 0 && from_stamp(it->exptime) - now < opts.recache_below) {
    wants_win = true;
  }
  if (wants_win || (it->bits & Item::kWinSent) != 0) {
    if ((it->bits & Item::kWinSent) == 0) {
      r.won = true;
      it->bits |= Item::kWinSent;
    } else {
      r.win_already_sent = true;
    }
  }
  if (opts.update_exptime) it->exptime = to_stamp(opts.exptime);
  ItemView v = view_of(it);
  v.stale = r.stale;
  v.won = r.won;
  v.win_already_sent = r.win_already_sent;
  visit(v);
  if (opts.bump) {
    it->bits |= Item::kFetched;
    it->atime = static_cast<uint32_t>(now);
    if (s.lru_head != it) {  // move to the head
      it->prev->next = it->next;
      if (it->next) it->next->prev = it->prev; else s.lru_tail = it->prev;
      it->prev = nullptr;
      it->next = s.lru_head;
      s.lru_head->prev = it;
      s.lru_head = it;
    }
  }
  return r;
}

StoreResult LruEngine::store(const StoreRequest& req) {
  StoreResult r;
  uint64_t hash = hash_key(req.key);
  Shard& s = shard_for(hash);
  int64_t now = clock_.now();
  std::lock_guard lock(s.mu);
  Item* old = find_locked(s, hash, req.key);
  if (old != nullptr && dead_locked(old, now)) {
    unlink_locked(s, old);
    free_item_locked(s, old);
    old = nullptr;
  }
  bool concat = req.mode == StoreMode::kAppend || req.mode == StoreMode::kPrepend;
  bool mark_stale = false;
  if (req.compare_cas != 0) {
    if (old == nullptr) return {EngineStatus::kNotFound, 0, 0};
    if (old->cas != req.compare_cas) {
      if (!(req.invalidate && req.compare_cas < old->cas)) return {EngineStatus::kExists, 0, 0};
      mark_stale = true;
    }
  }
  switch (req.mode) {
    case StoreMode::kAdd:
      if (old != nullptr) return {EngineStatus::kNotStored, 0, 0};
      break;
    case StoreMode::kReplace:
      if (old == nullptr) return {EngineStatus::kNotStored, 0, 0};
      break;
    case StoreMode::kAppend:
    case StoreMode::kPrepend:
      if (old == nullptr && !req.vivify) return {EngineStatus::kNotStored, 0, 0};
      break;
    case StoreMode::kSet:
      break;
  }
  size_t vlen = req.value.size() + (concat && old != nullptr ? old->vlen : 0);
  if (vlen > std::numeric_limits<uint32_t>::max()) return {EngineStatus::kTooLarge, 0, 0};
  Item* it = new_item_locked(s, req.key, vlen, old);
  if (it == nullptr) return {EngineStatus::kNoMemory, 0, 0};
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
    std::memcpy(v, req.value.data(), req.value.size());
    it->client_flags = req.client_flags;
    it->exptime = to_stamp(concat ? req.vivify_exptime : req.exptime);
  }
  if (mark_stale) it->bits |= Item::kStale;
  replace_locked(s, hash, old, it, req.new_cas);
  r.cas = it->cas;
  r.size = it->vlen;
  return r;
}

StoreResult LruEngine::remove(const DeleteRequest& req) {
  uint64_t hash = hash_key(req.key);
  Shard& s = shard_for(hash);
  int64_t now = clock_.now();
  std::lock_guard lock(s.mu);
  Item* it = find_locked(s, hash, req.key);
  if (it != nullptr && dead_locked(it, now)) {
    unlink_locked(s, it);
    free_item_locked(s, it);
    it = nullptr;
  }
  if (it == nullptr) return {EngineStatus::kNotFound, 0, 0};
  if (req.compare_cas != 0 && it->cas != req.compare_cas) return {EngineStatus::kExists, 0, 0};
  if (req.invalidate) {
    it->bits = static_cast<uint8_t>((it->bits | Item::kStale) & ~Item::kWinSent);
    it->cas = req.new_cas != 0 ? req.new_cas : next_cas_locked(s);
    if (req.update_exptime) it->exptime = to_stamp(req.exptime);
    return {EngineStatus::kOk, it->cas, it->vlen};
  }
  if (req.drop_value) {
    Item* fresh = new_item_locked(s, req.key, 0, it);
    if (fresh == nullptr) return {EngineStatus::kNoMemory, 0, 0};
    fresh->client_flags = it->client_flags;
    fresh->exptime = it->exptime;
    replace_locked(s, hash, it, fresh, req.new_cas);
    return {EngineStatus::kOk, fresh->cas, 0};
  }
  unlink_locked(s, it);
  free_item_locked(s, it);
  return {EngineStatus::kOk, 0, 0};
}

ArithResult LruEngine::arith(const ArithRequest& req) {
  ArithResult r;
  uint64_t hash = hash_key(req.key);
  Shard& s = shard_for(hash);
  int64_t now = clock_.now();
  std::lock_guard lock(s.mu);
  Item* it = find_locked(s, hash, req.key);
  if (it != nullptr && dead_locked(it, now)) {
    unlink_locked(s, it);
    free_item_locked(s, it);
    it = nullptr;
  }
  uint64_t value;
  char digits[24];
  if (it == nullptr) {
    if (!req.vivify) return {EngineStatus::kNotFound, 0, 0, 0};
    value = req.initial;
  } else {
    if (req.compare_cas != 0 && it->cas != req.compare_cas) {
      return {EngineStatus::kExists, 0, 0, 0};
    }
    uint64_t cur;
    if (!parse_counter(it->value(), cur)) return {EngineStatus::kNonNumeric, 0, 0, 0};
    if (req.incr) {
      value = cur + req.delta;  // wraps at 2^64 as memcached does
    } else {
      value = cur > req.delta ? cur - req.delta : 0;
    }
  }
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  size_t len = static_cast<size_t>(end - digits);
  Item* fresh = new_item_locked(s, req.key, len, it);
  if (fresh == nullptr) return {EngineStatus::kNoMemory, 0, 0, 0};
  std::memcpy(fresh->value_ptr(), digits, len);
  if (it != nullptr) {
    fresh->client_flags = it->client_flags;
    fresh->exptime = it->exptime;
    fresh->bits = it->bits & Item::kFetched;
  } else {
    fresh->exptime = to_stamp(req.vivify_exptime);
  }
  if (req.update_exptime) fresh->exptime = to_stamp(req.exptime);
  replace_locked(s, hash, it, fresh, req.new_cas);
  r.value = value;
  r.cas = fresh->cas;
  r.exptime = from_stamp(fresh->exptime);
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
  for (size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    for (Item* it = s.lru_head; it != nullptr;) {
      Item* next = it->next;
      free_item_locked(s, it);
      it = next;
    }
    std::fill(s.buckets, s.buckets + s.mask + 1, nullptr);
    s.lru_head = s.lru_tail = nullptr;
    s.count = 0;
    s.item_bytes = 0;
  }
}

size_t LruEngine::reclaim_expired(size_t budget) {
  size_t n = size_t{1} << shard_bits_;
  size_t per_shard = std::max<size_t>(1, budget / n);
  size_t freed = 0;
  int64_t now = clock_.now();
  for (size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lock(s.mu);
    for (size_t k = 0; k < per_shard; ++k) {
      size_t b = s.reclaim_cursor;
      s.reclaim_cursor = (s.reclaim_cursor + 1) & s.mask;
      for (Item* it = s.buckets[b]; it != nullptr;) {
        Item* next = it->hnext;
        if (dead_locked(it, now)) {
          if ((it->bits & Item::kFetched) == 0) ++s.expired_unfetched;
          ++s.reclaimed;
          unlink_locked(s, it);
          free_item_locked(s, it);
          ++freed;
        }
        it = next;
      }
    }
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
  st.memory_used = static_cast<uint64_t>(used_.load(std::memory_order_relaxed));
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
      reclaim_expired(size_t{1} << 16);
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
