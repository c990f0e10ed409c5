// The client library follows a changing discover name (ClientOptions::dns_refresh_ms), with
// Client and AsyncClient against real cacheserver processes on 127.0.0.2-4, one port. The
// names come from this process's own /etc/hosts: at start the test process takes a private
// mount namespace and bind-mounts a hosts file of its own (and an nsswitch.conf of "files"
// only, so no lookup leaves the machine) over the real ones, which stay untouched. Needs root,
// as CI has; its own executable, so that the namespace is taken before any thread exists.
#include <cachetier/client.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "server_process.h"

using namespace cachetier;
using cachetier::testing::ServerProcess;
using namespace std::chrono_literals;

namespace {

// This process's /etc/hosts. The first use takes the namespace.
class Hosts {
 public:
  static Hosts& get() {
    static Hosts h;
    return h;
  }
  ~Hosts() {  // the files stay mounted until the process (and its namespace) ends
    ::unlink(hosts_.c_str());
    ::unlink(nsswitch_.c_str());
  }
  // `name` resolves to each of `ips` (the file is rewritten in place: the bind mount holds
  // its inode).
  void set(const std::string& name, const std::vector<std::string>& ips) {
    std::string text = "127.0.0.1 localhost\n";
    for (const auto& ip : ips) text += ip + " " + name + "\n";
    write_file(hosts_, text);
  }

 private:
  Hosts() {
    if (unshare(CLONE_NEWNS) != 0) {
      throw std::runtime_error(std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno) +
                               " (this test needs root)");
    }
    // Private first, so that the bind mounts below never reach the machine's namespace.
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      throw std::runtime_error(std::string("mount --make-rprivate /: ") + std::strerror(errno));
    }
    hosts_ = temp("127.0.0.1 localhost\n");
    nsswitch_ = temp("hosts: files\n");
    bind(hosts_, "/etc/hosts");
    bind(nsswitch_, "/etc/nsswitch.conf");
  }
  static std::string temp(const std::string& text) {
    char path[] = "/tmp/client-dns-test-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) throw std::runtime_error("mkstemp");
    ::close(fd);
    write_file(path, text);
    return path;
  }
  static void write_file(const std::string& path, const std::string& text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC);
    if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      throw std::runtime_error("write " + path);
    }
    ::close(fd);
  }
  static void bind(const std::string& from, const char* to) {
    if (mount(from.c_str(), to, nullptr, MS_BIND, nullptr) != 0) {
      throw std::runtime_error(std::string("bind ") + to + ": " + std::strerror(errno));
    }
  }
  std::string hosts_, nsswitch_;
};

// Three nodes on one port (a discover name gives one port): 127.0.0.2, .3 and .4.
struct Nodes {
  ServerProcess a{{"-t", "1"}, 0, "127.0.0.2"};
  ServerProcess b{{"-t", "1"}, a.port(), "127.0.0.3"};
  ServerProcess c{{"-t", "1"}, a.port(), "127.0.0.4"};
  std::string name() const { return "nodes.test:" + std::to_string(a.port()); }
};

// A client of one node, to look at what it holds.
std::unique_ptr<Client> direct(const std::string& ip, int port) {
  ClientOptions o;
  o.servers = {ip + ":" + std::to_string(port)};
  o.timeout_ms = 5000;
  auto c = Client::create(o);
  REQUIRE(c.is_ok());
  return std::move(c.value());
}

bool holds(Client& node, const std::string& key) {
  auto r = node.get(key);
  return r.is_ok() && r.value().has_value();
}

// Polls `cond` every 20 ms for up to `limit`.
template <class F>
bool eventually(F&& cond, std::chrono::milliseconds limit = 15s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

constexpr int kKeys = 200;
std::string key(int i) { return "k" + std::to_string(i % kKeys); }

}  // namespace

