// Command semantics of the memcache text protocol (classic and meta) on top of the Engine.
// Dispatch is one explicit switch on the command (docs/design.md, habit 7).
#include "cacheserver/process/process.h"

#include <charconv>
#include <limits>

#include "cacheserver/process/meta_process.h"
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
  const size_t start = out.size();
  bool checked = false;
  for (size_t i = 0; i < req.keys.size(); ++i) {
    const std::string_view key = req.keys[i];
    if (!checked && out.size() - start > process::kReplyPrecheck) {
      checked = true;
      if (reply_cannot_fit(
              ctx.engine, i, req.keys.size(), [&](size_t k) { return req.keys[k]; },
              out.size() - start, ctx.output_limit)) {
        out.truncate(start);
        out.append("SERVER_ERROR out of memory writing get response\r\n");
        return Action::kContinue;
      }
    }
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
    if (out.size() - start > ctx.output_limit) {
      // Too large a reply: an error instead, as memcached says it, and the connection goes
      // on (it may be a router's, shared by many clients).
      out.truncate(start);
      out.append("SERVER_ERROR out of memory writing get response\r\n");
      return Action::kContinue;
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
      if (!ctx.flush_enabled) {  // memcached -F's answer
        out.append(reply::kFlushDisabled);
        return Action::kContinue;
      }
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
    case Command::kRefreshCerts: {
      Status st = ctx.stats != nullptr ? ctx.stats->refresh_certs()
                                       : Status(StatusCode::kNotFound, "TLS is not enabled");
      if (st.is_ok()) {
        out.append(reply::kOk);
      } else {
        out.append("SERVER_ERROR ");
        out.append(st.message());
        out.append("\r\n");
      }
      return Action::kContinue;
    }
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
    case Command::kDrain:  // the router's admin commands: never decoded here (not admin)
    case Command::kUndrain:
    case Command::kRoute:
      out.append(memcache::reply::kError);
      return Action::kContinue;
  }
  return Action::kContinue;
}

}  // namespace cachetier::process
