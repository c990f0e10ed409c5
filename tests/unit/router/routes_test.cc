// cacherouter's routes against a fake backend (as mcrouter tests its route handles): every
// call a route sends is recorded, and the test answers it when and how it likes (an error, a
// timeout, any order), then checks what the route sent next and what it answered.
#include <catch2/catch.hpp>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "router/health.h"
#include "router/routes/cas.h"
#include "router/routes/multi.h"
#include "router/routes/read.h"
#include "router/routes/write.h"

using namespace cachetier;
using namespace cachetier::router;
using native::Op;
using NStatus = native::Status;

namespace {

// Records sends per node; the test answers them. As a real connection: a callback never runs
// inside send().
class FakeBackends final : public BackendSet {
 public:
  struct Sent {
    std::string node;
    Call call;
    client::ReplyCallback done;
  };

  cachetier::Status send(const Node& n, const Call& call, client::ReplyCallback done) override {
    if (refused.count(n.addr())) return cachetier::Status(StatusCode::kIoError, "refused");
    sent.push_back(Sent{n.addr(), call, std::move(done)});
    return cachetier::Status::ok();
  }
  size_t outstanding(const Node& n) const override {
    size_t k = 0;
    for (const Sent& s : sent) k += s.node == n.addr();
    return k;
  }

  // Takes the oldest call sent to `node`.
  Sent take(const std::string& node) {
    for (auto it = sent.begin(); it != sent.end(); ++it) {
      if (it->node == node) {
        Sent s = std::move(*it);
        sent.erase(it);
        return s;
      }
    }
    FAIL("nothing was sent to " << node);
    return {};
  }
  size_t to(const std::string& node) const { return outstanding_by(node); }
  size_t outstanding_by(const std::string& node) const {
    size_t k = 0;
    for (const Sent& s : sent) k += s.node == node;
    return k;
  }

  std::deque<Sent> sent;
  std::set<std::string> refused;
};

Reply ok(std::string value = "") {
  Reply r;
  r.code = NStatus::kOk;
  r.value = std::move(value);
  return r;
}
Reply with_code(NStatus s) {
  Reply r;
  r.code = s;
  return r;
}
Reply transport_error() { return failed_reply("connection reset"); }
Reply timeout() {
  Reply r;
  r.transport = cachetier::Status(StatusCode::kInternal, "timeout");
  return r;
}

struct Fixture {
  explicit Fixture(size_t shards = 1, size_t replicas = 2, std::string extra = "") {
    std::string yaml = "read_policy: primary\n" + extra + "shards:\n";
    if (extra.find("failure_limit") == std::string::npos) yaml = "failure_limit: 1\n" + yaml;
    int port = 1;
    for (size_t s = 0; s < shards; ++s) {
      yaml += "  - name: s" + std::to_string(s) + "\n    replicas: [";
      for (size_t r = 0; r < replicas; ++r) {
        yaml += (r ? ", " : "") + std::string("10.0.0.1:") + std::to_string(port++);
      }
      yaml += "]\n";
    }
    auto cfg = parse_config(yaml, "test.yaml");
    REQUIRE(cfg.is_ok());
    auto t = build_topology(cfg.value(), nullptr);
    REQUIRE(t.is_ok());
    topo = t.value();
    // New nodes start syncing (unverified); these tests start from a verified tier.
    for (const auto& sh : topo->shards) {
      for (const auto& n : sh.replicas) n->set_state(NodeState::kUp);
    }
  }
  // As a connection that closes: whatever is still unanswered fails (a failover it causes
  // fails too), so every route finishes and gives its context back.
  ~Fixture() {
    for (int i = 0; i < 1000 && !backends.sent.empty(); ++i) {
      FakeBackends::Sent s = std::move(backends.sent.front());
      backends.sent.pop_front();
      s.done(failed_reply("connection closed"));
    }
  }
  Node& node(size_t shard, size_t replica) { return *topo->shards[shard].replicas[replica]; }
  std::string addr(size_t shard, size_t replica) { return node(shard, replica).addr(); }

