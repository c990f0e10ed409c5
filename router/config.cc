// cacherouter configuration: YAML -> RouterConfig with line-numbered errors.
#include "router/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace cachetier::router {

namespace {

struct ConfigError {
  std::string text;
};

class Reader {
 public:
  explicit Reader(std::string name) : name_(std::move(name)) {}

  [[noreturn]] void fail(const YAML::Node& at, const std::string& field,
                         const std::string& why) const {
    std::ostringstream o;
    o << name_;
    if (at.IsDefined() && at.Mark().line >= 0) o << ":" << at.Mark().line + 1;
    o << ": " << field << ": " << why;
    throw ConfigError{o.str()};
  }

  template <typename T>
  T number(const YAML::Node& n, const std::string& field, T lo, T hi) const {
    if (!n.IsScalar()) fail(n, field, "expected a number");
    long long v = 0;
    try {
      size_t used = 0;
      const std::string& s = n.Scalar();
      v = std::stoll(s, &used, 10);
      if (used != s.size()) fail(n, field, "expected a whole number, got '" + s + "'");
    } catch (const std::logic_error&) {
      fail(n, field, "expected a whole number, got '" + n.Scalar() + "'");
    }
    if (v < static_cast<long long>(lo) || v > static_cast<long long>(hi)) {
      fail(n, field,
           "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
               std::to_string(v));
    }
    return static_cast<T>(v);
  }

  std::string text(const YAML::Node& n, const std::string& field) const {
    if (!n.IsScalar()) fail(n, field, "expected a string");
    return n.Scalar();
  }

  template <typename E>
  E choice(const YAML::Node& n, const std::string& field,
           const std::vector<std::pair<std::string, E>>& options) const {
    std::string v = text(n, field);
    std::string all;
    for (const auto& [name, e] : options) {
      if (name == v) return e;
      all += (all.empty() ? "" : " | ") + name;
    }
    fail(n, field, "'" + v + "' is not one of " + all);
  }

