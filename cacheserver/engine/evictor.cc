// LruEngine's eviction: S3-FIFO over sealed segments (lru_engine.h). One evictor at a time
// (evict_mu_): it takes the oldest segment of the small queue while that holds more than its
// share, else of the main queue, and decides item by item under each item's shard lock. Kept
// items are copied to the evictor's destination segment at the head of the main queue.
#include <sys/mman.h>

#include <limits>
#include <thread>

#include "cacheserver/engine/lru_internal.h"

namespace cachetier::engine {

namespace {

void wait_zero(const std::atomic<uint32_t>& n) {
  for (unsigned spin = 0; n.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin > 64) std::this_thread::yield();
  }
}

}  // namespace

// Each half is 2-way: a key's fingerprint goes in one of a pair of slots (an empty one, else
// one chosen by the hash), so that two keys mapped to a slot do not keep pushing each other out.
void LruEngine::ghost_put(uint64_t hash, bool from_main) {
  const size_t half = ghost_half_;
  const size_t i = (hash & (half - 1)) + (from_main ? half : 0);
  const uint32_t fp = static_cast<uint32_t>(hash >> 32) | 1u;
  std::atomic_ref<uint32_t> a(ghost_[i]);
  std::atomic_ref<uint32_t> b(ghost_[i ^ 1]);
  const uint32_t va = a.load(std::memory_order_relaxed);
  const uint32_t vb = b.load(std::memory_order_relaxed);
  if (va == fp || vb == fp) return;
  (va == 0 ? a : vb == 0 ? b : ((hash >> 31) & 1) ? a : b).store(fp, std::memory_order_relaxed);
}

LruEngine::Ghost LruEngine::ghost_take(uint64_t hash) {
  const size_t half = ghost_half_;
  const uint32_t fp = static_cast<uint32_t>(hash >> 32) | 1u;
  for (const bool main : {false, true}) {
    const size_t i = (hash & (half - 1)) + (main ? half : 0);
    for (const size_t j : {i, i ^ 1}) {
      std::atomic_ref<uint32_t> slot(ghost_[j]);
      if (slot.load(std::memory_order_relaxed) == fp) {
        slot.store(0, std::memory_order_relaxed);
        return main ? Ghost::kMain : Ghost::kSmall;
      }
    }
  }
  return Ghost::kNone;
}

void LruEngine::adapt_small(bool grow) {
  // Racy by design (relaxed, last writer wins): a share that moves by a step either way.
  const size_t cap = small_cap_.load(std::memory_order_relaxed);
  const size_t next = grow ? std::min(small_max_, cap + small_step_)
                           : (cap > small_min_ + small_step_ ? cap - small_step_ : small_min_);
  small_cap_.store(next, std::memory_order_relaxed);
}

Item* LruEngine::copy_to(bool main, size_t bytes) {
  uint32_t& dest = dest_[main ? 1 : 0];
  if (dest != kNoSegment) {
    Segment& g = segs_[dest];
    if (g.write + bytes <= g.size) {
      auto* it = reinterpret_cast<Item*>(g.mem + g.write);
      g.write += bytes;
      g.refs.fetch_add(1, std::memory_order_acq_rel);
      return it;
    }
    seal(dest, main);
    dest = kNoSegment;
  }
  {
    std::lock_guard lock(seg_mu_);
    dest = pop_free_locked(true);
    if (dest != kNoSegment) segs_[dest].state = Segment::kDest;
  }
  if (dest == kNoSegment || bytes > seg_size_) return nullptr;
  Segment& g = segs_[dest];
  auto* it = reinterpret_cast<Item*>(g.mem);
  g.write = bytes;
  g.refs.fetch_add(1, std::memory_order_acq_rel);
  return it;
}

uint32_t LruEngine::compaction_victim_locked(bool cheap) const {
  // Overwrites, deletes and appends leave garbage that only leaves with its segment. The
  // sealed segment with the fewest live bytes is compacted (its items copied, none evicted)
  // when sealed segments are more than an eighth garbage (a cache whose live items fit loses
  // none to garbage), or, `cheap`, when it is at most a quarter live (a head reuses it
  // before it backs more memory: the footprint stays near what is live).
  int64_t sealed = 0, live = 0, least = std::numeric_limits<int64_t>::max();
  uint32_t victim = kNoSegment;
  for (size_t i = 0; i < nseg_; ++i) {
    const Segment& g = segs_[i];
    if (g.state != Segment::kSmall && g.state != Segment::kMain) continue;
    const int64_t l = g.live.load(std::memory_order_relaxed);
    sealed += static_cast<int64_t>(g.size);
    live += l;
    if (l < least) {
      least = l;
      victim = static_cast<uint32_t>(i);
    }
  }
  if (victim == kNoSegment) return kNoSegment;
  if (cheap) return least * 4 <= static_cast<int64_t>(seg_size_) ? victim : kNoSegment;
  return (sealed - live) * 8 > sealed ? victim : kNoSegment;
}

