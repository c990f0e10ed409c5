// tierctl: a tier's health from its routers, and the admin commands on all of them at once.
//
//   tierctl -r HOST:PORT [-r ...] [status]      nodes, states, hit ratio per node, per router
//   tierctl -r ... drain HOST:PORT | undrain HOST:PORT   on every router given
//   tierctl -r ... route KEY
//   --watch SECONDS refreshes status (--count N stops after N), --user/--password for a router
//   with auth_file, --tls --cacert --cert --key --sni --tls-skip-verify as cachebench's.
//
// It speaks the memcache text protocol (`stats`, `stats nodes`, router/admin.h's commands) on
// a blocking socket: one request, one reply, nothing on a hot path.
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/net/tls.h"

namespace {

struct Options {
  std::vector<std::string> routers;
  std::string user, password;
  bool tls = false, tls_skip_verify = false;
  std::string cacert, cert, key, sni;
  int timeout_ms = 3000;
};

// One blocking connection to a router (TCP, optionally TLS).
class Conn {
 public:
  ~Conn() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }

  // Connects, handshakes and logs in; on failure returns why.
  std::optional<std::string> open(const std::string& addr, const Options& o,
                                  const std::shared_ptr<cachetier::net::TlsContext>& tls) {
    const size_t colon = addr.rfind(':');
    if (colon == std::string::npos || colon == 0) return "not HOST:PORT: " + addr;
    std::string host = addr.substr(0, colon), port = addr.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
      return addr + ": " + gai_strerror(rc);
    }
    std::string err = addr + ": connection refused";
    for (addrinfo* ai = res; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
      int fd = ::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
      if (fd < 0) continue;
      timeval tv{o.timeout_ms / 1000, (o.timeout_ms % 1000) * 1000};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
      if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        fd_ = fd;
      } else {
        err = addr + ": " + std::strerror(errno);
        ::close(fd);
      }
    }
    freeaddrinfo(res);
    if (fd_ < 0) return err;
    if (tls) {
      ssl_ = SSL_new(tls->get());
      SSL_set_fd(ssl_, fd_);
      const std::string name = o.sni.empty() ? host : o.sni;
      SSL_set_tlsext_host_name(ssl_, name.c_str());
      if (!o.tls_skip_verify) SSL_set1_host(ssl_, name.c_str());
      if (SSL_connect(ssl_) != 1) {
        unsigned long e = ERR_get_error();
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        return addr + ": TLS handshake failed: " + buf;
      }
    }
    if (!o.user.empty()) {
      const std::string cred = o.user + " " + o.password;
      if (!write("set auth 0 0 " + std::to_string(cred.size()) + "\r\n" + cred + "\r\n")) {
        return addr + ": write failed";
      }
      std::string line;
      if (!read_line(line)) return addr + ": closed while authenticating";
      if (line != "STORED") return addr + ": authentication refused (" + line + ")";
    }
    return std::nullopt;
  }

  bool write(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ssl_ != nullptr
                      ? SSL_write(ssl_, s.data() + off, static_cast<int>(s.size() - off))
                      : ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  bool read_line(std::string& line) {
    while (true) {
      size_t nl = buf_.find("\r\n");
      if (nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 2);
        return true;
      }
      char chunk[16384];
      ssize_t n = ssl_ != nullptr ? SSL_read(ssl_, chunk, sizeof(chunk))
                                  : ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

  // Sends `cmd`; reads STAT lines up to END into `stats` (ordered as sent), or the one-line
  // reply (OK, an error) into `single`. False when the connection fails.
  bool call(const std::string& cmd, std::vector<std::pair<std::string, std::string>>& stats,
            std::string& single) {
    if (!write(cmd + "\r\n")) return false;
    std::string line;
    while (read_line(line)) {
      if (line == "END") return true;
      if (line.rfind("STAT ", 0) != 0) {  // OK (drain, undrain) or an error: nothing follows
        single = line;
        return true;
      }
      const size_t sp = line.find(' ', 5);
      stats.emplace_back(line.substr(5, sp - 5),
                         sp == std::string::npos ? "" : line.substr(sp + 1));
    }
    return false;
  }

 private:
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string buf_;
};

using StatList = std::vector<std::pair<std::string, std::string>>;

std::map<std::string, std::string> to_map(const StatList& l) {
  return std::map<std::string, std::string>(l.begin(), l.end());
}

double ratio(uint64_t hits, uint64_t misses) {
  return hits + misses == 0 ? -1 : 100.0 * static_cast<double>(hits) / double(hits + misses);
}

uint64_t num(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : std::strtoull(it->second.c_str(), nullptr, 10);
}

// Prints one router's table; returns false if it could not be read.
bool status(const std::string& router, const Options& o,
            const std::shared_ptr<cachetier::net::TlsContext>& tls) {
  Conn c;
  if (auto err = c.open(router, o, tls)) {
    std::printf("router %s: unreachable: %s\n", router.c_str(), err->c_str());
    return false;
  }
  StatList general, nodes;
  std::string single;
  if (!c.call("stats", general, single) || !c.call("stats nodes", nodes, single)) {
    std::printf("router %s: connection lost\n", router.c_str());
    return false;
  }
  if (!single.empty()) {
    std::printf("router %s: %s\n", router.c_str(), single.c_str());
    return false;
  }
  auto g = to_map(general);
  const double hr = ratio(num(g, "get_hits"), num(g, "get_misses"));
  std::printf("router %s  %s  uptime %s s  config generation %s  clients %s  hit ratio %s\n",
              router.c_str(), g["version"].c_str(), g["uptime"].c_str(),
              g["config_generation"].c_str(), g["curr_connections"].c_str(),
              hr < 0 ? "-" : (std::to_string(hr).substr(0, 5) + "%").c_str());
  // Node addresses in the order the router lists them (shard by shard).
  std::vector<std::string> order;
  std::map<std::string, std::map<std::string, std::string>> by_node;
  for (const auto& [k, v] : nodes) {
    // node:HOST:PORT:field (an IPv6 host has colons: the field is after the last one).
    const size_t last = k.rfind(':');
    const std::string addr = k.substr(5, last - 5), field = k.substr(last + 1);
    if (!by_node.count(addr)) order.push_back(addr);
    by_node[addr][field] = v;
  }
  std::printf("  %-8s %-24s %-22s %7s %10s %8s %8s %8s\n", "SHARD", "NODE", "STATE", "HIT%",
              "REQUESTS", "ERRORS", "TIMEOUTS", "MISSED");
  std::vector<std::string> attention;
  for (const std::string& a : order) {
    auto& n = by_node[a];
    std::string state = n["state"];
    if (n["drained"] == "1") state += ",drained";
    if (n["warming"] == "1") state += ",warming";
    if (n["overflowed"] == "1") state += ",overflowed";
    const double nh = ratio(num(n, "get_hits"), num(n, "get_misses"));
    char hit[16];
    if (nh < 0) {
      std::snprintf(hit, sizeof(hit), "-");
    } else {
      std::snprintf(hit, sizeof(hit), "%.1f", nh);
    }
    std::printf("  %-8s %-24s %-22s %7s %10s %8s %8s %8s\n", n["shard"].c_str(), a.c_str(),
                state.c_str(), hit, n["requests"].c_str(), n["errors"].c_str(),
                n["timeouts"].c_str(), n["missed_keys"].c_str());
    if (n["state"] == "syncing") attention.push_back(a + " syncing (no reads until in sync)");
    if (n["state"] == "down") attention.push_back(a + " down");
    if (n["warming"] == "1") attention.push_back(a + " cold (warming from its siblings)");
    if (n["drained"] == "1") attention.push_back(a + " drained");
  }
  if (attention.empty()) {
    std::printf("  all nodes up and in sync\n");
  } else {
    for (const std::string& s : attention) std::printf("  attention: %s\n", s.c_str());
  }
  return true;
}

// Runs one admin line on every router; prints each answer. True if every router said OK (or
// answered, for route).
bool admin(const std::string& line, const Options& o,
           const std::shared_ptr<cachetier::net::TlsContext>& tls) {
  bool ok = true;
  for (const std::string& r : o.routers) {
    Conn c;
    if (auto err = c.open(r, o, tls)) {
      std::printf("router %s: unreachable: %s\n", r.c_str(), err->c_str());
      ok = false;
      continue;
    }
    StatList lines;
    std::string single;
    if (!c.call(line, lines, single)) {
      std::printf("router %s: connection lost\n", r.c_str());
      ok = false;
      continue;
    }
    if (!single.empty()) {
      std::printf("router %s: %s\n", r.c_str(), single.c_str());
      ok = ok && single == "OK";
      continue;
    }
    std::printf("router %s:\n", r.c_str());
    for (const auto& [k, v] : lines) std::printf("  %-10s %s\n", k.c_str(), v.c_str());
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"tierctl: a cachetier tier's health from its routers, and drain / undrain"};
  app.add_option("-r,--router", o.routers, "a router, HOST:PORT (repeat for several)")
      ->required()
      ->check(
          [](const std::string& a) -> std::string {
            const size_t c = a.rfind(':');
            if (c == std::string::npos || c == 0 || c + 1 == a.size() ||
                a.find_first_not_of("0123456789", c + 1) != std::string::npos) {
              return "not HOST:PORT (or an unknown command): " + a;
            }
            return {};
          },
          "HOST:PORT");
  double watch = 0;
  int count = 0;
  app.add_option("-w,--watch", watch, "status: refresh every SECONDS")
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--count", count, "with --watch: stop after this many refreshes (0: never)")
      ->check(CLI::Range(0, 1000000));
  app.add_option("--user", o.user, "user name, for routers with auth_file");
  app.add_option("--password", o.password, "password (or TIERCTL_PASSWORD in the environment)");
  app.add_flag("--tls", o.tls, "TLS to the routers");
  app.add_option("--cacert", o.cacert, "CA file the routers' certificates are checked against");
  app.add_option("--cert", o.cert, "client certificate (mutual TLS)");
  app.add_option("--key", o.key, "client key");
  app.add_option("--sni", o.sni, "server name to send and verify (default: the host)");
  app.add_flag("--tls-skip-verify", o.tls_skip_verify, "do not verify the routers' certificates");
  app.add_option("--timeout-ms", o.timeout_ms, "per request")->check(CLI::Range(1, 600000));
  // Subcommands (their names end a -r list): status (the default), drain, undrain, route.
  app.require_subcommand(0, 1);
  app.add_subcommand("status", "nodes, states and hit ratio, per router (the default)");
  std::string arg;
  for (const char* verb : {"drain", "undrain"}) {
    app.add_subcommand(verb, std::string(verb) + " a node on every router given")
        ->add_option("node", arg, "HOST:PORT, as in the routers' config")
        ->required();
  }
  app.add_subcommand("route", "a key's shard and replicas in read order")
      ->add_option("key", arg, "the key")
      ->required();
  CLI11_PARSE(app, argc, argv);
  if (o.password.empty()) {
    if (const char* p = std::getenv("TIERCTL_PASSWORD")) o.password = p;
  }

  std::shared_ptr<cachetier::net::TlsContext> tls;
  if (o.tls) {
    cachetier::net::TlsOptions t;
    t.ca = o.cacert;
    t.cert_chain = o.cert;
    t.key = o.key;
    t.verify_peer = !o.tls_skip_verify;
    auto ctx = cachetier::net::TlsContext::make_client(t);
    if (!ctx.is_ok()) {
      std::fprintf(stderr, "tierctl: %s\n", ctx.status().message().c_str());
      return 2;
    }
    tls = ctx.value();
  }

  const std::string verb =
      app.get_subcommands().empty() ? "status" : app.get_subcommands()[0]->get_name();
  if (verb == "status") {
    int rounds = 0;
    while (true) {
      if (watch > 0) std::printf("\033[H\033[2J");  // a terminal's clear screen
      bool all = true;
      for (const std::string& r : o.routers) all = status(r, o, tls) && all;
      std::fflush(stdout);
      ++rounds;
      if (watch <= 0) return all ? 0 : 1;
      if (count > 0 && rounds >= count) return 0;
      std::this_thread::sleep_for(std::chrono::duration<double>(watch));
    }
  }
  return admin(verb + " " + arg, o, tls) ? 0 : 1;
}
