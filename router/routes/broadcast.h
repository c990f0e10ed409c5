// The broadcast route: one call to every writable node of every shard (flush_all). Answered
// when all have answered: OK when every one did, else the first failure. No node at all is an
// error ("no live node"). A node that missed an immediate flush_all (down, not connected, or
// failed) is marked as overflowed, here and on its flushed siblings, before the answer: it is
// emptied before it serves again (docs/consistency.md).
#pragma once

#include "router/routes/env.h"

namespace cachetier::router {

void route_broadcast(RouteEnv& env, const Topology& topo, Call call, Done done);

}  // namespace cachetier::router