bool LruEngine::evict_segment(bool cheap) {
  std::lock_guard evict(evict_mu_);
  uint32_t id;
  bool from_small, compact = false;
  {
    std::lock_guard lock(seg_mu_);
    if (free_.size() > kReserve) return true;  // another thread's eviction left one
    id = compaction_victim_locked(cheap);
    if (id != kNoSegment) {
      compact = true;
      from_small = segs_[id].state == Segment::kSmall;
    } else if (cheap) {
      return true;  // none any more: the caller looks again
    } else {
      from_small =
          small_->count > 0 &&
          (small_->bytes > small_cap_.load(std::memory_order_relaxed) || main_->count == 0);
      SegmentQueue& q = from_small ? *small_ : *main_;
      if (q.count == 0) return false;
      id = q.head;
    }
    queue_remove_locked(from_small ? *small_ : *main_, id);
    segs_[id].state = Segment::kEvicting;
  }
  Segment& g = segs_[id];
  wait_zero(g.pending);  // every header in it is written
  if (g.jumbo) {
    if (!evict_jumbo(id, from_small)) return true;  // kept: back in the main queue
  } else {
    evict_items(id, from_small, compact);
  }
  wait_zero(g.refs);  // items others unlinked are released
  std::lock_guard lock(seg_mu_);
  recycle_locked(id);
  return true;
}

void LruEngine::evict_items(uint32_t id, bool from_small, bool compact) {
  Segment& g = segs_[id];
  const int64_t now = clock_.now();
  for (size_t off = 0; off < g.write;) {
    auto* it = reinterpret_cast<Item*>(g.mem + off);
    if ((it->load_bits() & Item::kLinked) == 0) {  // gone: nobody writes it any more
      off += stride_of(it);
      continue;
    }
    const uint64_t hash = hash_key(it->key());
    Shard& s = shard_for(hash);
    std::lock_guard lock(s.mu);
    off += stride_of(it);
    const uint8_t b = it->load_bits();
    if ((b & Item::kLinked) == 0) continue;
    if (dead_locked(it, now)) {  // expired or flushed: reclaimed, not evicted
      if (it->exptime != 0 && static_cast<int64_t>(it->exptime) <= now &&
          (b & Item::kFetched) == 0) {
        ++s.expired_unfetched;
      }
      ++s.reclaimed;
      unlink_locked(s, hash, it);
      g.refs.fetch_sub(1, std::memory_order_acq_rel);
      continue;
    }
    // Compaction keeps every item in its queue with its reads; eviction keeps what was read
    // (in main, with one read less).
    const unsigned f = freq_of(it);
    if (compact || (from_small ? f >= 1 : f > 0)) {
      const bool to_main = !compact || !from_small;
      const size_t n = item_size(it);
      if (Item* copy = copy_to(to_main, align8(n)); copy != nullptr) {
        std::memcpy(copy, it, n);
        copy->meta = 0;
        set_freq(copy, compact ? f : from_small ? 0 : f - 1);
        relink_locked(s, hash, it, copy);
        g.refs.fetch_sub(1, std::memory_order_acq_rel);
        continue;
      }
    }
    ++s.evictions;
    if ((b & Item::kFetched) == 0) ++s.evicted_unfetched;
    (from_small ? small_evictions_ : main_evictions_).add();
    ghost_put(hash, !from_small);
    unlink_locked(s, hash, it);
    g.refs.fetch_sub(1, std::memory_order_acq_rel);
  }
}

bool LruEngine::evict_jumbo(uint32_t id, bool from_small) {
  Segment& g = segs_[id];
  auto* it = reinterpret_cast<Item*>(g.mem + kJumboPrefix);
  if ((it->load_bits() & Item::kLinked) == 0) return true;
  const uint64_t hash = hash_key(it->key());
  Shard& s = shard_for(hash);
  {
    std::lock_guard lock(s.mu);
    const uint8_t b = it->load_bits();
    if ((b & Item::kLinked) == 0) return true;
    const int64_t now = clock_.now();
    if (dead_locked(it, now)) {
      ++s.reclaimed;
      unlink_locked(s, hash, it);
      g.refs.fetch_sub(1, std::memory_order_acq_rel);
      return true;
    }
    const unsigned f = freq_of(it);
    if (!(from_small ? f >= 1 : f > 0)) {
      ++s.evictions;
      if ((b & Item::kFetched) == 0) ++s.evicted_unfetched;
      (from_small ? small_evictions_ : main_evictions_).add();
      ghost_put(hash, !from_small);
      unlink_locked(s, hash, it);
      g.refs.fetch_sub(1, std::memory_order_acq_rel);
      return true;
    }
    set_freq(it, from_small ? 0 : f - 1);  // kept where it is: its mapping moves to main
  }
  seal(id, true);
  return false;
}

}  // namespace cachetier::engine
