// Command semantics of the memcache text protocol (classic and meta) on top of the Engine.
// Dispatch is one explicit switch on the command (STYLE.md habit 10).
#include "cacheserver/process/process.h"

#include <charconv>
#include <limits>

#include "common/version.h"
#include "protocol/memcache/server_codec.h"

namespace cachetier::process {

namespace {

using engine::EngineStatus;
using memcache::Command;
using memcache::Request;
namespace reply = memcache::reply;

void send(const Request& req, ByteBuffer& out, std::string_view line) {
  if (!req.noreply) out.append(line);
}

std::string_view store_reply(EngineStatus st) {
  switch (st) {
    case EngineStatus::kOk:
      return reply::kStored;
    case EngineStatus::kNotStored:
      return reply::kNotStored;
    case EngineStatus::kExists:
      return reply::kExists;
    case EngineStatus::kNotFound:
      return reply::kNotFound;
    case EngineStatus::kTooLarge:
      return reply::kTooLarge;
    case EngineStatus::kNonNumeric:
      return reply::kNonNumeric;
    case EngineStatus::kNoMemory:
      return reply::kNoMemory;
    case EngineStatus::kOlderVersion:  // only native writes carry versions
      return reply::kNotStored;
  }
  return reply::kNoMemory;
}

Action retrieval(const Request& req, Context& ctx, ByteBuffer& out) {
  const bool with_cas = req.command == Command::kGets || req.command == Command::kGats;
  const bool touch = req.command == Command::kGat || req.command == Command::kGats;
  engine::LookupOptions opts;
  if (touch) {
    opts.update_exptime = true;
    opts.exptime = engine::resolve_exptime(req.exptime, ctx.engine.clock().now());
  }
  for (std::string_view key : req.keys) {
    auto r = ctx.engine.lookup(key, opts, [&](const engine::ItemView& v) {
      memcache::write_value(out, key, v.client_flags, v.value, with_cas ? &v.cas : nullptr);
    });
    ctx.counters.cmd_get.add();
    if (touch) ctx.counters.cmd_touch.add();
    if (r.hit) {
      ctx.counters.get_hits.add();
      if (touch) ctx.counters.touch_hits.add();
    } else {
      ctx.counters.get_misses.add();
      if (touch) ctx.counters.touch_misses.add();
      if (r.expired) ctx.counters.get_expired.add();
    }
    if (out.size() > ctx.output_limit) {
      out.append("SERVER_ERROR out of memory writing get response\r\n");
      return Action::kOutputOverflow;
    }
  }
  out.append(reply::kEnd);
  return Action::kContinue;
}

Action storage(const Request& req, Context& ctx, ByteBuffer& out) {
  engine::StoreRequest s;
  switch (req.command) {
    case Command::kAdd:
      s.mode = engine::StoreMode::kAdd;
      break;
    case Command::kReplace:
      s.mode = engine::StoreMode::kReplace;
      break;
    case Command::kAppend:
      s.mode = engine::StoreMode::kAppend;
      break;
    case Command::kPrepend:
      s.mode = engine::StoreMode::kPrepend;
      break;
    default:
      s.mode = engine::StoreMode::kSet;
      break;
  }
  s.key = req.key();
  s.value = req.value;
  s.client_flags = req.client_flags;
  s.exptime = engine::resolve_exptime(req.exptime, ctx.engine.clock().now());
  if (req.command == Command::kCas) s.compare_cas = req.cas_unique;
  auto r = ctx.engine.store(s);
  ctx.counters.cmd_set.add();
  if (req.command == Command::kCas) count_cas(ctx.counters, r.status);
  send(req, out, store_reply(r.status));
  return Action::kContinue;
}

// ---- meta commands ----

// Appends the return flags the client asked for, in the order it asked, then W/X/Z.
struct MetaEcho {
  const Request& req;
  int64_t now;
  // `size` is what the s flag reports (the value's size, or for ms the size stored).
  void write(ByteBuffer& out, const engine::ItemView* v) const {
    write(out, v, v != nullptr ? v->value.size() : 0);
  }
  void write(ByteBuffer& out, const engine::ItemView* v, uint64_t size) const {
    const memcache::MetaFlags& m = req.meta;
    for (uint8_t i = 0; i < m.count; ++i) {
      char f = m.order[i];
      switch (f) {
        case 'O':
          out.append(" O");
          out.append(m.opaque);
          break;
        case 'k':
          out.append(" k");
          out.append(m.raw_key);
          break;
        case 'b':
          if (m.has('k')) out.append(" b");
          break;
        default:
          break;
      }
      if (v == nullptr) continue;
      switch (f) {
        case 'c':
          out.append(" c");
          out.append_u64(v->cas);
          break;
        case 'f':
          out.append(" f");
          out.append_u64(v->client_flags);
          break;
        case 's':
          out.append(" s");
          out.append_u64(size);
          break;
        case 'h':
          out.append(v->fetched_before ? " h1" : " h0");
          break;
        case 'l':
          out.append(" l");
          out.append_i64(now - v->last_access);
          break;
        case 't':
          out.append(" t");
          out.append_i64(v->exptime == 0 ? -1 : std::max<int64_t>(v->exptime - now, 0));
          break;
        default:
          break;
      }
    }
    if (v != nullptr) {
      if (v->win_already_sent) out.append(" Z");
      if (v->stale) out.append(" X");
      if (v->won) out.append(" W");
    }
  }
};

void meta_status(const Request& req, const MetaEcho& echo, ByteBuffer& out, std::string_view code,
                 const engine::ItemView* v = nullptr) {
  out.append(code);
  echo.write(out, v);
  out.append("\r\n");
}

Action meta_get(const Request& req, Context& ctx, ByteBuffer& out) {
  const memcache::MetaFlags& m = req.meta;
  int64_t now = ctx.engine.clock().now();
  MetaEcho echo{req, now};
  engine::LookupOptions opts;
  opts.bump = !m.has('u');
  if (m.has('T')) {
    opts.update_exptime = true;
    opts.exptime = engine::resolve_exptime(m.ttl, now);
    ctx.counters.cmd_touch.add();
  }
  if (m.has('N')) {
    opts.vivify = true;
    opts.vivify_exptime = engine::resolve_exptime(m.vivify_ttl, now);
  }
  if (m.has('R')) {
    opts.recache = true;
    opts.recache_below = m.recache_ttl;
  }
  const bool with_value = m.has('v');
  auto r = ctx.engine.lookup(req.key(), opts, [&](const engine::ItemView& v) {
    if (with_value) {
      out.reserve(v.value.size() + 64);
      out.append("VA ");
      out.append_u64(v.value.size());
      echo.write(out, &v);
      out.append("\r\n");
      out.append(v.value);
      out.append("\r\n");
    } else {
      meta_status(req, echo, out, "HD", &v);
    }
  });
  ctx.counters.cmd_get.add();
  if (r.hit) {
    ctx.counters.get_hits.add();
  } else {
    ctx.counters.get_misses.add();
    if (r.expired) ctx.counters.get_expired.add();
    if (!m.has('q')) meta_status(req, echo, out, "EN");
  }
  return Action::kContinue;
}

Action meta_set(const Request& req, Context& ctx, ByteBuffer& out) {
  const memcache::MetaFlags& m = req.meta;
  int64_t now = ctx.engine.clock().now();
  engine::StoreRequest s;
  switch (m.mode) {
    case 'E':
    case 'e':
      s.mode = engine::StoreMode::kAdd;
      break;
    case 'A':
    case 'a':
      s.mode = engine::StoreMode::kAppend;
      break;
    case 'P':
    case 'p':
      s.mode = engine::StoreMode::kPrepend;
      break;
    case 'R':
    case 'r':
      s.mode = engine::StoreMode::kReplace;
      break;
    default:
      s.mode = engine::StoreMode::kSet;
      break;
  }
  s.key = req.key();
  s.value = req.value;
  s.client_flags = m.client_flags;
  s.exptime = m.has('T') ? engine::resolve_exptime(m.ttl, now) : 0;
  if (m.has('C')) s.compare_cas = m.compare_cas;
  s.new_cas = m.new_cas;
  s.invalidate = m.has('I');
  if (m.has('N')) {
    s.vivify = true;
    s.vivify_exptime = engine::resolve_exptime(m.vivify_ttl, now);
  }
  auto r = ctx.engine.store(s);
  ctx.counters.cmd_set.add();
  if (m.has('C')) count_cas(ctx.counters, r.status);
  MetaEcho echo{req, now};
  switch (r.status) {
    case EngineStatus::kOk: {
      if (m.has('q')) break;
      // After a store only O k b c s can be asked for (the decoder refuses the others).
      engine::ItemView stored;
      stored.cas = r.cas;
      out.append("HD");
      echo.write(out, &stored, r.size);
      out.append("\r\n");
      break;
    }
    case EngineStatus::kNotStored:
      meta_status(req, echo, out, "NS");
      break;
    case EngineStatus::kExists:
      meta_status(req, echo, out, "EX");
      break;
    case EngineStatus::kNotFound:
      meta_status(req, echo, out, "NF");
      break;
    default:
      out.append(store_reply(r.status));
      break;
  }
  return Action::kContinue;
}

Action meta_delete(const Request& req, Context& ctx, ByteBuffer& out) {
  const memcache::MetaFlags& m = req.meta;
  int64_t now = ctx.engine.clock().now();
  engine::DeleteRequest d;
  d.key = req.key();
  if (m.has('C')) d.compare_cas = m.compare_cas;
  d.new_cas = m.new_cas;
  d.invalidate = m.has('I');
  if (m.has('T')) {
    d.update_exptime = true;
    d.exptime = engine::resolve_exptime(m.ttl, now);
  }
  d.drop_value = m.has('x');
  auto r = ctx.engine.remove(d);
  MetaEcho echo{req, now};
  switch (r.status) {
    case EngineStatus::kOk:
      ctx.counters.delete_hits.add();
      if (!m.has('q')) meta_status(req, echo, out, "HD");
      break;
    case EngineStatus::kNotFound:
      ctx.counters.delete_misses.add();
      meta_status(req, echo, out, "NF");
      break;
    case EngineStatus::kExists:
      meta_status(req, echo, out, "EX");
      break;
    default:
      out.append(store_reply(r.status));
      break;
  }
  return Action::kContinue;
}

Action meta_arith(const Request& req, Context& ctx, ByteBuffer& out) {
  const memcache::MetaFlags& m = req.meta;
  int64_t now = ctx.engine.clock().now();
  engine::ArithRequest a;
  a.key = req.key();
  a.incr = !(m.mode == 'D' || m.mode == 'd' || m.mode == '-');
  a.delta = m.delta;
  if (m.has('C')) a.compare_cas = m.compare_cas;
  a.new_cas = m.new_cas;
  if (m.has('N')) {
    a.vivify = true;
    a.vivify_exptime = engine::resolve_exptime(m.vivify_ttl, now);
    a.initial = m.initial;
  }
  if (m.has('T')) {
    a.update_exptime = true;
    a.exptime = engine::resolve_exptime(m.ttl, now);
  }
  auto r = ctx.engine.arith(a);
  MetaEcho echo{req, now};
  Counter& hits = a.incr ? ctx.counters.incr_hits : ctx.counters.decr_hits;
  Counter& misses = a.incr ? ctx.counters.incr_misses : ctx.counters.decr_misses;
  switch (r.status) {
    case EngineStatus::kOk: {
      hits.add();
      char digits[24];
      auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), r.value);
      std::string_view number(digits, static_cast<size_t>(end - digits));
      engine::ItemView v;
      v.cas = r.cas;
      v.exptime = r.exptime;
      v.value = number;
      v.last_access = now;
      if (m.has('v')) {
        out.append("VA ");
        out.append_u64(number.size());
        echo.write(out, &v);
        out.append("\r\n");
        out.append(number);
        out.append("\r\n");
      } else if (!m.has('q')) {
        meta_status(req, echo, out, "HD", &v);
      }
      break;
    }
    case EngineStatus::kNotFound:
      misses.add();
      meta_status(req, echo, out, "NF");
      break;
    case EngineStatus::kExists:
      meta_status(req, echo, out, "EX");
      break;
    case EngineStatus::kNonNumeric:
      out.append(reply::kNonNumeric);
      break;
    default:
      out.append(store_reply(r.status));
      break;
  }
  return Action::kContinue;
}

}  // namespace

