// cachetier::AsyncClient: Connections on the caller's loop, the Ring and replica sets, with
// callbacks. See <cachetier/client.h> for the contract.
#include <chrono>
#include <memory>

#include "cachetier/client.h"
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
  client::Pools conns;  // [shard][replica]
  uint64_t rr = 0;

  // A read: tries replicas in turn (from the policy's first) until one answers or the
  // deadline passes.
  struct ReadState {
    Call call;
    size_t first = 0, tried = 0;
    Clock::time_point deadline;
    Reply last;
    ReplyFn done;
  };
  void read(size_t shard, Call call, ReplyFn done) {
    auto st = std::make_shared<ReadState>();
    st->call = std::move(call);
    st->first = client::first_replica(conns[shard], opts.read_policy, rr++);
    st->deadline = Clock::now() + std::chrono::milliseconds(opts.timeout_ms);
    st->done = std::move(done);
    st->last.transport = Status(StatusCode::kIoError, "no replica answered");
    try_next(shard, st);
  }
  void try_next(size_t shard, const std::shared_ptr<ReadState>& st) {
    const auto& replicas = conns[shard];
    while (st->tried < replicas.size() && Clock::now() < st->deadline) {
      client::NodePool* pool = replicas[(st->first + st->tried++) % replicas.size()].get();
      pool->outstanding.fetch_add(1, std::memory_order_relaxed);
      Status s = pool->pick()->send(st->call, [this, shard, st, pool](Reply&& r) {
        pool->outstanding.fetch_sub(1, std::memory_order_relaxed);
        if (r.transport.is_ok()) {
          st->done(std::move(r));
          return;
        }
        st->last = std::move(r);
        try_next(shard, st);
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
    size_t n = conns[shard].size();
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
      Status s = conns[shard][i]->pick()->send(
          call, [finish_one, i](Reply&& r) { finish_one(i, std::move(r)); });
      if (!s.is_ok()) {
        Reply r;
        r.transport = s;
        finish_one(i, std::move(r));
      }
    }
  }
};

Result<std::unique_ptr<AsyncClient>> AsyncClient::create(uv_loop_s* loop,
                                                         const ClientOptions& options) {
  auto ring = client::ring_from_options(options);
  if (!ring.is_ok()) return ring.status();
  auto tls = client::tls_from_options(options);
  if (!tls.is_ok()) return tls.status();
  auto impl = std::make_unique<Impl>();
  impl->opts = options;
  impl->ring = std::move(ring.value());
  impl->conns = client::connect_all(loop, *impl->ring, options, tls.value());
  return std::unique_ptr<AsyncClient>(new AsyncClient(std::move(impl)));
}

AsyncClient::AsyncClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AsyncClient::~AsyncClient() {
  for (auto& replicas : impl_->conns) {
    for (auto& pool : replicas) pool->close_all();
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
  size_t shard = impl_->ring->shard_for(key);
  Call c = client::store_call(Op::kCas, key, value, ttl, flags);
  c.cas = token;
  Impl* impl = impl_.get();
  auto copy = std::make_shared<Call>(client::store_call(Op::kSet, key, value, ttl, flags));
  auto answer = [impl, shard, copy, done = std::move(done)](Reply&& r) {
    if (!r.transport.is_ok()) return done(r.transport);
    if (r.code == native::Status::kExists || r.code == native::Status::kNotFound) {
      return done(false);
    }
    if (r.code != native::Status::kOk) return done(client::tier_error(r));
    // Copy to the other replicas; answer when they have (their failures do not undo the cas).
    auto& replicas = impl->conns[shard];
    auto left = std::make_shared<size_t>(replicas.size() - 1);
    if (*left == 0) return done(true);
    for (size_t i = 1; i < replicas.size(); ++i) {
      auto one_done = [left, done](Reply&&) {
        if (--*left == 0) done(true);
      };
      if (!replicas[i]->pick()->send(*copy, one_done).is_ok()) one_done(Reply{});
    }
  };
  Status s = impl->conns[shard][0]->pick()->send(c, answer);
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
