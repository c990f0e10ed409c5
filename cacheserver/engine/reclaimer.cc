// LruEngine's background reclaimer: expired items are freed without being touched, a bounded
// number of index slots per pass, shards without expiring items skipped. Also the engine's stats.
#include "cacheserver/engine/lru_internal.h"

namespace cachetier::engine {

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
        const size_t c = s.reclaim_cursor;
        s.reclaim_cursor = (s.reclaim_cursor + 1) & s.mask;
        if (!slot_used(s.slots[c])) continue;
        Item* it = slot_item(s.slots[c]);
        if (dead_locked(it, now)) {  // (its slot empties or turns tombstone: nothing moves)
          if ((it->load_bits() & Item::kFetched) == 0) ++s.expired_unfetched;
          ++s.reclaimed;
          unlink_locked(s, hash_key(it->key()), it);
          dead.push_back(it);
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
    st.hash_bytes += (s.mask + 1) * sizeof(uint64_t);
    st.evictions += s.evictions;
    st.evicted_unfetched += s.evicted_unfetched;
    st.expired_unfetched += s.expired_unfetched;
    st.reclaimed += s.reclaimed;
  }
  st.memory_used = static_cast<uint64_t>(data_bytes_.load(std::memory_order_relaxed) +
                                         index_bytes_.load(std::memory_order_relaxed)) +
                   ghost_bytes_;
  st.limit = limit_;
  return st;
}

std::vector<ClassStats> LruEngine::class_stats() const {
  // Rows as memcached's slab classes: 1 the small queue's segments and the heads', 2 the main
  // queue's and the evictor's (both seg_size_ bytes), 3 the jumbo items (chunk_size 0, one
  // mapping each).
  std::lock_guard lock(seg_mu_);
  std::vector<ClassStats> out(3);
  out[0].id = 1;
  out[0].chunk_size = out[1].chunk_size = seg_size_;
  out[0].chunks_per_page = out[1].chunks_per_page = 1;
  out[0].evictions = small_evictions_.load();
  out[1].id = 2;
  out[1].evictions = main_evictions_.load();
  out[2].id = 3;
  out[2].items = (nsegs_total_ - nseg_) - free_jumbo_.size();
  for (size_t i = 0; i < nseg_; ++i) {
    const Segment::State st = segs_[i].state;
    if (st == Segment::kSmall || st == Segment::kOpen) ++out[0].pages;
    if (st == Segment::kMain || st == Segment::kDest) ++out[1].pages;
  }
  return out;
}

bool LruEngine::check_invariants(std::string* why) const {
  auto fail = [&](std::string w) {
    if (why) *why = std::move(w);
    return false;
  };
  // (Quiescent callers only. The shards first: the lock order is shard -> seg_mu_.)
  size_t indexed = 0;
  for (size_t i = 0; i < (size_t{1} << shard_bits_); ++i) {
    const Shard& s = shards_[i];
    std::lock_guard sl(shards_[i].mu);
    const std::string sid = "shard " + std::to_string(i);
    size_t used = 0, tombs = 0;
    for (size_t k = 0; k <= s.mask; ++k) {
      const uint64_t v = s.slots[k];
      if (v == kSlotTomb) {
        ++tombs;
        if (s.slots[(k + 1) & s.mask] == kSlotEmpty)
          return fail(sid + ": a tombstone before an empty slot");
      }
      if (!slot_used(v)) continue;
      ++used;
      const Item* it = slot_item(v);
      if ((it->load_bits() & Item::kLinked) == 0)
        return fail(sid + ": an unlinked item in the index");
      const uint64_t h = hash_key(it->key());
      if (shard_for(h).slots != s.slots) return fail(sid + ": an item of another shard");
      if ((v & ~kSlotPtrMask) != slot_tag(h)) return fail(sid + ": a slot's tag is not its key's");
      for (size_t j = h & s.mask; j != k; j = (j + 1) & s.mask) {  // findable: no gap before it
        if (s.slots[j] == kSlotEmpty) return fail(sid + ": an item past an empty slot");
      }
    }
    if (used != s.count || tombs != s.tombs) {
      return fail(sid + ": " + std::to_string(used) + " items and " + std::to_string(tombs) +
                  " tombstones in its slots, counted " + std::to_string(s.count) + " and " +
                  std::to_string(s.tombs));
    }
    if (used + tombs > fill_limit(s.mask + 1)) return fail(sid + ": fuller than 7/8");
    indexed += s.count;
  }
  std::lock_guard lock(seg_mu_);
  size_t linked = 0, backed = 0;
  int64_t jumbo_bytes = 0;
  for (size_t i = 0; i < nsegs_total_; ++i) {
    const Segment& g = segs_[i];
    const std::string id = "segment " + std::to_string(i);
    if (g.state == Segment::kUnbacked) continue;
    if (g.pending.load() != 0) return fail(id + ": an allocation neither linked nor released");
    if (g.state == Segment::kEvicting) return fail(id + ": still being evicted");
    if (g.jumbo)
      jumbo_bytes += static_cast<int64_t>(g.size);
    else
      ++backed;
    if (g.state == Segment::kFree) {
      if (g.refs.load() != 0) return fail(id + ": free with items in it");
      continue;
    }
    size_t in = 0;
    if (g.jumbo) {
      in = (reinterpret_cast<const Item*>(g.mem + kJumboPrefix)->load_bits() & Item::kLinked) ? 1
                                                                                              : 0;
    } else {
      for (size_t off = 0; off < g.write;) {
        auto* it = reinterpret_cast<const Item*>(g.mem + off);
        if (it->load_bits() & Item::kLinked) ++in;
        off += stride_of(it);
        if (off > g.write) return fail(id + ": an item runs past the end");
      }
    }
    if (in != g.refs.load()) {
      return fail(id + ": " + std::to_string(g.refs.load()) + " references, " + std::to_string(in) +
                  " items in the index");
    }
    linked += in;
  }
  if (indexed != linked) {
    return fail(std::to_string(indexed) + " items in the index, " + std::to_string(linked) +
                " in segments");
  }
  const int64_t data = static_cast<int64_t>(backed * seg_size_) + jumbo_bytes;
  if (data != data_bytes_.load()) {
    return fail("data bytes " + std::to_string(data_bytes_.load()) + ", segments hold " +
                std::to_string(data));
  }
  return true;
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
