// The read route: one replica of the shard answers, chosen by the read policy; on an error or
// a timeout the next one is tried, so clients see no error while one replica is alive.
//
//   candidates = replicas that are up and did not miss a write to the key
//   order      = the read policy over the candidates (client/ring/replica_order.h), or the
//                config order when `primary` is asked (the shard's primary answers first)
//   a miss on a warming (cold, just returned) replica is retried on the next one, and a hit
//   there is back-filled into the cold one with its version and remaining TTL
//
// When no replica can be asked, `done` gets a transport error ("no live replica in shard s")
// at once; the front end turns it into a miss or an error (all_down).
#pragma once

#include "router/routes/env.h"

namespace cachetier::router {

struct ReadOptions {
  bool primary = false;  // ask the shard's primary first (leases, item meta, per-node CAS)
};

// During a migration window a moved key is read from its new and its previous owner
// (routes/migrate.h).
void route_read(RouteEnv& env, const Topology& topo, size_t shard, Call call, ReadOptions opts,
                Done done);
// A hit's copy for a node that lacks it, without clobbering a newer write: a set with the hit's
// version, CAS and remaining TTL on native nodes, an add on memcache ones.
Call backfill_call(const Topology& topo, const std::string& key, const Reply& hit);

// route_read without the migration step (routes/migrate.cc reads each owner with it).
void route_read_direct(RouteEnv& env, const Topology& topo, size_t shard, Call call,
                       ReadOptions opts, Done done);

}  // namespace cachetier::router
