// The fan-out routes. See write.h.
#include "router/routes/write.h"

#include "router/health.h"
#include "router/hints.h"
#include "router/routes/migrate.h"

namespace cachetier::router {

using native::Op;

bool versioned_op(Op op) {
  switch (op) {
    case Op::kSet:
    case Op::kAdd:
    case Op::kReplace:
    case Op::kAppend:
    case Op::kPrepend:
    case Op::kCas:
    case Op::kDelete:
    case Op::kIncr:
    case Op::kDecr:
      return true;
    default:
      return false;
  }
}

native::Status superseded(Op op) {
  switch (op) {
    case Op::kAdd:
      return native::Status::kNotStored;
    case Op::kCas:
      return native::Status::kExists;
    case Op::kIncr:
    case Op::kDecr:
      return native::Status::kOlderVersion;
    default:
      return native::Status::kOk;
  }
}

namespace {

// Whether `call` gives the item it changes or creates a new CAS.
bool changes_cas(const Call& call) {
  switch (call.op) {
    case Op::kSet:
    case Op::kAdd:
    case Op::kReplace:
    case Op::kAppend:
    case Op::kPrepend:
    case Op::kCas:
    case Op::kIncr:
    case Op::kDecr:
      return true;
    case Op::kDelete:
      return (call.options & (native::kInvalidate | native::kDropValue)) != 0;
    case Op::kGet:
    case Op::kGets:
    case Op::kGat:
      return call.has_vivify;
    default:
      return false;
  }
}

void on_leg_reply(RouteEnv& env, FanoutLeg* leg, Reply&& r);
void answer(RouteEnv& env, FanoutCtx* ctx);

// Once every leg and every hint has answered: the answer (if not given already), then the
// context goes back to the spares.
void finish_if_done(RouteEnv& env, FanoutCtx* ctx) {
  if (ctx->left != 0 || ctx->hints_left != 0) return;
  if (!ctx->answered) return answer(env, ctx);
  env.fanout_ctxs.give(ctx);
}

// Records on replica `to` that `missed` missed this write (hints.h). Sent after the write's
// own leg to `to`, on the same connection, so a router that reads the hint finds the write
// already applied there. The write is answered once the hint is stored (all_sync).
void send_hint(RouteEnv& env, FanoutCtx* ctx, uint8_t to, const Node* missed, bool again = false) {
  const Shard& s = ctx->topo->shards[ctx->shard];
  Node* y = s.replicas[to].get();
  if (!y->writable()) return;
  const bool native_backend = ctx->topo->config.backend_protocol == client::Protocol::kNative;
  if (!native_backend) (void)env.backends.send(*y, hints::create_call(*missed), [](Reply&&) {});
  ++ctx->hints_left;
  Status st = env.backends.send(
      *y, hints::append_call(*missed, ctx->call, native_backend),
      [&env, ctx, to, y, missed, again, native_backend](Reply&& r) {
        if (r.transport.is_ok() && r.code != native::Status::kOk) {
          if (!native_backend && !again && r.code == native::Status::kNotStored) {
            send_hint(env, ctx, to, missed, true);  // a drain deleted the list in between
          } else {
            // The list is full: X will be emptied and warmed instead.
            (void)env.backends.send(*y, hints::overflow_call(*missed), [](Reply&&) {});
          }
        }
        --ctx->hints_left;
        finish_if_done(env, ctx);
      });
  if (!st.is_ok()) --ctx->hints_left;
}

void fan_out(RouteEnv& env, const Topology& topo, size_t shard, Call call, Done done,
             FanoutOptions opts, bool write) {
  const Shard& s = topo.shards[shard];
  s.counters->requests.fetch_add(1, std::memory_order_relaxed);
  bool router_version = false;
  if (write && topo.config.backend_protocol == client::Protocol::kNative) {
    if (call.version == 0 && versioned_op(call.op)) {
      call.version = env.versions.next();
      router_version = true;
    }
    // The same CAS on every replica (the version, when there is one).
    if (call.new_cas == 0 && changes_cas(call)) {
      call.new_cas = call.version != 0 ? call.version : env.versions.next();
    }
  }
  uint8_t targets[kMaxReplicas];
  size_t n_targets = 0;
  uint32_t mergeable = 0;
  uint32_t skipped = 0;  // replicas not written to (down): each gets hints on the others
  for (size_t i = 0; i < s.replicas.size() && i < kMaxReplicas; ++i) {
    Node& n = *s.replicas[i];
    const bool readable = n.readable() && !missed_any(n, call);
    if (write ? n.writable() : readable) {
      targets[n_targets++] = static_cast<uint8_t>(i);
      if (readable) mergeable |= 1u << i;
    } else if (write) {
      note_missed(topo.config, n, call);
      skipped |= 1u << i;
    }
  }
  if (n_targets == 0) {
    s.counters->all_down.fetch_add(1, std::memory_order_relaxed);
    s.counters->errors.fetch_add(1, std::memory_order_relaxed);
    done(failed_reply((write ? "all replicas of shard " : "no live replica in shard ") + s.name +
                      (write ? " are down" : "")));
    return;
  }
  FanoutCtx* ctx = env.fanout_ctxs.take();
  ctx->topo = &topo;
  ctx->shard = shard;
  ctx->done = std::move(done);
  ctx->call = std::move(call);
  ctx->write = write;
  ctx->router_version = router_version;
  ctx->merge_meta = opts.merge_meta;
  ctx->newest = opts.newest;
  ctx->mergeable = mergeable;
  ctx->left = n_targets;
  ctx->hints_left = 1;  // held until the hints below are sent: a leg may fail at once
  ctx->sent = 0;
  for (size_t t = 0; t < n_targets; ++t) ctx->sent |= 1u << targets[t];
  for (size_t t = 0; t < n_targets; ++t) {
    const uint8_t i = targets[t];
    FanoutLeg* leg = &ctx->legs[i];
    leg->ctx = ctx;
    leg->replica = i;
    Node& n = *s.replicas[i];
    n.counters.requests.fetch_add(1, std::memory_order_relaxed);
    Status st = env.backends.send(n, ctx->call,
                                  [&env, leg](Reply&& r) { on_leg_reply(env, leg, std::move(r)); });
    // (ctx may be gone after the last on_leg_reply: nothing below touches it.)
    if (!st.is_ok()) on_leg_reply(env, leg, failed_reply(n.addr() + ": " + st.message()));
  }
  for (size_t i = 0; skipped != 0 && i < s.replicas.size() && i < kMaxReplicas; ++i) {
    if (!((skipped >> i) & 1u)) continue;
    for (size_t t = 0; t < n_targets; ++t) send_hint(env, ctx, targets[t], s.replicas[i].get());
  }
  --ctx->hints_left;
  finish_if_done(env, ctx);
}

void answer(RouteEnv& env, FanoutCtx* ctx) {
  const Shard& s = ctx->topo->shards[ctx->shard];
  ctx->answered = true;
  if (!ctx->first_ok) s.counters->errors.fetch_add(1, std::memory_order_relaxed);
  Done done = std::move(ctx->done);
  Reply out = ctx->first_ok ? std::move(*ctx->first_ok) : std::move(*ctx->first_failure);
  if (ctx->merge_meta && ctx->first_ok && out.code == native::Status::kOk && out.has_meta) {
    out.fetched = ctx->any_fetched;
    out.idle = ctx->min_idle == UINT64_MAX ? out.idle : ctx->min_idle;
  }
  env.fanout_ctxs.give(ctx);
  done(std::move(out));
}

void on_leg_reply(RouteEnv& env, FanoutLeg* leg, Reply&& r) {
  FanoutCtx* ctx = leg->ctx;
  const Shard& s = ctx->topo->shards[ctx->shard];
  const uint8_t i = leg->replica;
  Node& n = *s.replicas[i];
  const bool ok = r.transport.is_ok();
  if (!ok) {
    note_failure(ctx->topo->config, n, r);
    if (ctx->write) {
      note_missed(ctx->topo->config, n, ctx->call);
      for (uint8_t j = 0; j < s.replicas.size() && j < kMaxReplicas; ++j) {
        if (j != i && ((ctx->sent >> j) & 1u)) send_hint(env, ctx, j, &n);
      }
    }
  } else {
    note_success(n);
    if (r.code == native::Status::kOlderVersion && ctx->router_version) {
      r.code = superseded(ctx->call.op);
    }
    if (ctx->merge_meta && r.code == native::Status::kOk && r.has_meta &&
        (ctx->mergeable >> i) & 1u) {
      ctx->any_fetched |= r.fetched;
      ctx->min_idle = std::min(ctx->min_idle, r.idle);
    }
  }
  --ctx->left;
  if (!ctx->answered && ok && !ctx->merge_meta &&
      ctx->topo->config.write_policy == WritePolicy::kAllAsync) {
    ctx->answered = true;
    ctx->done(std::move(r));
  } else if (!ctx->answered && ctx->newest && ok) {
    // read_verify: the hit with the highest version wins, a hit wins over a miss.
    const bool hit = r.code == native::Status::kOk;
    const bool had_hit = ctx->first_ok && ctx->first_ok->code == native::Status::kOk;
    if (!ctx->first_ok || (hit && (!had_hit || r.version > ctx->first_ok->version))) {
      ctx->first_ok = std::move(r);
      ctx->first_ok_at = i;
    }
  } else if (!ctx->answered) {
    if (ok && i < ctx->first_ok_at) {
      ctx->first_ok = std::move(r);
      ctx->first_ok_at = i;
    } else if (!ok && i < ctx->first_failure_at) {
      ctx->first_failure = std::move(r);
      ctx->first_failure_at = i;
    }
  }
  finish_if_done(env, ctx);
}

}  // namespace

void route_write(RouteEnv& env, const Topology& topo, size_t shard, Call call, Done done,
                 FanoutOptions opts) {
  if (topo.migration != nullptr) {
    if (int old = migrating_change(topo, shard, call); old >= 0) {
      RouteEnv* e = &env;
      const Topology* t = &topo;
      auto change = [e, t, shard, opts](Call c, Done d) {
        fan_out(*e, *t, shard, std::move(c), std::move(d), opts, true);
      };
      return route_migrated_change(env, topo, shard, old, std::move(call), change, std::move(done));
    }
  }
  fan_out(env, topo, shard, std::move(call), std::move(done), opts, true);
}

void route_write_direct(RouteEnv& env, const Topology& topo, size_t shard, Call call, Done done,
                        FanoutOptions opts) {
  fan_out(env, topo, shard, std::move(call), std::move(done), opts, true);
}

void route_read_all(RouteEnv& env, const Topology& topo, size_t shard, Call call, Done done,
                    FanoutOptions opts) {
  fan_out(env, topo, shard, std::move(call), std::move(done), opts, false);
}

}  // namespace cachetier::router
