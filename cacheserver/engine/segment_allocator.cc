// LruEngine's memory: the arena of normal segments, jumbo mappings, the append heads, the free
// lists and the queues, and the budget they share. Eviction is in evictor.cc. See
// lru_engine.h for the structure and the lock order.
#include <sys/mman.h>

#include "cacheserver/engine/lru_internal.h"

namespace cachetier::engine {

namespace {

size_t pow2_floor(size_t n) {
  size_t p = 1;
  while (p * 2 <= n) p *= 2;
  return p;
}

unsigned thread_slot() {
  static std::atomic<unsigned> next{0};
  thread_local unsigned slot = next.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

}  // namespace

void* alloc_zeroed(size_t bytes) {
  if (bytes < 4096) return std::calloc(bytes, 1);
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return m == MAP_FAILED ? nullptr : m;
}

void free_zeroed(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (bytes < 4096) {
    std::free(p);
  } else {
    munmap(p, bytes);
  }
}

void LruEngine::init_segments(size_t segment_size) {
  // The ghost table: a fingerprint per slot, a slot per 512-1024 bytes of items (a power of
  // two). Larger tables measured worse: an older ghost hit says less, and costs budget.
  const size_t rough = limit_ - index_reserve_;
  const size_t ghost_slots = std::max<size_t>(1024, pow2_floor(rough / 1024) * 2);
  ghost_bytes_ = ghost_slots * sizeof(uint32_t);
  ghost_ = static_cast<uint32_t*>(alloc_zeroed(ghost_bytes_));
  if (ghost_ == nullptr) fatal_out_of_memory("ghost table", ghost_bytes_);
  ghost_half_ = ghost_slots / 2;
  const size_t budget = limit_ - index_reserve_ - ghost_bytes_;
  if (segment_size != 0) {
    seg_size_ = std::max<size_t>(4096, pow2_floor(segment_size));
  } else {
    seg_size_ = std::clamp<size_t>(pow2_floor(budget / 64), 64 << 10, 1 << 20);
  }
  while ((size_t{1} << seg_shift_) < seg_size_) ++seg_shift_;
  nseg_ = std::max<size_t>(1, budget / seg_size_);
  jumbo_threshold_ = seg_size_ / 4;
  nsegs_total_ = nseg_ + budget / jumbo_threshold_ + 1;
  small_cap_.store(budget / 10, std::memory_order_relaxed);
  small_min_ = budget / 20;
  small_max_ = budget / 10 * 9;
  small_step_ = std::max<size_t>(1, budget / 1000);
  nheads_ = static_cast<unsigned>(std::clamp<size_t>(nseg_ / 32, 1, 4));
  void* m = mmap(nullptr, nseg_ * seg_size_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) fatal_out_of_memory("segment arena", nseg_ * seg_size_);
  arena_ = static_cast<char*>(m);
  segs_ = std::make_unique<Segment[]>(nsegs_total_);
  for (size_t i = nseg_; i-- > 0;) {
    segs_[i].mem = arena_ + i * seg_size_;
    segs_[i].size = seg_size_;
    unbacked_.push_back(static_cast<uint32_t>(i));
  }
  for (size_t i = nsegs_total_; i-- > nseg_;) {
    segs_[i].jumbo = true;
    free_jumbo_.push_back(static_cast<uint32_t>(i));
  }
  small_ = std::make_unique<SegmentQueue>();
  main_ = std::make_unique<SegmentQueue>();
  heads_ = std::make_unique<AppendHead[]>(nheads_);
}

void LruEngine::free_segments() {
  for (size_t i = nseg_; i < nsegs_total_; ++i) {
    if (segs_[i].mem != nullptr) munmap(segs_[i].mem, segs_[i].size);
  }
  munmap(arena_, nseg_ * seg_size_);
  free_zeroed(ghost_, ghost_bytes_);
}

size_t LruEngine::item_cost(size_t key_len, size_t value_len) const {
  const size_t bytes = kHeaderSize + key_len + value_len;
  if (bytes > jumbo_threshold_) return (bytes + kJumboPrefix + 4095) & ~size_t{4095};
  return align8(bytes);
}

bool LruEngine::is_jumbo(const Item* it) const {
  auto* p = reinterpret_cast<const char*>(it);
  return p < arena_ || p >= arena_ + nseg_ * seg_size_;
}

Segment& LruEngine::segment_of(const Item* it) const {
  auto* p = reinterpret_cast<const char*>(it);
  if (!is_jumbo(it)) return segs_[static_cast<size_t>(p - arena_) >> seg_shift_];
  uint32_t id;
  std::memcpy(&id, p - kJumboPrefix, sizeof id);
  return segs_[id];
}

size_t LruEngine::jumbo_capacity(const Item* it) const {
  size_t cap;
  std::memcpy(&cap, reinterpret_cast<const char*>(it) - sizeof(size_t), sizeof cap);
  return cap;
}

int64_t LruEngine::index_claim() const {
  return std::max<int64_t>(
      index_bytes_.load(std::memory_order_relaxed) + index_wants_.load(std::memory_order_relaxed),
      static_cast<int64_t>(index_reserve_));
}

int64_t LruEngine::room_beside(int64_t index) const {
  return static_cast<int64_t>(limit_) - data_bytes_.load(std::memory_order_relaxed) - index -
         static_cast<int64_t>(ghost_bytes_);
}

bool LruEngine::over_budget() const { return room_beside(index_claim()) < 0; }

void LruEngine::unback_locked(uint32_t id) {
  madvise(segs_[id].mem, seg_size_, MADV_DONTNEED);
  data_bytes_.fetch_sub(static_cast<int64_t>(seg_size_), std::memory_order_relaxed);
  segs_[id].write = 0;
  segs_[id].state = Segment::kUnbacked;
  unbacked_.push_back(id);
}

bool LruEngine::charge(size_t bytes) {
  const auto want = static_cast<int64_t>(bytes);
  const auto fixed = static_cast<int64_t>(ghost_bytes_);
  const auto limit = static_cast<int64_t>(limit_);
  for (;;) {
    int64_t cur = data_bytes_.load(std::memory_order_relaxed);
    if (cur + want + index_claim() + fixed > limit) return false;
    if (data_bytes_.compare_exchange_weak(cur, cur + want, std::memory_order_relaxed)) return true;
  }
}

// ---- queues (seg_mu_ held) ----

SegmentQueue& LruEngine::queue_of_locked(const Segment& g) {
  return g.state == Segment::kSmall ? *small_ : *main_;
}

void LruEngine::queue_push_locked(SegmentQueue& q, uint32_t id) {
  Segment& g = segs_[id];
  g.prev = q.tail;
  g.next = kNoSegment;
  if (q.tail != kNoSegment) segs_[q.tail].next = id;
  q.tail = id;
  if (q.head == kNoSegment) q.head = id;
  q.bytes += g.size;
  ++q.count;
}

void LruEngine::queue_remove_locked(SegmentQueue& q, uint32_t id) {
  Segment& g = segs_[id];
  if (g.prev != kNoSegment)
    segs_[g.prev].next = g.next;
  else
    q.head = g.next;
  if (g.next != kNoSegment)
    segs_[g.next].prev = g.prev;
  else
    q.tail = g.prev;
  g.prev = g.next = kNoSegment;
  q.bytes -= g.size;
  --q.count;
}

void LruEngine::recycle_locked(uint32_t id) {
  Segment& g = segs_[id];
  if (g.jumbo) {
    munmap(g.mem, g.size);
    data_bytes_.fetch_sub(static_cast<int64_t>(g.size), std::memory_order_relaxed);
    g.mem = nullptr;
    g.size = g.write = 0;
    g.state = Segment::kUnbacked;
    free_jumbo_.push_back(id);
    return;
  }
  if (over_budget()) {  // the index claimed memory to grow into: it comes from here
    unback_locked(id);
    return;
  }
  g.write = 0;
  g.state = Segment::kFree;
  free_.push_back(id);
}

uint32_t LruEngine::pop_free_locked(bool may_use_reserve) {
  // The evictor's reserve is kReserve segments, free ones or room in the budget to back
  // them; a head takes a free segment first (reuse keeps memory touched once), and leaves the
  // reserve alone.
  while (!free_.empty() && over_budget()) {  // the index's claim first
    unback_locked(free_.back());
    free_.pop_back();
  }
  const int64_t room = room_beside(index_claim());
  const size_t backable =
      std::min(unbacked_.size(), room > 0 ? static_cast<size_t>(room) / seg_size_ : size_t{0});
  const size_t keep = may_use_reserve ? 0 : kReserve;
  uint32_t id = kNoSegment;
  if (!free_.empty() && free_.size() + backable > keep) {
    id = free_.back();
    free_.pop_back();
  } else if (backable > keep && charge(seg_size_)) {
    id = unbacked_.back();
    unbacked_.pop_back();
  }
  if (id != kNoSegment) segs_[id].state = Segment::kOpen;
  return id;
}

void LruEngine::seal(uint32_t id, bool main) {
  std::lock_guard lock(seg_mu_);
  Segment& g = segs_[id];
  g.state = main ? Segment::kMain : Segment::kSmall;
  queue_push_locked(queue_of_locked(g), id);
  if (g.refs.load(std::memory_order_acquire) == 0 &&
      g.pending.load(std::memory_order_acquire) == 0) {
    queue_remove_locked(queue_of_locked(g), id);
    recycle_locked(id);
  }
}

void LruEngine::free_if_empty(uint32_t id) {
  std::lock_guard lock(seg_mu_);
  Segment& g = segs_[id];
  if (g.state != Segment::kSmall && g.state != Segment::kMain) return;  // open or evicting
  if (g.refs.load(std::memory_order_acquire) != 0 ||
      g.pending.load(std::memory_order_acquire) != 0) {
    return;
  }
  queue_remove_locked(queue_of_locked(g), id);
  recycle_locked(id);
}

// ---- allocation ----

uint32_t LruEngine::take_segment() {
  const size_t tries = 4 * nsegs_total_ + 16;
  for (size_t i = 0; i < tries; ++i) {
    bool cheap = false;
    {
      std::lock_guard lock(seg_mu_);
      // A free segment; else a mostly-garbage one compacted; else more memory, or eviction.
      if (free_.size() <= kReserve && compaction_victim_locked(true) != kNoSegment) {
        cheap = true;
      } else if (uint32_t id = pop_free_locked(false); id != kNoSegment) {
        return id;
      }
    }
    if (cheap) {
      evict_segment(true);
      continue;
    }
    if (!evict_segment()) {
      std::lock_guard lock(seg_mu_);
      return pop_free_locked(false);
    }
  }
  return kNoSegment;
}

Item* LruEngine::allocate(size_t key_len, size_t value_len, size_t extra, size_t slack) {
  const size_t bytes = kHeaderSize + key_len + value_len + extra;
  if (bytes > kHeaderSize + 255 + max_item_size_ + sizeof(uint64_t)) return nullptr;
  Item* it = nullptr;
  if (bytes > jumbo_threshold_) {
    const size_t most = kHeaderSize + 255 + max_item_size_ + sizeof(uint64_t);
    slack = std::min(slack, most > bytes ? most - bytes : 0);
    if (slack != 0) it = allocate_jumbo(bytes + slack);
    if (it == nullptr) it = allocate_jumbo(bytes);
  } else {
    it = allocate_small(align8(bytes));
  }
  if (it == nullptr) return nullptr;
  // The index keeps the address in 48 bits (lru_internal.h's slots).
  CT_RELEASE_ASSERT((reinterpret_cast<uintptr_t>(it) & ~kSlotPtrMask) == 0);
  it->klen = static_cast<uint8_t>(key_len);
  it->vlen = static_cast<uint32_t>(value_len);
  it->cas = 0;
  it->exptime = 0;
  it->client_flags = 0;
  it->meta = 0;
  it->atime = static_cast<uint32_t>(clock_.now());
  uint8_t b = Item::kPending;
  if (extra == sizeof(uint64_t)) {
    // Versioned from the start (version 0 until set): the item's length never changes.
    std::memset(it->data() + key_len + value_len, 0, sizeof(uint64_t));
    b |= Item::kVersioned;
  }
  it->store_bits(b);
  return it;
}

Item* LruEngine::allocate_small(size_t bytes) {
  AppendHead& h = heads_[thread_slot() % nheads_];
  for (int attempt = 0; attempt < 8; ++attempt) {
    uint32_t full = kNoSegment;
    {
      std::lock_guard lock(h.mu);
      if (h.seg != kNoSegment) {
        Segment& g = segs_[h.seg];
        if (g.write + bytes <= g.size) {
          auto* it = reinterpret_cast<Item*>(g.mem + g.write);
          g.write += bytes;
          g.refs.fetch_add(1, std::memory_order_acq_rel);
          g.pending.fetch_add(1, std::memory_order_acq_rel);
          return it;
        }
        full = h.seg;
        h.seg = kNoSegment;
      }
    }
    if (full != kNoSegment) seal(full, false);
    uint32_t fresh = take_segment();
    if (fresh == kNoSegment) return nullptr;
    std::lock_guard lock(h.mu);
    if (h.seg == kNoSegment) {
      h.seg = fresh;
    } else {  // another thread of this slot installed one meanwhile: ours goes back
      std::lock_guard slock(seg_mu_);
      recycle_locked(fresh);
    }
  }
  return nullptr;
}

Item* LruEngine::allocate_jumbo(size_t bytes) {
  const size_t map = (bytes + kJumboPrefix + 4095) & ~size_t{4095};
  const size_t tries = 4 * nsegs_total_ + 16;
  bool charged = false;
  for (size_t i = 0; i < tries && !charged; ++i) {
    if (charge(map)) {
      charged = true;
      break;
    }
    {
      // Memory in a free segment beyond the reserve goes back to the kernel for this one.
      std::lock_guard lock(seg_mu_);
      if (free_.size() > kReserve) {
        unback_locked(free_.back());
        free_.pop_back();
        continue;
      }
    }
    if (!evict_segment()) break;
  }
  if (!charged) return nullptr;
  void* m = mmap(nullptr, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint32_t id = kNoSegment;
  if (m != MAP_FAILED) {
    std::lock_guard lock(seg_mu_);
    if (!free_jumbo_.empty()) {
      id = free_jumbo_.back();
      free_jumbo_.pop_back();
    }
  }
  if (id == kNoSegment) {
    if (m != MAP_FAILED) munmap(m, map);
    data_bytes_.fetch_sub(static_cast<int64_t>(map), std::memory_order_relaxed);
    return nullptr;
  }
  Segment& g = segs_[id];
  g.mem = static_cast<char*>(m);
  g.size = map;
  g.write = map;
  g.refs.store(1, std::memory_order_relaxed);
  g.pending.store(1, std::memory_order_relaxed);
  const size_t capacity = map - kJumboPrefix;
  std::memcpy(g.mem, &id, sizeof id);
  std::memcpy(g.mem + sizeof(size_t), &capacity, sizeof capacity);
  seal(id, false);
  return reinterpret_cast<Item*>(g.mem + kJumboPrefix);
}

void LruEngine::release(Item* it) {
  if (it == nullptr) return;
  Segment& g = segment_of(it);
  const auto id = static_cast<uint32_t>(&g - segs_.get());
  if ((it->load_bits() & Item::kPending) != 0) {
    it->clear_bits(Item::kPending);
    if (!g.jumbo) {
      // Never linked and the last thing at its head: its bytes go back too.
      AppendHead& h = heads_[thread_slot() % nheads_];
      std::lock_guard lock(h.mu);
      auto* p = reinterpret_cast<char*>(it);
      if (h.seg == id && p + stride_of(it) == g.mem + g.write) {
        g.write = static_cast<size_t>(p - g.mem);
      }
    }
    g.pending.fetch_sub(1, std::memory_order_acq_rel);
  }
  if (g.refs.fetch_sub(1, std::memory_order_acq_rel) == 1) free_if_empty(id);
}

}  // namespace cachetier::engine
