// The order in which a read tries the replicas of a shard, for each read policy. The client
// library and cacherouter both use it, so that the policies mean the same in both.
//
//   kPrimary           as listed (the first replica takes every read while it is up)
//   kRoundRobin        rotated by the caller's counter, so reads take turns
//   kLeastOutstanding  rotated as above, then by fewest requests outstanding (a stable sort,
//                      so ties keep taking turns)
#pragma once

#include <algorithm>
#include <cstdint>

#include "cachetier/client.h"

namespace cachetier::client {

// Reorders the replica indexes in [first, last) in place. `load(index)` is asked only for
// kLeastOutstanding.
template <class Index, class Load>
void order_replicas(Index* first, Index* last, ReadPolicy policy, uint64_t rr, Load&& load) {
  const auto n = static_cast<size_t>(last - first);
  if (n <= 1 || policy == ReadPolicy::kPrimary) return;
  std::rotate(first, first + (rr % n), last);
  if (policy == ReadPolicy::kLeastOutstanding) {
    std::stable_sort(first, last, [&](Index x, Index y) { return load(x) < load(y); });
  }
}

}  // namespace cachetier::client
