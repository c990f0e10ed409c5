// The RESP front end: commands that read a value and then write it (GETSET, GETDEL, GETEX,
// SET with GET or KEEPTTL, DECR and negative INCRBY, INCRBYFLOAT, SETRANGE, PERSIST, EXPIRE
// with NX|XX|GT|LT). Each reads the key from its shard's primary (with its CAS), decides, and
// writes through the cas route (compare on the primary, then the siblings) or, for a change
// of expiry alone, the write route. A lost race (the CAS moved, the key came or went) reads
// again, after a random wait from the third time, up to kTries times. While one is under way,
// later requests on its key from this worker's clients wait (RouteEnv::rmw_busy), so a
// pipeline of them runs in order. Each is atomic against other clients of the tier as in
// redis-server, and the write carries a version like any other.
#include <cmath>
#include <limits>
#include <memory>
#include <random>

#include "router/frontends/resp_internal.h"
#include "router/routes/cas.h"
#include "router/routes/write.h"
#include "router/worker.h"

namespace cachetier::router::respfe {

namespace {

constexpr int kTries = 64;

struct Plan {
  enum Kind { kReply, kWrite, kWriteUncompared } kind = kReply;
  std::string reply;  // the bytes to answer: now (kReply) or once the write has held
  Call change;        // op, value, ttl; the key and the compare are filled in
};

// decide(hit, current item, resp3) -> what to do.
using Decide = std::function<Plan(bool, const Reply&, bool)>;

template <class F>
std::string encode(bool resp3, F&& produce) {
  ByteBuffer b;
  resp::Writer w{b, resp3};
  produce(w);
  return std::string(b.view());
}

Plan answer(std::string bytes) {
  Plan p;
  p.reply = std::move(bytes);
  return p;
}

Plan refuse(std::string_view e) { return answer(resp::error_line(e)); }

struct Rmw {
  Fill fill;
  RouteEnv* env;  // the worker's (it outlives the request, the client may not)
  bool resp3;
  std::string key;
  Decide decide;
  int tries = 0;

