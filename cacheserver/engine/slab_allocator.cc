// LruEngine's memory: slab classes of fixed-size chunks in 64 KiB pages, large items with an
// allocation each, the budget they share, and CLOCK eviction within a class or the large pool.
// See lru_engine.h for the structure and the lock order.
#include "cacheserver/engine/lru_internal.h"

namespace cachetier::engine {

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

bool LruEngine::evict_item(Item* it, Counter& class_evictions) {
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
    class_evictions.add();  // under the class (or large pool) lock: one writer at a time
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
    if (evict_item(it, c.evictions)) return it;
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
  // The page: from the CLOCK hand on, the first without a chunk that is allocated but not in
  // the index (being stored, or unlinked and not yet released: its release would put a chunk
  // of a page another class owns on this class's free list). Allocation and release of this
  // class wait for its lock, so no such chunk appears on a page while it is held.
  size_t idx = victim->pages.size();
  const size_t tries = std::min<size_t>(victim->pages.size(), 4);
  for (size_t k = 0; k < tries && idx == victim->pages.size(); ++k) {
    size_t cand = (victim->hand_page + k) % victim->pages.size();
    const Page& p = victim->pages[cand];
    bool held = false;
    for (uint32_t i = 0; i < p.used && !held; ++i) {
      held = (victim->slot(p, i)->load_bits() & (Item::kAllocated | Item::kLinked)) ==
             Item::kAllocated;
    }
    if (!held) idx = cand;
  }
  if (idx == victim->pages.size()) return nullptr;
  Page page = victim->pages[idx];
  // Evict everything on the page; if a shard is busy, or an item was unlinked meanwhile (so is
  // held now), put back what was taken and give up.
  std::vector<Item*> evicted;
  for (uint32_t i = 0; i < page.used; ++i) {
    Item* it = victim->slot(page, i);
    uint8_t b = it->load_bits();
    if ((b & (Item::kLinked | Item::kAllocated)) == 0) continue;  // free
    if ((b & Item::kLinked) == 0 || !evict_item(it, victim->evictions)) {
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

Item* LruEngine::allocate(size_t key_len, size_t value_len, size_t extra, size_t slack) {
  size_t bytes = kHeaderSize + key_len + value_len + extra;
  Item* it = nullptr;
  if (bytes <= large_threshold_) {
    it = allocate_small(bytes);
  } else {
    const size_t most = kHeaderSize + 255 + max_item_size_ + sizeof(uint64_t);
    slack = std::min(slack, most > bytes ? most - bytes : 0);
    if (slack != 0) it = allocate_large(bytes + slack);
    if (it == nullptr) it = allocate_large(bytes);
  }
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
  it->store_bits(Item::kAllocated);
  return it;
}

Item* LruEngine::allocate_large(size_t bytes) {
  if (bytes > kHeaderSize + 255 + max_item_size_ + sizeof(uint64_t)) return nullptr;
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
  large_capacity(it) = bytes;
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
    if (evict_item(it, lp.evictions)) {
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
  size_t cost = malloc_cost(large_capacity(it) + kLargePrefix);
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

}  // namespace cachetier::engine