  std::shared_ptr<const Topology> topo;
  FakeBackends backends;
  VersionClock versions;
  RouteEnv env{backends, versions};
  std::optional<Reply> answer;
  Done done() {
    return [this](Reply&& r) { answer = std::move(r); };
  }
};

Call get(std::string key) {
  Call c;
  c.op = Op::kGet;
  c.key = std::move(key);
  return c;
}
Call set(std::string key, std::string value, Op op = Op::kSet) {
  Call c;
  c.op = op;
  c.key = std::move(key);
  c.value = std::move(value);
  return c;
}

}  // namespace

TEST_CASE("routes: a read fails over on an error and on a timeout", "[router][routes]") {
  Fixture f(1, 3);
  route_read(f.env, *f.topo, 0, get("k"), {}, f.done());
  REQUIRE(f.backends.sent.size() == 1);  // one replica at a time
  f.backends.take(f.addr(0, 0)).done(transport_error());
  CHECK_FALSE(f.answer);
  f.backends.take(f.addr(0, 1)).done(timeout());
  CHECK_FALSE(f.answer);
  f.backends.take(f.addr(0, 2)).done(ok("v"));
  REQUIRE(f.answer);
  CHECK(f.answer->value == "v");
  CHECK(f.node(0, 0).counters.errors == 1);
  CHECK(f.node(0, 1).counters.timeouts == 1);
  CHECK(f.node(0, 2).counters.failovers == 1);
  // failure_limit 1: both failed replicas are down now; the next read goes to the third.
  CHECK(f.node(0, 0).state() == NodeState::kDown);
  f.answer.reset();
  route_read(f.env, *f.topo, 0, get("k"), {}, f.done());
  CHECK(f.backends.to(f.addr(0, 2)) == 1);
}

TEST_CASE("routes: a refused send fails over at once; all down is an answer", "[router][routes]") {
  Fixture f(1, 2);
  f.backends.refused = {f.addr(0, 0)};
  route_read(f.env, *f.topo, 0, get("k"), {}, f.done());
  CHECK(f.backends.to(f.addr(0, 1)) == 1);
  f.backends.take(f.addr(0, 1)).done(ok("v"));
  REQUIRE(f.answer);
  CHECK(f.answer->transport.is_ok());

  f.node(0, 1).set_state(NodeState::kDown);  // node 0 was marked down by its refusal
  f.answer.reset();
  route_read(f.env, *f.topo, 0, get("k"), {}, f.done());
  REQUIRE(f.answer);
  CHECK_FALSE(f.answer->transport.is_ok());
  CHECK(f.answer->transport.message() == "no live replica in shard s0");
  f.answer.reset();
  route_write(f.env, *f.topo, 0, set("k", "v"), f.done());
  REQUIRE(f.answer);
  CHECK(f.answer->transport.message() == "all replicas of shard s0 are down");
  CHECK(f.node(0, 0).has_missed("k"));  // noted for repair
  CHECK(f.node(0, 1).has_missed("k"));
}

TEST_CASE("routes: a cold replica's miss is retried on a sibling and back-filled",
          "[router][routes]") {
  Fixture f(1, 2);
  f.node(0, 0).start_warmup(now_ms() + 60000);
  route_read(f.env, *f.topo, 0, get("k"), {}, f.done());
  f.backends.take(f.addr(0, 0)).done(with_code(NStatus::kNotFound));
  CHECK_FALSE(f.answer);
  Reply hit = ok("v");
  hit.version = 42;
  hit.cas = 42;
  hit.ttl = 30;
  f.backends.take(f.addr(0, 1)).done(std::move(hit));
  REQUIRE(f.answer);
  CHECK(f.answer->value == "v");
  auto fill = f.backends.take(f.addr(0, 0));  // the back-fill into the cold one
  CHECK(fill.call.op == Op::kSet);
  CHECK(fill.call.value == "v");
  CHECK(fill.call.version == 42);  // a newer write that reaches it first still wins
  CHECK(fill.call.new_cas == 42);  // and the CAS is the same on both
  CHECK(fill.call.ttl == 30);
  CHECK(f.node(0, 0).counters.backfills == 1);
}

