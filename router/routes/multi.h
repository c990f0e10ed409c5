// The multi-get route: the keys are split by shard (each distinct key once,
// client/ring/key_split.h), one multi_get per shard goes out at once, each through the read
// route (policy, failover, warm-up), and the answers are merged back in the order asked. The
// Reply's `values` has one entry per requested key (nullopt: a miss).
//
// A shard that cannot be read: its keys are misses with all_down: miss; with all_down: error
// the whole multi-get fails with that shard's error.
#pragma once

#include <span>
#include <string_view>

#include "router/routes/read.h"

namespace cachetier::router {

void route_multi_get(RouteEnv& env, const Topology& topo, std::span<const std::string_view> keys,
                     ReadOptions opts, Done done);

}  // namespace cachetier::router
