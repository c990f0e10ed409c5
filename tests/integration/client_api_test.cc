// cachetier::Client (<cachetier/client.h>) against real cacheserver processes: every call,
// placement by the ring, reads that keep succeeding when one replica of a shard is killed.
#include <cachetier/client.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <thread>

#include "client/ring/ring.h"
#include "server_process.h"

using namespace cachetier;
using cachetier::testing::ServerProcess;

namespace {
std::string addr(const ServerProcess& s) { return "127.0.0.1:" + std::to_string(s.port()); }

// A generous deadline: sanitizer builds on a busy 2-core machine are slow.
std::unique_ptr<Client> make_client(ClientOptions opts) {
  if (opts.timeout_ms == 250) opts.timeout_ms = 5000;
  auto c = Client::create(opts);
  REQUIRE(c.is_ok());
  auto client = std::move(c.value());
  // Connections come up in the background; wait until a write goes through.
  for (int i = 0; i < 200 && !client->set("warmup", "1").is_ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return client;
}
}  // namespace

namespace {
// The same calls, whatever the protocol and server.
void exercise(Client& c_) {
  Client* c = &c_;
  REQUIRE(c->set("k", "v", 0, 7).is_ok());
  auto hit = c->get("k");
  REQUIRE(hit.is_ok());
  REQUIRE(hit.value().has_value());
  CHECK(hit.value()->value == "v");
  CHECK(hit.value()->flags == 7);
  auto miss = c->get("nothing");
  REQUIRE(miss.is_ok());
  CHECK_FALSE(miss.value().has_value());  // a miss is a normal result
  CHECK(c->add("k", "x").value() == false);
  CHECK(c->add("k2", "x").value() == true);
  CHECK(c->replace("absent", "x").value() == false);
  CHECK(c->replace("k2", "y").value() == true);
  uint64_t token = c->gets("k").value()->cas;
  CHECK(c->cas("k", "new", token).value() == true);
  CHECK(c->cas("k", "newer", token).value() == false);
  CHECK(c->get("k").value()->value == "new");
  CHECK(c->incr("n").value() == std::nullopt);
  REQUIRE(c->set("n", "10").is_ok());
  CHECK(c->incr("n", 5).value() == std::optional<uint64_t>(15));
  CHECK(c->decr("n", 100).value() == std::optional<uint64_t>(0));
  CHECK(c->touch("k", 100).value() == true);
  CHECK(c->touch("absent", 100).value() == false);
  CHECK(c->del("k").value() == true);
  CHECK(c->del("k").value() == false);
  std::map<std::string, std::string> many;
  for (int i = 0; i < 200; ++i) many["m" + std::to_string(i)] = "v" + std::to_string(i);
  REQUIRE(c->set_multi(many).is_ok());
  std::vector<std::string> keys;
  for (int i = 0; i < 210; ++i) keys.push_back("m" + std::to_string(i));
  auto got = c->get_multi(keys);
  REQUIRE(got.is_ok());
  CHECK(got.value().size() == 200);
  CHECK(got.value().at("m42").value == "v42");
  CHECK(got.value().at("m42").cas != 0);  // flags and cas come back with multi-gets too
  REQUIRE(c->set("fl", "x", 0, 9).is_ok());
  CHECK(c->get_multi({"fl"}).value().at("fl").flags == 9);
  CHECK(c->get_multi({}).value().empty());
  // One item over the server's item size limit (1 MB): the call fails and names it; the
  // others are stored.
  Status too_big = c->set_multi({{"small", "s"}, {"big", std::string(2 << 20, 'b')}});
  CHECK_FALSE(too_big.is_ok());
  CHECK(too_big.message().find("big") != std::string::npos);
  CHECK(c->get("small").value()->value == "s");
}
}  // namespace

TEST_CASE("client: every call, two shards, native protocol", "[client][integration]") {
  ServerProcess a({"-t", "1"}), b({"-t", "1"});
  ClientOptions opts;
  opts.servers = {addr(a), addr(b)};
  exercise(*make_client(opts));
}

TEST_CASE("client: every call, two shards, a pool of 3 connections per node",
          "[client][integration]") {
  ServerProcess a({"-t", "2"}), b({"-t", "2"});
  ClientOptions opts;
  opts.servers = {addr(a), addr(b)};
  opts.pool_size = 3;
  exercise(*make_client(opts));
}

TEST_CASE("client: every call, two shards, memcache text against cacheserver",
          "[client][integration]") {
  ServerProcess a({"-t", "1"}), b({"-t", "1"});
  ClientOptions opts;
  opts.servers = {addr(a), addr(b)};
  opts.protocol = Protocol::kMemcache;
  exercise(*make_client(opts));
}

TEST_CASE("client: every call, two shards, memcache text against stock memcached",
          "[client][integration][memcached]") {
  cachetier::testing::MemcachedProcess a, b;
  ClientOptions opts;
  opts.servers = {"127.0.0.1:" + std::to_string(a.port()), "127.0.0.1:" + std::to_string(b.port())};
  opts.protocol = Protocol::kMemcache;
  exercise(*make_client(opts));
}

TEST_CASE("client: each key lives on the shard the ring names", "[client][integration]") {
  ServerProcess a({"-t", "1"}), b({"-t", "1"});
  ClientOptions opts;
  opts.servers = {addr(a), addr(b)};
  auto c = make_client(opts);
  // Direct clients, one per node.
  ClientOptions only_a, only_b;
  only_a.servers = {addr(a)};
  only_b.servers = {addr(b)};
  auto da = make_client(only_a), db = make_client(only_b);
  auto ring = client::Ring::create({{addr(a), 1, {addr(a)}}, {addr(b), 1, {addr(b)}}});
  REQUIRE(ring.is_ok());
  int on_a = 0;
  for (int i = 0; i < 200; ++i) {
    std::string k = "place" + std::to_string(i);
    REQUIRE(c->set(k, "x").is_ok());
    bool want_a = ring.value().shard(ring.value().shard_for(k)).name == addr(a);
    CHECK(da->get(k).value().has_value() == want_a);
    CHECK(db->get(k).value().has_value() == !want_a);
    on_a += want_a;
  }
  CHECK(on_a > 50);
  CHECK(on_a < 150);
}

TEST_CASE("client: reads keep succeeding with one replica of a shard killed",
          "[client][integration]") {
  ReadPolicy policy =
      GENERATE(ReadPolicy::kPrimary, ReadPolicy::kRoundRobin, ReadPolicy::kLeastOutstanding);
  ServerProcess r1({"-t", "1"}), r2({"-t", "1"});
  ClientOptions opts;
  opts.shards = {{"s0", 1, {addr(r1), addr(r2)}, {}}};
  opts.read_policy = policy;
  opts.timeout_ms = 5000;
  auto c = make_client(opts);
  for (int i = 0; i < 100; ++i) REQUIRE(c->set("r" + std::to_string(i), "v").is_ok());
  r1.kill9();
  int ok = 0;
  for (int i = 0; i < 100; ++i) {
    auto g = c->get("r" + std::to_string(i));
    if (g.is_ok() && g.value().has_value()) ++ok;
  }
  CHECK(ok == 100);  // writes went to both replicas; reads fail over to the live one
  CHECK(c->set("after", "kill").is_ok());
  CHECK(c->get("after").value()->value == "kill");
}

TEST_CASE("client: a shard's replicas from discover names", "[client][integration][dns]") {
  ServerProcess srv({"-t", "1"});
  ClientOptions opts;
  opts.shards = {{"s0", 1, {}, {addr(srv)}}};  // a numeric name resolves to itself
  auto c = make_client(opts);
  REQUIRE(c->set("d", "v").is_ok());
  CHECK(c->get("d").value()->value == "v");
  // localhost: every address it has here (127.0.0.1, and ::1 where the hosts file says so) is
  // a replica; the node listens on 127.0.0.1 only, so reads fail over and writes still land.
  ClientOptions local;
  local.shards = {{"s0", 1, {}, {"localhost:" + std::to_string(srv.port())}}};
  local.timeout_ms = 2000;
  auto l = make_client(local);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(l->set("l" + std::to_string(i), "x").is_ok());
    CHECK(l->get("l" + std::to_string(i)).value()->value == "x");
  }
  ClientOptions bad;
  bad.shards = {{"s0", 1, {}, {"no-such-host.invalid:11211"}}};
  auto r = Client::create(bad);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("discover 'no-such-host.invalid:11211' does not resolve") !=
        std::string::npos);
}

