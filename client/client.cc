// cachetier::Client: the synchronous facade over Connections on a LoopThread, the Ring and
// replica sets. See <cachetier/client.h> for the contract.
#include "cachetier/client.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>

#include "client/dns_refresh.h"
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
  std::shared_ptr<net::TlsContext> tls;
  client::LoopThread loop;
  // [shard][replica]: replaced whole on the loop when a DNS change reaches a shard; callers
  // take a snapshot, and the pools they send through stay alive until their replies.
  std::atomic<std::shared_ptr<const client::Pools>> pools;
  std::shared_ptr<client::DnsRefresh> dns;  // loop thread only
  std::atomic<uint64_t> rr{0};

  std::shared_ptr<const client::Pools> topology() const {
    return pools.load(std::memory_order_acquire);
  }

  // Sends `call` on one connection of `pool` from the loop thread; the future holds its reply.
  std::shared_future<Reply> start(const std::shared_ptr<client::NodePool>& pool, const Call& call) {
    auto p = std::make_shared<std::promise<Reply>>();
    std::shared_future<Reply> f = p->get_future().share();
    Connection* c = pool->pick();
    pool->outstanding.fetch_add(1, std::memory_order_relaxed);
    loop.post([c, pool, call, p] {
      Status s = pool->closed ? Status(StatusCode::kIoError, "the node left its shard")
                              : c->send(call, [pool, p](Reply&& r) {
                                  pool->outstanding.fetch_sub(1, std::memory_order_relaxed);
                                  p->set_value(std::move(r));
                                });
      if (!s.is_ok()) {
        pool->outstanding.fetch_sub(1, std::memory_order_relaxed);
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
  std::chrono::milliseconds timeout() const { return std::chrono::milliseconds(opts.timeout_ms); }
  Clock::time_point deadline() const { return Clock::now() + timeout(); }

  // A read: the replicas in read order (client::read_order), until one answers or time runs
  // out. start_read() sends the first attempt; finish_read() waits and fails over.
  struct ReadAttempt {
    std::shared_ptr<const client::Pools> topo;
    size_t shard = 0, n = 0;
    uint8_t order[client::kMaxReplicas];
    std::shared_future<Reply> f;
  };
  // `now`: the clock read the caller's deadline came from.
  ReadAttempt start_read(size_t shard, const Call& call, Clock::time_point now) {
    ReadAttempt a;
    a.topo = topology();
    a.shard = shard;
    const client::Replicas& replicas = (*a.topo)[shard];
    a.n = client::read_order(replicas, opts.read_policy, rr++, now, a.order);
    a.f = start(replicas[a.order[0]], call);
    return a;
  }
  Reply finish_read(const ReadAttempt& a, const Call& call, Clock::time_point until) {
    const client::Replicas& replicas = (*a.topo)[a.shard];
    Reply last = wait(a.f, until);
    for (size_t i = 1; i < a.n && !last.transport.is_ok() && Clock::now() < until; ++i) {
      last = wait(start(replicas[a.order[i]], call), until);
    }
    return last;
  }
  Reply read(size_t shard, const Call& call) {
    const auto now = Clock::now();
    return finish_read(start_read(shard, call, now), call, now + timeout());
  }

  // A write: every replica, in parallel; the answer of the first replica that answered, in
  // replica order (so the primary's when it is up).
  std::vector<std::shared_future<Reply>> start_write(size_t shard, const Call& call) {
    std::vector<std::shared_future<Reply>> fs;
    auto topo = topology();
    for (const auto& pool : (*topo)[shard]) fs.push_back(start(pool, call));
    return fs;
  }
  static Reply finish_write(const std::vector<std::shared_future<Reply>>& fs,
                            Clock::time_point until) {
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
  Reply write(size_t shard, const Call& call) {
    auto until = deadline();
    return finish_write(start_write(shard, call), until);
  }

  // On the loop: a DNS change gave `shard` the replica list `next`.
  void apply(size_t shard, const std::vector<std::string>& next) {
    auto cur = topology();
    if (client::same_addresses((*cur)[shard], next)) return;
    auto changed = std::make_shared<client::Pools>(*cur);
    (*changed)[shard] = client::repool(loop.loop(), (*cur)[shard], next, opts, tls,
                                       Clock::now() + std::chrono::milliseconds(opts.warmup_ms));
    pools.store(std::move(changed), std::memory_order_release);
  }

  size_t shard_of(std::string_view key) const { return ring->shard_for(key); }
};

Result<std::unique_ptr<Client>> Client::create(const ClientOptions& options) {
  client::Resolved resolved;
  auto ring = client::ring_from_options(options, &resolved);
  if (!ring.is_ok()) return ring.status();
  auto tls = client::tls_from_options(options);
  if (!tls.is_ok()) return tls.status();
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  impl->ring = std::move(ring.value());
  impl->tls = tls.value();
  std::promise<void> ready;
  Impl* raw = impl.get();
  raw->loop.post([raw, &ready, &resolved] {
    raw->pools.store(std::make_shared<const client::Pools>(
        client::connect_all(raw->loop.loop(), *raw->ring, raw->opts, raw->tls)));
    raw->dns = client::DnsRefresh::start(
        raw->loop.loop(), raw->opts, *raw->ring, std::move(resolved),
        [raw](size_t shard, const std::vector<std::string>& next) { raw->apply(shard, next); });
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
    if (raw->dns) raw->dns->stop();
    for (const auto& replicas : *raw->topology()) {
      for (const auto& pool : replicas) pool->close_all();
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
  // The first is the first warm replica as listed (the one kPrimary reads).
  const auto topo = impl_->topology();
  const client::Replicas& replicas = (*topo)[impl_->shard_of(key)];
  uint8_t order[client::kMaxReplicas];
  client::read_order(replicas, ReadPolicy::kPrimary, 0, Clock::now(), order);
  Call c = client::store_call(Op::kCas, key, value, ttl, flags);
  c.cas = token;
  auto until = impl_->deadline();
  Reply r = Impl::wait(impl_->start(replicas[order[0]], c), until);
  if (!r.transport.is_ok()) return r.transport;
  if (r.code == native::Status::kExists || r.code == native::Status::kNotFound) return false;
  if (r.code != native::Status::kOk) return client::tier_error(r);
  Call copy = client::store_call(Op::kSet, key, value, ttl, flags);
  for (size_t i = 0; i < replicas.size(); ++i) {
    if (i != order[0]) Impl::wait(impl_->start(replicas[i], copy), until);
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

// One multi_get per shard, all shards at once; each fails over on its own.
Result<std::map<std::string, Item>> Client::get_multi(const std::vector<std::string>& keys) {
  auto calls = client::multi_get_calls(*impl_->ring, keys);
  const auto now = Clock::now();
  const auto until = now + impl_->timeout();
  std::vector<Impl::ReadAttempt> attempts;
  for (const auto& [shard, call] : calls) attempts.push_back(impl_->start_read(shard, call, now));
  std::map<std::string, Item> out;
  Status first_error;
  size_t i = 0;
  for (const auto& [shard, call] : calls) {
    Status s = client::add_hits(impl_->finish_read(attempts[i++], call, until), call, out);
    if (!s.is_ok() && first_error.is_ok()) first_error = s;
  }
  if (!first_error.is_ok()) return first_error;
  return out;
}

// One multi_set per shard to every replica, all at once.
Status Client::set_multi(const std::map<std::string, std::string>& items, int64_t ttl) {
  auto calls = client::multi_set_calls(*impl_->ring, items, ttl);
  auto until = impl_->deadline();
  std::vector<std::vector<std::shared_future<Reply>>> writes;
  for (const auto& [shard, call] : calls) writes.push_back(impl_->start_write(shard, call));
  Status first_error;
  size_t i = 0;
  for (const auto& [shard, call] : calls) {
    Status s = client::multi_set_status(Impl::finish_write(writes[i++], until), call);
    if (!s.is_ok() && first_error.is_ok()) first_error = s;
  }
  return first_error;
}

}  // namespace cachetier
