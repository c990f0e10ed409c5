// The RESP front end (Redis clients): a decoded command becomes calls on the same routes as
// the memcache text and native front ends, and the routes' replies become RESP2 or RESP3.
// Replica fan-out, failover, versions, repair and migration are the routes' (docs/resp.md,
// "Through cacherouter"):
//
//   GET, STRLEN, GETRANGE, TYPE, TTL, PTTL, EXPIRETIME, PEXPIRETIME    read route
//   EXISTS, TOUCH (several keys)       a read per key, counted
//   MGET                               multi-get route: split by shard, merged in order
//   SET [NX|XX|EX|PX|EXAT|PXAT], SETNX, SETEX, PSETEX, APPEND, INCR*, DECR*, EXPIRE*,
//   DEL/UNLINK                         write route (versioned); several keys: one write per key
//   MSET                               a write per key, answered when all are
//   MSETNX                             one key only (as SETNX): over several keys it cannot be
//                                      atomic across nodes, so it is refused
//   FLUSHALL, FLUSHDB                  broadcast
//
// Commands that read and then write one value (GETSET, GETDEL, GETEX, SET GET/KEEPTTL,
// INCRBYFLOAT, SETRANGE, PERSIST, EXPIRE NX|XX|GT|LT) are answered with an error naming them:
// through the router they would need a compare-and-swap loop across replicas. Counters follow
// the nodes' memcache semantics through the router: INCRBY/DECRBY work on values from 0 up,
// and a decrement stops at 0.
#pragma once

#include <cstdint>
#include <string>

#include "protocol/resp/resp.h"
#include "router/downstream.h"

namespace cachetier::router {

// Per connection.
struct RespConn {
  resp::RequestDecoder decoder;
  resp::Command cmd;
  bool resp3 = false;
  uint64_t id = 0;
  std::string name, lib_name, lib_ver;
};

void handle_resp(Downstream& d, RespConn& s, const resp::Command& cmd, Fill fill);
// CLIENT ID's numbers, unique in the process.
uint64_t next_resp_client_id();

}  // namespace cachetier::router
