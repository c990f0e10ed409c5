// Ring: placement properties the router and clients rely on.
#include "client/ring/ring.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "client/facade.h"

using namespace cachetier;
using namespace cachetier::client;

namespace {

std::vector<ShardSpec> shards(int n, int offset = 0) {
  std::vector<ShardSpec> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(
        {"s" + std::to_string(i), 1, {"127.0.0.1:" + std::to_string(21000 + i + offset)}});
  }
  return out;
}

std::vector<std::string> keys(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("key:" + std::to_string(i));
  return out;
}

Ring build(std::vector<ShardSpec> s, uint32_t vnodes = Ring::kDefaultVnodes) {
  auto r = Ring::create(std::move(s), vnodes);
  REQUIRE(r.is_ok());
  return std::move(r.value());
}

}  // namespace

TEST_CASE("ring: adding one shard to N moves 1/(N+1) of the keys, within 20%", "[ring]") {
  const auto ks = keys(100000);
  for (int n : {1, 2, 3, 5, 8, 12, 16, 24}) {
    Ring before = build(shards(n));
    Ring after = build(shards(n + 1));
    size_t moved = 0;
    for (const auto& k : ks) {
      size_t a = before.shard_for(k), b = after.shard_for(k);
      if (before.shard(a).name != after.shard(b).name) {
        ++moved;
        // Keys move only to the new shard, never between old ones.
        CHECK(after.shard(b).name == "s" + std::to_string(n));
      }
    }
    double fraction = double(moved) / double(ks.size());
    double expected = 1.0 / (n + 1);
    INFO("N=" << n << " moved " << fraction << " expected " << expected);
    CHECK(std::abs(fraction - expected) <= 0.2 * expected);
  }
}

TEST_CASE("ring: changing a node's address moves no key", "[ring]") {
  const auto ks = keys(50000);
  Ring a = build(shards(5));
  Ring b = build(shards(5, 1000));  // every replica on a new port
  for (const auto& k : ks) CHECK(a.shard(a.shard_for(k)).name == b.shard(b.shard_for(k)).name);
}

TEST_CASE("ring: balance and weights", "[ring]") {
  const auto ks = keys(200000);
  auto specs = shards(6);
  specs[5].weight = 2;
  Ring r = build(specs);
  CHECK(r.points() == Ring::kDefaultVnodes * 7);
  std::vector<size_t> count(6);
  for (const auto& k : ks) ++count[r.shard_for(k)];
  double unit = double(ks.size()) / 7;
  for (int i = 0; i < 5; ++i) {
    INFO("shard " << i << " got " << count[i] << ", expected ~" << unit);
    CHECK(std::abs(double(count[i]) - unit) <= 0.15 * unit);
  }
  INFO("weight-2 shard got " << count[5]);
  CHECK(std::abs(double(count[5]) - 2 * unit) <= 0.15 * 2 * unit);
}

TEST_CASE("ring: deterministic, order of shards does not matter", "[ring]") {
  auto specs = shards(4);
  Ring a = build(specs);
  std::reverse(specs.begin(), specs.end());
  Ring b = build(specs);
  for (const auto& k : keys(10000)) {
    CHECK(a.shard(a.shard_for(k)).name == b.shard(b.shard_for(k)).name);
  }
}

TEST_CASE("ring: the bucket index finds the first point at or after the position", "[ring]") {
  // Against a plain search over the same points: 64-bit positions (xxh3), 32-bit positions
  // (ketama-md5), a position on a point, past the last point (wraps), and a single point.
  std::vector<std::pair<uint64_t, uint32_t>> wide, narrow;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (uint32_t i = 0; i < 500; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    wide.emplace_back(x, i % 3);
    narrow.emplace_back(x >> 32, i % 3);
  }
  auto plain = [](std::vector<std::pair<uint64_t, uint32_t>> pts, uint64_t h) {
    std::sort(pts.begin(), pts.end());
    for (const auto& p : pts) {
      if (p.first >= h) return size_t{p.second};
    }
    return size_t{pts.front().second};
  };
  std::vector<std::vector<std::pair<uint64_t, uint32_t>>> sets = {wide, narrow, {{42, 1}}};
  for (const auto& pts : sets) {
    auto r = Ring::from_points(shards(3), pts, nullptr);
    REQUIRE(r.is_ok());
    const Ring& ring = r.value();
    std::vector<uint64_t> probes = {0, 1, UINT64_MAX, UINT32_MAX, 41, 42, 43};
    for (const auto& p : pts) probes.insert(probes.end(), {p.first, p.first + 1, p.first - 1});
    uint64_t y = 12345;
    for (int i = 0; i < 5000; ++i) {
      y = y * 6364136223846793005ull + 1442695040888963407ull;
      probes.push_back(y);
      probes.push_back(y >> 32);
    }
    for (uint64_t h : probes) REQUIRE(ring.shard_at(h) == plain(pts, h));
  }
}

