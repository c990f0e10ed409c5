// The fan-out routes: one call sent to several replicas of a shard.
//
// route_write: writes and deletes go to every writable replica (up or syncing). A replica that
//   is down, or whose write fails, has the key noted as missed (health.h) and is repaired
//   before it serves that key again. On native nodes a write gets a version (VersionClock) and
//   takes it as its CAS, so that every replica holds the same value, version and CAS: a CAS
//   read from any replica works, and two routers writing one key converge. A write whose
//   version lost to a newer one already stored was superseded by a concurrent write: it is
//   answered as if it happened just before that one (superseded()).
//   The answer: all_sync (default) waits for every replica and answers with the first
//   replica's reply that arrived (in replica order), else the first failure; all_async answers
//   with the first success.
//
// route_read_all: a read of every readable replica (a mg asking h or l: whether the item was
//   read before, and when, depends on which replicas served the reads). No versions, no missed
//   keys; answered like a write.
//
// With `merge_meta`, the answer's item meta says fetched when any readable replica had the
// item fetched, and the smallest idle time among them.
#pragma once

#include "router/routes/env.h"

namespace cachetier::router {

struct FanoutOptions {
  bool merge_meta = false;
  // route_read_all: answer with the hit of the highest version (read_verify), a hit before a
  // miss.
  bool newest = false;
};

// During a migration window a moved key's change also invalidates its previous owner
// (routes/migrate.h).
void route_write(RouteEnv& env, const Topology& topo, size_t shard, Call call, Done done,
                 FanoutOptions opts = {});
// route_write without the migration step.
void route_write_direct(RouteEnv& env, const Topology& topo, size_t shard, Call call, Done done,
                        FanoutOptions opts = {});
void route_read_all(RouteEnv& env, const Topology& topo, size_t shard, Call call, Done done,
                    FanoutOptions opts = {});

// How a superseded write of `op` is answered: set, replace, append, prepend, touch and delete
// took effect and were overwritten (OK); an add lost (NOT_STORED), a cas lost (EXISTS);
// incr/decr keep OLDER_VERSION (the number they would return is unknown).
native::Status superseded(native::Op op);

// Whether `op` carries a version through the router (it changes an item).
bool versioned_op(native::Op op);

}  // namespace cachetier::router