TEST_CASE("client: a replica added to and removed from a discover name under load",
          "[client][integration][dns]") {
  Hosts& hosts = Hosts::get();
  Nodes n;
  hosts.set("nodes.test", {"127.0.0.2"});
  ClientOptions opts;
  opts.shards = {{"s0", 1, {}, {n.name()}}};
  opts.dns_refresh_ms = 100;
  opts.warmup_ms = 4000;
  opts.read_policy = ReadPolicy::kRoundRobin;
  opts.timeout_ms = 5000;
  auto created = Client::create(opts);
  REQUIRE(created.is_ok());
  std::unique_ptr<Client> c = std::move(created.value());
  for (int i = 0; i < kKeys; ++i) {
    REQUIRE(eventually([&] { return c->set(key(i), "v" + key(i)).is_ok(); }));
  }
  // The load: writes walk the keys in turn, reads every key; every read must hit.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ops{0}, errors{0}, misses{0};
  std::thread load([&] {
    auto until = std::chrono::steady_clock::now() + 60s;  // bounded even if the test stalls
    for (int i = 0; !stop && std::chrono::steady_clock::now() < until; ++i) {
      if (!c->set(key(i), "v" + key(i)).is_ok()) ++errors;
      auto r = c->get(key(i + kKeys / 2));
      if (!r.is_ok()) {
        ++errors;
      } else if (!r.value() || r.value()->value != "v" + key(i + kKeys / 2)) {
        ++misses;
      }
      ++ops;
    }
  });
  auto a = direct("127.0.0.2", n.a.port()), b = direct("127.0.0.3", n.b.port()),
       cc = direct("127.0.0.4", n.c.port());
  // Added: 127.0.0.3 gets the writes and so warms (reads try it last meanwhile: no misses).
  hosts.set("nodes.test", {"127.0.0.2", "127.0.0.3"});
  CHECK(eventually([&] {
    for (int i = 0; i < kKeys; ++i) {
      if (!holds(*b, key(i))) return false;
    }
    return true;
  }));
  // Removed: 127.0.0.2 is left out of the shard; a write now reaches only 127.0.0.3.
  hosts.set("nodes.test", {"127.0.0.3"});
  CHECK(eventually([&] {
    REQUIRE(c->set("probe", "1").is_ok());
    bool gone = !holds(*a, "probe");
    REQUIRE(a->del("probe").is_ok());
    return gone && holds(*b, "probe");
  }));
  // A name that stops resolving keeps its last addresses.
  hosts.set("nodes.test", {});
  std::this_thread::sleep_for(500ms);
  REQUIRE(c->set("kept", "1").is_ok());
  CHECK(holds(*b, "kept"));
  // Added again, with the shard's only warm replica in place: 127.0.0.4 warms too.
  hosts.set("nodes.test", {"127.0.0.3", "127.0.0.4"});
  CHECK(eventually([&] {
    for (int i = 0; i < kKeys; ++i) {
      if (!holds(*cc, key(i))) return false;
    }
    return true;
  }));
  uint64_t before = ops;
  std::this_thread::sleep_for(300ms);
  stop = true;
  load.join();
  std::printf("under load: %llu set+get pairs, %llu errors, %llu misses\n",
              static_cast<unsigned long long>(ops.load()),
              static_cast<unsigned long long>(errors.load()),
              static_cast<unsigned long long>(misses.load()));
  INFO("ops " << ops << ", errors " << errors << ", misses " << misses);
  CHECK(ops > before);
  CHECK(ops > 1000);
  CHECK(errors == 0);
  CHECK(misses == 0);
}

TEST_CASE("async client: follows a discover name on its loop", "[client][integration][dns]") {
  Hosts& hosts = Hosts::get();
  Nodes n;
  hosts.set("async.test", {"127.0.0.2"});
  uv_loop_t loop;
  uv_loop_init(&loop);
  ClientOptions opts;
  opts.shards = {{"s0", 1, {}, {"async.test:" + std::to_string(n.a.port())}}};
  opts.dns_refresh_ms = 100;
  opts.timeout_ms = 5000;
  auto created = AsyncClient::create(&loop, opts);
  REQUIRE(created.is_ok());
  std::unique_ptr<AsyncClient> c = std::move(created.value());
  // Runs the loop until `key` was written with every answer OK (retrying while a new node's
  // connection comes up) and `cond` holds.
  auto set_until = [&](const std::string& k, auto&& cond) {
    auto until = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < until) {
      bool done = false, ok = false;
      c->set(k, "v", 0, 0, [&](Status s) {
        done = true;
        ok = s.is_ok();
      });
      while (!done) uv_run(&loop, UV_RUN_ONCE);
      if (ok && cond()) return true;
      auto pause = std::chrono::steady_clock::now() + 50ms;
      while (std::chrono::steady_clock::now() < pause) uv_run(&loop, UV_RUN_NOWAIT);
    }
    return false;
  };
  auto a = direct("127.0.0.2", n.a.port()), b = direct("127.0.0.3", n.b.port());
  CHECK(set_until("one", [&] { return holds(*a, "one") && !holds(*b, "one"); }));
  hosts.set("async.test", {"127.0.0.2", "127.0.0.3"});
  CHECK(set_until("two", [&] { return holds(*a, "two") && holds(*b, "two"); }));
  hosts.set("async.test", {"127.0.0.3"});
  CHECK(set_until("three", [&] {
    bool ok = holds(*b, "three") && !holds(*a, "three");
    REQUIRE(a->del("three").is_ok());
    return ok;
  }));
  // Reads go to the remaining node.
  bool got = false, answered = false;
  c->get("two", [&](Result<std::optional<Item>> r) {
    got = r.is_ok() && r.value().has_value();
    answered = true;
  });
  while (!answered) uv_run(&loop, UV_RUN_ONCE);
  c.reset();  // stops the refresh and closes the connections; the loop runs out of work
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(got);
  CHECK(uv_loop_close(&loop) == 0);
}
