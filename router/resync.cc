// Bringing a node back in sync: draining its siblings' hint lists, and copying one key from a
// sibling. Part of HealthChecker (health.h), on worker 0's thread.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "router/health.h"
#include "router/hints.h"

namespace cachetier::router {

using client::Call;
using client::Reply;
using native::Op;

namespace {
constexpr size_t kCopiesInFlight = 256;  // per hint list being drained
}  // namespace

void HealthChecker::copy_key(const std::shared_ptr<const Topology>& topo,
                             const std::shared_ptr<Node>& n, const Node& source,
                             const std::string& key, std::function<void(bool)> done) {
  const bool native_backend = topo->config.backend_protocol == client::Protocol::kNative;
  auto write = [this, n, done](Call c) {
    if (!n->writable()) return done(false);
    Status st = backends_.send(*n, c, [done](Reply&& r) {
      done(r.transport.is_ok() && r.code != native::Status::kServerError);
    });
    if (!st.is_ok()) done(false);
  };
  Call get;
  get.op = Op::kGet;
  get.key = key;
  // Over memcache text, kItemMeta makes it an mg with t: the TTL left, for the copy.
  get.options = native::kNoBump | (native_backend ? 0 : native::kItemMeta);
  Status st = backends_.send(source, get, [this, n, key, native_backend, write, done](Reply&& r) {
    if (!r.transport.is_ok()) return done(false);
    Call del;
    del.op = Op::kDelete;
    del.key = key;
    if (r.code == native::Status::kNotFound) {
      if (native_backend) {
        del.ttl = native::kDefaultTombstoneSeconds;
        del.version = versions_.next();
      }
      return write(del);
    }
    if (r.code != native::Status::kOk) return done(false);
    Call c;
    c.key = key;
    c.value = std::move(r.value);
    c.flags = r.flags;
    if (native_backend) {
      // With the sibling's version: a newer write that reached `n` meanwhile wins.
      c.op = Op::kSet;
      c.ttl = r.ttl;
      c.version = r.version != 0 ? r.version : versions_.next();
      c.new_cas = r.cas;  // CAS values stay the same on every replica
      return write(c);
    }
    // memcached has no versions: delete, then add with the TTL left, so that a newer write
    // that lands between the two wins (the add is then NOT_STORED).
    c.op = Op::kAdd;
    c.ttl = r.has_meta && r.prior_ttl > 0 ? r.prior_ttl : 0;
    if (!n->writable()) return done(false);
    (void)backends_.send(*n, del, [](Reply&&) {});
    write(c);
  });
  if (!st.is_ok()) done(false);
}

// One pass over `n`'s siblings: each one's hint list for `n` is read with its CAS, every key
// in it is copied from that sibling, and the list is deleted if its CAS did not change (a
// hint appended meanwhile keeps it for the next pass). The pass is clean when no sibling
// that could be asked held a hint or an overflow marker, and every question was answered.
// Siblings that are down, late or not connected cannot be asked and are passed over: their
// hints are read by the poll of nodes in service once they are back (docs/consistency.md).
void HealthChecker::drain(const std::shared_ptr<const Topology>& topo, size_t shard,
                          const std::shared_ptr<Node>& n) {
  struct Pass {
    size_t left = 1;  // held while the questions go out
    bool found = false, failed = false;
    int64_t began = 0;
  };
  auto pass = std::make_shared<Pass>();
  pass->began = now_ms();
  const std::string addr = n->addr();
  watch_[addr].draining = true;
  auto finish = [this, pass, n, addr]() {
    if (--pass->left != 0) return;
    Watch& w = watch_[addr];
    w.draining = false;
    w.clean = !pass->found && !pass->failed;
    if (w.clean) w.clean_began = pass->began;
    if (pass->found && n->state() == NodeState::kUp) {
      n->set_state(NodeState::kSyncing);
      spdlog::warn(
          "node {} missed writes that another router saw: reads go to its siblings "
          "until it is resynced",
          addr);
    }
  };
  const int64_t now = now_ms();
  for (const auto& mp : topo->shards[shard].replicas) {
    if (mp.get() == n.get() || mp->state() == NodeState::kDown) continue;
    if (late(watch_[mp->addr()], now, topo->config)) continue;
    std::shared_ptr<Node> m = mp;
    // The overflow marker: the node is emptied and warmed instead (empty_node).
    Call ov;
    ov.op = Op::kGet;
    ov.key = hints::overflow_key(*n);
    ov.options = native::kNoBump;
    ++pass->left;
    Status st = backends_.send(*m, ov, [pass, n, finish](Reply&& r) {
      if (!r.transport.is_ok()) {
        pass->failed = true;
      } else if (r.code == native::Status::kOk) {
        pass->found = true;
        n->force_overflow();
      }
      finish();
    });
    if (!st.is_ok()) {  // not connected: passed over, as a down sibling
      finish();
      continue;
    }
    Call list;
    list.op = Op::kGets;
    list.key = hints::list_key(*n);
    list.options = native::kNoBump;
    ++pass->left;
    st = backends_.send(*m, list, [this, topo, pass, n, m, finish](Reply&& r) {
      if (!r.transport.is_ok()) {
        pass->failed = true;
        return finish();
      }
      if (r.code == native::Status::kNotFound) return finish();
      if (r.code != native::Status::kOk) {
        pass->failed = true;
        return finish();
      }
      struct Copies {
        std::vector<std::string> keys;
        size_t next = 0, in_flight = 0;
        bool failed = false;
        uint64_t cas = 0;
      };
      auto cp = std::make_shared<Copies>();
      cp->cas = r.cas;
      if (!hints::parse(r.value, cp->keys)) {
        pass->found = true;
        n->force_overflow();  // unreadable: treat it as one that overflowed
        return finish();
      }
      // An empty list (memcache: created, its append not there yet) is left alone.
      if (cp->keys.empty()) return finish();
      pass->found = true;
      spdlog::info("node {}: {} keys to copy from {} (hints)", n->addr(), cp->keys.size(),
                   m->addr());
      // Copies with at most kCopiesInFlight outstanding; the list goes once all succeeded.
      auto step = std::make_shared<std::function<void()>>();
      *step = [this, topo, cp, n, m, pass, finish, step]() {
        while (cp->next < cp->keys.size() && cp->in_flight < kCopiesInFlight) {
          ++cp->in_flight;
          const std::string& key = cp->keys[cp->next++];
          // If this router saw the miss too, the copy repairs that as well.
          const uint64_t generation = n->missed_generation(key);
          copy_key(topo, n, *m, key, [cp, n, step, &key, generation](bool ok) {
            --cp->in_flight;
            if (ok) {
              if (generation != 0) n->unmiss(key, generation);
              n->counters.repaired.fetch_add(1, std::memory_order_relaxed);
            } else {
              cp->failed = true;
            }
            (*step)();
          });
        }
        if (cp->in_flight != 0 || cp->next < cp->keys.size()) return;
        // Done: copy what is still needed, then end this function (it holds itself).
        auto fin = finish;
        auto self = step;
        HealthChecker* hc = this;
        std::shared_ptr<Node> node = n, src = m;
        std::shared_ptr<Pass> ps = pass;
        const bool failed = cp->failed;
        const uint64_t cas = cp->cas;
        *self = nullptr;  // (this lambda is gone from here on: only locals below)
        if (failed) {
          ps->failed = true;
          return fin();
        }
        Call del;
        del.op = Op::kDelete;
        del.key = hints::list_key(*node);
        del.compare_cas = true;
        del.cas = cas;
        Status ds = hc->backends_.send(*src, del, [fin](Reply&&) { fin(); });
        if (!ds.is_ok()) fin();
      };
      (*step)();
    });
    if (!st.is_ok()) {
      pass->failed = true;
      finish();
    }
  }
  finish();
}

}  // namespace cachetier::router