Action handle(const Request& req, Context& ctx, ByteBuffer& out) {
  switch (req.command) {
    case Command::kGet:
    case Command::kGets:
    case Command::kGat:
    case Command::kGats:
      return retrieval(req, ctx, out);
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
      return storage(req, ctx, out);
    case Command::kDelete: {
      engine::DeleteRequest d;
      d.key = req.key();
      auto r = ctx.engine.remove(d);
      bool hit = r.status == EngineStatus::kOk;
      (hit ? ctx.counters.delete_hits : ctx.counters.delete_misses).add();
      send(req, out, hit ? reply::kDeleted : reply::kNotFound);
      return Action::kContinue;
    }
    case Command::kIncr:
    case Command::kDecr: {
      engine::ArithRequest a;
      a.key = req.key();
      a.incr = req.command == Command::kIncr;
      a.delta = req.delta;
      auto r = ctx.engine.arith(a);
      Counter& hits = a.incr ? ctx.counters.incr_hits : ctx.counters.decr_hits;
      Counter& misses = a.incr ? ctx.counters.incr_misses : ctx.counters.decr_misses;
      if (r.status == EngineStatus::kOk) {
        hits.add();
        if (!req.noreply) memcache::write_number(out, r.value);
      } else {
        if (r.status == EngineStatus::kNotFound) misses.add();
        send(req, out, store_reply(r.status));
      }
      return Action::kContinue;
    }
    case Command::kTouch: {
      engine::LookupOptions opts;
      opts.update_exptime = true;
      opts.exptime = engine::resolve_exptime(req.exptime, ctx.engine.clock().now());
      auto r = ctx.engine.lookup(req.key(), opts, [](const engine::ItemView&) {});
      ctx.counters.cmd_touch.add();
      (r.hit ? ctx.counters.touch_hits : ctx.counters.touch_misses).add();
      send(req, out, r.hit ? reply::kTouched : reply::kNotFound);
      return Action::kContinue;
    }
    case Command::kFlushAll: {
      int64_t now = ctx.engine.clock().now();
      ctx.engine.flush(req.delay == 0 ? now : engine::resolve_exptime(req.delay, now));
      ctx.counters.cmd_flush.add();
      send(req, out, reply::kOk);
      return Action::kContinue;
    }
    case Command::kVersion:
      out.append("VERSION " CACHETIER_VERSION "\r\n");
      return Action::kContinue;
    case Command::kVerbosity:
      if (ctx.verbosity != nullptr) ctx.verbosity->store(static_cast<int>(req.verbosity));
      send(req, out, reply::kOk);
      return Action::kContinue;
    case Command::kStats:
      if (ctx.stats == nullptr || !ctx.stats->write_stats(req.stats_arg, out)) {
        out.append(reply::kError);
      } else {
        out.append(reply::kEnd);
      }
      return Action::kContinue;
    case Command::kQuit:
      return Action::kClose;
    case Command::kMetaGet:
      return meta_get(req, ctx, out);
    case Command::kMetaSet:
      return meta_set(req, ctx, out);
    case Command::kMetaDelete:
      return meta_delete(req, ctx, out);
    case Command::kMetaArithmetic:
      return meta_arith(req, ctx, out);
    case Command::kMetaNoop:
      out.append("MN\r\n");
      return Action::kContinue;
  }
  return Action::kContinue;
}

}  // namespace cachetier::process
