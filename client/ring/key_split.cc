// Splitting multi-key requests by shard. See key_split.h.
#include "client/ring/key_split.h"

#include <algorithm>

namespace cachetier::client {

KeySplit split_keys(const Ring& ring, std::span<const std::string_view> keys) {
  KeySplit out;
  out.where.reserve(keys.size());
  out.shards.reserve(std::min(ring.size(), keys.size()));
  // Distinct keys found by an open-addressing table of (hash, position) at most half full.
  size_t cap = 16;
  while (cap < keys.size() * 2) cap *= 2;
  struct Slot {
    uint64_t hash = 0;
    uint32_t pos = UINT32_MAX;  // empty
  };
  std::vector<Slot> table(cap);
  std::vector<uint32_t> shard_index(ring.size(), UINT32_MAX);
  for (uint32_t i = 0; i < keys.size(); ++i) {
    std::string_view k = keys[i];
    uint64_t h = ring.hash(k);  // the dedup table's hash and the key's ring position
    size_t at = h & (cap - 1);
    while (table[at].pos != UINT32_MAX && !(table[at].hash == h && keys[table[at].pos] == k)) {
      at = (at + 1) & (cap - 1);
    }
    if (table[at].pos != UINT32_MAX) {  // seen: answered where the first one is
      out.where.push_back(out.where[table[at].pos]);
      continue;
    }
    table[at] = {h, i};
    size_t shard = ring.shard_at(h);
    if (shard_index[shard] == UINT32_MAX) {
      shard_index[shard] = static_cast<uint32_t>(out.shards.size());
      out.shards.push_back(ShardKeys{shard, {}});
      out.shards.back().keys.reserve(keys.size() - i);  // at most the keys left
    }
    ShardKeys& sk = out.shards[shard_index[shard]];
    out.where.emplace_back(shard_index[shard], static_cast<uint32_t>(sk.keys.size()));
    sk.keys.push_back(k);
  }
  return out;
}

}  // namespace cachetier::client
