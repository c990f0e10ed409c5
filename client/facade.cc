// Shared pieces of the client facades. See facade.h.
#include "client/facade.h"

#include <algorithm>

#include "client/resolve.h"
#include "client/ring/key_split.h"
#include "client/ring/replica_order.h"

namespace cachetier::client {

bool parse_address(const std::string& s, std::string& host, int& port) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) return false;
  host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  port = 0;
  for (char c : s.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) return false;
    port = port * 10 + (c - '0');
  }
  return port > 0 && port <= 65535;
}

std::vector<std::string> shard_replicas(const ShardOptions& shard, const Resolved& resolved) {
  std::vector<std::string> out = shard.replicas;
  for (const std::string& name : shard.discover) {
    auto it = resolved.find(name);
    if (it == resolved.end()) continue;
    for (const std::string& a : it->second) {
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    }
  }
  return out;
}

Result<std::unique_ptr<Ring>> ring_from_options(const ClientOptions& options, Resolved* resolved) {
  std::vector<ShardSpec> specs;
  for (const std::string& s : options.servers) specs.push_back({s, 1, {s}});
  Resolved found;
  for (const ShardOptions& s : options.shards) {
    // discover: every address each name resolves to now is a replica (after the listed ones).
    for (const std::string& name : s.discover) {
      std::string why;
      if (!resolve_all(name, found[name], why)) {
        return Status(StatusCode::kInvalidArgument,
                      "shard '" + s.name + "': discover '" + name + "' " + why);
      }
    }
    specs.push_back({s.name, s.weight, shard_replicas(s, found)});
  }
  if (specs.empty()) return Status(StatusCode::kInvalidArgument, "no servers or shards given");
  for (const auto& s : specs) {
    if (s.replicas.empty()) {
      return Status(StatusCode::kInvalidArgument, "shard '" + s.name + "' has no replicas");
    }
    if (s.replicas.size() > kMaxReplicas) {
      return Status(StatusCode::kInvalidArgument,
                    "shard '" + s.name + "' has " + std::to_string(s.replicas.size()) +
                        " replicas (at most " + std::to_string(kMaxReplicas) + ")");
    }
    std::string host;
    int port;
    for (const auto& r : s.replicas) {
      if (!parse_address(r, host, port)) {
        return Status(StatusCode::kInvalidArgument, "bad address '" + r + "' (want host:port)");
      }
    }
  }
  if (options.timeout_ms == 0) return Status(StatusCode::kInvalidArgument, "timeout_ms is 0");
  if (options.auth_user.empty() != options.auth_password.empty() ||
      options.auth_user.find(' ') != std::string::npos ||
      options.auth_password.find(' ') != std::string::npos) {
    return Status(StatusCode::kInvalidArgument,
                  "auth_user and auth_password: both or neither, without spaces");
  }
  if (options.pool_size == 0 || options.pool_size > 64) {
    return Status(StatusCode::kInvalidArgument, "pool_size must be 1..64");
  }
  auto ring = Ring::create(specs);
  if (!ring.is_ok()) return ring.status();
  if (resolved != nullptr) *resolved = std::move(found);
  return std::make_unique<Ring>(std::move(ring.value()));
}

Result<std::shared_ptr<net::TlsContext>> tls_from_options(const ClientOptions& options) {
  if (!options.tls) return std::shared_ptr<net::TlsContext>();
  net::TlsOptions t;
  t.ca = options.tls_ca_file;
  t.cert_chain = options.tls_cert_file;
  t.key = options.tls_key_file;
  t.server_name = options.tls_server_name;
  t.verify_peer = options.tls_verify;
  return net::TlsContext::make_client(t);
}

std::shared_ptr<NodePool> connect_node(uv_loop_t* loop, const std::string& address,
                                       const ClientOptions& options,
                                       const std::shared_ptr<net::TlsContext>& tls) {
  ConnectionOptions co;
  parse_address(address, co.host, co.port);
  co.timeout_ms = options.timeout_ms;
  co.max_in_flight = options.max_in_flight;
  co.tls = tls;
  co.tls_server_name = options.tls_server_name;
  co.auth_user = options.auth_user;
  co.auth_password = options.auth_password;
  co.protocol =
      options.protocol == cachetier::Protocol::kMemcache ? Protocol::kMemcache : Protocol::kNative;
  auto pool = std::make_shared<NodePool>();
  pool->address = address;
  for (size_t k = 0; k < options.pool_size; ++k) {
    pool->conns.push_back(Connection::create(loop, co));
  }
  return pool;
}

Pools connect_all(uv_loop_t* loop, const Ring& ring, const ClientOptions& options,
                  const std::shared_ptr<net::TlsContext>& tls) {
  Pools pools;
  for (size_t i = 0; i < ring.size(); ++i) {
    Replicas replicas;
    for (const std::string& addr : ring.shard(i).replicas) {
      replicas.push_back(connect_node(loop, addr, options, tls));
    }
    pools.push_back(std::move(replicas));
  }
  return pools;
}

bool same_addresses(const Replicas& replicas, const std::vector<std::string>& addresses) {
  if (replicas.size() != addresses.size()) return false;
  for (size_t i = 0; i < replicas.size(); ++i) {
    if (replicas[i]->address != addresses[i]) return false;
  }
  return true;
}

