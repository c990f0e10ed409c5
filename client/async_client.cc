// cachetier::AsyncClient: Connections on the caller's loop, the Ring and replica sets, with
// callbacks. See <cachetier/client.h> for the contract.
#include <chrono>
#include <memory>

#include "cachetier/client.h"
#include "client/dns_refresh.h"
#include "client/facade.h"

namespace cachetier {

namespace {
using client::Call;
using client::Connection;
using client::Reply;
using native::Op;
using Clock = std::chrono::steady_clock;
using ReplyFn = std::function<void(Reply&&)>;
}  // namespace

struct AsyncClient::Impl {
  ClientOptions opts;
  std::unique_ptr<client::Ring> ring;
  uv_loop_t* loop = nullptr;
  std::shared_ptr<net::TlsContext> tls;
  // [shard][replica]: replaced whole when a DNS change reaches a shard; a request keeps the
  // replicas it started with (a pool that left is closed, and sends to it fail).
  std::shared_ptr<const client::Pools> conns;
  std::shared_ptr<client::DnsRefresh> dns;
  uint64_t rr = 0;

  // A read: tries replicas in read order (client::read_order) until one answers or the
  // deadline passes.
  struct ReadState {
    Call call;
    std::shared_ptr<const client::Pools> topo;  // the pools the read started with
    size_t shard = 0;
    uint8_t order[client::kMaxReplicas];
    size_t n = 0, tried = 0;
    Clock::time_point deadline;
    Reply last;
    ReplyFn done;
  };
  void read(size_t shard, Call call, ReplyFn done) {
    auto st = std::make_shared<ReadState>();
    st->call = std::move(call);
    st->topo = conns;
    st->shard = shard;
    Clock::time_point now = Clock::now();
    st->n = client::read_order((*conns)[shard], opts.read_policy, rr++, now, st->order);
    st->deadline = now + std::chrono::milliseconds(opts.timeout_ms);
    st->done = std::move(done);
    st->last.transport = Status(StatusCode::kIoError, "no replica answered");
    try_next(st);
  }
  static Status send(client::NodePool& pool, const Call& call, ReplyFn done) {
    if (pool.closed) return Status(StatusCode::kIoError, "the node left its shard");
    return pool.pick()->send(call, std::move(done));
  }
  static void try_next(const std::shared_ptr<ReadState>& st) {
    while (st->tried < st->n && Clock::now() < st->deadline) {
      client::NodePool* pool = (*st->topo)[st->shard][st->order[st->tried++]].get();
      pool->outstanding.fetch_add(1, std::memory_order_relaxed);
      Status s = send(*pool, st->call, [st, pool](Reply&& r) {
        pool->outstanding.fetch_sub(1, std::memory_order_relaxed);
        if (r.transport.is_ok()) {
          st->done(std::move(r));
          return;
        }
        st->last = std::move(r);
        try_next(st);
      });
      if (s.is_ok()) return;  // the callback continues the chain
      pool->outstanding.fetch_sub(1, std::memory_order_relaxed);
      st->last.transport = s;
    }
    st->done(std::move(st->last));
  }

  // A write: every replica; `done` gets the first replica's answer (in replica order) that
  // arrived, once all have answered or failed.
  struct WriteState {
    std::vector<Reply> replies;
    size_t left = 0;
    ReplyFn done;
  };
  void write(size_t shard, const Call& call, ReplyFn done) {
    auto st = std::make_shared<WriteState>();
    const client::Replicas& replicas = (*conns)[shard];
    size_t n = replicas.size();
    st->replies.resize(n);
    st->left = n;
    st->done = std::move(done);
    auto finish_one = [st](size_t i, Reply&& r) {
      st->replies[i] = std::move(r);
      if (--st->left > 0) return;
      for (Reply& x : st->replies) {
        if (x.transport.is_ok()) {
          st->done(std::move(x));
          return;
        }
      }
      st->done(std::move(st->replies[0]));
    };
    for (size_t i = 0; i < n; ++i) {
      Status s =
          send(*replicas[i], call, [finish_one, i](Reply&& r) { finish_one(i, std::move(r)); });
      if (!s.is_ok()) {
        Reply r;
        r.transport = s;
        finish_one(i, std::move(r));
      }
    }
  }