TEST_CASE("routes: all_sync waits for every replica, all_async for the first", "[router][routes]") {
  for (bool async : {false, true}) {
    Fixture f(1, 2, async ? "write_policy: all_async\n" : "");
    route_write(f.env, *f.topo, 0, set("k", "v"), f.done());
    REQUIRE(f.backends.sent.size() == 2);
    auto first = f.backends.take(f.addr(0, 0));
    auto second = f.backends.take(f.addr(0, 1));
    CHECK(first.call.version != 0);  // every write carries a version...
    CHECK(first.call.version == second.call.version);
    CHECK(first.call.new_cas == first.call.version);  // ...that is its CAS on every replica
    Reply r1 = ok();
    r1.cas = 1;
    Reply r0 = ok();
    r0.cas = 0;
    second.done(std::move(r1));  // the second replica answers first
    CHECK(f.answer.has_value() == async);
    first.done(std::move(r0));
    REQUIRE(f.answer);
    CHECK(f.answer->cas == (async ? 1u : 0u));  // all_sync answers with the first replica's
  }
}

TEST_CASE("routes: a write that lost to a newer version is answered as superseded",
          "[router][routes]") {
  auto outcome = [](Op op) {
    Fixture f(1, 1);
    Call c = set("k", "v", op);
    c.cas = 5;
    route_write(f.env, *f.topo, 0, std::move(c), f.done());
    f.backends.take(f.addr(0, 0)).done(with_code(NStatus::kOlderVersion));
    return f.answer->code;
  };
  CHECK(outcome(Op::kSet) == NStatus::kOk);  // it happened, just before the newer one
  CHECK(outcome(Op::kAdd) == NStatus::kNotStored);
  CHECK(outcome(Op::kIncr) == NStatus::kOlderVersion);
  CHECK(superseded(Op::kCas) == NStatus::kExists);
}

TEST_CASE("routes: a write that skips a down node leaves a hint on each sibling written",
          "[router][routes]") {
  Fixture f(1, 3);
  f.node(0, 0).set_state(NodeState::kDown);
  Call ms;
  ms.op = Op::kMultiSet;
  ms.items = {{"a", "1"}, {"bb", "2"}};
  route_write(f.env, *f.topo, 0, ms, f.done());
  CHECK(f.backends.to(f.addr(0, 0)) == 0);
  for (int r = 1; r <= 2; ++r) {
    auto write = f.backends.take(f.addr(0, r));
    CHECK(write.call.op == Op::kMultiSet);
    auto hint = f.backends.take(f.addr(0, r));  // queued right behind the write
    CHECK(hint.call.op == Op::kAppend);
    CHECK(hint.call.key == "__cachetier:hints:" + f.addr(0, 0));
    CHECK(hint.call.value == "1:a2:bb");
    write.done(ok());
    CHECK_FALSE(f.answer);
    // A full list: an overflow marker goes to that sibling.
    Reply full = ok();
    full.code = r == 2 ? NStatus::kTooLarge : NStatus::kOk;
    hint.done(std::move(full));
  }
  REQUIRE(f.answer);
  CHECK(f.answer->code == NStatus::kOk);
  auto marker = f.backends.take(f.addr(0, 2));
  CHECK(marker.call.op == Op::kSet);
  CHECK(marker.call.key == "__cachetier:hints-overflow:" + f.addr(0, 0));
  marker.done(ok());
}

