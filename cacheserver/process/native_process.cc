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
  // A cas compares; so do set, replace, append and prepend that carry one (meta ms C).
  if (req.op == Op::kCas || (req.has_cas && req.op != Op::kAdd)) s.compare_cas = req.cas;
  s.invalidate = (req.options & native::kInvalidate) != 0;
  s.new_cas = req.new_cas;
  if (req.has_vivify) {
    s.vivify = true;
    s.vivify_exptime = engine::resolve_exptime(req.vivify_ttl, now);
  }
  s.version = req.version;
  return s;
}

int64_t ttl_left(int64_t exptime, int64_t now) {
  if (exptime == 0) return -1;
  return exptime > now ? exptime - now : 0;
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
      opts.bump = (req.options & native::kNoBump) == 0;
      opts.leases = (req.options & native::kLeases) != 0;
      const bool touch = req.op == Op::kGat;
      if (touch) {
        opts.update_exptime = true;
        opts.exptime = engine::resolve_exptime(req.ttl, now);
      }
      if (req.has_vivify) {
        opts.vivify = true;
        opts.vivify_exptime = engine::resolve_exptime(req.vivify_ttl, now);
        opts.new_cas = req.new_cas;
      }
      if (req.has_recache) {
        opts.recache = true;
        opts.recache_before = engine::resolve_exptime(req.recache_ttl, now);
        opts.recache_after_touch = (req.options & native::kRecacheAfterTouch) != 0;
      }
      const bool with_meta = (req.options & native::kItemMeta) != 0;
      auto r = ctx.engine.lookup(req.key, opts, [&](const engine::ItemView& v) {
        // ttl: seconds left, at least 1 (a copy of the item must expire too).
        const int64_t ttl = v.exptime != 0 ? std::max<int64_t>(v.exptime - now, 1) : 0;
        if (!with_meta) {
          native::write_value_reply(w, req.id, v.value, v.client_flags, v.cas, v.version, ttl);
          return;
        }
        native::ItemMeta meta;
        meta.fetched = v.fetched_before;
        meta.idle = static_cast<uint64_t>(std::max<int64_t>(now - v.last_access, 0));
        meta.prior_ttl = v.created ? -1 : ttl_left(v.prior_exptime, now);
        meta.lease = (v.won ? native::kWon : 0) | (v.stale ? native::kStale : 0) |
                     (v.win_already_sent ? native::kWinSent : 0) |
                     (v.created ? native::kCreated : 0);
        native::write_value_reply(w, req.id, v.value, v.client_flags, v.cas, v.version, ttl, &meta);
      });
      if (touch) {  // as memcached counts mg with T: a touch, not a get
        ctx.counters.cmd_touch.add();
        (r.hit ? ctx.counters.touch_hits : ctx.counters.touch_misses).add();
      } else {
        count_get(ctx, r);
      }
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
      engine::StoreRequest sr = store_request(req, req.key, req.value, req.flags, req.ttl, now);
      auto r = ctx.engine.store(sr);
      ctx.counters.cmd_set.add();
      if (sr.compare_cas &&
          !(sr.mode == engine::StoreMode::kAppend || sr.mode == engine::StoreMode::kPrepend)) {
        count_cas(ctx.counters, r.status);
      }
      if (r.status == EngineStatus::kOk) {
        w.begin_reply(req.id, Status::kOk, 1 + r.stale);
        w.field(native::kCas);
        w.uint(r.cas);
        if (r.stale) {
          w.field(native::kLease);
          w.uint(native::kStale);
        }
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
      d.new_cas = req.new_cas;
      d.invalidate = (req.options & native::kInvalidate) != 0;
      d.drop_value = (req.options & native::kDropValue) != 0;
      if (d.invalidate && req.has_touch_ttl) {
        d.update_exptime = true;
        d.exptime = engine::resolve_exptime(req.touch_ttl, now);
      }
      if (req.has_version && req.version != 0 && !d.invalidate && !d.drop_value) {
        d.version = req.version;
        d.tombstone_exptime =
            engine::resolve_exptime(req.has_ttl ? req.ttl : native::kDefaultTombstoneSeconds, now);
      }
      auto r = ctx.engine.remove(d);
      if (r.status == EngineStatus::kOk) {
        if (!d.invalidate) ctx.counters.delete_hits.add();
      } else if (r.status != EngineStatus::kOlderVersion) {
        ctx.counters.delete_misses.add();  // NOT_FOUND, and EXISTS (a CAS mismatch)
      }
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
      if (req.has_cas && req.cas != 0) a.compare_cas = req.cas;
      a.new_cas = req.new_cas;
      if (req.has_touch_ttl) {
        a.update_exptime = true;
        a.exptime = engine::resolve_exptime(req.touch_ttl, now);
      }
      auto r = ctx.engine.arith(a);
      Counter& hits = a.incr ? ctx.counters.incr_hits : ctx.counters.decr_hits;
      Counter& misses = a.incr ? ctx.counters.incr_misses : ctx.counters.decr_misses;
      if (r.status == EngineStatus::kOk) {
        if (!r.created) hits.add();
        const bool with_meta = (req.options & native::kItemMeta) != 0;
        w.begin_reply(req.id, Status::kOk, with_meta ? 4 : 2);
        w.field(native::kNumber);
        w.uint(r.value);
        w.field(native::kCas);
        w.uint(r.cas);
        if (with_meta) {
          w.field(native::kPriorTtl);
          w.sint(r.created ? -1 : ttl_left(r.prior_exptime, now));
          w.field(native::kLease);
          w.uint(r.created ? native::kCreated : 0);
        }
        w.end();
      } else {
        if (r.status == EngineStatus::kNotFound) misses.add();
        reply_status(req.id, to_native(r.status), out);
      }
      return Action::kContinue;
    }
    case Op::kMultiGet: {
      // Values in key order; a miss is nil.
      const size_t start = out.size();
      w.begin_reply(req.id, Status::kOk, 1);
      w.field(native::kValues);
      w.array(static_cast<uint32_t>(req.keys.size()));
      bool checked = false;
      for (size_t i = 0; i < req.keys.size(); ++i) {
        const std::string_view key = req.keys[i];
        if (!checked && out.size() - start > kReplyPrecheck) {
          checked = true;
          if (reply_cannot_fit(
                  ctx.engine, i, req.keys.size(), [&](size_t k) { return req.keys[k]; },
                  out.size() - start, ctx.output_limit)) {
            out.truncate(start);
            native_error(req.id, Status::kTooLarge, "reply over the output limit", out);
            return Action::kContinue;
          }
        }
        auto r = ctx.engine.lookup(key, {}, [&](const engine::ItemView& v) {
          w.array(3);
          w.bin(v.value);
          w.uint(v.client_flags);
          w.uint(v.cas);
        });
        count_get(ctx, r);
        if (!r.hit) w.nil();
        if (out.size() - start > ctx.output_limit) {
          // Too large a reply: an error for this request, and the connection goes on.
          out.truncate(start);
          native_error(req.id, Status::kTooLarge, "reply over the output limit", out);
          return Action::kContinue;
        }
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
      if (!ctx.flush_enabled) {
        native_error(req.id, Status::kBadRequest, "flush_all not allowed (-F)", out);
        return Action::kContinue;
      }
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
      w.begin_reply(req.id, Status::kOk, 1);
      native::write_stats_field(w, lines.view());
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
    case Op::kAdmin:
      native_error(req.id, Status::kUnknownOp, "admin commands are cacherouter's", out);
      return Action::kContinue;
  }
  native_error(req.id, Status::kUnknownOp, "unknown op", out);
  return Action::kContinue;
}

}  // namespace cachetier::process
