// LruEngine's index: 2^shard_bits shards by the top bits of xxh3(key), each a mutex and a
// chained hash table that grows within the memory budget. Every function here is called with
// the shard's lock held (the _locked suffix).
#include "cacheserver/engine/lru_internal.h"

namespace cachetier::engine {

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
  // Bits change only under the shard lock (the evictor only reads them): one store.
  const uint8_t b = it->load_bits();
  it->store_bits(static_cast<uint8_t>((b | Item::kLinked) & ~Item::kPending));
  Segment& g = segment_of(it);
  const size_t n = item_size(it);
  g.live.fetch_add(static_cast<int64_t>(stride_of(it)), std::memory_order_relaxed);
  if ((b & Item::kPending) != 0) {  // a new item: its segment may be sealed by now
    g.pending.fetch_sub(1, std::memory_order_acq_rel);
  }
  ++s.count;
  if (it->exptime != 0) ++s.ttl_items;
  s.item_bytes += n;
}

void LruEngine::unlink_locked(Shard& s, uint64_t hash, Item* it) {
  assert(hash == hash_key(it->key()));
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
  segment_of(it).live.fetch_sub(static_cast<int64_t>(stride_of(it)), std::memory_order_relaxed);
}

void LruEngine::relink_locked(Shard& s, uint64_t hash, Item* from, Item* to) {
  for (Item** p = &s.buckets[hash & s.mask]; *p != nullptr; p = &(*p)->hnext) {
    if (*p == from) {
      *p = to;
      break;
    }
  }
  to->hnext = from->hnext;
  to->store_bits(from->load_bits());  // linked, with its marks
  from->clear_bits(Item::kLinked);
  // (The copy may be shorter: it leaves an incr's pad behind.)
  segment_of(from).live.fetch_sub(static_cast<int64_t>(stride_of(from)), std::memory_order_relaxed);
  segment_of(to).live.fetch_add(static_cast<int64_t>(stride_of(to)), std::memory_order_relaxed);
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

bool LruEngine::drop_if_dead_locked(Shard& s, uint64_t hash, Item*& it, int64_t now, bool* expired,
                                    Item** to_free) {
  if (it == nullptr || !dead_locked(it, now)) return false;
  bool by_ttl = it->exptime != 0 && static_cast<int64_t>(it->exptime) <= now;
  if (expired) *expired = by_ttl;
  if (by_ttl && (it->load_bits() & Item::kFetched) == 0) ++s.expired_unfetched;
  unlink_locked(s, hash, it);
  *to_free = it;
  it = nullptr;
  return true;
}

}  // namespace cachetier::engine
