// cachetier::Client: the synchronous facade over Connections on a LoopThread, the Ring and
// replica sets. See <cachetier/client.h> for the contract.
#include "cachetier/client.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>

#include "client/facade.h"
#include "client/loop_thread.h"

namespace cachetier {

namespace {
using client::Call;
using client::Connection;
using client::Reply;
using native::Op;
using Clock = std::chrono::steady_clock;
}  // namespace

struct Client::Impl {
  ClientOptions opts;
  std::unique_ptr<client::Ring> ring;
  client::LoopThread loop;
  client::Pools conns;  // [shard][replica]; the Connections are touched on the loop only
  std::atomic<uint64_t> rr{0};

  // Sends `call` on one connection from the loop thread; the future holds its reply.
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
  Clock::time_point deadline() const {
    return Clock::now() + std::chrono::milliseconds(opts.timeout_ms);
  }

  // A read: one replica by policy, then the others, until one answers or time runs out.
  Reply read(size_t shard, const Call& call) {
    auto until = deadline();
    const auto& replicas = conns[shard];
    size_t n = replicas.size();
    size_t first = opts.read_policy == ReadPolicy::kRoundRobin ? rr++ % n : 0;
    Reply last;
    for (size_t a = 0; a < n && Clock::now() < until; ++a) {
      last = wait(start(replicas[(first + a) % n]->pick(), call), until);
      if (last.transport.is_ok()) return last;
    }
    if (last.transport.is_ok()) last.transport = Status(StatusCode::kInternal, "timeout");
    return last;
  }

  // A write: every replica, in parallel; the answer of the first replica that answered, in
  // replica order (so the primary's when it is up).
  Reply write(size_t shard, const Call& call) {
    auto until = deadline();
    std::vector<std::shared_future<Reply>> fs;
    for (auto& pool : conns[shard]) fs.push_back(start(pool->pick(), call));
    Reply best;
    bool have = false;
    for (auto& f : fs) {
      Reply r = wait(f, until);
      if (!have) {
        have = r.transport.is_ok();
        best = std::move(r);
      }
    }
    return best;
  }

  size_t shard_of(std::string_view key) const { return ring->shard_for(key); }
};

Result<std::unique_ptr<Client>> Client::create(const ClientOptions& options) {
  auto ring = client::ring_from_options(options);
  if (!ring.is_ok()) return ring.status();
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  impl->ring = std::move(ring.value());
  std::promise<void> ready;
  Impl* raw = impl.get();
  raw->loop.post([raw, &ready] {
    raw->conns = client::connect_all(raw->loop.loop(), *raw->ring, raw->opts);
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
      for (auto& pool : replicas) pool->close_all();
    }
    closed.set_value();
  });
  closed.get_future().get();
}

Result<std::optional<Item>> Client::get(std::string_view key) {
  return client::item_result(impl_->read(impl_->shard_of(key), client::key_call(Op::kGet, key)));
}

Result<std::optional<Item>> Client::gets(std::string_view key) { return get(key); }

Status Client::set(std::string_view key, std::string_view value, int64_t ttl, uint32_t flags) {
  Reply r =
      impl_->write(impl_->shard_of(key), client::store_call(Op::kSet, key, value, ttl, flags));
  return r.transport.is_ok() && r.code == native::Status::kOk ? Status::ok()
                                                              : client::tier_error(r);
}

Result<bool> Client::add(std::string_view key, std::string_view value, int64_t ttl,
                         uint32_t flags) {
  return client::bool_result(
      impl_->write(impl_->shard_of(key), client::store_call(Op::kAdd, key, value, ttl, flags)),
      native::Status::kNotStored);
}

Result<bool> Client::replace(std::string_view key, std::string_view value, int64_t ttl,
                             uint32_t flags) {
  return client::bool_result(
      impl_->write(impl_->shard_of(key), client::store_call(Op::kReplace, key, value, ttl, flags)),
      native::Status::kNotStored);
}

Result<bool> Client::cas(std::string_view key, std::string_view value, uint64_t token, int64_t ttl,
                         uint32_t flags) {
  // CAS tokens are per node: the compare happens on the first replica, and on success the
  // value is copied to the others with a plain set.
  size_t shard = impl_->shard_of(key);
  Call c = client::store_call(Op::kCas, key, value, ttl, flags);
  c.cas = token;
  auto until = impl_->deadline();
  Reply r = Impl::wait(impl_->start(impl_->conns[shard][0]->pick(), c), until);
  if (!r.transport.is_ok()) return r.transport;
  if (r.code == native::Status::kExists || r.code == native::Status::kNotFound) return false;
  if (r.code != native::Status::kOk) return client::tier_error(r);
  Call copy = client::store_call(Op::kSet, key, value, ttl, flags);
  for (size_t i = 1; i < impl_->conns[shard].size(); ++i) {
    Impl::wait(impl_->start(impl_->conns[shard][i]->pick(), copy), until);
  }
  return true;
}

Result<bool> Client::del(std::string_view key) {
  return client::bool_result(impl_->write(impl_->shard_of(key), client::key_call(Op::kDelete, key)),
                             native::Status::kNotFound);
}

Result<std::optional<uint64_t>> Client::incr(std::string_view key, uint64_t delta) {
  Call c = client::key_call(Op::kIncr, key);
  c.delta = delta;
  return client::counter_result(impl_->write(impl_->shard_of(key), c));
}

Result<std::optional<uint64_t>> Client::decr(std::string_view key, uint64_t delta) {
  Call c = client::key_call(Op::kDecr, key);
  c.delta = delta;
  return client::counter_result(impl_->write(impl_->shard_of(key), c));
}

Result<bool> Client::touch(std::string_view key, int64_t ttl) {
  Call c = client::key_call(Op::kTouch, key);
  c.ttl = ttl;
  return client::bool_result(impl_->write(impl_->shard_of(key), c), native::Status::kNotFound);
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
    if (r.code != native::Status::kOk || r.values.size() != ks.size()) return client::tier_error(r);
    for (size_t i = 0; i < ks.size(); ++i) {
      if (r.values[i]) out[ks[i]] = Item{r.values[i]->value, r.values[i]->flags, r.values[i]->cas};
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
