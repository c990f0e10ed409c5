// Command semantics of the memcache meta commands (mg, ms, md, ma) on top of the Engine, as
// memcached 1.6 gives them; replies are laid out by protocol/memcache/meta_writer.h.
//
// Where memcached's behaviour is not obvious:
// - ms with C: in set or replace mode it is a compare-and-swap (C0 matches nothing); in append
//   or prepend mode C0 means "no check"; in add mode C is ignored. I with C in set/replace
//   mode stores an older-CAS write as a stale value.
// - mg and ma apply T and N in the order the flags were sent (the last one sets the TTL of an
//   item the command creates); mg's R is judged against the TTL at R's position.
// - Counters: an mg with T counts as a touch (touch_hits / touch_misses), otherwise as a get.
#include "cacheserver/process/meta_process.h"

#include <charconv>

#include "protocol/memcache/meta_writer.h"

namespace cachetier::process {

namespace {

using engine::EngineStatus;
using memcache::MetaCode;
using memcache::MetaFlags;
using memcache::Request;
namespace reply = memcache::reply;

// Where flag `f` stands in the request, or -1.
int position(const MetaFlags& m, char f) {
  for (int i = 0; i < m.count; ++i) {
    if (m.order[i] == f) return i;
  }
  return -1;
}

int64_t ttl_left(int64_t exptime, int64_t now) {
  if (exptime == 0) return -1;
  return exptime > now ? exptime - now : 0;
}

// The TTL of an item this command creates: memcached creates it immortal and applies T and N
// where they stand, so the later of the two wins.
int64_t created_exptime(const MetaFlags& m, int64_t now) {
  int t = position(m, 'T');
  int n = position(m, 'N');
  if (t > n) return engine::resolve_exptime(m.ttl, now);
  return n >= 0 ? engine::resolve_exptime(m.vivify_ttl, now) : 0;
}

memcache::MetaItem meta_item(const engine::ItemView& v, int64_t now) {
  memcache::MetaItem mi;
  mi.value = v.value;
  mi.cas = v.cas;
  mi.client_flags = v.client_flags;
  mi.ttl = v.created ? -1 : ttl_left(v.prior_exptime, now);
  mi.idle = now - v.last_access;
  mi.fetched = v.fetched_before;
  mi.created = v.created;
  mi.win = v.won;
  mi.stale = v.stale;
  mi.win_sent = v.win_already_sent;
  return mi;
}

std::string_view failure_line(EngineStatus st) {
  switch (st) {
    case EngineStatus::kTooLarge:
      return reply::kTooLarge;
    case EngineStatus::kNonNumeric:
      return reply::kNonNumeric;
    default:
      return reply::kNoMemory;
  }
}

}  // namespace

Action meta_get(const Request& req, Context& ctx, ByteBuffer& out) {
  const MetaFlags& m = req.meta;
  const int64_t now = ctx.engine.clock().now();
  engine::LookupOptions opts;
  opts.bump = !m.has('u');
  opts.leases = true;
  const bool touch = m.has('T');
  if (touch) {
    opts.update_exptime = true;
    opts.exptime = engine::resolve_exptime(m.ttl, now);
  }
  if (m.has('N')) {
    opts.vivify = true;
    opts.vivify_exptime = created_exptime(m, now);
    opts.new_cas = m.new_cas;  // E: the placeholder's CAS (the item is created, so changed)
  }
  if (m.has('R')) {
    opts.recache = true;
    opts.recache_before = engine::resolve_exptime(m.recache_ttl, now);
    opts.recache_after_touch = touch && position(m, 'T') < position(m, 'R');
  }
  auto r = ctx.engine.lookup(req.key(), opts, [&](const engine::ItemView& v) {
    memcache::MetaItem mi = meta_item(v, now);
    memcache::write_mg_reply(out, req.meta, req.key(), &mi, now);
  });
  if (touch) {
    ctx.counters.cmd_touch.add();
    (r.hit ? ctx.counters.touch_hits : ctx.counters.touch_misses).add();
  } else {
    ctx.counters.cmd_get.add();
    (r.hit ? ctx.counters.get_hits : ctx.counters.get_misses).add();
    if (!r.hit && r.expired) ctx.counters.get_expired.add();
  }
  if (!r.hit) memcache::write_mg_reply(out, req.meta, req.key(), nullptr, now);
  return Action::kContinue;
}

Action meta_set(const Request& req, Context& ctx, ByteBuffer& out) {
  const MetaFlags& m = req.meta;
  const int64_t now = ctx.engine.clock().now();
  engine::StoreRequest s;
  switch (m.mode) {
    case 'E':
      s.mode = engine::StoreMode::kAdd;
      break;
    case 'A':
      s.mode = engine::StoreMode::kAppend;
      break;
    case 'P':
      s.mode = engine::StoreMode::kPrepend;
      break;
    case 'R':
      s.mode = engine::StoreMode::kReplace;
      break;
    default:
      s.mode = engine::StoreMode::kSet;
      break;
  }
  const bool concat = s.mode == engine::StoreMode::kAppend || s.mode == engine::StoreMode::kPrepend;
  bool cas_mode = false;
  if (m.has('C')) {
    if (s.mode == engine::StoreMode::kSet || s.mode == engine::StoreMode::kReplace) {
      cas_mode = true;  // replace with a CAS is a CAS
      s.mode = engine::StoreMode::kSet;
      s.compare_cas = m.compare_cas;
    } else if (concat && m.compare_cas != 0) {
      s.compare_cas = m.compare_cas;
    }
  }
  s.key = req.key();
  s.value = req.value;
  s.client_flags = m.client_flags;
  s.exptime = m.has('T') ? engine::resolve_exptime(m.ttl, now) : 0;
  s.new_cas = m.new_cas;
  s.invalidate = cas_mode && m.has('I') && m.compare_cas != 0;  // C0 compares as "none"
  if (concat && m.has('N')) {
    s.vivify = true;
    s.vivify_exptime = engine::resolve_exptime(m.vivify_ttl, now);
  }
  auto r = ctx.engine.store(s);
  ctx.counters.cmd_set.add();
  if (cas_mode) count_cas(ctx.counters, r.status);
  switch (r.status) {
    case EngineStatus::kOk:
      memcache::write_ms_reply(out, req.meta, req.key(), MetaCode::kHD, r.cas);
      break;
    case EngineStatus::kNotStored:
    case EngineStatus::kOlderVersion:
      memcache::write_ms_reply(out, req.meta, req.key(), MetaCode::kNS, 0);
      break;
    case EngineStatus::kExists:
      memcache::write_ms_reply(out, req.meta, req.key(), MetaCode::kEX, 0);
      break;
    case EngineStatus::kNotFound:
      memcache::write_ms_reply(out, req.meta, req.key(), MetaCode::kNF, 0);
      break;
    default:
      out.append(failure_line(r.status));
      break;
  }
  return Action::kContinue;
}

Action meta_delete(const Request& req, Context& ctx, ByteBuffer& out) {
  const MetaFlags& m = req.meta;
  const int64_t now = ctx.engine.clock().now();
  engine::DeleteRequest d;
  d.key = req.key();
  if (m.has('C')) d.compare_cas = m.compare_cas;
  d.new_cas = m.new_cas;
  d.invalidate = m.has('I');
  if (d.invalidate && m.has('T')) {
    d.update_exptime = true;
    d.exptime = engine::resolve_exptime(m.ttl, now);
  }
  d.drop_value = m.has('x');
  auto r = ctx.engine.remove(d);
  switch (r.status) {
    case EngineStatus::kOk:
      if (!d.invalidate) ctx.counters.delete_hits.add();
      memcache::write_md_reply(out, req.meta, req.key(), MetaCode::kHD);
      break;
    case EngineStatus::kNotFound:
      ctx.counters.delete_misses.add();
      memcache::write_md_reply(out, req.meta, req.key(), MetaCode::kNF);
      break;
    case EngineStatus::kExists:
      ctx.counters.delete_misses.add();
      memcache::write_md_reply(out, req.meta, req.key(), MetaCode::kEX);
      break;
    default:
      out.append(failure_line(r.status));
      break;
  }
  return Action::kContinue;
}

Action meta_arith(const Request& req, Context& ctx, ByteBuffer& out) {
  const MetaFlags& m = req.meta;
  const int64_t now = ctx.engine.clock().now();
  engine::ArithRequest a;
  a.key = req.key();
  a.incr = !(m.mode == 'D' || m.mode == '-');
  a.delta = m.delta;
  if (m.has('C') && m.compare_cas != 0) a.compare_cas = m.compare_cas;
  a.new_cas = m.new_cas;
  if (m.has('N')) {
    a.vivify = true;
    a.vivify_exptime = created_exptime(m, now);
    a.initial = m.initial;
  }
  if (m.has('T')) {
    a.update_exptime = true;
    a.exptime = engine::resolve_exptime(m.ttl, now);
  }
  auto r = ctx.engine.arith(a);
  Counter& hits = a.incr ? ctx.counters.incr_hits : ctx.counters.decr_hits;
  Counter& misses = a.incr ? ctx.counters.incr_misses : ctx.counters.decr_misses;
  switch (r.status) {
    case EngineStatus::kOk: {
      if (!r.created) hits.add();
      char digits[24];
      auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), r.value);
      memcache::MetaItem mi;
      mi.value = std::string_view(digits, static_cast<size_t>(end - digits));
      mi.cas = r.cas;
      mi.ttl = ttl_left(r.prior_exptime, now);
      mi.created = r.created;
      memcache::write_ma_reply(out, req.meta, req.key(), MetaCode::kHD, &mi, now);
      break;
    }
    case EngineStatus::kNotFound:
      misses.add();
      memcache::write_ma_reply(out, req.meta, req.key(), MetaCode::kNF, nullptr, now);
      break;
    case EngineStatus::kExists:
      memcache::write_ma_reply(out, req.meta, req.key(), MetaCode::kEX, nullptr, now);
      break;
    case EngineStatus::kNoMemory:
      out.append("SERVER_ERROR out of memory\r\n");
      break;
    default:
      out.append(failure_line(r.status));
      break;
  }
  return Action::kContinue;
}

}  // namespace cachetier::process
