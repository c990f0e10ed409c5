// cachetier::AsyncClient on the test's own libuv loop, against real cacheserver processes:
// a chain of calls through callbacks, and reads failing over to the live replica.
#include <cachetier/client.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <vector>

#include "server_process.h"

using namespace cachetier;
using cachetier::testing::ServerProcess;

namespace {
std::string addr(const ServerProcess& s) { return "127.0.0.1:" + std::to_string(s.port()); }
}  // namespace

TEST_CASE("async client: calls chained through callbacks on the caller's loop",
          "[client][integration][async]") {
  ServerProcess a({"-t", "1"}), b({"-t", "1"});
  uv_loop_t loop;
  uv_loop_init(&loop);
  ClientOptions opts;
  opts.servers = {addr(a), addr(b)};
  opts.timeout_ms = 5000;
  auto created = AsyncClient::create(&loop, opts);
  REQUIRE(created.is_ok());
  std::unique_ptr<AsyncClient> c = std::move(created.value());
  std::vector<std::string> log;
  c->set("k", "v", 0, 3, [&](Status s) {
    log.push_back(s.is_ok() ? "set ok" : "set " + s.message());
    c->get("k", [&](Result<std::optional<Item>> r) {
      log.push_back(r.is_ok() && r.value() ? "get " + r.value()->value : "get failed");
      c->get("missing", [&](Result<std::optional<Item>> m) {
        log.push_back(m.is_ok() && !m.value() ? "miss" : "miss failed");
        c->incr("n", 1, [&](Result<std::optional<uint64_t>> n) {
          log.push_back(n.is_ok() && !n.value() ? "incr missing" : "incr failed");
          c->add("k", "x", 0, 0, [&](Result<bool> added) {
            log.push_back(added.is_ok() && !added.value() ? "add refused" : "add failed");
            c->del("k", [&](Result<bool> d) {
              log.push_back(d.is_ok() && d.value() ? "deleted" : "delete failed");
              c.reset();  // closes the connections; the loop then runs out of work
            });
          });
        });
      });
    });
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  CHECK(log == std::vector<std::string>{"set ok", "get v", "miss", "incr missing", "add refused",
                                        "deleted"});
}

TEST_CASE("async client: multi-key calls and cas", "[client][integration][async]") {
  ServerProcess a({"-t", "1"}), b({"-t", "1"});
  uv_loop_t loop;
  uv_loop_init(&loop);
  ClientOptions opts;
  opts.servers = {addr(a), addr(b)};
  opts.timeout_ms = 5000;
  auto c = std::move(AsyncClient::create(&loop, opts).value());
  std::map<std::string, std::string> items;
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) items["m" + std::to_string(i)] = "v" + std::to_string(i);
  for (int i = 0; i < 105; ++i) keys.push_back("m" + std::to_string(i));
  std::vector<std::string> log;
  c->set_multi(items, 0, [&](Status s) {
    log.push_back(s.is_ok() ? "set_multi ok" : "set_multi " + s.message());
    c->get_multi(keys, [&](Result<std::map<std::string, Item>> got) {
      bool all = got.is_ok() && got.value().size() == 100 && got.value().at("m7").value == "v7";
      log.push_back(all ? "get_multi 100" : "get_multi failed");
      uint64_t token = got.is_ok() && all ? got.value().at("m7").cas : 0;
      c->cas("m7", "new", token, 0, 0, [&, token](Result<bool> swapped) {
        log.push_back(swapped.is_ok() && swapped.value() ? "cas ok" : "cas failed");
        c->cas("m7", "newer", token, 0, 0, [&](Result<bool> stale) {
          log.push_back(stale.is_ok() && !stale.value() ? "stale cas refused" : "stale cas?");
          c->gets("m7", [&](Result<std::optional<Item>> r) {
            log.push_back(r.is_ok() && r.value() ? "gets " + r.value()->value : "gets failed");
            c->get_multi({}, [&](Result<std::map<std::string, Item>> none) {
              log.push_back(none.is_ok() && none.value().empty() ? "empty" : "empty failed");
              c.reset();
            });
          });
        });
      });
    });
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  CHECK(log == std::vector<std::string>{"set_multi ok", "get_multi 100", "cas ok",
                                        "stale cas refused", "gets new", "empty"});
}

TEST_CASE("async client: reads fail over to the live replica", "[client][integration][async]") {
  ServerProcess r1({"-t", "1"}), r2({"-t", "1"});
  uv_loop_t loop;
  uv_loop_init(&loop);
  ClientOptions opts;
  opts.shards = {{"s0", 1, {addr(r1), addr(r2)}, {}}};
  opts.timeout_ms = 5000;
  auto c = std::move(AsyncClient::create(&loop, opts).value());
  int stored = 0, read_ok = 0;
  std::function<void(int)> read_all = [&](int i) {
    if (i == 50) {
      c.reset();
      return;
    }
    c->get("f" + std::to_string(i), [&, i](Result<std::optional<Item>> r) {
      if (r.is_ok() && r.value() && r.value()->value == "v") ++read_ok;
      read_all(i + 1);
    });
  };
  for (int i = 0; i < 50; ++i) {
    c->set("f" + std::to_string(i), "v", 0, 0, [&](Status s) {
      if (s.is_ok() && ++stored == 50) {
        r1.kill9();  // the primary dies; reads must go to r2
        read_all(0);
      }
    });
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
  CHECK(stored == 50);
  CHECK(read_ok == 50);
}

TEST_CASE("async client: bad options are refused", "[client][errors][async]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  CHECK_FALSE(AsyncClient::create(&loop, {}).is_ok());
  CHECK(uv_loop_close(&loop) == 0);
}