Replicas repool(uv_loop_t* loop, const Replicas& old, const std::vector<std::string>& next,
                const ClientOptions& options, const std::shared_ptr<net::TlsContext>& tls,
                Clock::time_point warm_at) {
  Replicas out;
  for (const std::string& addr : next) {
    auto it =
        std::find_if(old.begin(), old.end(), [&](const auto& p) { return p->address == addr; });
    if (it != old.end()) {
      out.push_back(*it);
      continue;
    }
    out.push_back(connect_node(loop, addr, options, tls));
    out.back()->warm_at = warm_at;
  }
  for (const auto& p : old) {
    if (std::find(next.begin(), next.end(), p->address) == next.end()) p->close_all();
  }
  return out;
}

Status tier_error(const Reply& r) {
  if (!r.transport.is_ok()) return r.transport;
  return Status(StatusCode::kInternal,
                std::string("server answered ") + std::string(native::status_name(r.code)));
}

Result<std::optional<Item>> item_result(Reply&& r) {
  if (!r.transport.is_ok()) return r.transport;
  if (r.code == native::Status::kNotFound) return std::optional<Item>();
  if (r.code != native::Status::kOk) return tier_error(r);
  return std::optional<Item>(Item{std::move(r.value), r.flags, r.cas});
}

Result<bool> bool_result(const Reply& r, native::Status no) {
  if (!r.transport.is_ok()) return r.transport;
  if (r.code == no) return false;
  if (r.code != native::Status::kOk) return tier_error(r);
  return true;
}

Result<std::optional<uint64_t>> counter_result(const Reply& r) {
  if (!r.transport.is_ok()) return r.transport;
  if (r.code == native::Status::kNotFound) return std::optional<uint64_t>();
  if (r.code != native::Status::kOk) return tier_error(r);
  return std::optional<uint64_t>(r.number);
}

Call store_call(native::Op op, std::string_view key, std::string_view value, int64_t ttl,
                uint32_t flags) {
  Call c = key_call(op, key);
  c.value = std::string(value);
  c.ttl = ttl;
  c.flags = flags;
  return c;
}

Call key_call(native::Op op, std::string_view key) {
  Call c;
  c.op = op;
  c.key = std::string(key);
  return c;
}

std::map<size_t, Call> multi_get_calls(const Ring& ring, const std::vector<std::string>& keys) {
  std::vector<std::string_view> views(keys.begin(), keys.end());
  KeySplit split = split_keys(ring, views);
  std::map<size_t, Call> calls;
  for (const ShardKeys& sk : split.shards) {
    Call& c = calls[sk.shard];
    c.op = native::Op::kMultiGet;
    c.keys.assign(sk.keys.begin(), sk.keys.end());
  }
  return calls;
}

std::map<size_t, Call> multi_set_calls(const Ring& ring,
                                       const std::map<std::string, std::string>& items,
                                       int64_t ttl) {
  std::map<size_t, Call> calls;
  for (const auto& [k, v] : items) {
    Call& c = calls[ring.shard_for(k)];
    c.op = native::Op::kMultiSet;
    c.ttl = ttl;
    c.items.emplace_back(k, v);
  }
  return calls;
}

Status add_hits(Reply&& r, const Call& call, std::map<std::string, Item>& out) {
  if (!r.transport.is_ok()) return r.transport;
  if (r.code != native::Status::kOk || r.values.size() != call.keys.size()) return tier_error(r);
  for (size_t i = 0; i < call.keys.size(); ++i) {
    if (r.values[i]) {
      out[call.keys[i]] =
          Item{std::string(r.values[i]->value), r.values[i]->flags, r.values[i]->cas};
    }
  }
  return Status::ok();
}

Status multi_set_status(const Reply& r, const Call& call) {
  if (!r.transport.is_ok()) return r.transport;
  if (r.code != native::Status::kOk || r.statuses.size() != call.items.size()) {
    return tier_error(r);
  }
  for (size_t i = 0; i < r.statuses.size(); ++i) {
    if (r.statuses[i] != native::Status::kOk) {
      return Status(StatusCode::kInternal, "server answered " +
                                               std::string(native::status_name(r.statuses[i])) +
                                               " for " + call.items[i].first);
    }
  }
  return Status::ok();
}

size_t read_order(const Replicas& replicas, ReadPolicy policy, uint64_t rr, Clock::time_point now,
                  uint8_t* order) {
  size_t n = std::min(replicas.size(), kMaxReplicas), warm = 0;
  for (size_t i = 0; i < n; ++i) {
    if (replicas[i]->warm_at <= now) order[warm++] = static_cast<uint8_t>(i);
  }
  size_t cold = warm;
  for (size_t i = 0; i < n; ++i) {
    if (replicas[i]->warm_at > now) order[cold++] = static_cast<uint8_t>(i);
  }
  auto load = [&](uint8_t i) { return replicas[i]->outstanding.load(std::memory_order_relaxed); };
  order_replicas(order, order + warm, policy, rr, load);
  std::stable_sort(order + warm, order + n, [&](uint8_t x, uint8_t y) {
    return replicas[x]->warm_at < replicas[y]->warm_at;
  });
  return n;
}

}  // namespace cachetier::client
