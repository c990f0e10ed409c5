// Splitting one multi-key request by shard: each distinct key once, in the order first asked,
// with where every requested position finds its answer. The client library's get_multi and
// cacherouter's multi-get both split this way, so a repeated key is fetched once.
//
//   keys:   a  b  a  c            ring: a, c -> shard 0; b -> shard 1
//   shards: [{0: a c}, {1: b}]
//   where:  (0,0) (1,0) (0,0) (0,1)     position -> (index in shards, index in its keys)
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "client/ring/ring.h"

namespace cachetier::client {

struct ShardKeys {
  size_t shard = 0;
  std::vector<std::string_view> keys;  // distinct, in first-asked order
};

struct KeySplit {
  std::vector<ShardKeys> shards;                     // in order of first appearance
  std::vector<std::pair<uint32_t, uint32_t>> where;  // one per requested key
};

// Views in the result point into `keys`.
KeySplit split_keys(const Ring& ring, std::span<const std::string_view> keys);

}  // namespace cachetier::client