  // A DNS change gave `shard` the replica list `next`.
  void apply(size_t shard, const std::vector<std::string>& next) {
    if (client::same_addresses((*conns)[shard], next)) return;
    auto changed = std::make_shared<client::Pools>(*conns);
    (*changed)[shard] = client::repool(loop, (*conns)[shard], next, opts, tls,
                                       Clock::now() + std::chrono::milliseconds(opts.warmup_ms));
    conns = std::move(changed);
  }
};

Result<std::unique_ptr<AsyncClient>> AsyncClient::create(uv_loop_s* loop,
                                                         const ClientOptions& options) {
  client::Resolved resolved;
  auto ring = client::ring_from_options(options, &resolved);
  if (!ring.is_ok()) return ring.status();
  auto tls = client::tls_from_options(options);
  if (!tls.is_ok()) return tls.status();
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  impl->ring = std::move(ring.value());
  impl->loop = loop;
  impl->tls = tls.value();
  impl->conns = std::make_shared<const client::Pools>(
      client::connect_all(loop, *impl->ring, options, impl->tls));
  Impl* raw = impl.get();
  impl->dns = client::DnsRefresh::start(
      loop, options, *impl->ring, std::move(resolved),
      [raw](size_t shard, const std::vector<std::string>& next) { raw->apply(shard, next); });
  return std::unique_ptr<AsyncClient>(new AsyncClient(std::move(impl)));
}

AsyncClient::AsyncClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AsyncClient::~AsyncClient() {
  if (impl_->dns) impl_->dns->stop();
  for (const auto& replicas : *impl_->conns) {
    for (const auto& pool : replicas) pool->close_all();
  }
}

void AsyncClient::get(std::string_view key, ItemCallback done) {
  impl_->read(impl_->ring->shard_for(key), client::key_call(Op::kGet, key),
              [done = std::move(done)](Reply&& r) { done(client::item_result(std::move(r))); });
}

void AsyncClient::gets(std::string_view key, ItemCallback done) { get(key, std::move(done)); }

void AsyncClient::set(std::string_view key, std::string_view value, int64_t ttl, uint32_t flags,
                      StatusCallback done) {
  impl_->write(impl_->ring->shard_for(key), client::store_call(Op::kSet, key, value, ttl, flags),
               [done = std::move(done)](Reply&& r) {
                 done(r.transport.is_ok() && r.code == native::Status::kOk ? Status::ok()
                                                                           : client::tier_error(r));
               });
}

void AsyncClient::add(std::string_view key, std::string_view value, int64_t ttl, uint32_t flags,
                      BoolCallback done) {
  impl_->write(impl_->ring->shard_for(key), client::store_call(Op::kAdd, key, value, ttl, flags),
               [done = std::move(done)](Reply&& r) {
                 done(client::bool_result(r, native::Status::kNotStored));
               });
}

void AsyncClient::replace(std::string_view key, std::string_view value, int64_t ttl, uint32_t flags,
                          BoolCallback done) {
  impl_->write(impl_->ring->shard_for(key),
               client::store_call(Op::kReplace, key, value, ttl, flags),
               [done = std::move(done)](Reply&& r) {
                 done(client::bool_result(r, native::Status::kNotStored));
               });
}

void AsyncClient::del(std::string_view key, BoolCallback done) {
  impl_->write(impl_->ring->shard_for(key), client::key_call(Op::kDelete, key),
               [done = std::move(done)](Reply&& r) {
                 done(client::bool_result(r, native::Status::kNotFound));
               });
}

void AsyncClient::incr(std::string_view key, uint64_t delta, CounterCallback done) {
  Call c = client::key_call(Op::kIncr, key);
  c.delta = delta;
  impl_->write(impl_->ring->shard_for(key), c,
               [done = std::move(done)](Reply&& r) { done(client::counter_result(r)); });
}

void AsyncClient::decr(std::string_view key, uint64_t delta, CounterCallback done) {
  Call c = client::key_call(Op::kDecr, key);
  c.delta = delta;
  impl_->write(impl_->ring->shard_for(key), c,
               [done = std::move(done)](Reply&& r) { done(client::counter_result(r)); });
}

void AsyncClient::touch(std::string_view key, int64_t ttl, BoolCallback done) {
  Call c = client::key_call(Op::kTouch, key);
  c.ttl = ttl;
  impl_->write(impl_->ring->shard_for(key), c, [done = std::move(done)](Reply&& r) {
    done(client::bool_result(r, native::Status::kNotFound));
  });
}

// CAS tokens are per node: the compare happens on the first replica, and on success the value
// is copied to the others with a plain set (as Client::cas).
void AsyncClient::cas(std::string_view key, std::string_view value, uint64_t token, int64_t ttl,
                      uint32_t flags, BoolCallback done) {
  // The compare goes to the first warm replica as listed (the one kPrimary reads).
  client::Replicas replicas = (*impl_->conns)[impl_->ring->shard_for(key)];
  uint8_t order[client::kMaxReplicas];
  client::read_order(replicas, ReadPolicy::kPrimary, 0, Clock::now(), order);
  size_t first = order[0];
  Call c = client::store_call(Op::kCas, key, value, ttl, flags);
  c.cas = token;
  auto copy = std::make_shared<Call>(client::store_call(Op::kSet, key, value, ttl, flags));
  auto answer = [replicas, first, copy, done = std::move(done)](Reply&& r) {
    if (!r.transport.is_ok()) return done(r.transport);
    if (r.code == native::Status::kExists || r.code == native::Status::kNotFound) {
      return done(false);
    }
    if (r.code != native::Status::kOk) return done(client::tier_error(r));
    // Copy to the other replicas; answer when they have (their failures do not undo the cas).
    auto left = std::make_shared<size_t>(replicas.size() - 1);
    if (*left == 0) return done(true);
    for (size_t i = 0; i < replicas.size(); ++i) {
      if (i == first) continue;
      auto one_done = [left, done](Reply&&) {
        if (--*left == 0) done(true);
      };
      if (!Impl::send(*replicas[i], *copy, one_done).is_ok()) one_done(Reply{});
    }
  };
  Status s = Impl::send(*replicas[first], c, answer);
  if (!s.is_ok()) {
    Reply r;
    r.transport = s;
    answer(std::move(r));
  }
}

namespace {
// Gathers per-shard results; `finish` runs once, after the last shard.
template <typename T>
struct Gather {
  size_t left = 0;
  T out{};
  Status first_error;
  void note(const Status& s) {
    if (!s.is_ok() && first_error.is_ok()) first_error = s;
  }
};
}  // namespace

void AsyncClient::get_multi(const std::vector<std::string>& keys, MultiCallback done) {
  auto calls =
      std::make_shared<std::map<size_t, Call>>(client::multi_get_calls(*impl_->ring, keys));
  if (calls->empty()) return done(std::map<std::string, Item>());
  auto g = std::make_shared<Gather<std::map<std::string, Item>>>();
  g->left = calls->size();
  auto shared_done = std::make_shared<MultiCallback>(std::move(done));
  for (const auto& [shard, call] : *calls) {
    const Call* c = &call;
    impl_->read(shard, call, [g, calls, c, shared_done](Reply&& r) {
      g->note(client::add_hits(std::move(r), *c, g->out));
      if (--g->left > 0) return;
      if (!g->first_error.is_ok()) return (*shared_done)(g->first_error);
      (*shared_done)(std::move(g->out));
    });
  }
}

void AsyncClient::set_multi(const std::map<std::string, std::string>& items, int64_t ttl,
                            StatusCallback done) {
  auto calls =
      std::make_shared<std::map<size_t, Call>>(client::multi_set_calls(*impl_->ring, items, ttl));
  if (calls->empty()) return done(Status::ok());
  auto g = std::make_shared<Gather<int>>();
  g->left = calls->size();
  auto shared_done = std::make_shared<StatusCallback>(std::move(done));
  for (const auto& [shard, call] : *calls) {
    const Call* c = &call;
    impl_->write(shard, call, [g, calls, c, shared_done](Reply&& r) {
      g->note(client::multi_set_status(r, *c));
      if (--g->left == 0) (*shared_done)(g->first_error);
    });
  }
}

}  // namespace cachetier
