// RESP string commands (GET, SET and its options, counters, ranges) with redis-server 7's
// replies. Commands that read and then write (SET GET/KEEPTTL, GETSET, GETDEL, INCR*, SETRANGE)
// do so with a compare-and-swap on the item's CAS, retried, so that each is atomic against
// other clients as it is in redis-server.
#include <algorithm>
#include <cmath>
#include <limits>

#include "cacheserver/process/resp_internal.h"

namespace cachetier::process::respcmd {

namespace {

using engine::EngineStatus;
using engine::StoreMode;

constexpr int kCasTries = 64;
constexpr size_t kMaxKey = 250;
constexpr std::string_view kTooLong =
    "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

void hit_or_miss(Context& ctx, bool hit) {
  ctx.counters.cmd_get.add();
  (hit ? ctx.counters.get_hits : ctx.counters.get_misses).add();
}

// A write the engine refused: the reply, and false.
bool store_failed(Call& c, EngineStatus st) {
  switch (st) {
    case EngineStatus::kTooLarge:
      c.error("ERR value is larger than this node's item size limit (-I)");
      return true;
    case EngineStatus::kNoMemory:
      c.error("OOM command not allowed when used memory > 'maxmemory'.");
      return true;
    default:
      return false;
  }
}

bool key_ok(Call& c, std::string_view key) {
  if (!key.empty() && key.size() <= kMaxKey) return true;
  c.error(key.empty() ? "ERR empty keys are not supported by this cache"
                      : "ERR key is longer than 250 bytes");
  return false;
}

enum class Cond { kNone, kNx, kXx };

struct SetOutcome {
  bool stored = false;
  bool failed = false;  // an error was replied
  std::optional<Snapshot> old;
};

// SET's core: `exptime` (resolved) unless keep_ttl; `need_old` reads the value it replaces.
SetOutcome set_value(Call& c, std::string_view key, std::string_view value, Cond cond,
                     bool keep_ttl, int64_t exptime, bool need_old) {
  SetOutcome o;
  Context& ctx = c.ctx;
  ctx.counters.cmd_set.add();
  if (!need_old && !keep_ttl) {
    engine::StoreRequest s;
    s.mode = cond == Cond::kNx   ? StoreMode::kAdd
             : cond == Cond::kXx ? StoreMode::kReplace
                                 : StoreMode::kSet;
    s.key = key;
    s.value = value;
    s.exptime = exptime;
    auto r = ctx.engine.store(s);
    if (store_failed(c, r.status)) {
      o.failed = true;
      return o;
    }
    o.stored = r.status == EngineStatus::kOk;
    return o;
  }
  for (int i = 0; i < kCasTries; ++i) {
    o.old = read_item(ctx, key, false);
    if ((cond == Cond::kNx && o.old) || (cond == Cond::kXx && !o.old)) return o;
    engine::StoreRequest s;
    s.key = key;
    s.value = value;
    s.exptime = keep_ttl && o.old ? o.old->exptime : (keep_ttl ? 0 : exptime);
    if (o.old) {
      s.compare_cas = o.old->cas;
    } else {
      s.mode = StoreMode::kAdd;
    }
    auto r = ctx.engine.store(s);
    if (store_failed(c, r.status)) {
      o.failed = true;
      return o;
    }
    if (r.status == EngineStatus::kOk) {
      o.stored = true;
      return o;
    }
  }
  c.error("ERR the key changed too often during the write; try again");
  o.failed = true;
  return o;
}

// A write of a counter or range result over the snapshot it was computed from.
EngineStatus write_back(Call& c, std::string_view key, const std::optional<Snapshot>& old,
                        std::string_view value) {
  engine::StoreRequest s;
  s.key = key;
  s.value = value;
  if (old) {
    s.compare_cas = old->cas;
    s.exptime = old->exptime;
    s.client_flags = old->flags;
  } else {
    s.mode = StoreMode::kAdd;
  }
  return c.ctx.engine.store(s).status;
}

bool lost_race(EngineStatus st) {
  return st == EngineStatus::kExists || st == EngineStatus::kNotStored ||
         st == EngineStatus::kNotFound;
}

void retry_exhausted(Call& c) {
  c.error("ERR the key changed too often during the write; try again");
}

// A read-modify-write of `key` as a compare-and-swap on its CAS, read again after a lost race.
// `next(old, value)` sets the new value and returns true, or answers itself (an error, or a
// reply that needs no write) and returns false; `stored(old, value)` answers once it is in.
template <class Next, class Stored>
void swap_value(Call& c, std::string_view key, bool bump, Next next, Stored stored) {
  for (int i = 0; i < kCasTries; ++i) {
    const std::optional<Snapshot> old = read_item(c.ctx, key, bump);
    std::string value;
    if (!next(old, value)) return;
    const EngineStatus st = write_back(c, key, old, value);
    if (store_failed(c, st)) return;
    if (st == EngineStatus::kOk) return stored(old, value);
    if (!lost_race(st)) break;
  }
  retry_exhausted(c);
}

void incr_by(Call& c, int64_t delta) {
  const std::string_view key = c.arg(1);
  if (!key_ok(c, key)) return;
  int64_t v = 0;
  swap_value(
      c, key, true,
      [&](const std::optional<Snapshot>& old, std::string& value) {
        v = 0;
        if (old && !resp::parse_ll(old->value, &v)) return c.error(resp::err::kNotInteger), false;
        if ((delta < 0 && v < 0 && delta < std::numeric_limits<int64_t>::min() - v) ||
            (delta > 0 && v > 0 && delta > std::numeric_limits<int64_t>::max() - v)) {
          return c.error(resp::err::kOverflow), false;
        }
        v += delta;
        value = std::to_string(v);
        return true;
      },
      [&](const std::optional<Snapshot>& old, const std::string&) {
        (delta >= 0 ? (old ? c.ctx.counters.incr_hits : c.ctx.counters.incr_misses)
                    : (old ? c.ctx.counters.decr_hits : c.ctx.counters.decr_misses))
            .add();
        c.w.integer(v);
      });
}

}  // namespace

void cmd_get(Call& c) {
  bool hit = false;
  auto r = c.ctx.engine.lookup(c.arg(1), {}, [&](const engine::ItemView& v) {
    c.w.bulk(v.value);
    hit = true;
  });
  if (!hit) c.w.null();
  hit_or_miss(c.ctx, r.hit);
}

void cmd_set(Call& c) {
  resp::SetOptions o;
  if (!resp::parse_set_options(c.argv, 3, false, o)) return c.error(resp::err::kSyntax);
  int64_t exptime = 0;
  if (o.unit != resp::SetOptions::kNone) {
    std::string error;
    const int64_t ms = resp::expire_at_ms(o, c.now_ms(), c.fullname, error);
    if (ms == 0) return c.error(error);
    exptime = exptime_from_ms(ms);
  }
  if (!key_ok(c, c.arg(1))) return;
  const Cond cond = o.nx ? Cond::kNx : o.xx ? Cond::kXx : Cond::kNone;
  SetOutcome out = set_value(c, c.arg(1), c.arg(2), cond, o.keepttl, exptime, o.get);
  if (out.failed) return;
  if (o.get) {
    if (out.old) return c.w.bulk(out.old->value);
    return c.w.null();
  }
  if (out.stored) return c.w.ok();
  c.w.null();
}

void cmd_setnx(Call& c) {
  if (!key_ok(c, c.arg(1))) return;
  SetOutcome o = set_value(c, c.arg(1), c.arg(2), Cond::kNx, false, 0, false);
  if (!o.failed) c.w.integer(o.stored ? 1 : 0);
}

namespace {
void setex(Call& c, bool seconds) {
  resp::SetOptions o;
  o.unit = seconds ? resp::SetOptions::kEx : resp::SetOptions::kPx;
  o.expire = c.arg(2);
  std::string error;
  const int64_t ms = resp::expire_at_ms(o, c.now_ms(), c.fullname, error);
  if (ms == 0) return c.error(error);
  if (!key_ok(c, c.arg(1))) return;
  SetOutcome out = set_value(c, c.arg(1), c.arg(3), Cond::kNone, false, exptime_from_ms(ms), false);
  if (!out.failed) c.w.ok();
}
}  // namespace

void cmd_setex(Call& c) { setex(c, true); }
void cmd_psetex(Call& c) { setex(c, false); }

void cmd_getset(Call& c) {
  if (!key_ok(c, c.arg(1))) return;
  SetOutcome o = set_value(c, c.arg(1), c.arg(2), Cond::kNone, false, 0, true);
  if (o.failed) return;
  if (o.old) {
    c.w.bulk(o.old->value);
  } else {
    c.w.null();
  }
}

void cmd_getex(Call& c) {
  resp::SetOptions o;
  if (!resp::parse_set_options(c.argv, 2, true, o)) return c.error(resp::err::kSyntax);
  engine::LookupOptions opts;
  if (o.unit != resp::SetOptions::kNone) {
    std::string error;
    const int64_t ms = resp::expire_at_ms(o, c.now_ms(), c.fullname, error);
    if (ms == 0) {
      // redis-server looks the key up first: a missing key is nil whatever the expiry says.
      if (!read_item(c.ctx, c.arg(1), false)) return c.w.null();
      return c.error(error);
    }
    if (ms <= c.now_ms()) {
      // redis-server deletes the key at once when the time has passed (DBSIZE drops now, not
      // when the reclaimer comes by); the value read is the reply.
      auto old = read_item(c.ctx, c.arg(1), true);
      hit_or_miss(c.ctx, old.has_value());
      if (!old) return c.w.null();
      engine::DeleteRequest d;
      d.key = c.arg(1);
      d.compare_cas = old->cas;  // a write that came in between is newer: it stays
      c.ctx.engine.remove(d);
      return c.w.bulk(old->value);
    }
    opts.update_exptime = true;
    opts.exptime = exptime_from_ms(ms);
  } else if (o.persist) {
    opts.update_exptime = true;
    opts.exptime = 0;
  }
  bool hit = false;
  auto r = c.ctx.engine.lookup(c.arg(1), opts, [&](const engine::ItemView& v) {
    c.w.bulk(v.value);
    hit = true;
  });
  if (!hit) c.w.null();
  hit_or_miss(c.ctx, r.hit);
}

void cmd_getdel(Call& c) {
  for (int i = 0; i < kCasTries; ++i) {
    auto old = read_item(c.ctx, c.arg(1), false);
    hit_or_miss(c.ctx, old.has_value());
    if (!old) {
      c.w.null();
      return;
    }
    engine::DeleteRequest d;
    d.key = c.arg(1);
    d.compare_cas = old->cas;
    if (c.ctx.engine.remove(d).status == EngineStatus::kOk) {
      c.w.bulk(old->value);
      return;
    }
  }
  retry_exhausted(c);
}

void cmd_mget(Call& c) {
  ByteBuffer& out = c.w.out;
  const size_t start = out.size();
  c.w.array(c.argc() - 1);
  bool checked = false;
  for (size_t i = 1; i < c.argc(); ++i) {
    if (!checked && out.size() - start > kReplyPrecheck) {
      checked = true;
      if (reply_cannot_fit(
              c.ctx.engine, i, c.argc(), [&](size_t k) { return c.arg(k); }, out.size() - start,
              c.ctx.output_limit)) {
        out.truncate(start);
        c.error("ERR the reply is larger than this node's output limit");
        return;
      }
    }
    bool hit = false;
    c.ctx.engine.lookup(c.arg(i), {}, [&](const engine::ItemView& v) {
      c.w.bulk(v.value);
      hit = true;
    });
    if (!hit) c.w.null();
    hit_or_miss(c.ctx, hit);
    if (out.size() - start > c.ctx.output_limit) {
      out.truncate(start);
      c.error("ERR the reply is larger than this node's output limit");
      return;
    }
  }
}

void cmd_mset(Call& c) {
  if (c.argc() % 2 == 0) {
    c.wrong_arity();
    return;
  }
  for (size_t i = 1; i < c.argc(); i += 2) {
    if (!key_ok(c, c.arg(i))) return;
  }
  for (size_t i = 1; i < c.argc(); i += 2) {
    SetOutcome o = set_value(c, c.arg(i), c.arg(i + 1), Cond::kNone, false, 0, false);
    if (o.failed) return;
  }
  c.w.ok();
}

void cmd_msetnx(Call& c) {
  if (c.argc() % 2 == 0) {
    c.wrong_arity();
    return;
  }
  for (size_t i = 1; i < c.argc(); i += 2) {
    if (!key_ok(c, c.arg(i))) return;
  }
  for (size_t i = 1; i < c.argc(); i += 2) {
    if (read_item(c.ctx, c.arg(i), false)) {
      c.w.integer(0);
      return;
    }
  }
  // Each key is added only if still absent; a concurrent writer between the check and the
  // adds can make this partial (documented in docs/resp.md). A key given twice takes its last
  // value, as in redis-server.
  for (size_t i = 1; i < c.argc(); i += 2) {
    bool later = false;
    for (size_t j = i + 2; j < c.argc() && !later; j += 2) later = c.arg(j) == c.arg(i);
    if (later) continue;
    SetOutcome o = set_value(c, c.arg(i), c.arg(i + 1), Cond::kNx, false, 0, false);
    if (o.failed) return;
  }
  c.w.integer(1);
}

void cmd_incr(Call& c) { incr_by(c, 1); }
void cmd_decr(Call& c) { incr_by(c, -1); }

void cmd_incrby(Call& c) {
  int64_t d = 0;
  if (c.integer(2, &d)) incr_by(c, d);
}

void cmd_decrby(Call& c) {
  int64_t d = 0;
  if (!c.integer(2, &d)) return;
  if (d == std::numeric_limits<int64_t>::min()) {
    c.error("ERR decrement would overflow");
    return;
  }
  incr_by(c, -d);
}

void cmd_incrbyfloat(Call& c) {
  const std::string_view key = c.arg(1);
  if (!key_ok(c, key)) return;
  swap_value(
      c, key, true,
      [&](const std::optional<Snapshot>& old, std::string& value) {
        long double v = 0, incr = 0;
        if ((old && !resp::parse_ld(old->value, &v)) || !resp::parse_ld(c.arg(2), &incr)) {
          return c.error(resp::err::kNotFloat), false;
        }
        v += incr;
        if (std::isnan(v) || std::isinf(v)) {
          return c.error("ERR increment would produce NaN or Infinity"), false;
        }
        value = resp::format_ld(v);
        return true;
      },
      [&](const std::optional<Snapshot>&, const std::string& value) { c.w.bulk(value); });
}

void cmd_append(Call& c) {
  if (!key_ok(c, c.arg(1))) return;
  engine::StoreRequest s;
  s.mode = StoreMode::kAppend;
  s.key = c.arg(1);
  s.value = c.arg(2);
  s.vivify = true;
  c.ctx.counters.cmd_set.add();
  auto r = c.ctx.engine.store(s);
  if (r.status == EngineStatus::kTooLarge) {
    c.error(kTooLong);
    return;
  }
  if (store_failed(c, r.status)) return;
  c.w.integer(static_cast<int64_t>(r.size));
}

void cmd_strlen(Call& c) {
  int64_t n = 0;
  c.ctx.engine.lookup(c.arg(1), {},
                      [&](const engine::ItemView& v) { n = static_cast<int64_t>(v.value.size()); });
  c.w.integer(n);
}

void cmd_getrange(Call& c) {
  int64_t start = 0, end = 0;
  if (!c.integer(2, &start) || !c.integer(3, &end)) return;
  bool hit = false;
  c.ctx.engine.lookup(c.arg(1), {}, [&](const engine::ItemView& v) {
    hit = true;
    const int64_t len = static_cast<int64_t>(v.value.size());
    int64_t s = start, e = end;
    if (s < 0 && e < 0 && s > e) {
      c.w.bulk("");
      return;
    }
    if (s < 0) s = len + s;
    if (e < 0) e = len + e;
    if (s < 0) s = 0;
    if (e < 0) e = 0;
    if (e >= len) e = len - 1;
    if (s > e || len == 0) {
      c.w.bulk("");
    } else {
      c.w.bulk(v.value.substr(static_cast<size_t>(s), static_cast<size_t>(e - s + 1)));
    }
  });
  if (!hit) c.w.bulk("");
}

void cmd_setrange(Call& c) {
  int64_t offset = 0;
  if (!c.integer(2, &offset)) return;
  if (offset < 0) {
    c.error("ERR offset is out of range");
    return;
  }
  const std::string_view key = c.arg(1), part = c.arg(3);
  if (!key_ok(c, key)) return;
  swap_value(
      c, key, false,
      [&](const std::optional<Snapshot>& old, std::string& value) {
        if (part.empty())
          return c.w.integer(old ? static_cast<int64_t>(old->value.size()) : 0), false;
        const uint64_t total = static_cast<uint64_t>(offset) + part.size();
        if (total > (512ull << 20)) return c.error(kTooLong), false;
        if (total > c.ctx.max_item_size) {
          return c.error("ERR value is larger than this node's item size limit (-I)"), false;
        }
        value = old ? old->value : std::string();
        if (value.size() < total) value.resize(static_cast<size_t>(total), '\0');
        value.replace(static_cast<size_t>(offset), part.size(), part);
        return true;
      },
      [&](const std::optional<Snapshot>&, const std::string& value) {
        c.w.integer(static_cast<int64_t>(value.size()));
      });
}

}  // namespace cachetier::process::respcmd
