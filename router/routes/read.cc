// The read route. See read.h.
#include "router/routes/read.h"

#include "client/ring/replica_order.h"
#include "router/health.h"
#include "router/routes/migrate.h"
#include "router/routes/write.h"

namespace cachetier::router {

namespace {

void attempt(RouteEnv& env, ReadCtx* ctx);

void finish(RouteEnv& env, ReadCtx* ctx, Reply&& r) {
  Done done = std::move(ctx->done);
  env.read_ctxs.give(ctx);
  done(std::move(r));
}

// Copies a hit into the cold replicas that missed it (backfill_call).
void backfill(RouteEnv& env, const ReadCtx& ctx, const Reply& hit) {
  const Shard& s = ctx.topo->shards[ctx.shard];
  const Call c = backfill_call(*ctx.topo, ctx.call.key, hit);
  for (uint8_t k = 0; k < ctx.n_cold; ++k) {
    Node& n = *s.replicas[ctx.cold[k]];
    n.counters.backfills.fetch_add(1, std::memory_order_relaxed);
    (void)env.backends.send(n, c, [](Reply&&) {});
  }
}

void on_reply(RouteEnv& env, ReadCtx* ctx, Reply&& r) {
  const Shard& s = ctx->topo->shards[ctx->shard];
  const uint8_t i = ctx->current;
  Node& n = *s.replicas[i];
  if (!r.transport.is_ok()) {
    note_failure(ctx->topo->config, n, r);
    ctx->last = std::move(r);
    attempt(env, ctx);
    return;
  }
  note_success(n);
  const bool single = ctx->call.op == native::Op::kGet || ctx->call.op == native::Op::kGets;
  if (single) {
    NodeWorkerStats& ns = n.worker_stats(env.worker);
    if (r.code == native::Status::kOk) ns.get_hits.add();
    if (r.code == native::Status::kNotFound) ns.get_misses.add();
  }
  if (single && r.code == native::Status::kNotFound && ctx->next < ctx->n_order &&
      n.warming(now_ms())) {
    // A cold replica's miss: ask a warm sibling, and back-fill this one on a hit.
    ctx->cold[ctx->n_cold++] = i;
    ctx->miss = std::move(r);
    attempt(env, ctx);
    return;
  }
  if (single && r.code == native::Status::kOk && ctx->n_cold > 0) backfill(env, *ctx, r);
  finish(env, ctx, std::move(r));
}

void attempt(RouteEnv& env, ReadCtx* ctx) {
  const Shard& s = ctx->topo->shards[ctx->shard];
  while (ctx->next < ctx->n_order) {
    const uint8_t i = ctx->order[ctx->next++];
    Node& n = *s.replicas[i];
    if (ctx->next > 1) n.counters.failovers.fetch_add(1, std::memory_order_relaxed);
    if (!n.readable() && ctx->next < ctx->n_order) continue;  // went down meanwhile
    n.counters.requests.fetch_add(1, std::memory_order_relaxed);
    ctx->current = i;
    Status st = env.backends.send(n, ctx->call,
                                  [&env, ctx](Reply&& r) { on_reply(env, ctx, std::move(r)); });
    if (st.is_ok()) return;
    Reply r = failed_reply(n.addr() + ": " + st.message());
    note_failure(ctx->topo->config, n, r);
    ctx->last = std::move(r);
  }
  if (!ctx->miss) s.counters->errors.fetch_add(1, std::memory_order_relaxed);
  Reply out = ctx->miss ? std::move(*ctx->miss) : std::move(ctx->last);
  finish(env, ctx, std::move(out));
}

}  // namespace

Call backfill_call(const Topology& topo, const std::string& key, const Reply& hit) {
  const bool native_backend = topo.config.backend_protocol == client::Protocol::kNative;
  Call c;
  c.op = native_backend ? native::Op::kSet : native::Op::kAdd;
  c.key = key;
  c.value = hit.value;
  c.flags = hit.flags;
  c.ttl = hit.ttl;
  if (native_backend) {
    c.version = hit.version != 0 ? hit.version : 1;
    c.new_cas = hit.cas;
  }
  return c;
}

namespace {

// The read route's body. `call` and `done` are moved from (by reference: the request path
// makes no extra copy or move of them on the way in).
void read_here(RouteEnv& env, const Topology& topo, size_t shard, Call& call, ReadOptions opts,
               Done& done) {
  if (topo.config.read_verify && !opts.primary &&
      (call.op == native::Op::kGet || call.op == native::Op::kGets) && call.options == 0 &&
      !call.has_vivify && !call.has_recache) {
    // read_verify: every readable replica, the newest version wins (docs/consistency.md).
    FanoutOptions fo;
    fo.newest = true;
    route_read_all(env, topo, shard, std::move(call), std::move(done), fo);
    return;
  }
  ReadCtx* ctx = env.read_ctxs.take();
  ctx->topo = &topo;
  ctx->shard = shard;
  ctx->done = std::move(done);
  const Shard& s = topo.shards[shard];
  s.counters->requests.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < s.replicas.size() && i < kMaxReplicas; ++i) {
    const Node& n = *s.replicas[i];
    if (n.readable() && !missed_any(n, call)) ctx->order[ctx->n_order++] = static_cast<uint8_t>(i);
  }
  ctx->call = std::move(call);
  if (ctx->n_order == 0) {
    s.counters->all_down.fetch_add(1, std::memory_order_relaxed);
    finish(env, ctx, failed_reply("no live replica in shard " + s.name));
    return;
  }
  if (!opts.primary) {
    client::order_replicas(ctx->order, ctx->order + ctx->n_order, topo.config.read_policy, env.rr++,
                           [&](uint8_t i) { return env.backends.outstanding(*s.replicas[i]); });
  }
  attempt(env, ctx);
}

}  // namespace

void route_read(RouteEnv& env, const Topology& topo, size_t shard, Call call, ReadOptions opts,
                Done done) {
  if (topo.migration != nullptr) {
    if (int old = migrating_read(topo, shard, call); old >= 0) {
      return route_migrated_read(env, topo, shard, old, std::move(call), opts, std::move(done));
    }
  }
  read_here(env, topo, shard, call, opts, done);
}

void route_read_direct(RouteEnv& env, const Topology& topo, size_t shard, Call call,
                       ReadOptions opts, Done done) {
  read_here(env, topo, shard, call, opts, done);
}

}  // namespace cachetier::router
