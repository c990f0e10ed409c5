// Migration-aware routing. See migrate.h.
#include "router/routes/migrate.h"

#include <memory>

#include "router/routes/write.h"

namespace cachetier::router {

using native::Op;

namespace {

bool plain_read(const Call& call) {
  return (call.op == Op::kGet || call.op == Op::kGets) && call.options == 0 && !call.has_vivify &&
         !call.has_recache;
}

bool hit(const std::optional<Reply>& r) {
  return r && r->transport.is_ok() && r->code == native::Status::kOk;
}

// Both owners' answers to one read; `done` gets the newest hit (else the new owner's answer)
// and whether it came from the previous owner and is newer than N's copy.
struct BothReads {
  std::optional<Reply> fresh, old;
  int left = 2;
  std::function<void(Reply&&, bool from_old)> done;
};

void read_both(RouteEnv& env, const Topology& topo, size_t shard, int old, const Call& call,
               ReadOptions opts, std::function<void(Reply&&, bool)> done) {
  topo.migration->counters->reads.fetch_add(1, std::memory_order_relaxed);
  auto st = std::make_shared<BothReads>();
  st->done = std::move(done);
  auto settle = [st] {
    if (--st->left > 0) return;
    const bool from_old =
        hit(st->old) && (!hit(st->fresh) || st->old->version > st->fresh->version);
    if (from_old) return st->done(std::move(*st->old), true);
    st->done(std::move(*st->fresh), false);
  };
  route_read_direct(env, topo, shard, call, opts, [st, settle](Reply&& r) {
    st->fresh = std::move(r);
    settle();
  });
  route_read_direct(env, *topo.migration->from, static_cast<size_t>(old), call, opts,
                    [st, settle](Reply&& r) {
                      st->old = std::move(r);
                      settle();
                    });
}

// Copies a hit of the previous owner into the new one without clobbering a newer write.
void backfill(RouteEnv& env, const Topology& topo, size_t shard, const std::string& key,
              const Reply& h, Done done) {
  topo.migration->counters->backfills.fetch_add(1, std::memory_order_relaxed);
  route_write_direct(env, topo, shard, backfill_call(topo, key, h), std::move(done));
}

// A versioned delete of `key` on the previous owner (a tombstone; plain on memcache nodes).
void invalidate(RouteEnv& env, const Topology& topo, int old, const std::string& key, Done done) {
  topo.migration->counters->invalidations.fetch_add(1, std::memory_order_relaxed);
  Call d;
  d.op = Op::kDelete;
  d.key = key;
  route_write_direct(env, *topo.migration->from, static_cast<size_t>(old), std::move(d),
                     std::move(done));
}

}  // namespace

int migrating_read(const Topology& topo, size_t shard, const Call& call) {
  if (topo.migration == nullptr || !plain_read(call)) return -1;
  return topo.moved_from(call.key, shard);
}

int migrating_change(const Topology& topo, size_t shard, const Call& call) {
  if (topo.migration == nullptr || call.key.empty()) return -1;
  if (!versioned_op(call.op) && call.op != Op::kTouch) return -1;
  return topo.moved_from(call.key, shard);
}

void route_migrated_read(RouteEnv& env, const Topology& topo, size_t shard, int old, Call call,
                         ReadOptions opts, Done done) {
  const Topology* t = &topo;
  RouteEnv* e = &env;
  std::string key = call.key;
  read_both(env, topo, shard, old, call, opts,
            [e, t, shard, key = std::move(key), done = std::move(done)](Reply&& r, bool from_old) {
              if (from_old) {
                t->migration->counters->old_owner_hits.fetch_add(1, std::memory_order_relaxed);
                backfill(*e, *t, shard, key, r, [](Reply&&) {});
              }
              done(std::move(r));
            });
}

void route_migrated_change(RouteEnv& env, const Topology& topo, size_t shard, int old, Call call,
                           Change change, Done done) {
  const Topology* t = &topo;
  RouteEnv* e = &env;
  // The change on N and the tombstone on O go out together; the answer is N's, once both
  // have answered.
  auto apply = [e, t, old, change = std::move(change), done = std::move(done)](Call c) mutable {
    struct Two {
      std::optional<Reply> answer;
      int left = 2;
      Done done;
    };
    auto two = std::make_shared<Two>();
    two->done = std::move(done);
    std::string key = c.key;
    change(std::move(c), [two](Reply&& r) {
      two->answer = std::move(r);
      if (--two->left == 0) two->done(std::move(*two->answer));
    });
    invalidate(*e, *t, old, key, [two](Reply&&) {
      if (--two->left == 0) two->done(std::move(*two->answer));
    });
  };
  const bool blind = (call.op == Op::kSet || call.op == Op::kDelete) && !call.compare_cas;
  if (blind) return apply(std::move(call));
  // The change needs the current item: pull it into N first.
  Call get;
  get.op = Op::kGet;
  get.key = call.key;
  auto pending = std::make_shared<Call>(std::move(call));
  read_both(env, topo, shard, old, get, ReadOptions{},
            [e, t, shard, pending, apply = std::move(apply)](Reply&& r, bool from_old) mutable {
              if (!from_old) return apply(std::move(*pending));
              t->migration->counters->old_owner_hits.fetch_add(1, std::memory_order_relaxed);
              auto run = std::make_shared<decltype(apply)>(std::move(apply));
              backfill(*e, *t, shard, pending->key, r,
                       [pending, run](Reply&&) { (*run)(std::move(*pending)); });
            });
}

}  // namespace cachetier::router
