// LruEngine's background reclaimer: expired items are freed without being touched, a bounded
// number of buckets per pass, shards without expiring items skipped. Also the engine's stats.
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

std::vector<ClassStats> LruEngine::class_stats() const {
  std::vector<ClassStats> out;
  for (size_t i = 0; i < classes_.size(); ++i) {
    SlabClass& c = *classes_[i];
    std::lock_guard lock(c.mu);
    if (c.pages.empty() && c.evictions.load() == 0) continue;
    ClassStats cs;
    cs.id = static_cast<uint32_t>(i + 1);
    cs.chunk_size = c.size;
    cs.chunks_per_page = c.per_page;
    cs.pages = c.pages.size();
    cs.evictions = c.evictions.load();
    out.push_back(cs);
  }
  std::lock_guard lock(large_->mu);
  ClassStats lc;
  lc.id = static_cast<uint32_t>(classes_.size() + 1);
  lc.items = large_->items.size();
  lc.evictions = large_->evictions.load();
  out.push_back(lc);
  return out;
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
