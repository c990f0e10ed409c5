// cachetier::Client: the synchronous facade over Connections on a LoopThread, the Ring and
// replica sets. See <cachetier/client.h> for the contract.
#include "cachetier/client.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>

#include "client/connection.h"
#include "client/loop_thread.h"
#include "client/ring/ring.h"

namespace cachetier {

namespace {
using client::Call;
using client::Connection;
using client::Reply;
using native::Op;
using Clock = std::chrono::steady_clock;

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

Status tier_error(const Reply& r) {
  if (!r.transport.is_ok()) return r.transport;
  return Status(StatusCode::kInternal,
                std::string("server answered ") + std::string(native::status_name(r.code)));
}

Call make(Op op, std::string_view key) {
  Call c;
  c.op = op;
  c.key = std::string(key);
  return c;
}
}  // namespace

struct Client::Impl {
  ClientOptions opts;
  std::unique_ptr<client::Ring> ring;
  client::LoopThread loop;
  std::vector<std::vector<Connection*>> conns;  // [shard][replica], touched on the loop only
  std::atomic<uint64_t> rr{0};

  // Sends `call` on one connection; waits until `deadline` at the most.
  std::shared_future<Reply> start(Connection* c, const Call& call) {
    auto p = std::make_shared<std::promise<Reply>>();
    std::shared_future<Reply> f = p->get_future().share();
    loop.post([c, call, p] {
      Status s = c->send(call, [p](Reply&& r) { p->set_value(std::move(r)); });
      if (!s.is_ok()) {
        Reply r;
        r.transport = s;
        p->set_value(std::move(r));
      }
    });
    return f;
  }
  static Reply wait(const std::shared_future<Reply>& f, Clock::time_point deadline) {
    if (f.wait_until(deadline) == std::future_status::ready) return f.get();
    Reply r;
    r.transport = Status(StatusCode::kInternal, "timeout");
    return r;
  }

  // A read: one replica by policy, then the others, until one answers or time runs out.
  Reply read(size_t shard, const Call& call) {
    auto deadline = Clock::now() + std::chrono::milliseconds(opts.timeout_ms);
    const auto& replicas = conns[shard];
    size_t n = replicas.size();
    size_t first = opts.read_policy == ReadPolicy::kRoundRobin ? rr++ % n : 0;
    Reply last;
    for (size_t a = 0; a < n && Clock::now() < deadline; ++a) {
      last = wait(start(replicas[(first + a) % n], call), deadline);
      if (last.transport.is_ok()) return last;
    }
    if (last.transport.is_ok()) last.transport = Status(StatusCode::kInternal, "timeout");
    return last;
  }

  // A write: every replica, in parallel; the answer of the first replica that answered, in
  // replica order (so the primary's when it is up).
  Reply write(size_t shard, const Call& call) {
    auto deadline = Clock::now() + std::chrono::milliseconds(opts.timeout_ms);
    std::vector<std::shared_future<Reply>> fs;
    for (Connection* c : conns[shard]) fs.push_back(start(c, call));
    Reply best;
    bool have = false;
    for (auto& f : fs) {
      Reply r = wait(f, deadline);
      if (!have && r.transport.is_ok()) {
        best = std::move(r);
        have = true;
      } else if (!have) {
        best = std::move(r);
      }
    }
    return best;
  }

