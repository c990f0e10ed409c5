// The RESP front end (Redis clients): a decoded command becomes calls on the same routes as
// the memcache text and native front ends, and the routes' replies become RESP2 or RESP3.
// Replica fan-out, failover, versions, repair and migration are the routes' (docs/resp.md,
// "Through cacherouter"):
//
//   GET, STRLEN, GETRANGE, TYPE, TTL, PTTL, EXPIRETIME, PEXPIRETIME    read route
//   EXISTS, TOUCH (several keys)       a read per key, counted
//   MGET                               multi-get route: split by shard, merged in order
//   SET [NX|XX|EX|PX|EXAT|PXAT], SETNX, SETEX, PSETEX, APPEND, EXPIRE*, DEL/UNLINK
//                                      write route (versioned); several keys: one write per key
//   MSET                               a write per key, answered when all are
//   MSETNX                             one key only (as SETNX): over several keys it cannot be
//                                      atomic across nodes, so it is refused
//   FLUSHALL, FLUSHDB                  broadcast
//   GETSET, GETDEL, GETEX, SET GET|KEEPTTL, INCR/DECR/INCRBY/DECRBY, INCRBYFLOAT, SETRANGE,
//   PERSIST, EXPIRE NX|XX|GT|LT        read from the primary with its CAS, then the cas route
//                                      (resp_rmw.cc): atomic as in redis-server, retried on
//                                      a lost race
//
// Files: resp.cc (data commands, the table, dispatch), resp_rmw.cc (read-then-write),
// resp_conn.cc (HELLO, CLIENT, INFO, AUTH, COMMAND, CONFIG GET, PING, ...).
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
