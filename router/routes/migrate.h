// Migration-aware routing. For migration_ms after a change of placement (a shard added or
// removed, a weight: topology.h's Migration), a key whose owner changed is served from both
// its new owner N and its previous owner O, so that scaling does not turn the moved keys into
// misses, and so that two routers that reload at different moments (one on the old ring,
// writing to O; one on the new, writing to N) never serve each other's clients a stale value:
//
//   get, gets     N and O are read in parallel; the newest hit answers (a hit over a miss;
//                 native nodes compare versions). A hit on O newer than N's copy is
//                 back-filled into N (a set with its version, CAS and remaining TTL, so it
//                 never overwrites a newer write; an add on memcache nodes).
//   set, delete   to N; and a versioned delete to O (a tombstone newer than O's copy, so a
//                 router still on the old ring misses instead of reading it). Answered once
//                 both have.
//   other changes add, replace, append, prepend, incr, decr, touch, cas: the key is pulled
//                 into N first (read as above, back-fill waited for), then changed on N, with
//                 O invalidated as for a set.
//   multi-get     each key of a request that has a moved key is read as a get.
//
// Keys that did not move, and requests with meta options (leases, item meta), take the
// ordinary routes. The stats: migration:* (stats.cc), cachetier_router_migration_* (/metrics).
#pragma once

#include <functional>

#include "router/routes/env.h"
#include "router/routes/read.h"

namespace cachetier::router {

// For `call` routed to `shard` of `topo`: the previous owner's index in topo.migration->from
// when the key moved and the call takes part in the migration; else -1.
int migrating_read(const Topology& topo, size_t shard, const Call& call);
int migrating_change(const Topology& topo, size_t shard, const Call& call);

void route_migrated_read(RouteEnv& env, const Topology& topo, size_t shard, int old, Call call,
                         ReadOptions opts, Done done);

// `change` sends the change itself to N (the write or cas route without the migration step).
using Change = std::function<void(Call call, Done done)>;
void route_migrated_change(RouteEnv& env, const Topology& topo, size_t shard, int old, Call call,
                           Change change, Done done);

}  // namespace cachetier::router
