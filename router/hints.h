// Hints: what a node missed, kept on its live siblings, so that it outlives the router that
// saw the write fail and every router can find it (docs/consistency.md).
//
//   write of k: leg to X fails or X is skipped (down)
//     -> every other replica Y written to gets `append __cachetier:hints:X  "<len>:k"`
//        (created if absent), and the write is answered only after those appends (all_sync)
//        (over memcache text: `add` of an empty list first; an append that finds no list,
//        deleted by a drain in between, is sent again once)
//   X returns (any router, health.cc): for each sibling Y, read Y's hint list for X with its
//     CAS, copy each listed key from Y to X, then delete the list if its CAS is unchanged
//   a list past the node's item size limit -> `set __cachetier:hints-overflow:X`: X is
//     emptied (flush_all) and warms from its siblings instead
//
// The lists are ordinary items on the siblings, under the reserved `__cachetier:` prefix.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "client/connection.h"
#include "router/topology.h"

namespace cachetier::router::hints {

inline constexpr std::string_view kReservedPrefix = "__cachetier:";
// A hint list lives this long on a sibling if no router ever drains it (a node removed from
// the config while it was away).
inline constexpr int64_t kTtlSeconds = 24 * 3600;

std::string list_key(const Node& target);
std::string overflow_key(const Node& target);

// The append that records that `target` missed the keys `missed` writes. On cacheserver it
// creates the list when absent (vivify); memcached 1.6 does not create on append, so over
// memcache text create_call() goes first (an add of an empty list: NOT_STORED if it exists).
client::Call append_call(const Node& target, const client::Call& missed, bool vivify);
client::Call create_call(const Node& target);
// The set that records that `target` missed more than a list can hold.
client::Call overflow_call(const Node& target);

// Parses a hint list ("<len>:<key>" repeated) into `keys`, in order, duplicates dropped.
// False if it is malformed (the list is then treated as an overflow).
bool parse(std::string_view list, std::vector<std::string>& keys);

}  // namespace cachetier::router::hints
