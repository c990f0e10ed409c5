// The RESP front end. See resp.h for the routing table.
#include "router/frontends/resp.h"

#include <atomic>
#include <ctime>
#include <limits>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/version.h"
#include "protocol/resp/commands.h"
#include "router/router.h"
#include "router/routes/broadcast.h"
#include "router/routes/cas.h"
#include "router/routes/multi.h"
#include "router/routes/read.h"
#include "router/routes/write.h"
#include "router/worker.h"

namespace cachetier::router {

namespace {

using native::Op;
using native::Status;
using resp::iequals;

constexpr std::string_view kRedisVersion = "7.0.15";

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

void error(Fill fill, std::string_view e) {
  reply(fill, false, [&](resp::Writer& w) { w.error(e); });
}

std::string backend_error(const Reply& r) {
  return "ERR " +
         (r.transport.is_ok() ? std::string(native::status_name(r.code)) : r.transport.message());
}

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// A hit, a miss, or neither (a failure: `fill` has the error).
enum class Read { kHit, kMiss, kFailed };
Read classify(const Reply& r, Fill fill, WorkerStats& stats) {
  if (r.transport.is_ok() && r.code == Status::kOk) {
    count_read(stats, true);
    return Read::kHit;
  }
  if (r.transport.is_ok() ? r.code == Status::kNotFound : fill.slot()->miss_when_down) {
    count_read(stats, false);
    return Read::kMiss;
  }
  error(fill, backend_error(r));
  return Read::kFailed;
}

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

// Several calls answered together: `finish(replies, writer)` once all are in.
void gather(Ctx& c, std::vector<Call> calls, bool reads,
            std::function<void(std::vector<Reply>&, resp::Writer&)> finish) {
  struct Acc {
    std::vector<Reply> replies;
    size_t left;
  };
  auto acc = std::make_shared<Acc>();
  acc->replies.resize(calls.size());
  acc->left = calls.size();
  Fill fill = c.fill;
  const bool resp3 = c.s.resp3;
  auto fin = std::make_shared<decltype(finish)>(std::move(finish));
  for (size_t i = 0; i < calls.size(); ++i) {
    const size_t shard = c.topo().ring.shard_for(calls[i].key);
    Done done = [acc, i, fill, resp3, fin](Reply&& r) {
      acc->replies[i] = std::move(r);
      if (--acc->left > 0) return;
      reply(fill, resp3, [&](resp::Writer& w) { (*fin)(acc->replies, w); });
    };
    if (reads) {
      route_read(c.d.env(), c.topo(), shard, std::move(calls[i]), {}, std::move(done));
    } else {
      route_write(c.d.env(), c.topo(), shard, std::move(calls[i]), std::move(done));
    }
  }
}

bool failed(const Reply& r) {
  return !r.transport.is_ok() ||
         (r.code != Status::kOk && r.code != Status::kNotFound && r.code != Status::kNotStored);
}

// ---- string commands ----

void set_generic(Ctx& c, std::string_view key, std::string_view value, Op op, int64_t ttl,
                 bool integer_reply) {
  Call call;
  call.op = op;
  call.key = std::string(key);
  call.value = std::string(value);
  call.ttl = ttl;
  const size_t shard = c.topo().ring.shard_for(call.key);
  Fill fill = c.fill;
  Slot* slot = fill.slot();
  slot->resp3 = c.s.resp3;
  slot->resp_integer = integer_reply;
  route_change(c.d.env(), c.topo(), shard, std::move(call), false, [fill](Reply&& r) {
    Slot* s = fill.slot();
    count_store(*s->stats, false, r);
    if (failed(r)) return error(fill, backend_error(r));
    const bool stored = r.code == Status::kOk;
    if (stored && !s->resp_integer) return fill("+OK\r\n");
    reply(fill, s->resp3, [&](resp::Writer& w) {
      if (s->resp_integer) return w.integer(stored ? 1 : 0);
      w.null();
    });
  });
}

// The memcache-style ttl of an absolute expiry in ms, measured from `now` (ms): seconds from
// now rounded up when within memcache's 30 days (the node's clock then counts them, so TTL
// reads back what was set), else unix seconds; -1 when already expired.
int64_t ttl_of(int64_t when_ms, int64_t now) {
  if (when_ms <= now) return -1;
  const int64_t rel = when_ms - now;
  if (rel <= int64_t{30} * 86400 * 1000) return rel / 1000 + (rel % 1000 != 0 ? 1 : 0);
  return resp::seconds_from_ms(when_ms);
}

void cmd_set(Ctx& c) {
  resp::SetOptions o;
  if (!resp::parse_set_options(c.argv, 3, false, o)) return error(c.fill, resp::err::kSyntax);
  int64_t ttl = 0;
  if (o.unit != resp::SetOptions::kNone) {
    std::string e;
    const int64_t now = now_ms();
    const int64_t ms = resp::expire_at_ms(o, now, c.name, e);
    if (ms == 0) return error(c.fill, e);
    ttl = ttl_of(ms, now);
  }
  if (o.get || o.keepttl) {
    return error(c.fill, "ERR SET with GET or KEEPTTL is not supported through cacherouter");
  }
  set_generic(c, c.arg(1), c.arg(2), o.nx ? Op::kAdd : o.xx ? Op::kReplace : Op::kSet, ttl, false);
}

void cmd_setex(Ctx& c, bool seconds) {
  resp::SetOptions o;
  o.unit = seconds ? resp::SetOptions::kEx : resp::SetOptions::kPx;
  o.expire = c.arg(2);
  std::string e;
  const int64_t now = now_ms();
  const int64_t ms = resp::expire_at_ms(o, now, c.name, e);
  if (ms == 0) return error(c.fill, e);
  set_generic(c, c.arg(1), c.arg(3), Op::kSet, ttl_of(ms, now), false);
}

void cmd_get(Ctx& c) {
  // The common case, kept lean: only `fill` is captured (std::function's inline buffer), the
  // rest is in the slot.
  Slot* slot = c.fill.slot();
  slot->resp3 = c.s.resp3;
  Call call;
  call.op = Op::kGet;
  call.key.assign(c.arg(1));
  const size_t shard = c.topo().ring.shard_for(call.key);
  Fill fill = c.fill;
  route_read(c.d.env(), c.topo(), shard, std::move(call), {}, [fill](Reply&& r) {
    Slot* s = fill.slot();
    const Read k = classify(r, fill, *s->stats);
    if (k == Read::kFailed) return;
    fill.write([&](ByteBuffer& out) {
      resp::Writer w{out, s->resp3};
      if (k == Read::kHit) return w.bulk(r.value);
      w.null();
    });
  });
}

void cmd_mget(Ctx& c) {
  struct Keys {
    std::vector<std::string> keys;
  };
  auto k = std::make_shared<Keys>();
  k->keys.assign(c.argv.begin() + 1, c.argv.end());
  std::vector<std::string_view> views(k->keys.begin(), k->keys.end());
  Fill fill = c.fill;
  const bool resp3 = c.s.resp3;
  WorkerStats* stats = &c.d.stats();
  route_multi_get(c.d.env(), c.topo(), views, {}, [k, fill, resp3, stats](Reply&& r) {
    if (!r.transport.is_ok() || r.code != Status::kOk) return error(fill, backend_error(r));
    reply(fill, resp3, [&](resp::Writer& w) {
      w.array(k->keys.size());
      for (size_t i = 0; i < k->keys.size(); ++i) {
        const auto& v = r.values[i];
        count_read(*stats, v.has_value());
        if (v) {
          w.bulk(v->value);
        } else {
          w.null();
        }
      }
    });
  });
}

void cmd_mset(Ctx& c) {
  if (c.argc() % 2 == 0) return error(c.fill, resp::arity_error(c.name));
  std::vector<Call> calls;
  for (size_t i = 1; i + 1 < c.argc(); i += 2) {
    Call call;
    call.op = Op::kSet;
    call.key = std::string(c.arg(i));
    call.value = std::string(c.arg(i + 1));
    calls.push_back(std::move(call));
  }
  WorkerStats* stats = &c.d.stats();
  gather(c, std::move(calls), false, [stats](std::vector<Reply>& rs, resp::Writer& w) {
    for (const Reply& r : rs) {
      count_store(*stats, false, r);
      if (failed(r) || r.code != Status::kOk) return w.error(backend_error(r));
    }
    w.ok();
  });
}

void cmd_msetnx(Ctx& c) {
  if (c.argc() % 2 == 0) return error(c.fill, resp::arity_error(c.name));
  if (c.argc() > 3) {
    return error(c.fill,
                 "ERR MSETNX over several keys is not supported through cacherouter: it cannot "
                 "be atomic across nodes (use SETNX per key)");
  }
  set_generic(c, c.arg(1), c.arg(2), Op::kAdd, 0, true);
}

void counter(Ctx& c, int64_t delta) {
  Call call;
  call.op = delta >= 0 ? Op::kIncr : Op::kDecr;
  call.key = std::string(c.arg(1));
  call.delta = delta >= 0 ? static_cast<uint64_t>(delta) : 0 - static_cast<uint64_t>(delta);
  call.has_initial = true;  // a missing key starts at 0: it is created holding the result
  call.initial = delta >= 0 ? static_cast<uint64_t>(delta) : 0;
  const size_t shard = c.topo().ring.shard_for(call.key);
  Fill fill = c.fill;
  const bool resp3 = c.s.resp3;
  WorkerStats* stats = &c.d.stats();
  const bool incr = delta >= 0;
  route_write(c.d.env(), c.topo(), shard, std::move(call), [fill, resp3, stats, incr](Reply&& r) {
    count_arith(*stats, incr, r);
    if (r.transport.is_ok() && r.code == Status::kNonNumeric) {
      return error(fill, resp::err::kNotInteger);
    }
    if (!r.transport.is_ok() || r.code != Status::kOk) return error(fill, backend_error(r));
    if (r.number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return error(fill, resp::err::kOverflow);
    }
    reply(fill, resp3, [&](resp::Writer& w) { w.integer(static_cast<int64_t>(r.number)); });
  });
}

void cmd_incrby(Ctx& c, bool negate) {
  int64_t d = 0;
  if (!resp::parse_ll(c.arg(2), &d)) return error(c.fill, resp::err::kNotInteger);
  if (negate && d == std::numeric_limits<int64_t>::min()) {
    return error(c.fill, "ERR decrement would overflow");
  }
  counter(c, negate ? -d : d);
}

void cmd_append(Ctx& c) {
  Call call;
  call.op = Op::kAppend;
  call.key = std::string(c.arg(1));
  call.value = std::string(c.arg(2));
  call.has_vivify = true;
  const size_t shard = c.topo().ring.shard_for(call.key);
  Fill fill = c.fill;
  const bool resp3 = c.s.resp3;
  WorkerStats* stats = &c.d.stats();
  Downstream* d = &c.d;
  std::string key(c.arg(1));
  route_change(c.d.env(), c.topo(), shard, std::move(call), false,
               [fill, resp3, stats, d, key](Reply&& r) {
                 count_store(*stats, false, r);
                 if (failed(r) || r.code != Status::kOk) return error(fill, backend_error(r));
                 // The length after the append: a read of the value (APPEND's reply is not
                 // atomic with it through the router).
                 if (fill.orphan()) return fill(std::string_view());
                 Call get;
                 get.op = Op::kGet;
                 get.key = key;
                 const size_t s = d->topo().ring.shard_for(key);
                 route_read(d->env(), d->topo(), s, std::move(get), {}, [fill, resp3](Reply&& g) {
                   const bool hit = g.transport.is_ok() && g.code == Status::kOk;
                   reply(fill, resp3, [&](resp::Writer& w) {
                     w.integer(hit ? static_cast<int64_t>(g.value.size()) : 0);
                   });
                 });
               });
}

void cmd_getrange(Ctx& c) {
  int64_t start = 0, end = 0;
  if (!resp::parse_ll(c.arg(2), &start) || !resp::parse_ll(c.arg(3), &end)) {
    return error(c.fill, resp::err::kNotInteger);
  }
  read_key(c, c.arg(1), [start, end](bool hit, const Reply& r, resp::Writer& w) {
    const int64_t len = hit ? static_cast<int64_t>(r.value.size()) : 0;
    int64_t s = start, e = end;
    if (s < 0 && e < 0 && s > e) return w.bulk("");
    if (s < 0) s = len + s;
    if (e < 0) e = len + e;
    if (s < 0) s = 0;
    if (e < 0) e = 0;
    if (e >= len) e = len - 1;
    if (s > e || len == 0) return w.bulk("");
    w.bulk(
        std::string_view(r.value).substr(static_cast<size_t>(s), static_cast<size_t>(e - s + 1)));
  });
}

// ---- key commands ----

void per_key(Ctx& c, Op op, bool reads) {
  std::vector<Call> calls;
  for (size_t i = 1; i < c.argc(); ++i) {
    Call call;
    call.op = op;
    call.key = std::string(c.arg(i));
    if (op == Op::kDelete) call.ttl = native::kDefaultTombstoneSeconds;
    calls.push_back(std::move(call));
  }
  WorkerStats* stats = &c.d.stats();
  gather(c, std::move(calls), reads, [stats, op](std::vector<Reply>& rs, resp::Writer& w) {
    int64_t n = 0;
    for (const Reply& r : rs) {
      if (op == Op::kDelete) {
        count_delete(*stats, r);
      } else {
        count_read(*stats, r.transport.is_ok() && r.code == Status::kOk);
      }
      if (failed(r)) return w.error(backend_error(r));
      n += r.code == Status::kOk ? 1 : 0;
    }
    w.integer(n);
  });
}

void cmd_expire(Ctx& c, bool relative, bool seconds) {
  if (c.argc() > 3) {
    // NX|XX|GT|LT compare with the current expiry: a read and a write through the router.
    return error(c.fill,
                 "ERR EXPIRE options (NX, XX, GT, LT) are not supported through "
                 "cacherouter");
  }
  int64_t when = 0;
  if (!resp::parse_ll(c.arg(2), &when)) return error(c.fill, resp::err::kNotInteger);
  const std::string invalid = "ERR invalid expire time in '" + std::string(c.name) + "' command";
  const int64_t max = std::numeric_limits<int64_t>::max();
  if (seconds) {
    if (when > max / 1000 || when < std::numeric_limits<int64_t>::min() / 1000) {
      return error(c.fill, invalid);
    }
    when *= 1000;
  }
  const int64_t now = now_ms();
  const int64_t base = relative ? now : 0;
  if (when > max - base) return error(c.fill, invalid);
  when += base;
  Call call;
  call.key = std::string(c.arg(1));
  if (when <= now) {
    call.op = Op::kDelete;  // a time in the past deletes the key, as redis-server does
    call.ttl = native::kDefaultTombstoneSeconds;
  } else {
    call.op = Op::kTouch;
    call.ttl = ttl_of(when, now);
  }
  const size_t shard = c.topo().ring.shard_for(call.key);
  Fill fill = c.fill;
  const bool resp3 = c.s.resp3;
  WorkerStats* stats = &c.d.stats();
  const Op op = call.op;
  route_write(c.d.env(), c.topo(), shard, std::move(call), [fill, resp3, stats, op](Reply&& r) {
    if (op == Op::kDelete) {
      count_delete(*stats, r);
    } else if (r.transport.is_ok()) {
      count_touch(*stats, r.code == Status::kOk);
    }
    if (failed(r)) return error(fill, backend_error(r));
    reply(fill, resp3, [&](resp::Writer& w) { w.integer(r.code == Status::kOk ? 1 : 0); });
  });
}

enum class TtlForm { kTtl, kPttl, kExpireTime, kPexpireTime };

void cmd_ttl(Ctx& c, TtlForm form) {
  read_key(c, c.arg(1), [form](bool hit, const Reply& r, resp::Writer& w) {
    if (!hit) return w.integer(-2);
    if (r.ttl <= 0) return w.integer(-1);  // (memcache backends do not report TTLs: -1)
    const int64_t now = now_ms() / 1000;
    switch (form) {
      case TtlForm::kTtl:
        return w.integer(r.ttl);
      case TtlForm::kPttl:
        return w.integer(r.ttl * 1000);
      case TtlForm::kExpireTime:
        return w.integer(now + r.ttl);
      case TtlForm::kPexpireTime:
        return w.integer((now + r.ttl) * 1000);
    }
  });
}

void cmd_flush(Ctx& c) {
  if (c.argc() > 2 ||
      (c.argc() == 2 && !iequals(c.arg(1), "async") && !iequals(c.arg(1), "sync"))) {
    return error(c.fill, resp::err::kSyntax);
  }
  if (!c.topo().config.flush_enabled)
    return error(c.fill, "ERR flushing is disabled on this router");
  Call call;
  call.op = Op::kFlush;
  c.d.stats().cmd_flush.add();
  Fill fill = c.fill;
  const bool resp3 = c.s.resp3;
  route_broadcast(c.d.env(), c.topo(), std::move(call), [fill, resp3](Reply&& r) {
    if (!r.transport.is_ok() || r.code != Status::kOk) return error(fill, backend_error(r));
    reply(fill, resp3, [](resp::Writer& w) { w.ok(); });
  });
}

// ---- connection and server commands ----

bool valid_name(std::string_view n) {
  for (char ch : n) {
    if (ch < '!' || ch > '~') return false;
  }
  return true;
}

void hello_reply(RespConn& s, resp::Writer& w) {
  w.map(7);
  w.bulk("server");
  w.bulk("redis");
  w.bulk("version");
  w.bulk(kRedisVersion);
  w.bulk("proto");
  w.integer(s.resp3 ? 3 : 2);
  w.bulk("id");
  w.integer(static_cast<int64_t>(s.id));
  w.bulk("mode");
  w.bulk("standalone");
  w.bulk("role");
  w.bulk("master");
  w.bulk("modules");
  w.array(0);
}

void cmd_hello(Ctx& c) {
  int64_t ver = 0;
  size_t next = 1;
  if (c.argc() >= 2) {
    if (!resp::parse_ll(c.arg(1), &ver)) {
      return error(c.fill, "ERR Protocol version is not an integer or out of range");
    }
    ++next;
    if (ver < 2 || ver > 3) return error(c.fill, "NOPROTO unsupported protocol version");
  }
  std::string_view user, pass, name;
  bool with_auth = false, with_name = false;
  for (size_t j = next; j < c.argc(); ++j) {
    const size_t more = c.argc() - 1 - j;
    if (iequals(c.arg(j), "auth") && more >= 2) {
      user = c.arg(j + 1);
      pass = c.arg(j + 2);
      with_auth = true;
      j += 2;
    } else if (iequals(c.arg(j), "setname") && more >= 1) {
      name = c.arg(j + 1);
      with_name = true;
      ++j;
    } else {
      return error(c.fill, "ERR Syntax error in HELLO option '" + std::string(c.arg(j)) + "'");
    }
  }
  if (with_auth && !c.d.resp_authenticate(user, pass)) return error(c.fill, resp::err::kWrongPass);
  if (!c.d.authenticated()) {
    return error(c.fill,
                 "NOAUTH HELLO must be called with the client already authenticated, otherwise "
                 "the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the "
                 "client and select the RESP protocol version at the same time");
  }
  if (with_name) {
    if (!valid_name(name)) {
      return error(c.fill,
                   "ERR Client names cannot contain spaces, newlines or special characters.");
    }
    c.s.name.assign(name);
  }
  if (ver != 0) c.s.resp3 = ver == 3;
  reply(c.fill, c.s.resp3, [&](resp::Writer& w) { hello_reply(c.s, w); });
}

void cmd_client(Ctx& c) {
  const std::string_view sub = c.arg(1);
  auto arity = [&](std::string_view n, size_t want) {
    if (c.argc() == want) return true;
    error(c.fill, resp::arity_error("client|" + std::string(n)));
    return false;
  };
  if (iequals(sub, "setname")) {
    if (!arity("setname", 3)) return;
    if (!valid_name(c.arg(2))) {
      return error(c.fill,
                   "ERR Client names cannot contain spaces, newlines or special characters.");
    }
    c.s.name.assign(c.arg(2));
    return c.fill("+OK\r\n");
  }
  if (iequals(sub, "getname")) {
    if (!arity("getname", 2)) return;
    return reply(c.fill, c.s.resp3, [&](resp::Writer& w) {
      if (c.s.name.empty()) return w.null();
      w.bulk(c.s.name);
    });
  }
  if (iequals(sub, "id")) {
    if (!arity("id", 2)) return;
    return reply(c.fill, c.s.resp3,
                 [&](resp::Writer& w) { w.integer(static_cast<int64_t>(c.s.id)); });
  }
  if (iequals(sub, "setinfo")) {
    if (!arity("setinfo", 4)) return;
    const bool lib_name = iequals(c.arg(2), "lib-name");
    if (!lib_name && !iequals(c.arg(2), "lib-ver")) {
      return error(c.fill, "ERR Unrecognized option '" + std::string(c.arg(2)) + "'");
    }
    (lib_name ? c.s.lib_name : c.s.lib_ver).assign(c.arg(3));
    return c.fill("+OK\r\n");
  }
  if (iequals(sub, "info")) {
    if (!arity("info", 2)) return;
    const std::string line = "id=" + std::to_string(c.s.id) + " addr=" + c.d.stream().peer() +
                             " laddr=" + c.d.stream().local() + " fd=0 name=" + c.s.name +
                             " age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 "
                             "qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 "
                             "tot-mem=0 events=r cmd=client|info user=default redir=-1 resp=" +
                             std::string(c.s.resp3 ? "3" : "2") + "\n";
    return reply(c.fill, c.s.resp3, [&](resp::Writer& w) { w.verbatim(line); });
  }
  error(c.fill, resp::unknown_subcommand_error(c.arg(0), sub));
}

void cmd_info(Ctx& c) {
  ByteBuffer stats;
  c.d.worker().router().write_stats(stats);
  std::string text = "# Server\r\nredis_version:" + std::string(kRedisVersion) +
                     "\r\nredis_mode:standalone\r\ncachetier_version:" CACHETIER_VERSION
                     "\r\ncachetier_role:router\r\n\r\n# Cacherouter\r\n";
  std::string_view v = stats.view();
  while (!v.empty()) {
    const size_t eol = v.find("\r\n");
    std::string_view line = v.substr(0, eol);
    v = eol == std::string_view::npos ? std::string_view() : v.substr(eol + 2);
    if (line.substr(0, 5) != "STAT ") continue;
    line.remove_prefix(5);
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    text.append(line.substr(0, sp));
    text.push_back(':');
    text.append(line.substr(sp + 1));
    text.append("\r\n");
  }
  reply(c.fill, c.s.resp3, [&](resp::Writer& w) { w.verbatim(text); });
}

void cmd_auth(Ctx& c) {
  if (c.argc() > 3) return error(c.fill, resp::err::kSyntax);
  if (c.argc() == 2 && !c.d.worker().router().auth_required()) {
    return error(c.fill,
                 "ERR AUTH <password> called without any password configured for the default "
                 "user. Are you sure your configuration is correct?");
  }
  const std::string_view user = c.argc() == 3 ? c.arg(1) : "default";
  const std::string_view pass = c.argc() == 3 ? c.arg(2) : c.arg(1);
  if (!c.d.worker().router().auth_required() && user == "default") return c.fill("+OK\r\n");
  if (!c.d.resp_authenticate(user, pass)) return error(c.fill, resp::err::kWrongPass);
  c.fill("+OK\r\n");
}

const std::vector<const resp::CommandInfo*>& served();

void cmd_command(Ctx& c) {
  reply(c.fill, c.s.resp3, [&](resp::Writer& w) {
    if (!resp::write_command_reply(w, c.argv, served())) {
      w.error(resp::unknown_subcommand_error(c.arg(0), c.arg(1)));
    }
  });
}

void cmd_config(Ctx& c) {
  if (!iequals(c.arg(1), "get")) {
    return error(c.fill, resp::unknown_subcommand_error(c.arg(0), c.arg(1)));
  }
  if (c.argc() < 3) return error(c.fill, resp::arity_error("config|get"));
  // A router keeps no data of its own: what load generators ask, answered as a cache would.
  reply(c.fill, c.s.resp3, [&](resp::Writer& w) {
    std::vector<std::pair<std::string_view, std::string_view>> hits;
    for (auto p : {std::pair<std::string_view, std::string_view>{"save", ""},
                   {"appendonly", "no"},
                   {"databases", "1"}}) {
      for (size_t i = 2; i < c.argc(); ++i) {
        if (iequals(c.arg(i), p.first) || c.arg(i) == "*") {
          hits.push_back(p);
          break;
        }
      }
    }
    w.map(hits.size());
    for (auto& [k, v] : hits) {
      w.bulk(k);
      w.bulk(v);
    }
  });
}

void not_through_router(Ctx& c) {
  error(c.fill, "ERR '" + std::string(c.name) +
                    "' is not supported through cacherouter (it reads and then writes one value "
                    "on every replica); send it to a cacheserver");
}

using Handler = void (*)(Ctx&);

struct Entry {
  std::string_view name;
  Handler run;
};

const std::vector<Entry>& table() {
  static const std::vector<Entry> t = {
      {"get", cmd_get},
      {"set", cmd_set},
      {"setnx", [](Ctx& c) { set_generic(c, c.arg(1), c.arg(2), Op::kAdd, 0, true); }},
      {"setex", [](Ctx& c) { cmd_setex(c, true); }},
      {"psetex", [](Ctx& c) { cmd_setex(c, false); }},
      {"mget", cmd_mget},
      {"mset", cmd_mset},
      {"msetnx", cmd_msetnx},
      {"del", [](Ctx& c) { per_key(c, Op::kDelete, false); }},
      {"unlink", [](Ctx& c) { per_key(c, Op::kDelete, false); }},
      {"exists", [](Ctx& c) { per_key(c, Op::kGet, true); }},
      {"touch", [](Ctx& c) { per_key(c, Op::kGet, true); }},
      {"expire", [](Ctx& c) { cmd_expire(c, true, true); }},
      {"pexpire", [](Ctx& c) { cmd_expire(c, true, false); }},
      {"expireat", [](Ctx& c) { cmd_expire(c, false, true); }},
      {"pexpireat", [](Ctx& c) { cmd_expire(c, false, false); }},
      {"ttl", [](Ctx& c) { cmd_ttl(c, TtlForm::kTtl); }},
      {"pttl", [](Ctx& c) { cmd_ttl(c, TtlForm::kPttl); }},
      {"expiretime", [](Ctx& c) { cmd_ttl(c, TtlForm::kExpireTime); }},
      {"pexpiretime", [](Ctx& c) { cmd_ttl(c, TtlForm::kPexpireTime); }},
      {"incr", [](Ctx& c) { counter(c, 1); }},
      {"decr", [](Ctx& c) { counter(c, -1); }},
      {"incrby", [](Ctx& c) { cmd_incrby(c, false); }},
      {"decrby", [](Ctx& c) { cmd_incrby(c, true); }},
      {"append", cmd_append},
      {"strlen",
       [](Ctx& c) {
         read_key(c, c.arg(1), [](bool hit, const Reply& r, resp::Writer& w) {
           w.integer(hit ? static_cast<int64_t>(r.value.size()) : 0);
         });
       }},
      {"getrange", cmd_getrange},
      {"type",
       [](Ctx& c) {
         read_key(c, c.arg(1), [](bool hit, const Reply&, resp::Writer& w) {
           w.simple(hit ? "string" : "none");
         });
       }},
      {"getset", not_through_router},
      {"getdel", not_through_router},
      {"getex", not_through_router},
      {"incrbyfloat", not_through_router},
      {"setrange", not_through_router},
      {"persist", not_through_router},
      {"dbsize",
       [](Ctx& c) { error(c.fill, "ERR DBSIZE is answered by each cacheserver, not the router"); }},
      {"flushdb", cmd_flush},
      {"flushall", cmd_flush},
      {"ping",
       [](Ctx& c) {
         if (c.argc() > 2) return error(c.fill, resp::arity_error("ping"));
         if (c.argc() == 1) return c.fill("+PONG\r\n");
         reply(c.fill, c.s.resp3, [&](resp::Writer& w) { w.bulk(c.arg(1)); });
       }},
      {"echo",
       [](Ctx& c) { reply(c.fill, c.s.resp3, [&](resp::Writer& w) { w.bulk(c.arg(1)); }); }},
      {"select",
       [](Ctx& c) {
         int64_t id = 0;
         if (!resp::parse_ll(c.arg(1), &id)) return error(c.fill, resp::err::kNotInteger);
         if (id != 0) return error(c.fill, "ERR DB index is out of range");
         c.fill("+OK\r\n");
       }},
      {"info", cmd_info},
      {"client", cmd_client},
      {"command", cmd_command},
      {"config", cmd_config},
      {"auth", cmd_auth},
      {"hello", cmd_hello},
      {"reset",
       [](Ctx& c) {
         c.s.resp3 = false;
         c.s.name.clear();
         c.d.resp_reset_auth();
         c.fill("+RESET\r\n");
       }},
      {"quit",
       [](Ctx& c) {
         c.fill("+OK\r\n");
         c.d.close_after_replies();
       }},
  };
  return t;
}

const Entry* find(const resp::CommandInfo* info) {
  static const auto index = [] {
    std::unordered_map<const resp::CommandInfo*, const Entry*> m;
    for (const Entry& e : table()) m.emplace(resp::find_command(e.name), &e);
    return m;
  }();
  auto it = index.find(info);
  return it == index.end() ? nullptr : it->second;
}

const std::vector<const resp::CommandInfo*>& served() {
  static const std::vector<const resp::CommandInfo*> v = [] {
    std::vector<const resp::CommandInfo*> out;
    for (const Entry& e : table()) out.push_back(resp::find_command(e.name));
    return out;
  }();
  return v;
}

}  // namespace

uint64_t next_resp_client_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void handle_resp(Downstream& d, RespConn& s, const resp::Command& cmd, Fill fill) {
  const resp::CommandInfo* info = resp::find_command(cmd.argv[0]);
  const Entry* e = info != nullptr ? find(info) : nullptr;
  if (e == nullptr) return error(fill, resp::unknown_command_error(cmd.argv));
  if (!resp::arity_ok(info->arity, cmd.argv.size()))
    return error(fill, resp::arity_error(info->name));
  if (!d.authenticated() && !info->before_auth) return error(fill, resp::err::kNoAuth);
  Ctx c{d, s, cmd.argv, fill, info->name};
  e->run(c);
}

}  // namespace cachetier::router
