// The compare-and-swap route. See cas.h.
#include "router/routes/cas.h"

#include "router/health.h"
#include "router/hints.h"
#include "router/routes/migrate.h"
#include "router/routes/write.h"

namespace cachetier::router {

using native::Op;

namespace {

// The change the siblings apply once the primary's compare held: the same change without the
// compare. An invalidating cas (ms I) keeps its compare, so that a sibling stores the value
// stale as the primary did (the siblings hold the same CAS); a sibling that then disagrees
// has the key noted as missed and is repaired from the primary.
Call sibling_change(const Call& compared) {
  Call c = compared;
  if ((c.options & native::kInvalidate) != 0) return c;
  c.compare_cas = false;
  c.cas = 0;
  if (c.op == Op::kCas) c.op = Op::kSet;
  return c;
}

void release(RouteEnv& env, const std::string& key) { env.release_cas(key); }

}  // namespace

void route_cas(RouteEnv& env, const Topology& topo, size_t shard, Call call, Done done) {
  if (topo.migration != nullptr) {
    if (int old = migrating_change(topo, shard, call); old >= 0) {
      RouteEnv* e = &env;
      const Topology* t = &topo;
      auto change = [e, t, shard](Call c, Done d) {
        route_cas_direct(*e, *t, shard, std::move(c), std::move(d));
      };
      return route_migrated_change(env, topo, shard, old, std::move(call), change, std::move(done));
    }
  }
  route_cas_direct(env, topo, shard, std::move(call), std::move(done));
}

void route_cas_direct(RouteEnv& env, const Topology& topo, size_t shard, Call call, Done done) {
  const Shard& s = topo.shards[shard];
  s.counters->requests.fetch_add(1, std::memory_order_relaxed);
  size_t first = s.replicas.size();
  for (size_t i = 0; i < s.replicas.size(); ++i) {
    if (s.replicas[i]->readable() && !s.replicas[i]->has_missed(call.key)) {
      first = i;
      break;
    }
  }
  if (first == s.replicas.size()) {
    s.counters->all_down.fetch_add(1, std::memory_order_relaxed);
    done(failed_reply("no live replica in shard " + s.name));
    return;
  }
  if (topo.config.backend_protocol == client::Protocol::kNative) {
    if (call.version == 0) call.version = env.versions.next();
    if (call.new_cas == 0) call.new_cas = call.version;
  }
  Node& primary = *s.replicas[first];
  primary.counters.requests.fetch_add(1, std::memory_order_relaxed);
  env.cas_pending.try_emplace(call.key);
  // The change is shared by the primary's callback and the siblings' (one allocation per cas).
  auto change = std::make_shared<Call>(sibling_change(call));
  const Topology* tp = &topo;
  Status st =
      env.backends.send(primary, call, [&env, tp, shard, first, change, done](Reply&& r) mutable {
        const Shard& sh = tp->shards[shard];
        Node& p = *sh.replicas[first];
        if (!r.transport.is_ok()) {
          note_failure(tp->config, p, r);
          done(std::move(r));
          return release(env, change->key);
        }
        note_success(p);
        if (r.code == native::Status::kOlderVersion) r.code = superseded(Op::kCas);
        // Siblings that miss the change get a hint on the primary (hints.h): before the answer
        // for those known down now, after it for a sibling whose change fails later.
        const bool native_backend = tp->config.backend_protocol == client::Protocol::kNative;
        auto hint_on_primary = [&env, tp, shard, first, change, native_backend](
                                   const Node& missed, client::ReplyCallback then) {
          Node& pr = *tp->shards[shard].replicas[first];
          if (!native_backend) {
            (void)env.backends.send(pr, hints::create_call(missed), [](Reply&&) {});
          }
          if (!then) then = [](Reply&&) {};
          Status hs =
              env.backends.send(pr, hints::append_call(missed, *change, native_backend), then);
          return hs.is_ok();
        };
        struct Waiting {
          size_t left = 1;
          Done done;
          Reply reply;
        };
        auto w = std::make_shared<Waiting>();
        w->done = std::move(done);
        auto one = [w]() {
          if (--w->left == 0) w->done(std::move(w->reply));
        };
        if (r.code == native::Status::kOk) {
          for (size_t i = 0; i < sh.replicas.size(); ++i) {
            if (i == first) continue;
            Node& n = *sh.replicas[i];
            if (!n.writable()) {
              note_missed(tp->config, n, *change);
              ++w->left;
              if (!hint_on_primary(n, [one](Reply&&) { one(); })) one();
              continue;
            }
            n.counters.requests.fetch_add(1, std::memory_order_relaxed);
            Status sst =
                env.backends.send(n, *change, [tp, shard, i, change, hint_on_primary](Reply&& cr) {
                  Node& m = *tp->shards[shard].replicas[i];
                  if (!cr.transport.is_ok()) {
                    note_failure(tp->config, m, cr);
                    note_missed(tp->config, m, *change);
                    hint_on_primary(m, nullptr);
                  } else {
                    note_success(m);
                    if (cr.code != native::Status::kOk &&
                        cr.code != native::Status::kOlderVersion) {
                      note_missed(tp->config, m, *change);  // it did not take the winner's change
                    }
                  }
                });
            if (!sst.is_ok()) {
              note_missed(tp->config, n, *change);
              hint_on_primary(n, nullptr);
            }
          }
        }
        w->reply = std::move(r);
        one();
        release(env, change->key);  // the siblings' changes are queued: later requests follow them
      });
  if (!st.is_ok()) {
    Reply r = failed_reply(primary.addr() + ": " + st.message());
    note_failure(topo.config, primary, r);
    done(std::move(r));
    release(env, change->key);
  }
}

}  // namespace cachetier::router