TEST_CASE("ring: bad configurations are refused", "[ring][errors]") {
  CHECK_FALSE(Ring::create({}).is_ok());
  CHECK_FALSE(Ring::create(shards(2), 0).is_ok());
  auto dup = shards(2);
  dup[1].name = "s0";
  CHECK_FALSE(Ring::create(dup).is_ok());
  auto noname = shards(2);
  noname[0].name.clear();
  CHECK_FALSE(Ring::create(noname).is_ok());
  auto zero = shards(2);
  zero[0].weight = 0;
  auto r = Ring::create(zero);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("weight 0") != std::string::npos);
}

TEST_CASE("client: read policies order the replicas, warming ones last", "[client]") {
  using cachetier::ReadPolicy;
  using cachetier::client::NodePool;
  using Clock = cachetier::client::Clock;
  cachetier::client::Replicas replicas;
  for (int i = 0; i < 3; ++i) replicas.push_back(std::make_shared<NodePool>());
  const Clock::time_point now = Clock::now();
  auto order = [&](ReadPolicy p, uint64_t rr) {
    uint8_t o[cachetier::client::kMaxReplicas];
    size_t n = cachetier::client::read_order(replicas, p, rr, now, o);
    return std::vector<int>(o, o + n);
  };
  CHECK(order(ReadPolicy::kPrimary, 7) == std::vector<int>{0, 1, 2});
  CHECK(order(ReadPolicy::kRoundRobin, 7) == std::vector<int>{1, 2, 0});
  CHECK(order(ReadPolicy::kRoundRobin, 8) == std::vector<int>{2, 0, 1});
  // Least outstanding: the idlest replica first; ties go in turn.
  replicas[0]->outstanding = 5;
  replicas[1]->outstanding = 2;
  replicas[2]->outstanding = 9;
  for (uint64_t rr = 0; rr < 6; ++rr) {
    CHECK(order(ReadPolicy::kLeastOutstanding, rr) == std::vector<int>{1, 0, 2});
  }
  replicas[1]->outstanding = 5;
  CHECK(order(ReadPolicy::kLeastOutstanding, 0).front() == 0);
  CHECK(order(ReadPolicy::kLeastOutstanding, 1).front() == 1);
  // A replica still warming (added by a DNS change) comes after the warm ones, whatever the
  // policy, and takes its turn among them again once warm.
  replicas[0]->outstanding = replicas[1]->outstanding = replicas[2]->outstanding = 0;
  replicas[0]->warm_at = now + std::chrono::seconds(60);
  CHECK(order(ReadPolicy::kPrimary, 0) == std::vector<int>{1, 2, 0});
  CHECK(order(ReadPolicy::kRoundRobin, 1) == std::vector<int>{2, 1, 0});
  CHECK(order(ReadPolicy::kLeastOutstanding, 0) == std::vector<int>{1, 2, 0});
  // Among those warming, the one added first (the warmest) goes first.
  replicas[1]->warm_at = now + std::chrono::seconds(30);
  CHECK(order(ReadPolicy::kRoundRobin, 1) == std::vector<int>{2, 1, 0});
  replicas[2]->warm_at = now + std::chrono::seconds(90);
  CHECK(order(ReadPolicy::kRoundRobin, 1) == std::vector<int>{1, 0, 2});
  replicas[0]->warm_at = replicas[1]->warm_at = replicas[2]->warm_at = now;
  CHECK(order(ReadPolicy::kPrimary, 0) == std::vector<int>{0, 1, 2});
  cachetier::client::Replicas one{std::make_shared<NodePool>()};
  uint8_t o[cachetier::client::kMaxReplicas];
  CHECK(cachetier::client::read_order(one, ReadPolicy::kLeastOutstanding, 3, now, o) == 1);
  CHECK(o[0] == 0);
}
