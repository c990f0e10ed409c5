// client::Connection against a real cacheserver: every op, 10,000 requests in flight,
// deadlines while the server is stopped (SIGSTOP) and recovery after SIGCONT, reconnect after
// a restart, the in-flight bound.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "client/connection.h"
#include "client/loop_thread.h"
#include "server_process.h"

using namespace cachetier;
using namespace cachetier::client;
using cachetier::testing::ServerProcess;
using native::Op;
using Ms = std::chrono::milliseconds;

namespace {

// Functional tests use a generous deadline (sanitizer builds on a busy 2-core machine are
// slow); the deadline test sets its own.
ConnectionOptions relaxed() {
  ConnectionOptions o;
  o.timeout_ms = 10000;
  return o;
}

struct Fixture {
  LoopThread loop;
  Connection* conn = nullptr;
  explicit Fixture(int port, ConnectionOptions opts = relaxed()) {
    opts.port = port;
    std::promise<void> ready;
    loop.post([&] {
      conn = Connection::create(loop.loop(), opts);
      ready.set_value();
    });
    ready.get_future().get();
  }
  ~Fixture() {
    std::promise<void> done;
    loop.post([&] {
      conn->close();
      done.set_value();
    });
    done.get_future().get();
  }
  Reply call(Call c) {
    std::promise<Reply> p;
    loop.post([&] {
      Status s = conn->send(c, [&](Reply&& r) { p.set_value(std::move(r)); });
      if (!s.is_ok()) {
        Reply r;
        r.transport = s;
        p.set_value(std::move(r));
      }
    });
    return p.get_future().get();
  }
  // Retries until the connection is up (it connects asynchronously).
  Reply call_when_up(Call c, int tries = 200) {
    Reply r;
    for (int i = 0; i < tries; ++i) {
      r = call(c);
      if (r.transport.is_ok()) return r;
      std::this_thread::sleep_for(Ms(10));
    }
    return r;
  }
};

Call make(Op op, std::string key = {}, std::string value = {}) {
  Call c;
  c.op = op;
  c.key = std::move(key);
  c.value = std::move(value);
  return c;
}

}  // namespace

TEST_CASE("connection: every op against cacheserver", "[client][integration]") {
  ServerProcess srv({"-t", "2"});
  Fixture f(srv.port());
  Reply r = f.call_when_up(make(Op::kSet, "k", "v1"));
  REQUIRE(r.transport.is_ok());
  CHECK(r.code == native::Status::kOk);
  r = f.call(make(Op::kGet, "k"));
  CHECK(r.value == "v1");
  CHECK(r.ttl == 0);  // never expires: no ttl in the reply
  uint64_t cas = r.cas;
  Call expiring = make(Op::kSet, "e", "x");
  expiring.ttl = 100;
  CHECK(f.call(expiring).code == native::Status::kOk);
  Reply left = f.call(make(Op::kGet, "e"));
  CHECK(left.ttl >= 99);  // seconds left
  CHECK(left.ttl <= 100);
  CHECK(f.call(make(Op::kGet, "missing")).code == native::Status::kNotFound);
  CHECK(f.call(make(Op::kAdd, "k", "x")).code == native::Status::kNotStored);
  CHECK(f.call(make(Op::kAppend, "k", "+")).code == native::Status::kOk);
  Call c = make(Op::kCas, "k", "c");
  c.cas = cas;
  CHECK(f.call(c).code == native::Status::kExists);
  Call inc = make(Op::kIncr, "n");
  inc.has_initial = true;
  inc.initial = 40;
  CHECK(f.call(inc).number == 40);
  inc.has_initial = false;
  inc.delta = 2;
  CHECK(f.call(inc).number == 42);
  Call ms;
  ms.op = Op::kMultiGet;
  ms.keys = {"k", "nope", "n"};
  r = f.call(ms);
  REQUIRE(r.values.size() == 3);
  REQUIRE(r.values[0].has_value());
  CHECK(r.values[0]->value == "v1+");
  CHECK(r.values[0]->cas != 0);
  CHECK_FALSE(r.values[1].has_value());
  REQUIRE(r.values[2].has_value());
  CHECK(r.values[2]->value == "42");
  Call v = make(Op::kSet, "ver", "new");
  v.version = 9;
  CHECK(f.call(v).code == native::Status::kOk);
  v.value = "old";
  v.version = 3;
  CHECK(f.call(v).code == native::Status::kOlderVersion);
  CHECK(f.call(make(Op::kDelete, "k")).code == native::Status::kOk);
  CHECK(f.call(make(Op::kNoop)).code == native::Status::kOk);
}

