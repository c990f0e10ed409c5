// cacherouter's shared state: a node's missed keys (with generations, so a repair never forgets
// a newer miss), marking down, the version clock, config errors naming line and field, and the
// migration window a change of placement opens.
#include "router/topology.h"

#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "router/config.h"

using namespace cachetier::router;

TEST_CASE("router: a repair forgets a missed key only if it was not missed again", "[router]") {
  Node n("127.0.0.1:1", "127.0.0.1", 1);
  CHECK_FALSE(n.any_missed());
  n.note_missed("a", 100);
  n.note_missed("b", 100);
  CHECK(n.has_missed("a"));
  CHECK_FALSE(n.has_missed("c"));
  auto taken = n.take_missed(10);
  REQUIRE(taken.size() == 2);
  n.note_missed("a", 100);  // a newer write to "a" failed while the repair was running
  for (const auto& [key, gen] : taken) n.unmiss(key, gen);
  CHECK(n.has_missed("a"));  // still to repair
  CHECK_FALSE(n.has_missed("b"));
  CHECK(n.missed_size() == 1);
  auto again = n.take_missed(10);
  REQUIRE(again.size() == 1);
  n.unmiss(again[0].first, again[0].second);
  CHECK_FALSE(n.any_missed());
}

TEST_CASE("router: past the limit a node's missed keys overflow", "[router]") {
  Node n("127.0.0.1:1", "127.0.0.1", 1);
  for (int i = 0; i < 5; ++i) n.note_missed("k" + std::to_string(i), 5);
  CHECK_FALSE(n.overflowed());
  n.note_missed("one-more", 5);
  CHECK(n.overflowed());
  CHECK(n.has_missed("anything"));  // no key may be trusted on it now
  // The flush is sent when overflow_misses() is M; a write missed before its answer means
  // the flush may not cover it, so the overflow stays (and the node is flushed again).
  uint64_t m = n.overflow_misses();
  n.note_missed("during-the-flush", 5);
  CHECK_FALSE(n.clear_overflow_if(m));
  CHECK(n.overflowed());
  CHECK(n.has_missed("anything"));
  m = n.overflow_misses();
  CHECK(n.clear_overflow_if(m));
  CHECK_FALSE(n.overflowed());
  CHECK_FALSE(n.has_missed("anything"));
  CHECK_FALSE(n.any_missed());  // it starts again empty
}

TEST_CASE("router: failure_limit consecutive failures mark a node down", "[router]") {
  Node n("127.0.0.1:1", "127.0.0.1", 1);
  CHECK_FALSE(n.on_failure(3, 100));
  n.on_success();  // not consecutive
  CHECK_FALSE(n.on_failure(3, 100));
  CHECK_FALSE(n.on_failure(3, 100));
  CHECK(n.on_failure(3, 100));
  CHECK(n.state() == NodeState::kDown);
  CHECK_FALSE(n.readable());
  CHECK_FALSE(n.writable());
  CHECK_FALSE(n.probe_due(now_ms()));  // first probe after retry_ms
  CHECK(n.probe_due(now_ms() + 101));
  n.set_state(NodeState::kSyncing);
  CHECK(n.writable());
  CHECK_FALSE(n.readable());
}

TEST_CASE("router: versions increase and never repeat across threads", "[router]") {
  VersionClock clock;
  std::vector<std::vector<uint64_t>> seen(4);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) seen[t].push_back(clock.next());
    });
  }
  for (auto& t : ts) t.join();
  std::set<uint64_t> all;
  for (const auto& v : seen) {
    for (size_t i = 1; i < v.size(); ++i) REQUIRE(v[i] > v[i - 1]);
    all.insert(v.begin(), v.end());
  }
  CHECK(all.size() == 80000);
}

