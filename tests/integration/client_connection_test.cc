// client::Connection against a real cacheserver: every op, 10,000 requests in flight,
// deadlines while the server is stopped (SIGSTOP) and recovery after SIGCONT, reconnect after
// a restart, the in-flight bound, defer_flush (the owner flushes); and, against a scripted peer,
// replies out of order and late.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

TEST_CASE("connection: defer_flush writes only when the owner flushes", "[client][integration]") {
  ServerProcess srv({"-t", "2"});
  ConnectionOptions o = relaxed();
  o.defer_flush = true;
  Fixture f(srv.port(), o);
  // Up: a noop answered after an explicit flush.
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    std::promise<bool> p;
    f.loop.post([&] {
      Status s =
          f.conn->send(make(Op::kNoop), [&](Reply&& r) { p.set_value(r.transport.is_ok()); });
      if (!s.is_ok()) {
        p.set_value(false);
        return;
      }
      CHECK(f.conn->take_queued());
      f.conn->flush_queued();
    });
    up = p.get_future().get();
    if (!up) std::this_thread::sleep_for(Ms(10));
  }
  REQUIRE(up);
  // 200 sets of 16 KiB (3 MiB, more than the kernel takes at once: the rest goes to a
  // uv_write) and a get, queued in one loop turn; nothing is answered before the flush.
  const std::string big(16 * 1024, 'b');
  std::promise<void> all;
  int answered = 0, ok = 0, lists = 0;
  std::string got;
  f.loop.post([&] {
    for (int i = 0; i < 200; ++i) {
      CHECK(f.conn
                ->send(make(Op::kSet, "d" + std::to_string(i), big),
                       [&](Reply&& r) {
                         if (r.transport.is_ok() && r.code == native::Status::kOk) ++ok;
                         ++answered;
                       })
                .is_ok());
      if (f.conn->take_queued()) ++lists;
    }
    CHECK(f.conn
              ->send(make(Op::kGet, "d199"),
                     [&](Reply&& r) {
                       got = r.value;
                       ++answered;
                       all.set_value();
                     })
              .is_ok());
    CHECK_FALSE(f.conn->take_queued());  // listed once per flush, not once per request
    f.loop.post([&] {                    // a later loop turn: still unsent, so still unanswered
      CHECK(answered == 0);
      f.conn->flush_queued();
    });
  });
  REQUIRE(all.get_future().wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  CHECK(lists == 1);
  CHECK(ok == 200);
  CHECK(got == big);
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

namespace {

// A scripted native-protocol peer on an ephemeral loopback port, for what cacheserver never
// does (it answers in order): it reads request frames and answers when and in the order the
// test says. Blocking sockets; one client connection.
class ScriptedPeer {
 public:
  ScriptedPeer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(::listen(listen_fd_, 1) == 0);
    socklen_t len = sizeof(a);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    bounded(listen_fd_);
  }
  ~ScriptedPeer() {
    if (fd_ >= 0) ::close(fd_);
    ::close(listen_fd_);
  }
  int port() const { return port_; }

  // Reads until `n` requests have arrived (accepting the connection first); returns their
  // ids and keys in arrival order.
  std::vector<std::pair<uint64_t, std::string>> read_requests(size_t n) {
    if (fd_ < 0) {
      fd_ = ::accept(listen_fd_, nullptr, nullptr);
      REQUIRE(fd_ >= 0);
      bounded(fd_);
    }
    std::vector<std::pair<uint64_t, std::string>> out;
    native::RequestDecoder dec(1 << 20);
    while (out.size() < n) {
      native::Request req;
      native::DecodeResult r = dec.feed(in_.view(), req);
      if (r.status == native::DecodeStatus::kComplete) {
        out.emplace_back(req.id, std::string(req.key));
        in_.consume(r.consumed);
        continue;
      }
      REQUIRE(r.status == native::DecodeStatus::kNeedMore);
      char* p = in_.reserve(4096);
      ssize_t got = ::recv(fd_, p, 4096, 0);
      REQUIRE(got > 0);
      in_.commit(static_cast<size_t>(got));
    }
    return out;
  }

  // Answers request `id` with a hit whose value is `value`.
  void answer(uint64_t id, std::string_view value) {
    ByteBuffer b;
    native::FrameWriter w(b);
    native::write_value_reply(w, id, value, 0, 1, 0, 0);
    w.end();
    REQUIRE(::send(fd_, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size()));
  }

 private:
  static void bounded(int fd) {  // accept and recv give up after 10 s (no hung test)
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  int listen_fd_ = -1, fd_ = -1, port_ = 0;
  ByteBuffer in_;
};

// Sends a get for each key at once; the futures of their replies, in key order.
std::vector<std::future<Reply>> get_all(Fixture& f, std::vector<std::string> keys) {
  auto replies = std::make_shared<std::vector<std::promise<Reply>>>(keys.size());
  f.loop.post([&f, keys, replies] {
    for (size_t i = 0; i < keys.size(); ++i) {
      Status s = f.conn->send(make(Op::kGet, keys[i]), [replies, i](Reply&& r) {
        (*replies)[i].set_value(std::move(r));  // a second call would throw: exactly once
      });
      if (!s.is_ok()) {  // (checked on the test's thread: Catch is not thread-safe)
        Reply r;
        r.transport = s;
        (*replies)[i].set_value(std::move(r));
      }
    }
  });
  std::vector<std::future<Reply>> futures;
  for (auto& p : *replies) futures.push_back(p.get_future());
  return futures;
}

}  // namespace

TEST_CASE("connection: replies are matched by id in any order, late replies are dropped",
          "[client][integration]") {
  ScriptedPeer peer;
  ConnectionOptions opts;
  opts.timeout_ms = 1000;
  Fixture f(peer.port(), opts);
  auto send_gets = [&](std::vector<std::string> keys) { return get_all(f, std::move(keys)); };

  // Three requests answered last-first-middle: each reply reaches its own request.
  auto a = send_gets({"a", "b", "c"});
  auto reqs = peer.read_requests(3);
  REQUIRE(reqs[0].second == "a");
  REQUIRE(reqs[2].second == "c");
  peer.answer(reqs[2].first, "value-c");
  peer.answer(reqs[0].first, "value-a");
  peer.answer(reqs[1].first, "value-b");
  for (size_t i = 0; i < 3; ++i) {
    Reply r = a[i].get();
    REQUIRE(r.transport.is_ok());
    CHECK(r.value == "value-" + reqs[i].second);
  }

  // Three more; only the middle one is answered in time. The others time out (the oldest
  // first, with an answered one behind it), then their late replies arrive and are dropped;
  // the connection goes on serving.
  auto b = send_gets({"d", "e", "f"});
  reqs = peer.read_requests(3);
  peer.answer(reqs[1].first, "value-e");
  Reply e = b[1].get();
  REQUIRE(e.transport.is_ok());
  CHECK(e.value == "value-e");
  for (size_t i : {0u, 2u}) {
    REQUIRE(b[i].wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    Reply r = b[i].get();
    CHECK_FALSE(r.transport.is_ok());
    CHECK(r.transport.message() == "timeout");
  }
  peer.answer(reqs[0].first, "late-d");
  peer.answer(reqs[2].first, "late-f");
  auto c = send_gets({"g"});
  reqs = peer.read_requests(1);
  peer.answer(reqs[0].first, "value-g");
  Reply g = c[0].get();
  REQUIRE(g.transport.is_ok());
  CHECK(g.value == "value-g");

  // A peer that answers one request twice while an older one still waits: the second answer
  // is dropped (each callback runs exactly once).
  auto d = send_gets({"h", "i"});
  reqs = peer.read_requests(2);
  peer.answer(reqs[1].first, "value-i");
  peer.answer(reqs[1].first, "again-i");
  peer.answer(reqs[0].first, "value-h");
  CHECK(d[0].get().value == "value-h");
  CHECK(d[1].get().value == "value-i");
  std::promise<size_t> in_flight;
  f.loop.post([&] { in_flight.set_value(f.conn->in_flight()); });
  CHECK(in_flight.get_future().get() == 0);
}

TEST_CASE("connection: queue_timeout_ms lets a request wait behind replies still arriving",
          "[client][integration]") {
  ScriptedPeer peer;
  ConnectionOptions opts;
  opts.timeout_ms = 200;
  opts.queue_timeout_ms = 1500;
  Fixture f(peer.port(), opts);
  // "a" is not answered for 600 ms (3x its deadline), while the replies of 6 later requests
  // arrive every 100 ms: it waits, then gets its own reply.
  std::vector<std::string> keys = {"a"};
  for (int i = 0; i < 6; ++i) keys.push_back("fill" + std::to_string(i));
  auto a = get_all(f, keys);
  auto reqs = peer.read_requests(keys.size());
  for (size_t i = 1; i < keys.size(); ++i) {
    std::this_thread::sleep_for(Ms(100));
    peer.answer(reqs[i].first, "filler");
  }
  peer.answer(reqs[0].first, "value-a");
  Reply r = a[0].get();
  REQUIRE(r.transport.is_ok());
  CHECK(r.value == "value-a");
  for (size_t i = 1; i < keys.size(); ++i) CHECK(a[i].get().value == "filler");

  // A peer that goes silent: the request still fails after its own deadline, not the cap.
  auto t0 = std::chrono::steady_clock::now();
  auto b = get_all(f, {"b"});
  reqs = peer.read_requests(1);
  REQUIRE(b[0].wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  auto took = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - t0).count();
  CHECK(b[0].get().timed_out());
  INFO("a silent peer timed the request out after " << took << " ms (deadline 200, cap 1500)");
  CHECK(took < 1000);
  peer.answer(reqs[0].first, "late-b");

  // Replies that keep arriving do not hold a request past queue_timeout_ms.
  keys = {"c"};
  for (int i = 0; i < 30; ++i) keys.push_back("more" + std::to_string(i));
  t0 = std::chrono::steady_clock::now();
  auto c = get_all(f, keys);
  reqs = peer.read_requests(keys.size());
  size_t answered = 1;
  while (c[0].wait_for(Ms(100)) != std::future_status::ready && answered < keys.size()) {
    peer.answer(reqs[answered++].first, "filler");
  }
  REQUIRE(c[0].wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  took = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - t0).count();
  CHECK(c[0].get().timed_out());
  INFO("timed out after " << took << " ms with replies arriving (cap 1500)");
  CHECK(took >= 1400);
  peer.answer(reqs[0].first, "late-c");
  for (size_t i = answered; i < keys.size(); ++i) peer.answer(reqs[i].first, "rest");
}
