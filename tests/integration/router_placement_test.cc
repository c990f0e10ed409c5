// Semantic 1 of cacherouter: a key written through the router lands on the shard that the
// client library's ring names, so client-side and router-side placement agree. Keys are written
// through the router and read back with a cachetier::Client configured with the same shards,
// which reads straight from the nodes; each node holds only its own shard's keys.
#include <cachetier/client.h>

#include <catch2/catch.hpp>
#include <thread>

#include "client/ring/ring.h"
#include "server_process.h"

using namespace cachetier;
using cachetier::testing::RouterProcess;
using cachetier::testing::ServerProcess;

namespace {
std::string addr(int port) { return "127.0.0.1:" + std::to_string(port); }

std::unique_ptr<Client> client_for(ClientOptions opts) {
  opts.timeout_ms = 5000;
  auto c = Client::create(opts);
  REQUIRE(c.is_ok());
  auto client = std::move(c.value());
  for (int i = 0; i < 300 && !client->get("warmup").is_ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return client;
}
}  // namespace

TEST_CASE("router: keys land on the shard the client ring names", "[router][integration]") {
  ServerProcess a({"-t", "1"}), b({"-t", "1"}), c({"-t", "1"});
  std::string yaml = "listen: 127.0.0.1:0\nthreads: 2\nshards:\n";
  const char* names[] = {"alpha", "beta", "gamma"};
  const ServerProcess* nodes[] = {&a, &b, &c};
  for (int i = 0; i < 3; ++i) {
    yaml +=
        std::string("  - name: ") + names[i] + "\n    replicas: [" + addr(nodes[i]->port()) + "]\n";
  }
  RouterProcess router(yaml);

  ClientOptions via_router;
  via_router.servers = {addr(router.port())};
  via_router.protocol = Protocol::kMemcache;
  auto through = client_for(via_router);

  ClientOptions direct;
  for (int i = 0; i < 3; ++i) direct.shards.push_back({names[i], 1, {addr(nodes[i]->port())}, {}});
  auto ring_client = client_for(direct);

  std::vector<client::ShardSpec> specs;
  for (int i = 0; i < 3; ++i) specs.push_back({names[i], 1, {addr(nodes[i]->port())}});
  auto ring = client::Ring::create(specs).value();

  const int n = 600;
  for (int i = 0; i < n; ++i) {
    REQUIRE(through->set("place:" + std::to_string(i), "v" + std::to_string(i)).is_ok());
  }
  int found = 0, per_shard[3] = {0, 0, 0};
  for (int i = 0; i < n; ++i) {
    std::string key = "place:" + std::to_string(i);
    auto got = ring_client->get(key);  // reads the node the client ring names
    REQUIRE(got.is_ok());
    if (got.value() && got.value()->value == "v" + std::to_string(i)) ++found;
    ++per_shard[ring.shard_for(key)];
  }
  CHECK(found == n);
  // Every shard got its share, and no node holds another shard's keys.
  for (int s = 0; s < 3; ++s) {
    CHECK(per_shard[s] > n / 10);
    ClientOptions one;
    one.servers = {addr(nodes[s]->port())};
    auto node = client_for(one);
    int held = 0;
    for (int i = 0; i < n; ++i) {
      auto got = node->get("place:" + std::to_string(i));
      if (got.is_ok() && got.value()) ++held;
    }
    CHECK(held == per_shard[s]);
  }
}
