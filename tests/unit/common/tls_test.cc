// TlsSession (common/net/tls.h) end to end in memory: a client and a server session exchange
// ciphertext through buffers, fed whole, in small pieces, and stopped early; AuthFile parsing
// and checks. Certificates are made with the openssl CLI into a temporary directory.
#include "common/net/tls.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "common/net/auth.h"

using namespace cachetier;
using namespace cachetier::net;

namespace {

struct Dir {
  std::string path;
  Dir() {
    char tmpl[] = "/tmp/cttlsunitXXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
    std::string cmd = "cd " + path +
                      " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                      "-keyout key.pem -out cert.pem -days 2 -subj /CN=localhost "
                      "-addext subjectAltName=DNS:localhost > /dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  ~Dir() { std::system(("rm -rf " + path).c_str()); }
};

// Moves ciphertext between two sessions until neither has anything to send; plaintext each
// side receives is appended to its string. `piece`: bytes fed per call (0: all at once).
struct Pair {
  TlsSession client, server;
  ByteBuffer to_server, to_client;
  std::string at_server, at_client;
  char scratch[4096];
  Pair(std::shared_ptr<TlsContext> c, std::shared_ptr<TlsContext> s)
      : client(std::move(c), "localhost"), server(std::move(s)) {}

  Status pump(size_t piece) {
    for (int rounds = 0; rounds < 10000; ++rounds) {
      if (to_server.empty() && to_client.empty()) return Status::ok();
      Status st = move(to_server, server, at_server, piece);
      if (!st.is_ok()) return st;
      st = move(to_client, client, at_client, piece);
      if (!st.is_ok()) return st;
    }
    return Status(StatusCode::kInternal, "no end");
  }
  Status move(ByteBuffer& from, TlsSession& to, std::string& sink, size_t piece) {
    ByteBuffer& back = &to == &server ? to_client : to_server;
    std::string bytes(from.view());
    from.clear();
    size_t step = piece == 0 ? bytes.size() : piece;
    for (size_t i = 0; i < bytes.size(); i += step) {
      Status st = to.feed(
          std::string_view(bytes).substr(i, step), scratch, sizeof scratch,
          [&](std::string_view p) {
            sink.append(p);
            return true;
          },
          back);
      if (!st.is_ok()) return st;
    }
    return Status::ok();
  }
};

}  // namespace

TEST_CASE("TLS sessions over buffers: handshake, both directions, any split", "[tls]") {
  Dir d;
  TlsOptions so;
  so.cert_chain = d.path + "/cert.pem";
  so.key = d.path + "/key.pem";
  auto server_ctx = TlsContext::make_server(so);
  REQUIRE(server_ctx.is_ok());
  TlsOptions co;
  co.ca = d.path + "/cert.pem";
  auto client_ctx = TlsContext::make_client(co);
  REQUIRE(client_ctx.is_ok());
  for (size_t piece : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}}) {
    CAPTURE(piece);
    Pair p(client_ctx.value(), server_ctx.value());
    REQUIRE(p.client.start_client(p.to_server).is_ok());
    REQUIRE(p.pump(piece).is_ok());
    REQUIRE(p.client.handshake_done());
    REQUIRE(p.server.handshake_done());
    std::string big(300000, 'x');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    REQUIRE(p.client.encrypt(big, p.to_server).is_ok());
    REQUIRE(p.server.encrypt("hello back", p.to_client).is_ok());
    REQUIRE(p.pump(piece).is_ok());
    CHECK(p.at_server == big);
    CHECK(p.at_client == "hello back");
  }
}

TEST_CASE("TLS: a reader that stops early gets the rest on the next feed", "[tls]") {
  Dir d;
  TlsOptions so;
  so.cert_chain = d.path + "/cert.pem";
  so.key = d.path + "/key.pem";
  TlsOptions co;
  co.verify_peer = false;
  Pair p(TlsContext::make_client(co).value(), TlsContext::make_server(so).value());
  REQUIRE(p.client.start_client(p.to_server).is_ok());
  REQUIRE(p.pump(0).is_ok());
  REQUIRE(p.client.encrypt(std::string(20000, 'q'), p.to_server).is_ok());
  std::string got, bytes(p.to_server.view());
  p.to_server.clear();
  // Take one scratch-full, then stop: the rest must not be lost.
  REQUIRE(p.server
              .feed(
                  bytes, p.scratch, sizeof p.scratch,
                  [&](std::string_view s) {
                    got.append(s);
                    return false;
                  },
                  p.to_client)
              .is_ok());
  CHECK(got.size() == sizeof p.scratch);
  for (int i = 0; i < 20 && got.size() < 20000; ++i) {
    REQUIRE(p.server
                .feed(
                    {}, p.scratch, sizeof p.scratch,
                    [&](std::string_view s) {
                      got.append(s);
                      return true;
                    },
                    p.to_client)
                .is_ok());
  }
  CHECK(got == std::string(20000, 'q'));
}

TEST_CASE("TLS: a client that does not trust the server fails the handshake", "[tls]") {
  Dir d, other;
  TlsOptions so;
  so.cert_chain = d.path + "/cert.pem";
  so.key = d.path + "/key.pem";
  TlsOptions co;
  co.ca = other.path + "/cert.pem";
  Pair p(TlsContext::make_client(co).value(), TlsContext::make_server(so).value());
  REQUIRE(p.client.start_client(p.to_server).is_ok());
  Status st = p.pump(0);
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.message().find("certificate verify failed") != std::string::npos);
}

TEST_CASE("AuthFile: parse, check, errors", "[auth]") {
  auto ok = AuthFile::parse("alice:secret\n\nbob:pw2\r\n", "f");
  REQUIRE(ok.is_ok());
  CHECK(ok.value().size() == 2);
  for (auto [text, why] : {std::pair{"nocolon\n", "f:1: no ':'"},
                           {"a:\n", "f:1: an empty"},
                           {"x:y\na b:c\n", "f:2: a space"},
                           {"\n\n", "no user"}}) {
    auto bad = AuthFile::parse(text, "f");
    REQUIRE_FALSE(bad.is_ok());
    CHECK(bad.status().message().find(why) != std::string::npos);
  }
  Dir d;
  const std::string path = d.path + "/users";
  REQUIRE(std::system(("printf 'alice:secret\\nbob:pw2\\n' > " + path).c_str()) == 0);
  AuthFile f;
  REQUIRE(f.load(path).is_ok());
  CHECK(f.check("alice", "secret"));
  CHECK(f.check("bob", "pw2"));
  CHECK_FALSE(f.check("alice", "pw2"));  // another user's password
  CHECK_FALSE(f.check("alice", "secre"));
  CHECK_FALSE(f.check("carol", "secret"));
  CHECK_FALSE(f.check("", ""));
  REQUIRE(std::system(("printf 'broken\\n' > " + path).c_str()) == 0);
  CHECK_FALSE(f.reload().is_ok());
  CHECK(f.check("alice", "secret"));  // the previous users stay
}
