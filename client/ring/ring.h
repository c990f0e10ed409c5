// Ring: consistent hashing over shards. Shards are named replica sets; placement hashes shard
// NAMES (never addresses), so replacing a node's address moves no key, and adding one shard
// to N moves about 1/(N+1) of the keys. Each shard gets vnodes x weight points on a 64-bit
// circle (xxh3 of "name#i"); a key belongs to the first point at or after xxh3(key):
//
//      0 ----*a----*b--------*a---*c------*b-----> 2^64   (wraps)
//                    ^ xxh3(key) -> next point: shard a
//
// Immutable once built; lookups are thread-safe. The router uses this same code, so client-side
// and router-side placement agree.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cachetier::client {

struct ShardSpec {
  std::string name;
  uint32_t weight = 1;
  std::vector<std::string> replicas;  // "host:port", in preference order
};

class Ring {
 public:
  // Builds the ring. Errors: no shards, an empty or duplicate name, a zero weight, vnodes 0.
  // vnodes: points per unit of weight. A shard's share varies by about 1/sqrt(vnodes); with the
  // default 256 adding one shard to N (1..30) moved 1/(N+1) of the keys within 12.3% (ketama's
  // 160 points: within 21.3%).
  static constexpr uint32_t kDefaultVnodes = 256;
  static Result<Ring> create(std::vector<ShardSpec> shards, uint32_t vnodes = kDefaultVnodes);

  // A ring from points placed elsewhere (the router's ketama-md5 mode: twemproxy-compatible
  // placement) and the key hash that goes with them. Same checks on `shards` as create().
  using KeyHash = uint64_t (*)(std::string_view key);
  static Result<Ring> from_points(std::vector<ShardSpec> shards,
                                  std::vector<std::pair<uint64_t, uint32_t>> points,
                                  KeyHash key_hash);

  // Index of the shard that owns `key`: the shard at the key's position, hash(key).
  size_t shard_for(std::string_view key) const { return shard_at(hash(key)); }
  uint64_t hash(std::string_view key) const;
  size_t shard_at(uint64_t position) const;
  const ShardSpec& shard(size_t i) const { return shards_[i]; }
  size_t size() const { return shards_.size(); }
  size_t points() const { return points_.size(); }

 private:
  Ring() = default;
  static Status check(const std::vector<ShardSpec>& shards);
  void index_points();
  std::vector<std::pair<uint64_t, uint32_t>> points_;  // (position, shard index), sorted
  // bucket_[i]: the first point whose position >> shift_ is at least i, so a lookup scans
  // about one point instead of a binary search.
  std::vector<uint32_t> bucket_;
  int shift_ = 0;
  std::vector<ShardSpec> shards_;
  KeyHash key_hash_ = nullptr;  // null: xxh3
};

}  // namespace cachetier::client