 private:
  std::string name_;
};

// A tls: or backend_tls: block into TlsOptions (the files are checked when the router builds
// its contexts: start, --check-config, SIGHUP).
void parse_tls(const YAML::Node& block, const std::string& name, bool server, const Reader& r,
               net::TlsOptions& o, uint32_t* handshake_timeout_ms) {
  if (!block.IsMap()) r.fail(block, name, "expected a mapping (cert, key, ca, ...)");
  const std::set<std::string> known =
      server ? std::set<std::string>{"cert",
                                     "key",
                                     "ca",
                                     "verify_clients",
                                     "min_version",
                                     "ciphers",
                                     "handshake_timeout_ms"}
             : std::set<std::string>{"cert",        "key",         "ca",     "verify",
                                     "server_name", "min_version", "ciphers"};
  for (const auto& kv : block) {
    std::string key = kv.first.Scalar();
    if (!known.count(key)) r.fail(kv.first, name + "." + key, "unknown setting");
  }
  auto file = [&](const char* key, std::string& out) {
    if (block[key]) out = r.text(block[key], name + "." + key);
  };
  file("cert", o.cert_chain);
  file("key", o.key);
  file("ca", o.ca);
  file("ciphers", o.ciphers);
  file("server_name", o.server_name);
  if (block["min_version"]) {
    o.min_version = r.choice<std::string>(block["min_version"], name + ".min_version",
                                          {{"tlsv1.2", "tlsv1.2"}, {"tlsv1.3", "tlsv1.3"}});
  }
  if (server) {
    if (o.cert_chain.empty()) r.fail(block, name + ".cert", "the listener needs a certificate");
    if (block["verify_clients"]) {
      o.verify_mode = r.choice<int>(block["verify_clients"], name + ".verify_clients",
                                    {{"none", 0}, {"request", 1}, {"require", 2}});
    }
    if (o.verify_mode != 0 && o.ca.empty()) {
      r.fail(block, name + ".ca", "verify_clients needs a ca file to check certificates against");
    }
    if (block["handshake_timeout_ms"]) {
      *handshake_timeout_ms = r.number<uint32_t>(block["handshake_timeout_ms"],
                                                 name + ".handshake_timeout_ms", 100, 600000);
    }
  } else if (block["verify"]) {
    o.verify_peer =
        r.choice<bool>(block["verify"], name + ".verify", {{"true", true}, {"false", false}});
  }
  if (!o.key.empty() && o.cert_chain.empty()) r.fail(block, name + ".cert", "key without cert");
}

RouterConfig parse(const YAML::Node& root, const Reader& r) {
  RouterConfig c;
  if (!root.IsMap()) r.fail(root, "(top level)", "expected a mapping of settings");
  static const std::set<std::string> known = {"listen",
                                              "threads",
                                              "hash",
                                              "vnodes",
                                              "timeout_ms",
                                              "failure_limit",
                                              "retry_ms",
                                              "retry_max_ms",
                                              "warmup_ms",
                                              "migration_ms",
                                              "read_policy",
                                              "write_policy",
                                              "backend_protocol",
                                              "all_down",
                                              "max_connections",
                                              "max_value",
                                              "max_missed_keys",
                                              "idle_polls",
                                              "client_max_in_flight",
                                              "client_output_soft",
                                              "client_output_hard",
                                              "probe_ms",
                                              "suspect_ms",
                                              "settle_ms",
                                              "hint_poll_ms",
                                              "read_verify",
                                              "tls",
                                              "backend_tls",
                                              "auth_file",
                                              "backend_auth",
                                              "disable_flush_all",
                                              "metrics_listen",
                                              "admin_users",
                                              "dns_refresh_ms",
                                              "shards"};
  for (const auto& kv : root) {
    std::string key = kv.first.Scalar();
    if (!known.count(key)) r.fail(kv.first, key, "unknown setting");
  }
  if (root["listen"]) {
    std::string l = r.text(root["listen"], "listen");
    if (!split_host_port(l, c.listen_host, c.listen_port)) {
      r.fail(root["listen"], "listen", "expected host:port, got '" + l + "'");
    }
  }
  if (root["metrics_listen"]) {
    std::string l = r.text(root["metrics_listen"], "metrics_listen");
    if (!split_host_port(l, c.metrics_host, c.metrics_port)) {
      r.fail(root["metrics_listen"], "metrics_listen", "expected host:port, got '" + l + "'");
    }
  }
  if (root["dns_refresh_ms"]) {
    c.dns_refresh_ms = r.number<uint32_t>(root["dns_refresh_ms"], "dns_refresh_ms", 0, 3600000);
  }
  if (root["threads"]) c.threads = r.number<int>(root["threads"], "threads", 1, 256);
  if (root["hash"]) {
    c.hash = r.choice<HashKind>(root["hash"], "hash",
                                {{"xxh3", HashKind::kXxh3}, {"ketama-md5", HashKind::kKetamaMd5}});
  }
  if (root["vnodes"]) c.vnodes = r.number<uint32_t>(root["vnodes"], "vnodes", 1, 4096);
  if (root["timeout_ms"]) {
    c.timeout_ms = r.number<uint32_t>(root["timeout_ms"], "timeout_ms", 1, 600000);
  }
  if (root["failure_limit"]) {
    c.failure_limit = r.number<uint32_t>(root["failure_limit"], "failure_limit", 1, 1000000);
  }
  if (root["retry_ms"]) c.retry_ms = r.number<uint32_t>(root["retry_ms"], "retry_ms", 1, 3600000);
  if (root["retry_max_ms"]) {
    c.retry_max_ms = r.number<uint32_t>(root["retry_max_ms"], "retry_max_ms", 1, 3600000);
  }
  if (c.retry_max_ms < c.retry_ms) c.retry_max_ms = c.retry_ms;
  if (root["warmup_ms"]) {
    c.warmup_ms = r.number<uint32_t>(root["warmup_ms"], "warmup_ms", 0, 86400000);
  }
  if (root["migration_ms"]) {
    c.migration_ms = r.number<uint32_t>(root["migration_ms"], "migration_ms", 0, 86400000);
  }
  if (root["read_policy"]) {
    c.read_policy = r.choice<ReadPolicy>(root["read_policy"], "read_policy",
                                         {{"primary", ReadPolicy::kPrimary},
                                          {"round_robin", ReadPolicy::kRoundRobin},
                                          {"least_outstanding", ReadPolicy::kLeastOutstanding}});
  }
  if (root["write_policy"]) {
    c.write_policy = r.choice<WritePolicy>(
        root["write_policy"], "write_policy",
        {{"all_sync", WritePolicy::kAllSync}, {"all_async", WritePolicy::kAllAsync}});
  }
  if (root["backend_protocol"]) {
    c.backend_protocol = r.choice<client::Protocol>(
        root["backend_protocol"], "backend_protocol",
        {{"native", client::Protocol::kNative}, {"memcache", client::Protocol::kMemcache}});
  }
  if (root["all_down"]) {
    c.all_down = r.choice<AllDown>(root["all_down"], "all_down",
                                   {{"miss", AllDown::kMiss}, {"error", AllDown::kError}});
  }
  if (root["idle_polls"]) {
    c.idle_polls = r.number<uint32_t>(root["idle_polls"], "idle_polls", 0, 100000);
  }
  if (root["max_connections"]) {
    c.max_connections = r.number<uint32_t>(root["max_connections"], "max_connections", 1, 1 << 20);
  }
  if (root["max_value"]) {
    c.max_value = r.number<uint64_t>(root["max_value"], "max_value", 1, 1ull << 30);
  }
  if (root["max_missed_keys"]) {
    c.max_missed_keys =
        r.number<uint64_t>(root["max_missed_keys"], "max_missed_keys", 0, 1ull << 30);
  }
  if (root["client_max_in_flight"]) {
    c.client_max_in_flight =
        r.number<uint32_t>(root["client_max_in_flight"], "client_max_in_flight", 1, 1 << 20);
  }
  if (root["client_output_soft"]) {
    c.client_output_soft =
        r.number<uint64_t>(root["client_output_soft"], "client_output_soft", 1024, 1ull << 34);
  }
  if (root["client_output_hard"]) {
    c.client_output_hard =
        r.number<uint64_t>(root["client_output_hard"], "client_output_hard", 1024, 1ull << 36);
  }
  if (c.client_output_hard < c.client_output_soft) {
    r.fail(root["client_output_hard"] ? root["client_output_hard"] : root["client_output_soft"],
           "client_output_hard", "must be at least client_output_soft");
  }
  // Liveness and resync timing (docs/consistency.md). 0 = derived from timeout_ms.
  if (root["probe_ms"]) c.probe_ms = r.number<uint32_t>(root["probe_ms"], "probe_ms", 0, 600000);
  if (root["suspect_ms"]) {
    c.suspect_ms = r.number<uint32_t>(root["suspect_ms"], "suspect_ms", 0, 600000);
  }
  if (root["settle_ms"]) {
    c.settle_ms = r.number<uint32_t>(root["settle_ms"], "settle_ms", 0, 3600000);
  }
  if (root["hint_poll_ms"]) {
    c.hint_poll_ms = r.number<uint32_t>(root["hint_poll_ms"], "hint_poll_ms", 0, 3600000);
  }
  if (c.probe_ms == 0) c.probe_ms = std::max<uint32_t>(1, c.timeout_ms / 5);
  if (c.suspect_ms == 0) c.suspect_ms = std::max<uint32_t>(1, c.timeout_ms * 2 / 5);
  if (c.settle_ms == 0) c.settle_ms = c.retry_max_ms / 2 * 3 + 2 * c.timeout_ms;
  if ((root["probe_ms"] || root["suspect_ms"]) &&
      uint64_t{c.probe_ms} + c.suspect_ms + health_tick_ms(c) >= c.timeout_ms) {
    r.fail(root["suspect_ms"] ? root["suspect_ms"]
           : root["probe_ms"] ? root["probe_ms"]
                              : root,
           "suspect_ms",
           "probe_ms + suspect_ms + the health tick (" + std::to_string(health_tick_ms(c)) +
               " ms) must stay under timeout_ms, or a paused node could serve a read after a "
               "write it missed was acknowledged");
  }
  if (root["read_verify"]) {
    c.read_verify =
        r.choice<bool>(root["read_verify"], "read_verify", {{"true", true}, {"false", false}});
    if (c.read_verify && c.backend_protocol != client::Protocol::kNative) {
      r.fail(root["read_verify"], "read_verify",
             "needs backend_protocol: native (memcached keeps no versions to compare)");
    }
  }
  if (root["tls"]) {
    c.tls = true;
    parse_tls(root["tls"], "tls", true, r, c.tls_options, &c.tls_handshake_timeout_ms);
  }
  if (root["backend_tls"]) {
    c.backend_tls = true;
    parse_tls(root["backend_tls"], "backend_tls", false, r, c.backend_tls_options, nullptr);
  }
  if (root["auth_file"]) c.auth_file = r.text(root["auth_file"], "auth_file");
  if (root["admin_users"]) {
    const YAML::Node& a = root["admin_users"];
    if (!a.IsSequence()) r.fail(a, "admin_users", "expected a list of user names");
    for (size_t i = 0; i < a.size(); ++i) {
      c.admin_users.push_back(r.text(a[i], "admin_users[" + std::to_string(i) + "]"));
    }
    if (c.auth_file.empty()) {
      r.fail(a, "admin_users", "needs auth_file (without it nobody authenticates)");
    }
  }
  if (root["backend_auth"]) {
    const YAML::Node b = root["backend_auth"];
    if (!b.IsMap() || !b["user"] || !b["password"]) {
      r.fail(b, "backend_auth", "expected a mapping with user and password");
    }
    for (const auto& kv : b) {
      std::string key = kv.first.Scalar();
      if (key != "user" && key != "password") {
        r.fail(kv.first, "backend_auth." + key, "unknown setting");
      }
    }
    c.backend_user = r.text(b["user"], "backend_auth.user");
    c.backend_password = r.text(b["password"], "backend_auth.password");
    if (c.backend_user.empty() || c.backend_password.empty() ||
        c.backend_user.find(' ') != std::string::npos ||
        c.backend_password.find(' ') != std::string::npos) {
      r.fail(b, "backend_auth", "user and password must be non-empty, without spaces");
    }
  }
  if (root["disable_flush_all"]) {
    c.flush_enabled = !r.choice<bool>(root["disable_flush_all"], "disable_flush_all",
                                      {{"true", true}, {"false", false}});
  }
  const YAML::Node shards = root["shards"];
  if (!shards) r.fail(root, "shards", "required: a list of shards");
  if (!shards.IsSequence() || shards.size() == 0) {
    r.fail(shards, "shards", "expected a non-empty list of shards");
  }
  std::set<std::string> names, addrs;
  for (size_t i = 0; i < shards.size(); ++i) {
    const YAML::Node s = shards[i];
    std::string at = "shards[" + std::to_string(i) + "]";
    if (!s.IsMap()) r.fail(s, at, "expected name, weight and replicas");
    for (const auto& kv : s) {
      std::string key = kv.first.Scalar();
      if (key != "name" && key != "weight" && key != "replicas" && key != "discover") {
        r.fail(kv.first, at + "." + key, "unknown setting");
      }
    }
    client::ShardSpec spec;
    if (!s["name"]) r.fail(s, at + ".name", "required");
    spec.name = r.text(s["name"], at + ".name");
    if (spec.name.empty()) r.fail(s["name"], at + ".name", "must not be empty");
    if (!names.insert(spec.name).second) {
      r.fail(s["name"], at + ".name", "duplicate shard name '" + spec.name + "'");
    }
    if (s["weight"]) spec.weight = r.number<uint32_t>(s["weight"], at + ".weight", 1, 1000);
    std::vector<std::string> discover;
    if (const YAML::Node d = s["discover"]) {
      // One name or a list of them; each expands to every address it resolves to.
      std::vector<YAML::Node> items;
      if (d.IsSequence()) {
        for (size_t j = 0; j < d.size(); ++j) items.push_back(d[j]);
      } else {
        items.push_back(d);
      }
      if (items.empty()) r.fail(d, at + ".discover", "expected a host:port name or a list");
      for (size_t j = 0; j < items.size(); ++j) {
        std::string field =
            at + ".discover" + (d.IsSequence() ? "[" + std::to_string(j) + "]" : std::string());
        std::string name = r.text(items[j], field);
        std::string host;
        int port = 0;
        if (!split_host_port(name, host, port) || port == 0) {
          r.fail(items[j], field, "expected host:port, got '" + name + "'");
        }
        discover.push_back(name);
      }
    }
    const YAML::Node reps = s["replicas"];
    if (!reps && discover.empty()) {
      r.fail(s, at + ".replicas", "required: a list of host:port (or discover: a name)");
    }
    if (reps && (!reps.IsSequence() || reps.size() == 0)) {
      r.fail(reps, at + ".replicas", "expected a non-empty list of host:port");
    }
    if (reps && reps.size() > 16) {
      r.fail(reps, at + ".replicas", "at most 16 replicas per shard");
    }
    for (size_t j = 0; reps && j < reps.size(); ++j) {
      std::string field = at + ".replicas[" + std::to_string(j) + "]";
      std::string addr = r.text(reps[j], field);
      std::string host;
      int port = 0;
      if (!split_host_port(addr, host, port) || port == 0) {
        r.fail(reps[j], field, "expected host:port, got '" + addr + "'");
      }
      if (!addrs.insert(addr).second) {
        r.fail(reps[j], field, "node " + addr + " is listed twice");
      }
      spec.replicas.push_back(addr);
    }
    c.shards.push_back(std::move(spec));
    c.discover.push_back(std::move(discover));
  }
  return c;
}

}  // namespace