TEST_CASE("routes: read_verify reads every replica and answers with the newest version",
          "[router][routes]") {
  Fixture f(1, 3, "read_verify: true\n");
  route_read(f.env, *f.topo, 0, get("k"), {}, f.done());
  for (int r = 0; r < 3; ++r) CHECK(f.backends.to(f.addr(0, r)) == 1);
  Reply old_hit = ok();
  old_hit.value = "old";
  old_hit.version = 5;
  Reply new_hit = ok();
  new_hit.value = "new";
  new_hit.version = 9;
  Reply miss = ok();
  miss.code = NStatus::kNotFound;
  f.backends.take(f.addr(0, 0)).done(std::move(old_hit));
  f.backends.take(f.addr(0, 1)).done(std::move(miss));
  CHECK_FALSE(f.answer);  // every replica answers first
  f.backends.take(f.addr(0, 2)).done(std::move(new_hit));
  REQUIRE(f.answer);
  CHECK(f.answer->value == "new");
  // A hit wins over a miss, whatever the order.
  f.answer.reset();
  route_read(f.env, *f.topo, 0, get("k"), {}, f.done());
  Reply m2 = ok();
  m2.code = NStatus::kNotFound;
  Reply h2 = ok();
  h2.value = "v";
  h2.version = 1;
  f.backends.take(f.addr(0, 0)).done(std::move(h2));
  f.backends.take(f.addr(0, 1)).done(std::move(m2));
  f.backends.take(f.addr(0, 2)).done(timeout());
  REQUIRE(f.answer);
  CHECK(f.answer->value == "v");
}

TEST_CASE("routes: read_verify needs native backends", "[router][routes]") {
  auto cfg = parse_config(
      "backend_protocol: memcache\nread_verify: true\nshards:\n  - name: s\n"
      "    replicas: [10.0.0.1:1]\n",
      "t.yaml");
  REQUIRE_FALSE(cfg.is_ok());
  CHECK(cfg.status().message().find("read_verify") != std::string::npos);
}

TEST_CASE("routes: a failed write leg notes the key missed on that node", "[router][routes]") {
  Fixture f(1, 2, "failure_limit: 10\n");
  route_write(f.env, *f.topo, 0, set("k", "v"), f.done());
  f.backends.take(f.addr(0, 0)).done(timeout());
  f.backends.take(f.addr(0, 1)).done(ok());
  // The sibling is told, after the write on the same connection, that node 0 missed k; the
  // write is answered once that hint is stored.
  CHECK_FALSE(f.answer);
  auto hint = f.backends.take(f.addr(0, 1));
  CHECK(hint.call.op == Op::kAppend);
  CHECK(hint.call.key == "__cachetier:hints:" + f.addr(0, 0));
  CHECK(hint.call.value == "1:k");
  CHECK(hint.call.has_vivify);
  hint.done(ok());
  REQUIRE(f.answer);
  CHECK(f.answer->code == NStatus::kOk);
  CHECK(f.node(0, 0).has_missed("k"));
  CHECK(f.node(0, 0).state() == NodeState::kUp);  // one timeout is not a node down
  f.answer.reset();
  route_read(f.env, *f.topo, 0, get("k"), {}, f.done());  // skips the node that missed it
  CHECK(f.backends.to(f.addr(0, 0)) == 0);
  CHECK(f.backends.to(f.addr(0, 1)) == 1);
}

TEST_CASE("routes: a cas leaves a hint on the primary for a sibling that misses its change",
          "[router][routes]") {
  Fixture f(1, 3, "failure_limit: 10\n");
  f.node(0, 2).set_state(NodeState::kDown);
  Call c = set("k", "new", Op::kCas);
  c.cas = 77;
  route_cas(f.env, *f.topo, 0, c, f.done());
  f.backends.take(f.addr(0, 0)).done(ok());
  CHECK_FALSE(f.answer);  // the down sibling's hint is stored first
  auto copy = f.backends.take(f.addr(0, 1));
  auto hint = f.backends.take(f.addr(0, 0));
  CHECK(hint.call.op == Op::kAppend);
  CHECK(hint.call.key == "__cachetier:hints:" + f.addr(0, 2));
  hint.done(ok());
  REQUIRE(f.answer);
  CHECK(f.answer->code == NStatus::kOk);
  // A sibling whose copy fails later gets one too (after the answer).
  copy.done(timeout());
  auto late = f.backends.take(f.addr(0, 0));
  CHECK(late.call.key == "__cachetier:hints:" + f.addr(0, 1));
  CHECK(late.call.value == "1:k");
  late.done(ok());
  CHECK(f.node(0, 1).has_missed("k"));
}

