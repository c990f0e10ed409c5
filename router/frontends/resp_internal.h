// Shared by the RESP front end's files (resp.cc: data commands and dispatch, resp_rmw.cc:
// commands that read and then write, resp_conn.cc: connection and server commands).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/resp/commands.h"
#include "router/frontends/resp.h"
#include "router/routes/read.h"

namespace cachetier::router::respfe {

using native::Op;
using native::Status;
using resp::iequals;

using resp::kRedisVersion;

// What a command needs after its routes answer: the connection's protocol at request time.
struct Ctx {
  Downstream& d;
  RespConn& s;
  const std::vector<std::string_view>& argv;
  Fill fill;
  std::string_view name;  // lower case

  const Topology& topo() const { return d.topo(); }
  std::string_view arg(size_t i) const { return argv[i]; }
  size_t argc() const { return argv.size(); }
};

template <class F>
void reply(Fill fill, bool resp3, F&& produce) {
  fill.write([&](ByteBuffer& out) {
    resp::Writer w{out, resp3};
    produce(w);
  });
}

void error(Fill fill, std::string_view e);
// "ERR <why>" for a call that failed in transport or got an unexpected status.
std::string backend_error(const Reply& r);
int64_t now_ms();
// A transport failure or a status that is not a cache outcome.
bool failed(const Reply& r);
// The memcache-style ttl of an absolute expiry in ms, measured from `now` (ms).
int64_t ttl_of(int64_t when_ms, int64_t now);

enum class Read { kHit, kMiss, kFailed };
// Counts the read; on a failure answers `fill` with the error.
Read classify(const Reply& r, Fill fill, WorkerStats& stats);

// One key read through the read route; `then(hit, reply)` writes the answer.
template <class Then>
void read_key(Ctx& c, std::string_view key, Then then) {
  Call call;
  call.op = Op::kGet;
  call.key = std::string(key);
  const size_t shard = c.topo().ring.shard_for(call.key);
  Fill fill = c.fill;
  const bool resp3 = c.s.resp3;
  WorkerStats* stats = &c.d.stats();
  route_read(c.d.env(), c.topo(), shard, std::move(call), {},
             [fill, resp3, stats, then = std::move(then)](Reply&& r) {
               const Read k = classify(r, fill, *stats);
               if (k == Read::kFailed) return;
               reply(fill, resp3, [&](resp::Writer& w) { then(k == Read::kHit, r, w); });
             });
}

// Read-then-write commands (resp_rmw.cc).
void cmd_getset(Ctx& c);
void cmd_getdel(Ctx& c);
void cmd_getex(Ctx& c);
void cmd_set_rmw(Ctx& c, const resp::SetOptions& o, int64_t ttl);  // SET with GET or KEEPTTL
void cmd_incrbyfloat(Ctx& c);
void cmd_setrange(Ctx& c);
void cmd_persist(Ctx& c);
void cmd_expire_if(Ctx& c, unsigned flags, int64_t when_ms, int64_t now);  // resp::ExpireFlag
void cmd_counter(Ctx& c, int64_t delta);  // INCR, DECR, INCRBY, DECRBY

// Connection and server commands (resp_conn.cc).
void cmd_ping(Ctx& c);
void cmd_echo(Ctx& c);
void cmd_select(Ctx& c);
void cmd_hello(Ctx& c);
void cmd_client(Ctx& c);
void cmd_info(Ctx& c);
void cmd_auth(Ctx& c);
void cmd_command(Ctx& c);
void cmd_config(Ctx& c);
void cmd_reset(Ctx& c);
void cmd_quit(Ctx& c);
// The commands this front end serves (COMMAND's list).
const std::vector<const resp::CommandInfo*>& served();

}  // namespace cachetier::router::respfe