TEST_CASE("client: bad options are refused", "[client][errors]") {
  CHECK_FALSE(Client::create({}).is_ok());
  ClientOptions bad;
  bad.servers = {"no-port"};
  CHECK_FALSE(Client::create(bad).is_ok());
  bad.servers = {"127.0.0.1:99999"};
  CHECK_FALSE(Client::create(bad).is_ok());
  ClientOptions empty_shard;
  empty_shard.shards = {{"s", 1, {}, {}}};
  CHECK_FALSE(Client::create(empty_shard).is_ok());
  ClientOptions no_pool;
  no_pool.servers = {"127.0.0.1:1"};
  no_pool.pool_size = 0;
  CHECK_FALSE(Client::create(no_pool).is_ok());
}

namespace {
// Certificates made here with the openssl CLI (no key is committed): a CA, a server
// certificate for 127.0.0.1, a client certificate, and a second CA nobody trusts.
struct TestCerts {
  std::string dir;
  TestCerts() {
    char tmpl[] = "/tmp/ctclientcertsXXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
    std::string script = "cd " + dir + " && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext";
    for (const char* ca : {"ca", "other"}) {
      script += std::string(" && openssl req -x509") + ec + "-keyout " + ca + ".key -out " + ca +
                ".crt -days 2 -subj /CN=" + ca;
    }
    for (const char* who : {"server", "client"}) {
      script += std::string(" && openssl req") + ec + "-keyout " + who + ".key -out " + who +
                ".csr -subj /CN=" + who + " && openssl x509 -req -in " + who +
                ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out " + who + ".crt" +
                (std::string(who) == "server" ? " -extfile san.ext" : "");
    }
    script += " > /dev/null 2>&1";
    REQUIRE(std::system(script.c_str()) == 0);
  }
  ~TestCerts() { std::system(("rm -rf " + dir).c_str()); }
  std::string operator()(const std::string& f) const { return dir + "/" + f; }
};
}  // namespace