TEST_CASE("routes: a cas compares on the primary, then copies to the siblings",
          "[router][routes]") {
  Fixture f(1, 3);
  Call c = set("k", "new", Op::kCas);
  c.cas = 77;
  route_cas(f.env, *f.topo, 0, c, f.done());
  REQUIRE(f.backends.sent.size() == 1);
  auto compare = f.backends.take(f.addr(0, 0));
  CHECK(compare.call.op == Op::kCas);
  CHECK(compare.call.cas == 77);
  CHECK(f.env.cas_in_flight("k"));  // later requests on "k" wait for the copies
  compare.done(ok());
  REQUIRE(f.answer);
  CHECK_FALSE(f.env.cas_in_flight("k"));
  for (size_t i : {1, 2}) {
    auto copy = f.backends.take(f.addr(0, i));
    CHECK(copy.call.op == Op::kSet);  // unconditional on the siblings
    CHECK_FALSE(copy.call.compare_cas);
    CHECK(copy.call.version == compare.call.version);
    CHECK(copy.call.new_cas == compare.call.new_cas);
    copy.done(ok());
  }
  // A lost compare sends nothing else.
  f.answer.reset();
  route_cas(f.env, *f.topo, 0, c, f.done());
  f.backends.take(f.addr(0, 0)).done(with_code(NStatus::kExists));
  CHECK(f.answer->code == NStatus::kExists);
  CHECK(f.backends.sent.empty());
}

TEST_CASE("routes: a multi-get is split by shard, each key once, merged in request order",
          "[router][routes]") {
  Fixture f(3, 1);
  std::vector<std::string> keys;
  for (int i = 0; i < 30; ++i) keys.push_back("key" + std::to_string(i % 20));  // 10 repeats
  std::vector<std::string_view> views(keys.begin(), keys.end());
  route_multi_get(f.env, *f.topo, views, {}, f.done());
  REQUIRE(f.backends.sent.size() == 3);  // one per shard, all at once
  size_t distinct = 0;
  std::map<std::string, std::string> owner;
  for (const auto& s : f.backends.sent) {
    CHECK(s.call.op == Op::kMultiGet);
    distinct += s.call.keys.size();
    for (const auto& k : s.call.keys) owner[k] = s.node;
  }
  CHECK(distinct == 20);
  // Answer in reverse order; every value is its key, except key3 which misses.
  while (!f.backends.sent.empty()) {
    auto s = std::move(f.backends.sent.back());
    f.backends.sent.pop_back();
    Reply r = ok();
    for (const auto& k : s.call.keys) {
      if (k == "key3") {
        r.values.emplace_back(std::nullopt);
      } else {
        char* at = r.hold(k.size());
        std::memcpy(at, k.data(), k.size());
        r.values.emplace_back(Reply::Value{std::string_view(at, k.size()), 0, 0});
      }
    }
    s.done(std::move(r));
  }
  REQUIRE(f.answer);
  REQUIRE(f.answer->values.size() == keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == "key3") {
      CHECK_FALSE(f.answer->values[i]);
    } else {
      REQUIRE(f.answer->values[i]);
      CHECK(f.answer->values[i]->value == keys[i]);
    }
  }
}

TEST_CASE("routes: a read of every replica merges fetched and idle", "[router][routes]") {
  Fixture f(1, 2);
  Call c = get("k");
  c.options = native::kItemMeta;
  FanoutOptions merge;
  merge.merge_meta = true;
  route_read_all(f.env, *f.topo, 0, std::move(c), f.done(), merge);
  REQUIRE(f.backends.sent.size() == 2);
  Reply a = ok("v");
  a.has_meta = true;
  a.fetched = false;
  a.idle = 9;
  a.cas = 1;
  Reply b = ok("v");
  b.has_meta = true;
  b.fetched = true;  // a plain get went to this replica
  b.idle = 2;
  b.cas = 2;
  f.backends.take(f.addr(0, 1)).done(std::move(b));
  f.backends.take(f.addr(0, 0)).done(std::move(a));
  REQUIRE(f.answer);
  CHECK(f.answer->cas == 1);   // the primary's item
  CHECK(f.answer->fetched);    // fetched on some replica
  CHECK(f.answer->idle == 2);  // last read there
}