TEST_CASE("connection: 10,000 requests in flight", "[client][integration]") {
  ServerProcess srv({"-t", "2"});
  Fixture f(srv.port());
  REQUIRE(f.call_when_up(make(Op::kSet, "p", "pv")).transport.is_ok());
  std::promise<void> all;
  int ok = 0, done = 0, refused = 0;
  size_t peak = 0;
  f.loop.post([&] {
    for (int i = 0; i < 10000; ++i) {
      Status s = f.conn->send(make(Op::kGet, "p"), [&](Reply&& r) {
        if (r.transport.is_ok() && r.value == "pv") ++ok;
        if (++done == 10000) all.set_value();
      });
      if (!s.is_ok()) ++refused;
    }
    peak = f.conn->in_flight();
  });
  REQUIRE(all.get_future().wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  CHECK(refused == 0);
  CHECK(peak == 10000);
  CHECK(ok == 10000);
}

TEST_CASE("connection: a stopped server times out within the deadline, then recovers",
          "[client][integration]") {
  ServerProcess srv({"-t", "1"});
  ConnectionOptions opts;
  opts.timeout_ms = 200;
  Fixture f(srv.port(), opts);
  REQUIRE(f.call_when_up(make(Op::kSet, "s", "x")).transport.is_ok());
  srv.pause();
  auto t0 = std::chrono::steady_clock::now();
  Reply r = f.call(make(Op::kGet, "s"));
  auto took = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - t0).count();
  srv.resume();
  CHECK(r.timed_out());
  INFO("timed out after " << took << " ms (deadline 200)");
  CHECK(took >= 190);
  CHECK(took <= 250);  // deadline + 50 ms
  // The late reply to the timed-out request is dropped; new requests work.
  std::this_thread::sleep_for(Ms(50));
  Reply after = f.call(make(Op::kGet, "s"));
  CHECK(after.transport.is_ok());
  CHECK(after.value == "x");
}

TEST_CASE("connection: reconnects after the server restarts", "[client][integration]") {
  ServerProcess srv({"-t", "1"});
  int port = srv.port();
  Fixture f(port);
  REQUIRE(f.call_when_up(make(Op::kSet, "r", "1")).transport.is_ok());
  srv.kill9();
  Reply down = f.call(make(Op::kGet, "r"));
  CHECK_FALSE(down.transport.is_ok());  // lost, or refused while reconnecting
  srv.start({"-t", "1"}, port);
  Reply up = f.call_when_up(make(Op::kSet, "r", "2"));
  CHECK(up.transport.is_ok());
  CHECK(f.call(make(Op::kGet, "r")).value == "2");
  std::promise<uint64_t> n;
  f.loop.post([&] { n.set_value(f.conn->reconnects()); });
  CHECK(n.get_future().get() >= 1);
}

TEST_CASE("connection: the in-flight bound refuses instead of growing", "[client][integration]") {
  ServerProcess srv({"-t", "1"});
  ConnectionOptions opts = relaxed();
  opts.max_in_flight = 100;
  Fixture f(srv.port(), opts);
  REQUIRE(f.call_when_up(make(Op::kNoop)).transport.is_ok());
  std::promise<void> all;
  int accepted = 0, refused = 0, done = 0;
  f.loop.post([&] {
    for (int i = 0; i < 150; ++i) {
      Status s = f.conn->send(make(Op::kNoop), [&](Reply&&) {
        if (++done == accepted) all.set_value();
      });
      if (s.is_ok()) {
        ++accepted;
      } else {
        CHECK(s.code() == StatusCode::kResourceExhausted);
        ++refused;
      }
    }
  });
  REQUIRE(all.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(accepted == 100);
  CHECK(refused == 50);
}