  // Answers, and lets the requests on the key that waited run.
  void finish(std::string_view bytes) {
    fill(bytes);
    env->rmw_busy.erase(key);
    env->release_cas(key);
  }
};

void retry(const std::shared_ptr<Rmw>& st);

void attempt(const std::shared_ptr<Rmw>& st) {
  // Later requests on the key, from any client of this worker, wait until this one is
  // through (Downstream::wait_for_cas), as they do behind a cas: a pipeline of INCRs on one
  // key runs one after the other, as in redis-server, instead of racing for the CAS.
  st->env->rmw_busy.insert(st->key);
  Downstream* d = st->fill.slot()->owner;
  if (d == nullptr) return st->finish(std::string_view());  // the client is gone
  Call get;
  get.op = Op::kGets;
  get.key = st->key;
  ReadOptions opts;
  opts.primary = true;  // the CAS to compare is the primary's
  const size_t shard = d->topo().ring.shard_for(get.key);
  route_read(d->env(), d->topo(), shard, std::move(get), opts, [st](Reply&& cur) {
    Downstream* d = st->fill.slot()->owner;
    if (d == nullptr) return st->finish(std::string_view());
    const bool answered =
        cur.transport.is_ok() && (cur.code == Status::kOk || cur.code == Status::kNotFound);
    const bool down_is_miss = !cur.transport.is_ok() && st->fill.slot()->miss_when_down;
    if (!answered && !down_is_miss) return st->finish(resp::error_line(backend_error(cur)));
    const bool hit = cur.transport.is_ok() && cur.code == Status::kOk;
    count_read(d->stats(), hit);
    Plan p = st->decide(hit, cur, st->resp3);
    if (p.kind == Plan::kReply) return st->finish(p.reply);
    Call ch = std::move(p.change);
    ch.key = st->key;
    bool compared = false;
    if (p.kind == Plan::kWrite) {
      if (hit) {
        compared = true;
        ch.cas = cur.cas;
        if (ch.op == Op::kSet) {
          ch.op = Op::kCas;
        } else {
          ch.compare_cas = true;
        }
      } else if (ch.op == Op::kSet) {
        ch.op = Op::kAdd;  // absent when read: it must still be absent
      }
    }
    const size_t shard = d->topo().ring.shard_for(ch.key);
    route_change(d->env(), d->topo(), shard, std::move(ch), compared,
                 [st, reply = std::move(p.reply)](Reply&& w) {
                   auto done = [&](std::string_view bytes) { st->finish(bytes); };
                   if (w.transport.is_ok() && w.code == Status::kOk) return done(reply);
                   const bool lost = w.transport.is_ok() &&
                                     (w.code == Status::kExists || w.code == Status::kNotFound ||
                                      w.code == Status::kNotStored);
                   if (lost && ++st->tries < kTries) return retry(st);
                   done(resp::error_line(lost ? "ERR the key changed too often during the "
                                                "write; try again"
                                              : backend_error(w)));
                 });
  });
}

// A lost race reads again at once the first times; after that it waits 0 to 3 ms (0: the
// next loop turn), at random, so that two workers retrying one key stop meeting in step (the
// node answers both in the same batches: measured, a request could lose 256 times in a row).
void retry(const std::shared_ptr<Rmw>& st) {
  Downstream* d = st->fill.slot()->owner;
  if (st->tries < 3 || d == nullptr) return attempt(st);
  struct Backoff {
    uv_timer_t timer;
    std::shared_ptr<Rmw> st;
  };
  auto* b = new Backoff{{}, st};
  uv_timer_init(d->worker().loop(), &b->timer);
  b->timer.data = b;
  static thread_local std::minstd_rand rng(std::random_device{}());
  uv_timer_start(
      &b->timer,
      [](uv_timer_t* t) {
        auto* b = static_cast<Backoff*>(t->data);
        attempt(b->st);
        uv_close(reinterpret_cast<uv_handle_t*>(t),
                 [](uv_handle_t* h) { delete static_cast<Backoff*>(h->data); });
      },
      rng() % 4, 0);
}

void rmw(Ctx& c, Decide decide) {
  auto st = std::make_shared<Rmw>(
      Rmw{c.fill, &c.d.env(), c.s.resp3, std::string(c.arg(1)), std::move(decide)});
  attempt(st);
}

Call set_call(std::string value, int64_t ttl, uint32_t flags = 0) {
  Call ch;
  ch.op = Op::kSet;
  ch.value = std::move(value);
  ch.ttl = ttl;
  ch.flags = flags;
  return ch;
}

std::string old_value(const Reply& cur, bool hit, bool resp3) {
  return encode(resp3, [&](resp::Writer& w) {
    if (hit) return w.bulk(cur.value);
    w.null();
  });
}

}  // namespace

void cmd_getset(Ctx& c) {
  std::string value(c.arg(2));
  rmw(c, [value](bool hit, const Reply& cur, bool resp3) {
    Plan p;
    p.kind = Plan::kWrite;
    p.change = set_call(value, 0);
    p.reply = old_value(cur, hit, resp3);
    return p;
  });
}

void cmd_set_rmw(Ctx& c, const resp::SetOptions& o, int64_t ttl) {
  std::string value(c.arg(2));
  const bool nx = o.nx, xx = o.xx, get = o.get, keep = o.keepttl;
  rmw(c, [=](bool hit, const Reply& cur, bool resp3) {
    if ((nx && hit) || (xx && !hit)) {
      return answer(get ? old_value(cur, hit, resp3)
                        : encode(resp3, [](resp::Writer& w) { w.null(); }));
    }
    Plan p;
    p.kind = Plan::kWrite;
    p.change = set_call(value, keep ? (hit ? cur.ttl : 0) : ttl);
    p.reply = get ? old_value(cur, hit, resp3) : std::string("+OK\r\n");
    return p;
  });
}

void cmd_getdel(Ctx& c) {
  rmw(c, [](bool hit, const Reply& cur, bool resp3) {
    if (!hit) return answer(old_value(cur, false, resp3));
    Plan p;
    p.kind = Plan::kWrite;
    p.change.op = Op::kDelete;
    p.change.ttl = native::kDefaultTombstoneSeconds;
    p.reply = old_value(cur, true, resp3);
    return p;
  });
}

void cmd_getex(Ctx& c) {
  resp::SetOptions o;
  if (!resp::parse_set_options(c.argv, 2, true, o)) return error(c.fill, resp::err::kSyntax);
  std::string e;
  int64_t when = 0;
  const int64_t now = now_ms();
  if (o.unit != resp::SetOptions::kNone) when = resp::expire_at_ms(o, now, c.name, e);
  const bool timed = o.unit != resp::SetOptions::kNone, persist = o.persist;
  rmw(c, [=](bool hit, const Reply& cur, bool resp3) {
    // redis-server looks the key up first: a missing key is nil whatever the expiry says.
    if (!hit || (!timed && !persist)) return answer(old_value(cur, hit, resp3));
    if (timed && when == 0) return refuse(e);
    Plan p;
    p.kind = Plan::kWriteUncompared;
    if (timed && when <= now_ms()) {
      p.change.op = Op::kDelete;
      p.change.ttl = native::kDefaultTombstoneSeconds;
    } else {
      p.change.op = Op::kTouch;
      p.change.ttl = timed ? ttl_of(when, now) : 0;
    }
    p.reply = old_value(cur, true, resp3);
    return p;
  });
}

namespace {

// INCR/DECR as a read and a compare-and-swap: Redis's semantics (signed, strict parsing).
void counter_rmw(Ctx& c, int64_t delta) {
  rmw(c, [delta](bool hit, const Reply& cur, bool) {
    int64_t v = 0;
    if (hit && !resp::parse_ll(cur.value, &v)) return refuse(resp::err::kNotInteger);
    if ((delta < 0 && v < 0 && delta < std::numeric_limits<int64_t>::min() - v) ||
        (delta > 0 && v > 0 && delta > std::numeric_limits<int64_t>::max() - v)) {
      return refuse(resp::err::kOverflow);
    }
    v += delta;
    Plan p;
    p.kind = Plan::kWrite;
    p.change = set_call(std::to_string(v), hit ? cur.ttl : 0, hit ? cur.flags : 0);
    p.reply = ":" + std::to_string(v) + "\r\n";
    return p;
  });
}

}  // namespace

void cmd_counter(Ctx& c, int64_t delta) {
  if (delta < 0) return counter_rmw(c, delta);
  // An increment is the nodes' own atomic incr (created holding `delta` on a miss): one write,
  // no read, so a hot counter is not a compare-and-swap race (redis-benchmark's INCR, 20
  // clients on one key: 625k/s this way, 2.5k/s as a read and a swap). The nodes' incr is
  // memcached's: a value it refuses (a negative number) takes the read-and-swap path; the
  // differences that remain are in docs/resp.md.
  Call call;
  call.op = Op::kIncr;
  call.key = std::string(c.arg(1));
  call.delta = static_cast<uint64_t>(delta);
  call.has_initial = true;
  call.initial = static_cast<uint64_t>(delta);
  const size_t shard = c.topo().ring.shard_for(call.key);
  Fill fill = c.fill;
  fill.slot()->resp3 = c.s.resp3;
  Downstream* d = &c.d;
  WorkerStats* stats = &c.d.stats();
  std::string key(c.arg(1));
  route_write(c.d.env(), c.topo(), shard, std::move(call), [fill, d, stats, key, delta](Reply&& r) {
    count_arith(*stats, true, r);
    if (r.transport.is_ok() && r.code == Status::kNonNumeric) {
      if (fill.orphan()) return fill(std::string_view());
      // (rmw copies what it keeps: the key, the protocol, the worker's env.)
      std::vector<std::string_view> args = {"incrby", key};
      RespConn scratch;
      scratch.resp3 = fill.slot()->resp3;
      Ctx again{*d, scratch, args, fill, "incrby"};
      return counter_rmw(again, delta);
    }
    if (!r.transport.is_ok() || r.code != Status::kOk) {
      return error(fill, backend_error(r));
    }
    if (r.number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return error(fill, resp::err::kOverflow);
    }
    fill(":" + std::to_string(r.number) + "\r\n");
  });
}

void cmd_incrbyfloat(Ctx& c) {
  std::string arg(c.arg(2));
  rmw(c, [arg](bool hit, const Reply& cur, bool resp3) {
    long double v = 0, incr = 0;
    if ((hit && !resp::parse_ld(cur.value, &v)) || !resp::parse_ld(arg, &incr)) {
      return refuse(resp::err::kNotFloat);
    }
    v += incr;
    if (std::isnan(v) || std::isinf(v))
      return refuse("ERR increment would produce NaN or Infinity");
    std::string text = resp::format_ld(v);
    Plan p;
    p.kind = Plan::kWrite;
    p.reply = encode(resp3, [&](resp::Writer& w) { w.bulk(text); });
    p.change = set_call(std::move(text), hit ? cur.ttl : 0, hit ? cur.flags : 0);
    return p;
  });
}

void cmd_setrange(Ctx& c) {
  int64_t offset = 0;
  if (!resp::parse_ll(c.arg(2), &offset)) return error(c.fill, resp::err::kNotInteger);
  if (offset < 0) return error(c.fill, "ERR offset is out of range");
  std::string value(c.arg(3));
  const uint64_t max_value = c.d.worker().cfg().max_value;
  rmw(c, [offset, value, max_value](bool hit, const Reply& cur, bool) {
    const int64_t len = hit ? static_cast<int64_t>(cur.value.size()) : 0;
    if (value.empty()) return answer(":" + std::to_string(len) + "\r\n");
    const uint64_t total = static_cast<uint64_t>(offset) + value.size();
    if (total > (512ull << 20)) {
      return refuse("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    if (total > max_value) return refuse("ERR value is larger than the router's max_value");
    std::string next = hit ? cur.value : std::string();
    if (next.size() < total) next.resize(static_cast<size_t>(total), '\0');
    next.replace(static_cast<size_t>(offset), value.size(), value);
    Plan p;
    p.kind = Plan::kWrite;
    p.reply = ":" + std::to_string(next.size()) + "\r\n";
    p.change = set_call(std::move(next), hit ? cur.ttl : 0, hit ? cur.flags : 0);
    return p;
  });
}

void cmd_persist(Ctx& c) {
  rmw(c, [](bool hit, const Reply& cur, bool) {
    if (!hit || cur.ttl <= 0) return answer(":0\r\n");
    Plan p;
    p.kind = Plan::kWriteUncompared;
    p.change.op = Op::kTouch;
    p.change.ttl = 0;
    p.reply = ":1\r\n";
    return p;
  });
}

void cmd_expire_if(Ctx& c, unsigned flags, int64_t when, int64_t now) {
  rmw(c, [flags, when, now](bool hit, const Reply& cur, bool) {
    if (!hit) return answer(":0\r\n");
    // Compared at the nodes' precision, whole seconds (as cacheserver does).
    const int64_t current = cur.ttl > 0 ? now / 1000 + cur.ttl : 0;
    if (!resp::expire_allowed(flags, current, resp::seconds_from_ms(when))) {
      return answer(":0\r\n");
    }
    Plan p;
    p.kind = Plan::kWriteUncompared;
    if (when <= now) {
      p.change.op = Op::kDelete;
      p.change.ttl = native::kDefaultTombstoneSeconds;
    } else {
      p.change.op = Op::kTouch;
      p.change.ttl = ttl_of(when, now);
    }
    p.reply = ":1\r\n";
    return p;
  });
}

}  // namespace cachetier::router::respfe
