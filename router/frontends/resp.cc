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
#include "router/frontends/resp_internal.h"
#include "router/router.h"
#include "router/routes/broadcast.h"
#include "router/routes/cas.h"
#include "router/routes/multi.h"
#include "router/routes/read.h"
#include "router/routes/write.h"
#include "router/worker.h"

namespace cachetier::router {

namespace respfe {

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

namespace {

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

}  // namespace

bool failed(const Reply& r) {
  return !r.transport.is_ok() ||
         (r.code != Status::kOk && r.code != Status::kNotFound && r.code != Status::kNotStored);
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

namespace {

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
  if (o.get || o.keepttl) return cmd_set_rmw(c, o, ttl);
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

void cmd_incrby(Ctx& c, bool negate) {
  int64_t d = 0;
  if (!resp::parse_ll(c.arg(2), &d)) return error(c.fill, resp::err::kNotInteger);
  if (negate && d == std::numeric_limits<int64_t>::min()) {
    return error(c.fill, "ERR decrement would overflow");
  }
  cmd_counter(c, negate ? -d : d);
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
  unsigned f = 0;
  std::string flag_error;
  if (!resp::parse_expire_flags(c.argv, 3, f, flag_error)) return error(c.fill, flag_error);
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
  if (f != 0) return cmd_expire_if(c, f, when, now);
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
      {"incr", [](Ctx& c) { cmd_counter(c, 1); }},
      {"decr", [](Ctx& c) { cmd_counter(c, -1); }},
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
      {"getset", cmd_getset},
      {"getdel", cmd_getdel},
      {"getex", cmd_getex},
      {"incrbyfloat", cmd_incrbyfloat},
      {"setrange", cmd_setrange},
      {"persist", cmd_persist},
      {"dbsize",
       [](Ctx& c) { error(c.fill, "ERR DBSIZE is answered by each cacheserver, not the router"); }},
      {"flushdb", cmd_flush},
      {"flushall", cmd_flush},
      {"ping", cmd_ping},
      {"echo", cmd_echo},
      {"select", cmd_select},
      {"info", cmd_info},
      {"client", cmd_client},
      {"command", cmd_command},
      {"config", cmd_config},
      {"auth", cmd_auth},
      {"hello", cmd_hello},
      {"reset", cmd_reset},
      {"quit", cmd_quit},
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

}  // namespace

const std::vector<const resp::CommandInfo*>& served() {
  static const std::vector<const resp::CommandInfo*> v = [] {
    std::vector<const resp::CommandInfo*> out;
    for (const Entry& e : table()) out.push_back(resp::find_command(e.name));
    return out;
  }();
  return v;
}

}  // namespace respfe

uint64_t next_resp_client_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void handle_resp(Downstream& d, RespConn& s, const resp::Command& cmd, Fill fill) {
  using respfe::error;
  const resp::CommandInfo* info = resp::find_command(cmd.argv[0]);
  const respfe::Entry* e = info != nullptr ? respfe::find(info) : nullptr;
  if (e == nullptr) return error(fill, resp::unknown_command_error(cmd.argv));
  if (!resp::arity_ok(info->arity, cmd.argv.size())) {
    return error(fill, resp::arity_error(info->name));
  }
  if (!d.authenticated() && !info->before_auth) return error(fill, resp::err::kNoAuth);
  respfe::Ctx c{d, s, cmd.argv, fill, info->name};
  e->run(c);
}

}  // namespace cachetier::router
