// cacherouter's admin commands, shared by the memcache text front end (as commands) and the
// native one (Op::kAdmin, the same line in its value). Replies are memcache text either way.
//
//   drain HOST:PORT     the node serves no reads; it stays in the ring and in every write, so
//                       it is in sync when undrained (maintenance, replacement)   -> OK
//   undrain HOST:PORT   reads again                                               -> OK
//   route KEY           the key's shard and its replicas in read order, with states
//   stats nodes         per node: shard, state, drained, warming, requests, hits, misses, ...
//   stats shards        per shard: replicas, readable replicas, requests, errors
//
// A drain that would leave a shard without a readable replica is refused. Drains are this
// router's: run them on every router (tierctl does). They survive reloads (kept with the
// node) but not a restart. With auth_file, only authenticated connections get here (and with
// admin_users, only those users).
#pragma once

#include <string_view>

#include "common/buffer.h"
#include "router/routes/env.h"
#include "router/topology.h"

namespace cachetier::router {

enum class AdminOp { kDrain, kUndrain, kRoute, kStatsNodes, kStatsShards };

// "drain 10.0.0.1:11211", "stats nodes", ...: false when `line` is not an admin command (or
// has the wrong number of arguments).
bool parse_admin(std::string_view line, AdminOp& op, std::string_view& arg);

// Runs one command; appends its reply ("OK\r\n", STAT lines and END, or a CLIENT_ERROR line).
void run_admin(const RouteEnv& env, const Topology& topo, AdminOp op, std::string_view arg,
               ByteBuffer& out);

}  // namespace cachetier::router
