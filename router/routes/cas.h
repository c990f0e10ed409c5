// The compare-and-swap route: a change that holds only if the item still has a given CAS (cas,
// ms/md/ma with C). The compare happens on one replica, the shard's primary (the first one up
// and in sync, in config order), so that two clients racing on one CAS have one winner; when
// it holds, the same change without the compare goes to the other writable replicas, with the
// same version and CAS, so they converge on the winner's value.
//
//   primary:  compare + change  --OK-->  siblings: change (versioned, unconditional)
//                               --EXISTS / NOT_FOUND / error-->  answered, nothing else sent
//
// A sibling that cannot take the change has the key noted as missed (repaired later). A
// stale mark (ms I with an older CAS) is kept by the primary only: leases are answered there.
#pragma once

#include "router/routes/env.h"
#include "router/routes/write.h"

namespace cachetier::router {

// During a migration window a moved key is pulled into its new owner first (routes/migrate.h).
void route_cas(RouteEnv& env, const Topology& topo, size_t shard, Call call, Done done);
void route_cas_direct(RouteEnv& env, const Topology& topo, size_t shard, Call call, Done done);

// A change from a front end: route_cas when it compares a CAS, else route_write.
inline void route_change(RouteEnv& env, const Topology& topo, size_t shard, Call call,
                         bool compared, Done done) {
  if (compared) return route_cas(env, topo, shard, std::move(call), std::move(done));
  route_write(env, topo, shard, std::move(call), std::move(done));
}

}  // namespace cachetier::router
