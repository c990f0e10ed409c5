// LruEngine's index: 2^shard_bits shards by the top bits of xxh3(key), each a mutex and an
// open-addressing table of 8-byte slots (linear probing from the hash's low bits; each slot an
// item's address tagged with 16 more bits of its hash: lru_internal.h). A probe reads items
// only where the tag matches, and moving an item (compaction) or removing one finds its slot
// by address, reading no item at all. The table grows within the memory budget (or claims
// memory from the segments), and shrinks when its items fall to 1/16 of it; while the budget
// leaves no room, a new key takes the slot of an item on its probe path (evicted).
// Every function here is called with the shard's lock held (the _locked suffix).
#include "cacheserver/engine/lru_internal.h"

namespace cachetier::engine {

Shard& LruEngine::shard_for(uint64_t hash) const { return shards_[hash >> (64 - shard_bits_)]; }

bool LruEngine::dead_locked(const Item* it, int64_t now) const {
  if (it->exptime != 0 && static_cast<int64_t>(it->exptime) <= now) return true;
  int64_t flush = flush_at_.load(std::memory_order_relaxed);
  return flush != 0 && now >= flush && static_cast<int64_t>(it->atime) < flush;
}

Item* LruEngine::find_locked(Shard& s, uint64_t hash, std::string_view key) {
  const uint64_t tag = slot_tag(hash);
  for (size_t i = hash & s.mask;; i = (i + 1) & s.mask) {
    const uint64_t v = s.slots[i];
    if (v == kSlotEmpty) return nullptr;
    if ((v & ~kSlotPtrMask) == tag && v != kSlotTomb) {
      Item* it = slot_item(v);
      if (it->klen == key.size() && std::memcmp(it->data(), key.data(), key.size()) == 0) {
        return it;
      }
    }
  }
}

size_t LruEngine::slot_of_locked(const Shard& s, uint64_t hash, const Item* it) const {
  const auto want = reinterpret_cast<uintptr_t>(it);
  for (size_t i = hash & s.mask;; i = (i + 1) & s.mask) {
    const uint64_t v = s.slots[i];
    CT_RELEASE_ASSERT(v != kSlotEmpty);  // a linked item is on its key's probe path
    if ((v & kSlotPtrMask) == want) return i;
  }
}

size_t LruEngine::free_slot_locked(const Shard& s, uint64_t hash) const {
  for (size_t i = hash & s.mask;; i = (i + 1) & s.mask) {
    if (!slot_used(s.slots[i])) return i;  // the first tombstone, else the empty slot
  }
}

void LruEngine::link_locked(Shard& s, uint64_t hash, Item* it, Graveyard& dead) {
  size_t i = free_slot_locked(s, hash);
  if (s.slots[i] == kSlotEmpty && s.count + s.tombs + 1 > fill_limit(s.mask + 1)) {
    i = make_room_locked(s, hash, dead);
  }
  if (s.slots[i] == kSlotTomb) --s.tombs;
  s.slots[i] = make_slot(hash, it);
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
  const size_t i = slot_of_locked(s, hash, it);
  if (s.slots[(i + 1) & s.mask] == kSlotEmpty) {
    // The end of its run: no probe passes here, nor over the tombstones just before it.
    s.slots[i] = kSlotEmpty;
    for (size_t j = (i - 1) & s.mask; s.slots[j] == kSlotTomb; j = (j - 1) & s.mask) {
      s.slots[j] = kSlotEmpty;
      --s.tombs;
    }
  } else {
    s.slots[i] = kSlotTomb;
    ++s.tombs;
  }
  it->clear_bits(Item::kLinked);
  --s.count;
  if (it->exptime != 0) --s.ttl_items;
  s.item_bytes -= item_size(it);
  segment_of(it).live.fetch_sub(static_cast<int64_t>(stride_of(it)), std::memory_order_relaxed);
  // Items down to 1/16 of a table grown past its first size: it shrinks (a failed allocation
  // leaves it as it is).
  if (s.count < (s.mask + 1) / 16 && s.mask + 1 > min_slots_) rehash_locked(s, shrunk_size(s));
}

size_t LruEngine::shrunk_size(const Shard& s) const {
  // Halved while items would fill less than 1/8 of it, down to its first size: they fill
  // 1/8-1/4 after (or less, at the first size), and the memory goes back to the segments.
  size_t to = s.mask + 1;
  while (to > min_slots_ && s.count < to / 8) to /= 2;
  return to;
}

void LruEngine::relink_locked(Shard& s, uint64_t hash, Item* from, Item* to) {
  s.slots[slot_of_locked(s, hash, from)] = make_slot(hash, to);
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

bool LruEngine::rehash_locked(Shard& s, size_t cap) {
  const size_t old_cap = s.mask + 1;
  auto* fresh = static_cast<uint64_t*>(alloc_zeroed(cap * sizeof(uint64_t)));
  if (fresh == nullptr) return false;
  for (size_t i = 0; i < old_cap; ++i) {
    const uint64_t v = s.slots[i];
    if (!slot_used(v)) continue;
    const uint64_t h = hash_key(slot_item(v)->key());
    size_t j = h & (cap - 1);
    while (fresh[j] != kSlotEmpty) j = (j + 1) & (cap - 1);
    fresh[j] = v;
  }
  free_zeroed(s.slots, old_cap * sizeof(uint64_t));
  index_bytes_.fetch_add((static_cast<int64_t>(cap) - static_cast<int64_t>(old_cap)) *
                             static_cast<int64_t>(sizeof(uint64_t)),
                         std::memory_order_relaxed);
  s.slots = fresh;
  s.mask = cap - 1;
  s.tombs = 0;
  s.reclaim_cursor = 0;
  return true;
}

size_t LruEngine::make_room_locked(Shard& s, uint64_t hash, Graveyard& dead) {
  const size_t cap = s.mask + 1;
  // At most half of it items (so 3/8 tombstones): rebuilt without them (shrunk_size). Growing
  // there would take memory from the items for slots that stay empty.
  if (s.count <= cap / 2 && rehash_locked(s, shrunk_size(s))) return free_slot_locked(s, hash);
  // Double, if the budget has room: the index may use its reserve and what segments have not
  // taken (data + index + ghost table <= limit). Otherwise, if items fill 3/4 of it, it claims
  // the memory (index_wants_): segments give it back as they are evicted or freed, and a
  // later insert grows the table.
  const auto extra = static_cast<int64_t>(cap * sizeof(uint64_t));
  const int64_t index = index_bytes_.load(std::memory_order_relaxed);
  if (room_beside(index) >= extra) {
    if (rehash_locked(s, cap * 2)) {
      index_wants_.store(0, std::memory_order_relaxed);
      return free_slot_locked(s, hash);
    }
  } else if (s.count > cap / 4 * 3 && index + extra <= static_cast<int64_t>(limit_ / 4) &&
             index_wants_.load(std::memory_order_relaxed) < extra) {
    index_wants_.store(extra, std::memory_order_relaxed);
  }
  if (s.tombs >= cap / 32 && rehash_locked(s, cap)) return free_slot_locked(s, hash);
  // No room: the key takes the slot of an item on its probe path (up to the empty slot it
  // would fill, so the path holds no tombstone), the first of the next few not read since it
  // came in, else the first; or, if the key's home slot is empty, the item just before it,
  // whose slot then empties (no tombstone ever precedes an empty slot: unlink_locked).
  CT_RELEASE_ASSERT(s.count > 0);  // (rehashing cleared a table of tombstones, unless it failed)
  Item* victim = nullptr;
  if (s.slots[hash & s.mask] == kSlotEmpty) {
    size_t j = (hash - 1) & s.mask;
    while (!slot_used(s.slots[j])) j = (j - 1) & s.mask;
    victim = slot_item(s.slots[j]);
  } else {
    int seen = 0;
    for (size_t i = hash & s.mask; s.slots[i] != kSlotEmpty && seen < 8; i = (i + 1) & s.mask) {
      Item* it = slot_item(s.slots[i]);
      if (victim == nullptr || (freq_of(victim) != 0 && freq_of(it) == 0)) victim = it;
      ++seen;
    }
  }
  ++s.evictions;
  if ((victim->load_bits() & Item::kFetched) == 0) ++s.evicted_unfetched;
  unlink_locked(s, hash_key(victim->key()), victim);
  dead.add(victim);
  return free_slot_locked(s, hash);
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
