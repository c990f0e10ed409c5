// Native protocol semantics (docs/protocol.md). Dispatch is one switch on the op.
#include "cacheserver/process/native_process.h"

#include <limits>
#include <string>

#include "common/version.h"

namespace cachetier::process {

namespace {

using engine::EngineStatus;
using native::Field;
using native::FrameWriter;
using native::Op;
using native::Status;

// How long a versioned delete's tombstone lasts unless the request gives a ttl: long enough
// for writes still in flight from other routers to arrive and be refused.
constexpr int64_t kDefaultTombstoneSeconds = 30;

Status to_native(EngineStatus s) {
  switch (s) {
    case EngineStatus::kOk:
      return Status::kOk;
    case EngineStatus::kNotFound:
      return Status::kNotFound;
    case EngineStatus::kNotStored:
      return Status::kNotStored;
    case EngineStatus::kExists:
      return Status::kExists;
    case EngineStatus::kNonNumeric:
      return Status::kNonNumeric;
    case EngineStatus::kTooLarge:
      return Status::kTooLarge;
    case EngineStatus::kNoMemory:
      return Status::kNoMemory;
    case EngineStatus::kOlderVersion:
      return Status::kOlderVersion;
  }
  return Status::kServerError;
}

void reply_status(uint64_t id, Status s, ByteBuffer& out) {
  FrameWriter w(out);
  w.begin_reply(id, s, 0);
  w.end();
}

engine::StoreRequest store_request(const native::Request& req, std::string_view key,
                                   std::string_view value, uint32_t flags, int64_t ttl,
                                   int64_t now) {
  engine::StoreRequest s;
  switch (req.op) {
    case Op::kAdd:
      s.mode = engine::StoreMode::kAdd;
      break;
    case Op::kReplace:
      s.mode = engine::StoreMode::kReplace;
      break;
    case Op::kAppend:
      s.mode = engine::StoreMode::kAppend;
      break;
    case Op::kPrepend:
      s.mode = engine::StoreMode::kPrepend;
      break;
    default:
      s.mode = engine::StoreMode::kSet;
      break;
  }
  s.key = key;
  s.value = value;
  s.client_flags = flags;
  s.exptime = engine::resolve_exptime(ttl, now);
  if (req.op == Op::kCas) s.compare_cas = req.cas;
  s.version = req.version;
  return s;
}

void count_get(Context& ctx, const engine::LookupResult& r) {
  ctx.counters.cmd_get.add();
  if (r.hit) {
    ctx.counters.get_hits.add();
  } else {
    ctx.counters.get_misses.add();
    if (r.expired) ctx.counters.get_expired.add();
  }
}

}  // namespace

void native_error(uint64_t id, Status status, std::string_view message, ByteBuffer& out) {
  FrameWriter w(out);
  w.begin_reply(id, status, 1);
  w.field(native::kMessage);
  w.str(message);
  w.end();
}

Action handle_native(const native::Request& req, Context& ctx, ByteBuffer& out) {
  FrameWriter w(out);
  const int64_t now = ctx.engine.clock().now();
  switch (req.op) {
    case Op::kHello:
      w.begin_reply(req.id, Status::kOk, 4);
      w.field(native::kProtoVersion);
      w.uint(native::kProtocolVersion);
      w.field(native::kFeatures);
      w.array(2);
      w.str("multi");
      w.str("versions");
      w.field(native::kServer);
      w.str("cacheserver " CACHETIER_VERSION);
      w.field(native::kMaxFrame);
      w.uint(ctx.max_frame);
      w.end();
      return Action::kContinue;
    case Op::kGet:
    case Op::kGets:
    case Op::kGat: {
      engine::LookupOptions opts;
      if (req.op == Op::kGat) {
        opts.update_exptime = true;
        opts.exptime = engine::resolve_exptime(req.ttl, now);
        ctx.counters.cmd_touch.add();
      }
      auto r = ctx.engine.lookup(req.key, opts, [&](const engine::ItemView& v) {
        // ttl: seconds left, at least 1 (a copy of the item must expire too).
        native::write_value_reply(w, req.id, v.value, v.client_flags, v.cas, v.version,
                                  v.exptime != 0 ? std::max<int64_t>(v.exptime - now, 1) : 0);
      });
      count_get(ctx, r);
      if (!r.hit) reply_status(req.id, Status::kNotFound, out);
      return Action::kContinue;
    }
    case Op::kTouch: {
      engine::LookupOptions opts;
      opts.update_exptime = true;
      opts.exptime = engine::resolve_exptime(req.ttl, now);
      auto r = ctx.engine.lookup(req.key, opts, [](const engine::ItemView&) {});
      ctx.counters.cmd_touch.add();
      (r.hit ? ctx.counters.touch_hits : ctx.counters.touch_misses).add();
      reply_status(req.id, r.hit ? Status::kOk : Status::kNotFound, out);
      return Action::kContinue;
    }
    case Op::kSet:
    case Op::kAdd:
    case Op::kReplace:
    case Op::kAppend:
    case Op::kPrepend:
    case Op::kCas: {
      auto r = ctx.engine.store(store_request(req, req.key, req.value, req.flags, req.ttl, now));
      ctx.counters.cmd_set.add();
      if (req.op == Op::kCas) count_cas(ctx.counters, r.status);
      if (r.status == EngineStatus::kOk) {
        w.begin_reply(req.id, Status::kOk, 1);
        w.field(native::kCas);
        w.uint(r.cas);
        w.end();
      } else {
        reply_status(req.id, to_native(r.status), out);
      }
      return Action::kContinue;
    }
    case Op::kDelete: {
      engine::DeleteRequest d;
      d.key = req.key;
      if (req.has_cas) d.compare_cas = req.cas;
      if (req.has_version && req.version != 0) {
        d.version = req.version;
        d.tombstone_exptime =
            engine::resolve_exptime(req.has_ttl ? req.ttl : kDefaultTombstoneSeconds, now);
      }
      auto r = ctx.engine.remove(d);
      (r.status == EngineStatus::kOk ? ctx.counters.delete_hits : ctx.counters.delete_misses).add();
      reply_status(req.id, to_native(r.status), out);
      return Action::kContinue;
    }
    case Op::kIncr:
    case Op::kDecr: {
      engine::ArithRequest a;
      a.key = req.key;
      a.incr = req.op == Op::kIncr;
      a.delta = req.delta;
      if (req.has_initial) {
        a.vivify = true;
        a.initial = req.initial;
        a.vivify_exptime = engine::resolve_exptime(req.ttl, now);
      }
      auto r = ctx.engine.arith(a);
      Counter& hits = a.incr ? ctx.counters.incr_hits : ctx.counters.decr_hits;
      Counter& misses = a.incr ? ctx.counters.incr_misses : ctx.counters.decr_misses;
      if (r.status == EngineStatus::kOk) {
        hits.add();
        w.begin_reply(req.id, Status::kOk, 2);
        w.field(native::kNumber);
        w.uint(r.value);
        w.field(native::kCas);
        w.uint(r.cas);
        w.end();
      } else {
        if (r.status == EngineStatus::kNotFound) misses.add();
        reply_status(req.id, to_native(r.status), out);
      }
      return Action::kContinue;
    }
    case Op::kMultiGet: {
      // Values in key order; a miss is nil.
      w.begin_reply(req.id, Status::kOk, 1);
      w.field(native::kValues);
      w.array(static_cast<uint32_t>(req.keys.size()));
      for (std::string_view key : req.keys) {
        auto r = ctx.engine.lookup(key, {}, [&](const engine::ItemView& v) {
          w.array(3);
          w.bin(v.value);
          w.uint(v.client_flags);
          w.uint(v.cas);
        });
        count_get(ctx, r);
        if (!r.hit) w.nil();
        if (out.size() > ctx.output_limit) return Action::kOutputOverflow;
      }
      w.end();
      return Action::kContinue;
    }
    case Op::kMultiSet: {
      w.begin_reply(req.id, Status::kOk, 1);
      w.field(native::kStatuses);
      w.array(static_cast<uint32_t>(req.items.size()));
      for (const native::Item& it : req.items) {
        auto r = ctx.engine.store(store_request(req, it.key, it.value, it.flags, it.ttl, now));
        ctx.counters.cmd_set.add();
        w.uint(static_cast<uint64_t>(to_native(r.status)));
      }
      w.end();
      return Action::kContinue;
    }
    case Op::kMultiDelete: {
      w.begin_reply(req.id, Status::kOk, 1);
      w.field(native::kStatuses);
      w.array(static_cast<uint32_t>(req.keys.size()));
      for (std::string_view key : req.keys) {
        engine::DeleteRequest d;
        d.key = key;
        auto r = ctx.engine.remove(d);
        (r.status == EngineStatus::kOk ? ctx.counters.delete_hits : ctx.counters.delete_misses)
            .add();
        w.uint(static_cast<uint64_t>(to_native(r.status)));
      }
      w.end();
      return Action::kContinue;
    }
    case Op::kFlush:
      ctx.engine.flush(req.delay == 0 ? now : engine::resolve_exptime(req.delay, now));
      ctx.counters.cmd_flush.add();
      reply_status(req.id, Status::kOk, out);
      return Action::kContinue;
    case Op::kStats: {
      // The server writes memcache "STAT name value" lines; they become a map here.
      ByteBuffer lines;
      if (ctx.stats == nullptr || !ctx.stats->write_stats({}, lines)) {
        reply_status(req.id, Status::kServerError, out);
        return Action::kContinue;
      }
      std::vector<std::pair<std::string_view, std::string_view>> kv;
      std::string_view all = lines.view();
      while (!all.empty()) {
        size_t eol = all.find("\r\n");
        std::string_view line = all.substr(0, eol);
        all.remove_prefix(eol == std::string_view::npos ? all.size() : eol + 2);
        if (line.substr(0, 5) != "STAT ") continue;
        line.remove_prefix(5);
        size_t sp = line.find(' ');
        kv.emplace_back(line.substr(0, sp),
                        sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1));
      }
      w.begin_reply(req.id, Status::kOk, 1);
      w.field(native::kStats);
      w.map(static_cast<uint32_t>(kv.size()));
      for (auto& [k, v] : kv) {
        w.str(k);
        w.str(v);
      }
      w.end();
      return Action::kContinue;
    }
    case Op::kNoop:
      reply_status(req.id, Status::kOk, out);
      return Action::kContinue;
    case Op::kVersion:
      w.begin_reply(req.id, Status::kOk, 1);
      w.field(native::kServer);
      w.str("cacheserver " CACHETIER_VERSION);
      w.end();
      return Action::kContinue;
  }
  native_error(req.id, Status::kUnknownOp, "unknown op", out);
  return Action::kContinue;
}

}  // namespace cachetier::process