bool split_host_port(const std::string& addr, std::string& host, int& port) {
  auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr.size()) return false;
  host = addr.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  long p = 0;
  for (size_t i = colon + 1; i < addr.size(); ++i) {
    if (addr[i] < '0' || addr[i] > '9') return false;
    p = p * 10 + (addr[i] - '0');
    if (p > 65535) return false;
  }
  port = static_cast<int>(p);
  return true;
}

Status load_tls(const RouterConfig& cfg, net::TlsReloadable& listen, net::TlsReloadable& backend) {
  if (cfg.tls) {
    Status st = listen.load(cfg.tls_options, true);
    if (!st.is_ok()) return Status(st.code(), "tls: " + st.message());
  }
  if (cfg.backend_tls) {
    Status st = backend.load(cfg.backend_tls_options, false);
    if (!st.is_ok()) return Status(st.code(), "backend_tls: " + st.message());
  }
  return Status::ok();
}

Status check_names_resolve(const RouterConfig& cfg) {
  std::string errors;
  auto check = [&](size_t i, const char* field, size_t j, const std::string& name) {
    std::vector<std::string> found;
    std::string why;
    if (client::resolve_all(name, found, why)) return;
    if (!errors.empty()) errors += "; ";
    errors += "shards[" + std::to_string(i) + "]." + field + "[" + std::to_string(j) + "]: '" +
              name + "' " + why;
  };
  for (size_t i = 0; i < cfg.shards.size(); ++i) {
    for (size_t j = 0; j < cfg.shards[i].replicas.size(); ++j) {
      check(i, "replicas", j, cfg.shards[i].replicas[j]);
    }
    for (size_t j = 0; i < cfg.discover.size() && j < cfg.discover[i].size(); ++j) {
      check(i, "discover", j, cfg.discover[i][j]);
    }
  }
  if (errors.empty()) return Status::ok();
  return Status(StatusCode::kInvalidArgument, errors);
}

Result<RouterConfig> parse_config(const std::string& text, const std::string& name) {
  Reader r(name);
  try {
    YAML::Node root = YAML::Load(text);
    return parse(root, r);
  } catch (const ConfigError& e) {
    return Status(StatusCode::kInvalidArgument, e.text);
  } catch (const YAML::Exception& e) {
    return Status(StatusCode::kInvalidArgument,
                  name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Result<RouterConfig> load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status(StatusCode::kNotFound, path + ": cannot open the file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace cachetier::router