TEST_CASE("client: every call over TLS, mutual, native and memcache text",
          "[client][integration][tls]") {
  TestCerts certs;
  const std::string o = "ssl_chain_cert=" + certs("server.crt") +
                        ",ssl_key=" + certs("server.key") + ",ssl_ca_cert=" + certs("ca.crt") +
                        ",ssl_verify_mode=2";
  ServerProcess a({"-t", "1", "-Z", "-o", o}), b({"-t", "1", "-Z", "-o", o});
  ClientOptions opts;
  opts.servers = {addr(a), addr(b)};
  opts.tls = true;
  opts.tls_ca_file = certs("ca.crt");
  opts.tls_cert_file = certs("client.crt");
  opts.tls_key_file = certs("client.key");
  SECTION("native") { exercise(*make_client(opts)); }
  SECTION("memcache text") {
    opts.protocol = Protocol::kMemcache;
    exercise(*make_client(opts));
  }
  SECTION("a server from a CA the client does not trust is never talked to") {
    opts.tls_ca_file = certs("other.crt");
    opts.timeout_ms = 300;
    auto c = Client::create(opts);
    REQUIRE(c.is_ok());
    for (int i = 0; i < 5; ++i) CHECK_FALSE(c.value()->set("k", "v").is_ok());
  }
  SECTION("no client certificate: the server refuses") {
    opts.tls_cert_file.clear();
    opts.tls_key_file.clear();
    opts.timeout_ms = 300;
    auto c = Client::create(opts);
    REQUIRE(c.is_ok());
    for (int i = 0; i < 5; ++i) CHECK_FALSE(c.value()->set("k", "v").is_ok());
  }
  SECTION("a file that cannot be loaded fails create() with its name") {
    opts.tls_ca_file = certs("missing.crt");
    auto c = Client::create(opts);
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().message().find("missing.crt") != std::string::npos);
  }
}

TEST_CASE("client: credentials for servers with -Y, native and memcache text",
          "[client][integration][auth]") {
  char path[] = "/tmp/ctclientauthXXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  const std::string users = "app:s3cret\n";
  REQUIRE(write(fd, users.data(), users.size()) == static_cast<ssize_t>(users.size()));
  close(fd);
  ServerProcess a({"-t", "1", "-Y", path}), b({"-t", "1", "-Y", path});
  ClientOptions opts;
  opts.servers = {addr(a), addr(b)};
  opts.auth_user = "app";
  opts.auth_password = "s3cret";
  SECTION("native (HELLO)") { exercise(*make_client(opts)); }
  SECTION("memcache text (memcached's set)") {
    opts.protocol = Protocol::kMemcache;
    exercise(*make_client(opts));
  }
  SECTION("a wrong password: nothing goes through") {
    opts.auth_password = "wrong";
    opts.timeout_ms = 300;
    auto c = Client::create(opts);
    REQUIRE(c.is_ok());
    for (int i = 0; i < 3; ++i) CHECK_FALSE(c.value()->set("k", "v").is_ok());
  }
  SECTION("half the credentials is refused by create()") {
    opts.auth_password.clear();
    CHECK_FALSE(Client::create(opts).is_ok());
  }
  unlink(path);
}
