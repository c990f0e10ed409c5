// router/discovery: discover: names parsed, expanded to one replica per address, duplicates
// dropped, failures counted with the last addresses kept.
#include "router/discovery.h"

#include <catch2/catch.hpp>

#include "router/config.h"

namespace cachetier::router {

TEST_CASE("discover: names expand to replicas after the listed ones", "[router][dns]") {
  auto cfg = parse_config(
      "shards:\n"
      "  - name: s0\n"
      "    replicas: [127.0.0.1:7000]\n"
      "    discover: [127.0.0.1:7000, 127.0.0.2:7001]\n"
      "  - name: s1\n"
      "    discover: 127.0.0.3:7002\n",
      "t.yaml");
  REQUIRE(cfg.is_ok());
  CHECK(Discovery::wanted(cfg.value()));
  Discovery d;
  std::vector<std::string> errors;
  RouterConfig out = d.expand(cfg.value(), errors);
  CHECK(errors.empty());
  CHECK(out.shards[0].replicas == std::vector<std::string>{"127.0.0.1:7000", "127.0.0.2:7001"});
  CHECK(out.shards[1].replicas == std::vector<std::string>{"127.0.0.3:7002"});
  CHECK(Discovery::same_replicas(out, d.expand(cfg.value(), errors)));
  CHECK_FALSE(Discovery::same_replicas(out, cfg.value()));
}

TEST_CASE("discover: a name that does not resolve is counted and empties nothing",
          "[router][dns]") {
  auto cfg =
      parse_config("shards:\n  - name: s0\n    discover: no-such-host.invalid:7000\n", "t.yaml");
  REQUIRE(cfg.is_ok());
  Discovery d;
  std::vector<std::string> errors;
  RouterConfig out = d.expand(cfg.value(), errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("discover 'no-such-host.invalid:7000' does not resolve") !=
        std::string::npos);
  CHECK(out.shards[0].replicas.empty());
  CHECK(d.failures == 1);
}

TEST_CASE("discover: config errors name the field", "[router][dns]") {
  auto bad = parse_config("shards:\n  - name: s0\n    discover: nonsense\n", "t.yaml");
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("shards[0].discover: expected host:port") != std::string::npos);
  auto none = parse_config("shards:\n  - name: s0\n", "t.yaml");
  REQUIRE_FALSE(none.is_ok());
  CHECK(none.status().message().find("or discover: a name") != std::string::npos);
  auto refresh = parse_config(
      "dns_refresh_ms: -1\nshards:\n  - name: s0\n    replicas: [127.0.0.1:1]\n", "t.yaml");
  CHECK_FALSE(refresh.is_ok());
}

}  // namespace cachetier::router
