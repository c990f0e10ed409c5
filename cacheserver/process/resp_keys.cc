// RESP key commands: DEL/UNLINK, EXISTS, TOUCH, the EXPIRE family with NX|XX|GT|LT, TTL and
// its kin, PERSIST, TYPE, DBSIZE, FLUSHALL. Expiry is kept in whole seconds by the engine: a
// time in ms is rounded up to the next second (never early), and PTTL counts from it.
#include <limits>

#include "cacheserver/process/resp_internal.h"

namespace cachetier::process::respcmd {

namespace {

using engine::EngineStatus;

bool remove_key(Context& ctx, std::string_view key) {
  engine::DeleteRequest d;
  d.key = key;
  const bool hit = ctx.engine.remove(d).status == EngineStatus::kOk;
  (hit ? ctx.counters.delete_hits : ctx.counters.delete_misses).add();
  return hit;
}

// Sets an existing item's expiry (0 = never); false if the key is gone.
bool set_exptime(Context& ctx, std::string_view key, int64_t exptime) {
  engine::LookupOptions opts;
  opts.bump = false;
  opts.update_exptime = true;
  opts.exptime = exptime;
  return ctx.engine.lookup(key, opts, [](const engine::ItemView&) {}).hit;
}

void expire_generic(Call& c, bool relative, bool seconds) {
  unsigned f = 0;
  std::string error;
  if (!resp::parse_expire_flags(c.argv, 3, f, error)) return c.error(error);
  int64_t when = 0;
  if (!c.integer(2, &when)) return;
  const std::string invalid =
      "ERR invalid expire time in '" + std::string(c.fullname) + "' command";
  if (seconds) {
    if (when > std::numeric_limits<int64_t>::max() / 1000 ||
        when < std::numeric_limits<int64_t>::min() / 1000) {
      c.error(invalid);
      return;
    }
    when *= 1000;
  }
  const int64_t base = relative ? c.now_ms() : 0;
  if (when > std::numeric_limits<int64_t>::max() - base) {
    c.error(invalid);
    return;
  }
  when += base;
  auto item = read_item(c.ctx, c.arg(1), false);
  if (!item) {
    c.w.integer(0);
    return;
  }
  if (f != 0) {
    // Compared at the engine's precision, whole seconds.
    if (!resp::expire_allowed(f, item->exptime, exptime_from_ms(when))) return c.w.integer(0);
  }
  if (when <= c.now_ms()) {
    remove_key(c.ctx, c.arg(1));
    c.w.integer(1);
    return;
  }
  c.ctx.counters.cmd_touch.add();
  c.w.integer(set_exptime(c.ctx, c.arg(1), exptime_from_ms(when)) ? 1 : 0);
}

enum class TtlForm { kTtl, kPttl, kExpireTime, kPexpireTime };

void ttl_generic(Call& c, TtlForm form) {
  auto item = read_item(c.ctx, c.arg(1), false);
  if (!item) return c.w.integer(-2);
  if (item->exptime == 0) return c.w.integer(-1);
  switch (form) {
    case TtlForm::kExpireTime:
      return c.w.integer(item->exptime);
    case TtlForm::kPexpireTime:
      return c.w.integer(item->exptime * 1000);
    default:
      break;
  }
  int64_t pttl = item->exptime * 1000 - c.now_ms();
  if (pttl < 0) pttl = 0;
  c.w.integer(form == TtlForm::kPttl ? pttl : pttl / 1000);
}

}  // namespace

void cmd_del(Call& c) {
  int64_t n = 0;
  for (size_t i = 1; i < c.argc(); ++i) n += remove_key(c.ctx, c.arg(i)) ? 1 : 0;
  c.w.integer(n);
}

void cmd_exists(Call& c) {
  int64_t n = 0;
  engine::LookupOptions opts;
  opts.bump = false;
  for (size_t i = 1; i < c.argc(); ++i) {
    n += c.ctx.engine.lookup(c.arg(i), opts, [](const engine::ItemView&) {}).hit ? 1 : 0;
  }
  c.w.integer(n);
}

void cmd_touch(Call& c) {
  int64_t n = 0;
  for (size_t i = 1; i < c.argc(); ++i) {
    n += c.ctx.engine.lookup(c.arg(i), {}, [](const engine::ItemView&) {}).hit ? 1 : 0;
  }
  c.w.integer(n);
}

void cmd_expire(Call& c) { expire_generic(c, true, true); }
void cmd_pexpire(Call& c) { expire_generic(c, true, false); }
void cmd_expireat(Call& c) { expire_generic(c, false, true); }
void cmd_pexpireat(Call& c) { expire_generic(c, false, false); }
void cmd_ttl(Call& c) { ttl_generic(c, TtlForm::kTtl); }
void cmd_pttl(Call& c) { ttl_generic(c, TtlForm::kPttl); }
void cmd_expiretime(Call& c) { ttl_generic(c, TtlForm::kExpireTime); }
void cmd_pexpiretime(Call& c) { ttl_generic(c, TtlForm::kPexpireTime); }

void cmd_persist(Call& c) {
  auto item = read_item(c.ctx, c.arg(1), false);
  if (!item || item->exptime == 0) return c.w.integer(0);
  c.w.integer(set_exptime(c.ctx, c.arg(1), 0) ? 1 : 0);
}

void cmd_type(Call& c) { c.w.simple(read_item(c.ctx, c.arg(1), false) ? "string" : "none"); }

void cmd_dbsize(Call& c) { c.w.integer(static_cast<int64_t>(c.ctx.engine.stats().curr_items)); }

void cmd_flushall(Call& c) {
  if (c.argc() > 2 ||
      (c.argc() == 2 && !iequals(c.arg(1), "async") && !iequals(c.arg(1), "sync"))) {
    c.error(resp::err::kSyntax);
    return;
  }
  if (!c.ctx.flush_enabled) {
    c.error("ERR flushing is disabled on this node (-F)");
    return;
  }
  c.ctx.counters.cmd_flush.add();
  c.ctx.engine.flush(0);
  c.w.ok();
}

}  // namespace cachetier::process::respcmd