TEST_CASE("router: config errors name the line and the field", "[router]") {
  auto bad = [](const std::string& text) {
    auto r = parse_config(text, "r.yaml");
    REQUIRE_FALSE(r.is_ok());
    return r.status().message();
  };
  CHECK(bad("threads: 0\nshards:\n  - name: a\n    replicas: [h:1]\n")
            .rfind("r.yaml:1: threads", 0) == 0);
  CHECK(bad("shards:\n  - name: a\n    replicas: [h:1, h:1]\n").find(":3: shards[0].replicas[1]") !=
        std::string::npos);
  CHECK(bad("shards:\n  - name: a\n    weight: -1\n    replicas: [h:1]\n")
            .find(":3: shards[0].weight") != std::string::npos);
  CHECK(bad("listen: nowhere\nshards:\n  - name: a\n    replicas: [h:1]\n").find(":1: listen") !=
        std::string::npos);
  auto ok = parse_config(
      "listen: 127.0.0.1:0\nhash: ketama-md5\nread_policy: least_outstanding\n"
      "write_policy: all_async\nbackend_protocol: memcache\nall_down: error\nshards:\n"
      "  - name: a\n    weight: 2\n    replicas: [127.0.0.1:1, 127.0.0.1:2]\n",
      "r.yaml");
  REQUIRE(ok.is_ok());
  CHECK(ok.value().hash == HashKind::kKetamaMd5);
  CHECK(ok.value().read_policy == ReadPolicy::kLeastOutstanding);
  CHECK(ok.value().write_policy == WritePolicy::kAllAsync);
  CHECK(ok.value().all_down == AllDown::kError);
  CHECK(ok.value().shards[0].weight == 2);
  CHECK(ok.value().shards[0].replicas.size() == 2);
}

namespace {
std::shared_ptr<const Topology> topo_of(const std::string& yaml,
                                        const std::shared_ptr<const Topology>& previous) {
  auto cfg = parse_config(yaml, "t.yaml");
  REQUIRE(cfg.is_ok());
  auto t = build_topology(cfg.value(), previous);
  REQUIRE(t.is_ok());
  return t.value();
}
std::string shards_yaml(int n, const std::string& extra = "", int first_weight = 1) {
  std::string y = extra + "shards:\n";
  for (int i = 0; i < n; ++i) {
    y += "  - name: s" + std::to_string(i) + "\n";
    if (i == 0) y += "    weight: " + std::to_string(first_weight) + "\n";
    y += "    replicas: [127.0.0.1:" + std::to_string(7000 + i) + "]\n";
  }
  return y;
}
}  // namespace

TEST_CASE("router: a change of placement opens a migration window", "[router][migration]") {
  auto three = topo_of(shards_yaml(3), nullptr);
  CHECK(three->migration == nullptr);
  auto four = topo_of(shards_yaml(4), three);
  REQUIRE(four->migration != nullptr);
  CHECK(four->migration->active(now_ms()));
  CHECK(four->migration->moved_share > 0.20);
  CHECK(four->migration->moved_share < 0.30);
  // moved_from names the previous owner exactly for the keys that moved (all to s3).
  int moved = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string k = "key:" + std::to_string(i);
    size_t now = four->ring.shard_for(k);
    int old = four->moved_from(k, now);
    size_t before = three->ring.shard_for(k);
    if (three->shards[before].name == four->shards[now].name) {
      CHECK(old == -1);
    } else {
      ++moved;
      CHECK(old == static_cast<int>(before));
      CHECK(four->shards[now].name == "s3");
    }
  }
  CHECK(moved > 800);
  CHECK(moved < 1200);
  // A change of replicas only (a DNS change) keeps the window and its previous ring.
  std::string four_moved_replica = shards_yaml(4);
  four_moved_replica.replace(four_moved_replica.find("7001"), 4, "7101");
  auto same = topo_of(four_moved_replica, four);
  REQUIRE(same->migration != nullptr);
  CHECK(same->migration->from == four->migration->from);
  CHECK(same->migration->until_ms == four->migration->until_ms);
  CHECK(same->migration_counters == three->migration_counters);
  // A weight is a change of placement too; migration_ms: 0 turns the window off.
  CHECK(placement_changed(*three, parse_config(shards_yaml(3, "", 2), "t.yaml").value()));
  CHECK_FALSE(placement_changed(*three, parse_config(shards_yaml(3), "t.yaml").value()));
  auto off = topo_of(shards_yaml(4, "migration_ms: 0\n"), three);
  CHECK(off->migration == nullptr);
  CHECK(off->moved_from("key:1", off->ring.shard_for("key:1")) == -1);
}
