// libFuzzer target: the authentication and TLS / listener configuration parsers. The whole
// input is also an auth file (user:password lines) and unauthenticated text traffic
// (memcache::auth_step, the -Y request); then it is split on its first two newlines into a
// cacheserver -l spec, a -o list (ssl_* options), and a cacherouter YAML config (its tls: and
// backend_tls: blocks among the rest). Nothing is loaded from the paths they name. Each parser
// either accepts or returns an error; what it accepts must hold the documented ranges.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cacheserver/server/server.h"
#include "common/net/auth.h"
#include "protocol/memcache/auth_codec.h"
#include "router/config.h"

using namespace cachetier;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto users = net::AuthFile::parse(in, "fuzz.auth");
  if (users.is_ok() ? users.value().empty() : users.status().message().empty()) __builtin_trap();
  std::string_view traffic = in;
  while (!traffic.empty()) {
    memcache::AuthStep st = memcache::auth_step(traffic);
    if (st.consumed > traffic.size()) __builtin_trap();
    if (st.kind == memcache::AuthStep::kNeedMore || st.kind == memcache::AuthStep::kClose) break;
    if (st.consumed == 0) __builtin_trap();  // a reply always drops what it answered
    if (st.kind == memcache::AuthStep::kCredentials &&
        (st.user.empty() || st.password.empty() || st.user.size() > memcache::kMaxAuthToken)) {
      __builtin_trap();
    }
    traffic.remove_prefix(st.consumed);
  }
  size_t a = in.find('\n');
  std::string listen(in.substr(0, a));
  std::string_view rest = a == std::string_view::npos ? std::string_view() : in.substr(a + 1);
  size_t b = rest.find('\n');
  std::string extended(rest.substr(0, b));
  std::string yaml(b == std::string_view::npos ? std::string_view() : rest.substr(b + 1));

  std::vector<server::ListenAddr> addrs;
  std::string error;
  if (server::parse_listen(listen, addrs, error)) {
    for (const auto& x : addrs) {
      if (x.host.empty() || x.port < -1 || x.port > 65535) __builtin_trap();
    }
  } else if (error.empty()) {
    __builtin_trap();  // a refusal says why
  }

  server::ServerConfig cfg;
  bool tls_given = false;
  error.clear();
  if (server::parse_extended(extended, cfg, tls_given, error)) {
    const auto& t = cfg.tls_options;
    if (t.verify_mode < 0 || t.verify_mode > 3) __builtin_trap();
    if (t.min_version != "tlsv1.2" && t.min_version != "tlsv1.3" && t.min_version != "2" &&
        t.min_version != "3") {
      __builtin_trap();
    }
    if (cfg.tls_handshake_timeout_ms < 100 || cfg.tls_handshake_timeout_ms > 600000) {
      __builtin_trap();
    }
  } else if (error.empty()) {
    __builtin_trap();
  }

  auto r = router::parse_config(yaml, "fuzz.yaml");
  if (r.is_ok()) {
    const router::RouterConfig& c = r.value();
    if (c.tls && c.tls_options.cert_chain.empty()) __builtin_trap();
    if (c.tls && c.tls_options.verify_mode != 0 && c.tls_options.ca.empty()) __builtin_trap();
  } else if (r.status().message().empty()) {
    __builtin_trap();
  }
  return 0;
}