  size_t shard_of(std::string_view key) const { return ring->shard_for(key); }
};

Result<std::unique_ptr<Client>> Client::create(const ClientOptions& options) {
  std::vector<client::ShardSpec> specs;
  for (const std::string& s : options.servers) specs.push_back({s, 1, {s}});
  for (const ShardOptions& s : options.shards) specs.push_back({s.name, s.weight, s.replicas});
  if (specs.empty()) return Status(StatusCode::kInvalidArgument, "no servers or shards given");
  for (const auto& s : specs) {
    if (s.replicas.empty()) {
      return Status(StatusCode::kInvalidArgument, "shard '" + s.name + "' has no replicas");
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
  auto ring = client::Ring::create(specs);
  if (!ring.is_ok()) return ring.status();

  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  impl->ring = std::make_unique<client::Ring>(std::move(ring.value()));
  std::promise<void> ready;
  Impl* raw = impl.get();
  raw->loop.post([raw, &ready] {
    for (size_t i = 0; i < raw->ring->size(); ++i) {
      std::vector<Connection*> replicas;
      for (const std::string& addr : raw->ring->shard(i).replicas) {
        client::ConnectionOptions co;
        parse_address(addr, co.host, co.port);
        co.timeout_ms = raw->opts.timeout_ms;
        co.protocol = raw->opts.protocol == Protocol::kMemcache ? client::Protocol::kMemcache
                                                                : client::Protocol::kNative;
        co.max_in_flight = raw->opts.max_in_flight;
        replicas.push_back(Connection::create(raw->loop.loop(), co));
      }
      raw->conns.push_back(std::move(replicas));
    }
    ready.set_value();
  });
  ready.get_future().get();
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() {
  std::promise<void> closed;
  Impl* raw = impl_.get();
  raw->loop.post([raw, &closed] {
    for (auto& replicas : raw->conns) {
      for (Connection* c : replicas) c->close();
    }
    closed.set_value();
  });
  closed.get_future().get();
}

Result<std::optional<Item>> Client::get(std::string_view key) {
  Reply r = impl_->read(impl_->shard_of(key), make(Op::kGet, key));
  if (!r.transport.is_ok()) return r.transport;
  if (r.code == native::Status::kNotFound) return std::optional<Item>();
  if (r.code != native::Status::kOk) return tier_error(r);
  return std::optional<Item>(Item{std::move(r.value), r.flags, r.cas});
}

Result<std::optional<Item>> Client::gets(std::string_view key) { return get(key); }

namespace {
Call store_call(Op op, std::string_view key, std::string_view value, int64_t ttl, uint32_t flags) {
  Call c = make(op, key);
  c.value = std::string(value);
  c.ttl = ttl;
  c.flags = flags;
  return c;
}
}  // namespace

Status Client::set(std::string_view key, std::string_view value, int64_t ttl, uint32_t flags) {
  Reply r = impl_->write(impl_->shard_of(key), store_call(Op::kSet, key, value, ttl, flags));
  return r.transport.is_ok() && r.code == native::Status::kOk ? Status::ok() : tier_error(r);
}

Result<bool> Client::add(std::string_view key, std::string_view value, int64_t ttl,
                         uint32_t flags) {
  Reply r = impl_->write(impl_->shard_of(key), store_call(Op::kAdd, key, value, ttl, flags));
  if (!r.transport.is_ok()) return r.transport;
  if (r.code == native::Status::kNotStored) return false;
  if (r.code != native::Status::kOk) return tier_error(r);
  return true;
}

Result<bool> Client::replace(std::string_view key, std::string_view value, int64_t ttl,
                             uint32_t flags) {
  Reply r = impl_->write(impl_->shard_of(key), store_call(Op::kReplace, key, value, ttl, flags));
  if (!r.transport.is_ok()) return r.transport;
  if (r.code == native::Status::kNotStored) return false;
  if (r.code != native::Status::kOk) return tier_error(r);
  return true;
}

Result<bool> Client::cas(std::string_view key, std::string_view value, uint64_t token, int64_t ttl,
                         uint32_t flags) {
  // CAS tokens are per node: the compare happens on the first replica, and on success the
  // value is copied to the others with a plain set.
  size_t shard = impl_->shard_of(key);
  Call c = store_call(Op::kCas, key, value, ttl, flags);
  c.cas = token;
  Connection* primary = impl_->conns[shard][0];
  auto deadline = Clock::now() + std::chrono::milliseconds(impl_->opts.timeout_ms);
  Reply r = Impl::wait(impl_->start(primary, c), deadline);
  if (!r.transport.is_ok()) return r.transport;
  if (r.code == native::Status::kExists || r.code == native::Status::kNotFound) return false;
  if (r.code != native::Status::kOk) return tier_error(r);
  Call copy = store_call(Op::kSet, key, value, ttl, flags);
  for (size_t i = 1; i < impl_->conns[shard].size(); ++i) {
    Impl::wait(impl_->start(impl_->conns[shard][i], copy), deadline);
  }
  return true;
}

Result<bool> Client::del(std::string_view key) {
  Reply r = impl_->write(impl_->shard_of(key), make(Op::kDelete, key));
  if (!r.transport.is_ok()) return r.transport;
  if (r.code == native::Status::kNotFound) return false;
  if (r.code != native::Status::kOk) return tier_error(r);
  return true;
}

namespace {
Result<std::optional<uint64_t>> arith_result(const Reply& r) {
  if (!r.transport.is_ok()) return r.transport;
  if (r.code == native::Status::kNotFound) return std::optional<uint64_t>();
  if (r.code != native::Status::kOk) return tier_error(r);
  return std::optional<uint64_t>(r.number);
}
}  // namespace

Result<std::optional<uint64_t>> Client::incr(std::string_view key, uint64_t delta) {
  Call c = make(Op::kIncr, key);
  c.delta = delta;
  return arith_result(impl_->write(impl_->shard_of(key), c));
}

Result<std::optional<uint64_t>> Client::decr(std::string_view key, uint64_t delta) {
  Call c = make(Op::kDecr, key);
  c.delta = delta;
  return arith_result(impl_->write(impl_->shard_of(key), c));
}

Result<bool> Client::touch(std::string_view key, int64_t ttl) {
  Call c = make(Op::kTouch, key);
  c.ttl = ttl;
  Reply r = impl_->write(impl_->shard_of(key), c);
  if (!r.transport.is_ok()) return r.transport;
  return r.code == native::Status::kOk;
}

Result<std::map<std::string, Item>> Client::get_multi(const std::vector<std::string>& keys) {
  std::map<size_t, std::vector<std::string>> by_shard;
  for (const auto& k : keys) by_shard[impl_->shard_of(k)].push_back(k);
  std::map<std::string, Item> out;
  for (auto& [shard, ks] : by_shard) {
    Call c;
    c.op = Op::kMultiGet;
    c.keys = ks;
    Reply r = impl_->read(shard, c);
    if (!r.transport.is_ok()) return r.transport;
    if (r.code != native::Status::kOk || r.values.size() != ks.size()) return tier_error(r);
    for (size_t i = 0; i < ks.size(); ++i) {
      if (r.values[i]) out[ks[i]] = Item{*r.values[i], 0, 0};
    }
  }
  return out;
}

Status Client::set_multi(const std::map<std::string, std::string>& items, int64_t ttl) {
  for (const auto& [k, v] : items) {
    Status s = set(k, v, ttl);
    if (!s.is_ok()) return s;
  }
  return Status::ok();
}

}  // namespace cachetier
