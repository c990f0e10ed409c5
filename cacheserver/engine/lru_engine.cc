// LruEngine: construction and the operations (lookup, store, remove, arith, flush). Memory is
// in segment_allocator.cc and evictor.cc, the index in hash_index.cc, reclaiming in reclaimer.cc;
// their shared internals in lru_internal.h. See lru_engine.h for the structure and the lock order.
#include "cacheserver/engine/lru_engine.h"

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "cacheserver/engine/lru_internal.h"
#include "common/status.h"

namespace cachetier::engine {

int64_t resolve_exptime(int64_t raw, int64_t now) {
  if (raw == 0) return 0;
  if (raw < 0) return kExpiredNow;
  if (raw <= kRelativeTtlLimit) return now + raw;
  return raw <= now ? kExpiredNow : raw;
}

namespace {

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

LruEngine::LruEngine(const LruEngineConfig& config, const Clock& clock)
    : clock_(clock),
      limit_(config.memory_limit),
      shard_bits_(config.shard_bits),
      max_item_size_(config.max_item_size),
      index_reserve_(config.memory_limit / 16),
      shards_(new Shard[size_t{1} << config.shard_bits]) {
  CT_RELEASE_ASSERT(shard_bits_ >= 1 && shard_bits_ <= 16);  // shard_for shifts by 64 - bits
  init_segments(config.segment_size);
  size_t n = size_t{1} << shard_bits_;
  // The initial index must fit its reserve.
  size_t slots = std::bit_floor(std::max<size_t>(16, config.initial_buckets_per_shard));
  while (slots > 16 && slots * sizeof(uint64_t) * n > index_reserve_) slots /= 2;
  min_slots_ = slots;
  for (size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    s.slots = static_cast<uint64_t*>(alloc_zeroed(slots * sizeof(uint64_t)));
    if (s.slots == nullptr) fatal_out_of_memory("index slots", slots * sizeof(uint64_t));
    s.mask = slots - 1;
    index_bytes_ += static_cast<int64_t>(slots * sizeof(uint64_t));
  }
}

LruEngine::~LruEngine() {
  stop_reclaimer();
  size_t n = size_t{1} << shard_bits_;
  for (size_t i = 0; i < n; ++i)
    free_zeroed(shards_[i].slots, (shards_[i].mask + 1) * sizeof(uint64_t));
  free_segments();
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
    if (drop_if_dead_locked(s, hash, it, now, &r.expired, &gone)) dead.add(gone);
    Item* tomb = nullptr;  // a deleted key: a miss, and replaced by a vivified placeholder
    if (it != nullptr && it->tombstone()) {
      tomb = it;
      it = nullptr;
    }
    if (it == nullptr) {
      if (!opts.vivify) break;
      if (spare == nullptr) {  // allocate without the shard lock, then look again
        lock.unlock();
        dead.flush();  // holding an unlinked item, an allocation could wait for it forever
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
        unlink_locked(s, hash, tomb);
        dead.add(tomb);
      }
      it->exptime = to_stamp(opts.vivify_exptime);
      it->cas = opts.new_cas != 0 ? opts.new_cas : next_cas_locked(s);
      link_locked(s, hash, it, dead);
      it->set_bits(Item::kWinSent);
      ++s.total_items;
      r.hit = true;
      ItemView v = view_of(it);
      v.won = true;
      v.created = true;
      v.prior_exptime = 0;
      visit(v);
      if (opts.bump) {  // its first hit
        set_freq(it, 1);
        it->set_bits(Item::kFetched);
      }
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
      // The whole of a hit's bookkeeping: a count in the item, under its shard's lock.
      if (freq_of(it) < 3) set_freq(it, freq_of(it) + 1);
      if ((b & Item::kFetched) == 0) it->set_bits(Item::kFetched);
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
  if (req.mode == StoreMode::kSet && !req.compare_cas) {
    StoreResult r;
    if (overwrite_in_place(s, hash, req, r)) return r;
  }
  size_t old_len = 0;
  if (concat) {  // the new item's size depends on the old one
    std::lock_guard lock(s.mu);
    Item* old = find_locked(s, hash, req.key);
    if (old != nullptr && !old->tombstone()) {
      old_len = old->vlen;
      StoreResult r;
      if (append_in_place_locked(s, old, req, clock_.now(), r)) return r;
    }
  }
  for (int attempt = 0; attempt < 8; ++attempt) {
    size_t vlen = req.value.size() + old_len;
    if (vlen > max_item_size_) return {EngineStatus::kTooLarge, 0, 0};
    // Allocate and fill outside the shard lock. A jumbo appended value gets half its size
    // again as room to grow in place, so that N appends copy O(N) bytes, not O(N^2).
    const size_t slack = req.mode == StoreMode::kAppend ? vlen / 2 : 0;
    Item* it = allocate(req.key.size(), vlen, req.version != 0 ? sizeof(uint64_t) : 0, slack);
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
      if (drop_if_dead_locked(s, hash, old, now, nullptr, &gone)) dead.add(gone);
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
        // S3-FIFO: an overwrite keeps the key's reads; a key evicted unread not long ago (in
        // the ghost table) comes back as read once, bound for main, and moves the small
        // queue's share (adapt_small).
        if (old != nullptr) {
          set_freq(it, freq_of(old));
        } else if (const Ghost g = ghost_take(hash); g != Ghost::kNone) {
          set_freq(it, 1);
          adapt_small(g == Ghost::kSmall);
        }
        if (Item* prev = old != nullptr ? old : tomb; prev != nullptr) {
          unlink_locked(s, hash, prev);
          dead.add(prev);
        }
        it->cas = req.new_cas != 0 ? req.new_cas : next_cas_locked(s);
        if (req.version != 0) it->set_version(req.version);
        link_locked(s, hash, it, dead);
        if (keep != 0) it->set_bits(keep);
        ++s.total_items;
        r.cas = it->cas;
        r.size = it->vlen;
        r.stale = mark_stale;
      }
    }
    return r;
  }
  return {EngineStatus::kNoMemory, 0, 0};  // the key kept changing size under us
}

bool LruEngine::overwrite_in_place(Shard& s, uint64_t hash, const StoreRequest& req,
                                   StoreResult& r) {
  std::lock_guard lock(s.mu);
  Item* old = find_locked(s, hash, req.key);
  if (old == nullptr || old->vlen != req.value.size()) return false;
  const int64_t now = clock_.now();
  const uint8_t b = old->load_bits();
  // Expired, flushed, deleted, or a version to drop or to refuse: the general path.
  if ((b & Item::kTombstone) != 0 || dead_locked(old, now)) return false;
  const bool versioned = (b & Item::kVersioned) != 0;
  if (versioned != (req.version != 0) || old->version() > req.version) return false;
  // The item's length, so its place in its segment, does not change; readers and the evictor
  // see it only under this lock.
  std::memcpy(old->value_ptr(), req.value.data(), req.value.size());
  if (versioned) old->set_version(req.version);
  const bool had = old->exptime != 0;
  old->exptime = to_stamp(req.exptime);
  s.ttl_items += (old->exptime != 0) - static_cast<int>(had);
  old->client_flags = req.client_flags;
  renew_in_place_locked(s, old, req, now, r);
  return true;
}

void LruEngine::renew_in_place_locked(Shard& s, Item* it, const StoreRequest& req, int64_t now,
                                      StoreResult& r) {
  // It keeps its reads (S3-FIFO), as an overwrite that allocates does.
  it->clear_bits(Item::kFetched | Item::kStale | Item::kWinSent);
  it->atime = static_cast<uint32_t>(now);
  it->cas = req.new_cas != 0 ? req.new_cas : next_cas_locked(s);
  ++s.total_items;
  r.status = EngineStatus::kOk;
  r.cas = it->cas;
  r.size = it->vlen;
}

bool LruEngine::append_in_place_locked(Shard& s, Item* old, const StoreRequest& req, int64_t now,
                                       StoreResult& r) {
  if (req.mode != StoreMode::kAppend || req.compare_cas || !is_jumbo(old)) return false;
  if (dead_locked(old, now)) return false;  // the general path drops it
  const uint8_t b = old->load_bits();
  const bool versioned = (b & Item::kVersioned) != 0;
  if (req.version != 0 && (!versioned || old->version() > req.version)) return false;
  const size_t n = req.value.size();
  if (old->vlen + n > max_item_size_ || item_size(old) + n > jumbo_capacity(old)) return false;
  const uint64_t version = req.version != 0 ? req.version : old->version();
  const size_t stride = stride_of(old);
  std::memcpy(old->value_ptr() + old->vlen, req.value.data(), n);  // over the old version
  old->vlen += static_cast<uint32_t>(n);
  if (versioned) old->set_version(version);
  s.item_bytes += n;
  segment_of(old).live.fetch_add(static_cast<int64_t>(stride_of(old) - stride),
                                 std::memory_order_relaxed);
  renew_in_place_locked(s, old, req, now, r);
  return true;
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
    if (drop_if_dead_locked(s, hash, it, now, nullptr, &gone)) dead.add(gone);
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
          unlink_locked(s, hash, it);
          dead.add(it);
        }
        fresh->exptime = to_stamp(req.tombstone_exptime);
        fresh->cas = next_cas_locked(s);
        fresh->set_version(req.version);
        fresh->set_bits(Item::kTombstone);
        link_locked(s, hash, fresh, dead);
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
      unlink_locked(s, hash, it);
      dead.add(it);
      fresh->cas = req.new_cas != 0 ? req.new_cas : next_cas_locked(s);
      link_locked(s, hash, fresh, dead);
      r.cas = fresh->cas;
      fresh = nullptr;
    } else {
      unlink_locked(s, hash, it);
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
    if (drop_if_dead_locked(s, hash, it, now, nullptr, &gone)) dead.add(gone);
    if (it != nullptr && it->tombstone()) {  // deleted: missing, and replaced if vivifying
      if (req.vivify) {
        unlink_locked(s, hash, it);
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
      // Allocated for 20 digits: the bytes it no longer covers stay its own (meta's pad).
      const size_t before = stride_of(fresh);
      fresh->vlen = static_cast<uint32_t>(n);
      fresh->meta = static_cast<uint8_t>(((before - align8(item_size(fresh))) / 8) << 2);
      if (it != nullptr) {
        set_freq(fresh, freq_of(it));
        fresh->client_flags = it->client_flags;
        fresh->exptime = it->exptime;
        r.prior_exptime = it->exptime;
        unlink_locked(s, hash, it);
        dead.add(it);
        if (req.update_exptime) fresh->exptime = to_stamp(req.exptime);
      } else {
        fresh->exptime = to_stamp(req.vivify_exptime);
        r.created = true;
      }
      fresh->cas = req.new_cas != 0 ? req.new_cas : next_cas_locked(s);
      link_locked(s, hash, fresh, dead);
      ++s.total_items;
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
      for (size_t k = 0; k <= s.mask; ++k) {
        if (slot_used(s.slots[k])) {
          Item* it = slot_item(s.slots[k]);
          it->clear_bits(Item::kLinked);
          segment_of(it).live.fetch_sub(static_cast<int64_t>(stride_of(it)),
                                        std::memory_order_relaxed);
          dead.push_back(it);
        }
        s.slots[k] = kSlotEmpty;
      }
      s.tombs = 0;
      s.count = s.ttl_items = 0;
      s.item_bytes = 0;
    }
    for (Item* it : dead) release(it);
    dead.clear();
  }
}

}  // namespace cachetier::engine
