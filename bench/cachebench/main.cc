// cachebench: a memtier_benchmark-style load generator on the project's protocol codecs.
// Same flags and report as memtier_benchmark (see bench/cachebench/README.md); one libuv loop
// per thread, --clients connections per thread, --pipeline requests in flight per connection.
// Beyond memtier: a per-second series of the run (--csv, --report HTML), errors counted per
// second (a dropped connection reconnects instead of ending the run), and the native protocol.
#include <unistd.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/cachebench/histogram.h"
#include "bench/cachebench/keys.h"
#include "bench/cachebench/proto.h"
#include "bench/cachebench/report.h"
#include "bench/cachebench/scenario.h"
#include "bench/cachebench/trace_replay.h"
#include "client/ring/ring.h"
#include "common/buffer.h"

namespace {

using cachetier::ByteBuffer;
using namespace cachetier::bench;

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

struct Pending {
  bool is_get;
  uint64_t start;
  uint64_t tx;  // the request's bytes
};

class Worker;
struct Client;

// One connection of a client to one server.
struct Conn {
  uv_tcp_t* tcp = nullptr;  // a fresh handle per connection attempt
  uv_connect_t creq{};
  uv_write_t wreq{};
  uv_timer_t retry{};
  Client* client = nullptr;
  size_t server = 0;
  ByteBuffer in, out, wbuf;
  std::unique_ptr<cachetier::net::TlsSession> tls;  // --tls
  ByteBuffer cin, wire;                             // TLS: ciphertext read / to write
  std::unique_ptr<WireProtocol> proto;
  std::deque<Pending> inflight;
  uint64_t next_id = 1;
  unsigned credit = 0;  // --rate-limiting: requests it may still send in this interval
  bool writing = false, connected = false, done = false;
};

// A memtier client: a request stream (its own key generators and set/get sequence) over one
// connection per server; with several servers (--servers) each key goes to the connection of
// the shard the client ring names, and --pipeline bounds each connection.
struct Client {
  Worker* w = nullptr;
  size_t index = 0;  // among all clients
  std::vector<std::unique_ptr<Conn>> conns;
  std::unique_ptr<KeyGen> set_keys, get_keys;
  uint64_t issued = 0, seq = 0;
  // A request generated for a connection that was full: sent first when it drains.
  bool has_stash = false, stash_get = false;
  std::string stash_key;
};

class Worker {
 public:
  Worker(const Options& o, const cachetier::client::Ring* ring, int index, uint64_t seed)
      : o_(o), ring_(ring), index_(index), rng_(seed) {
    value_.resize(o.data_max);
    for (size_t i = 0; i < value_.size(); ++i) value_[i] = static_cast<char>('a' + i % 26);
  }

  void run() {
    if (o_.tls_ctx) {
      auto ctx = cachetier::net::TlsContext::make_client(o_.tls_ctx->options());
      tls_ctx_ = ctx.is_ok() ? ctx.value() : o_.tls_ctx;
    }
    uv_loop_init(&loop_);
    for (const auto& [host, port] : o_.targets) {
      sockaddr_in a{};
      uv_ip4_addr(host.c_str(), port, &a);
      addrs_.push_back(a);
    }
    clients_.resize(static_cast<size_t>(o_.clients));
    for (size_t i = 0; i < clients_.size(); ++i) {
      auto c = std::make_unique<Client>();
      c->w = this;
      c->index = static_cast<size_t>(index_) * clients_.size() + i;
      uint64_t total = uint64_t(o_.threads) * uint64_t(o_.clients);
      uint64_t seed = o_.distinct_client_seed ? rng_() : base_seed_;
      c->set_keys = std::make_unique<KeyGen>(o_.set_pattern, o_.keys, c->index, total, seed);
      c->get_keys = std::make_unique<KeyGen>(o_.get_pattern, o_.keys, c->index, total, seed + 1);
      for (size_t s = 0; s < addrs_.size(); ++s) {
        auto conn = std::make_unique<Conn>();
        conn->client = c.get();
        conn->server = s;
        conn->proto = make_protocol(o_.protocol);
        uv_timer_init(&loop_, &conn->retry);
        conn->retry.data = conn.get();
        c->conns.push_back(std::move(conn));
        ++total_conns_;
      }
      clients_[i] = std::move(c);
    }
    for (auto& c : clients_) {
      for (auto& conn : c->conns) connect(conn.get());
    }
    uv_timer_init(&loop_, &timer_);
    timer_.data = this;
    if (o_.test_time > 0) {
      uv_timer_start(
          &timer_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->stop(); },
          static_cast<uint64_t>(o_.test_time) * 1000, 0);
    }
    uv_timer_init(&loop_, &rate_timer_);
    rate_timer_.data = this;
    if (o_.rate_limit > 0) {
      uint64_t ms = std::max<uint64_t>(1, (o_.rate_interval_us + 500) / 1000);
      uv_timer_start(
          &rate_timer_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->refill(); }, ms, ms);
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    finished_ = now_ns();
    uv_loop_close(&loop_);
  }

  void set_start(uint64_t t, uint64_t seed) {
    started_ = t;
    base_seed_ = seed;
  }
  RunTotals& totals() { return totals_; }
  uint64_t finished() const { return finished_; }
  uint64_t ops_so_far() const { return ops_.load(std::memory_order_relaxed); }

 private:
  void connect(Conn* c) {
    c->tcp = new uv_tcp_t;
    uv_tcp_init(&loop_, c->tcp);
    c->tcp->data = c;
    uv_tcp_nodelay(c->tcp, 1);
    c->creq.data = c;
    uv_tcp_connect(&c->creq, c->tcp, reinterpret_cast<const sockaddr*>(&addrs_[c->server]),
                   on_connect);
  }

  static void on_connect(uv_connect_t* req, int status) {
    auto* c = static_cast<Conn*>(req->data);
    Worker* w = c->client->w;
    if (status < 0) {
      if (!w->connect_warned_) {
        const auto& [host, port] = w->o_.targets[c->server];
        std::fprintf(stderr, "cachebench: connect to %s:%d: %s\n", host.c_str(), port,
                     uv_strerror(status));
        w->connect_warned_ = true;
      }
      w->count_error();
      w->lost(c);
      return;
    }
    c->connected = true;
    c->credit = w->o_.rate_burst;
    if (w->tls_ctx_) {
      const std::string& host = w->o_.targets[c->server].first;
      c->tls = std::make_unique<cachetier::net::TlsSession>(
          w->tls_ctx_, w->o_.tls_sni.empty() ? host : w->o_.tls_sni);
      if (!c->tls->start_client(c->wire).is_ok()) {
        w->count_error();
        w->lost(c);
        return;
      }
    }
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(c->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* cn = static_cast<Conn*>(h->data);
          ByteBuffer& buf = cn->tls ? cn->cin : cn->in;
          char* p = buf.reserve(64 * 1024);
          *b = uv_buf_init(p, static_cast<unsigned>(buf.writable()));
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
          auto* cn = static_cast<Conn*>(s->data);
          Worker* wk = cn->client->w;
          if (n < 0) {
            wk->lost(cn);
            return;
          }
          wk->totals_.bytes += static_cast<uint64_t>(n);
          if (cn->tls) {
            cn->cin.commit(static_cast<size_t>(n));
            cachetier::Status st = cn->tls->feed(
                cn->cin.view(), wk->tls_scratch_, sizeof wk->tls_scratch_,
                [cn](std::string_view plain) {
                  cn->in.append(plain);
                  return true;
                },
                cn->wire);
            cn->cin.clear();
            if (!st.is_ok()) {
              if (!wk->tls_warned_) {
                std::fprintf(stderr, "cachebench: %s\n", st.message().c_str());
                wk->tls_warned_ = true;
              }
              wk->count_error();
              wk->lost(cn);
              return;
            }
            if (cn->tls->take_just_opened() || !cn->wire.empty()) wk->flush(cn);
          } else {
            cn->in.commit(static_cast<size_t>(n));
          }
          wk->on_data(cn);
        });
    w->flush(c);  // the TLS ClientHello
    w->fill(c->client);
  }

  // The connection dropped or never came up: what was in flight counts as errors, and it
  // reconnects after 100 ms unless the run is over.
  void lost(Conn* c) {
    for (size_t i = 0; i < c->inflight.size(); ++i) count_error();
    c->inflight.clear();
    c->in.clear();
    c->out.clear();
    c->tls.reset();
    c->cin.clear();
    c->wire.clear();
    c->proto = make_protocol(o_.protocol);
    c->connected = false;
    uv_close(reinterpret_cast<uv_handle_t*>(c->tcp), [](uv_handle_t* h) {
      auto* cn = static_cast<Conn*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      cn->client->w->closed_one(cn);
    });
    c->tcp = nullptr;
  }

  void closed_one(Conn* c) {
    if (stopping_ || client_done(c->client)) {
      finish(c);
      return;
    }
    uv_timer_start(
        &c->retry,
        [](uv_timer_t* t) {
          auto* cn = static_cast<Conn*>(t->data);
          Worker* wk = cn->client->w;
          if (wk->stopping_) {
            wk->finish(cn);
            return;
          }
          wk->connect(cn);
        },
        100, 0);
  }

  bool client_done(const Client* c) const {
    if (o_.requests == 0 || c->issued < o_.requests || c->has_stash) return false;
    for (const auto& conn : c->conns) {
      if (!conn->inflight.empty()) return false;
    }
    return true;
  }

  Second& second_at(uint64_t t) {
    size_t s = static_cast<size_t>((t - started_) / 1'000'000'000ull);
    if (totals_.series.size() <= s) totals_.series.resize(s + 1);
    return totals_.series[s];
  }

  // --scenario: the totals of the phase the run is in.
  PhaseTotals* phase_now() {
    if (o_.phase == nullptr) return nullptr;
    size_t p = static_cast<size_t>(o_.phase->load(std::memory_order_relaxed));
    if (totals_.phases.size() <= p) totals_.phases.resize(p + 1);
    return &totals_.phases[p];
  }

  void count_error() {
    ++totals_.errors;
    second_at(now_ns()).errors++;
    if (PhaseTotals* ph = phase_now()) ++ph->errors;
  }

  void on_data(Conn* c) {
    uint64_t t = now_ns();
    Second& sec = second_at(t);
    PhaseTotals* ph = phase_now();
    while (!c->in.empty()) {
      if (c->inflight.empty()) {
        count_error();  // a reply nobody asked for
        lost(c);
        return;
      }
      Pending& p = c->inflight.front();
      Decoded d = c->proto->decode(c->in.view(), p.is_get);
      if (d.status == Decoded::kNeedMore) break;
      if (d.status == Decoded::kFatal) {
        count_error();
        lost(c);
        return;
      }
      uint64_t lat = t - p.start;
      if (d.kind == ReplyKind::kError) {
        ++totals_.errors;
        ++sec.errors;
        if (ph != nullptr) ++ph->errors;
        if (totals_.error_samples.size() < 5) {
          std::string e(d.error);
          while (!e.empty() && (e.back() == '\n' || e.back() == '\r')) e.pop_back();
          totals_.error_samples.push_back(e);
        }
      }
      c->in.consume(d.consumed);
      if (p.is_get) {
        ++totals_.gets;
        if (d.kind == ReplyKind::kHit) {
          ++totals_.hits;
          ++sec.hits;
        } else if (d.kind == ReplyKind::kMiss) {
          ++totals_.misses;
          ++sec.misses;
        }
        totals_.get_lat.record(lat);
      } else {
        ++totals_.sets;
        totals_.set_lat.record(lat);
      }
      TypeSecond& ts = p.is_get ? sec.get : sec.set;
      ++ts.count;
      ts.rx += d.consumed;
      ts.tx += p.tx;
      ts.lat.record(lat);
      (p.is_get ? totals_.get_rx : totals_.set_rx) += d.consumed;
      (p.is_get ? totals_.get_tx : totals_.set_tx) += p.tx;
      if (ph != nullptr) {
        ++ph->requests;
        ph->lat.record(lat);
        if (p.is_get && d.kind == ReplyKind::kHit) ++ph->hits;
        if (p.is_get && d.kind == ReplyKind::kMiss) ++ph->misses;
      }
      ops_.store(ops_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      c->inflight.pop_front();
    }
    fill(c->client);
  }

  // Issues requests until the client's next one finds its connection full (or down).
  void fill(Client* c) {
    while (!stopping_) {
      if (!c->has_stash) {
        if (o_.requests != 0 && c->issued >= o_.requests) break;
        c->stash_get = o_.sets == 0 ||
                       (o_.gets > 0 && (c->seq % uint64_t(o_.sets + o_.gets)) >= uint64_t(o_.sets));
        c->seq++;
        c->issued++;
        uint64_t id = c->stash_get ? c->get_keys->next() : c->set_keys->next();
        c->stash_key.assign(o_.key_prefix);
        c->stash_key.append(std::to_string(id));
        c->has_stash = true;
      }
      size_t s = ring_ != nullptr ? ring_->shard_for(c->stash_key) : 0;
      Conn* conn = c->conns[s].get();
      if (!conn->connected || conn->inflight.size() >= static_cast<size_t>(o_.pipeline)) break;
      if (o_.rate_limit > 0) {
        if (conn->credit == 0) break;
        --conn->credit;
      }
      const size_t before = conn->out.size();
      if (c->stash_get) {
        conn->proto->encode_get(conn->out, c->stash_key, conn->next_id++);
      } else {
        size_t n = o_.data_min == o_.data_max
                       ? o_.data_min
                       : std::uniform_int_distribution<size_t>(o_.data_min, o_.data_max)(rng_);
        int64_t ttl = o_.expiry_max == 0 ? 0
                                         : std::uniform_int_distribution<int64_t>(
                                               o_.expiry_min, o_.expiry_max)(rng_);
        conn->proto->encode_set(conn->out, c->stash_key, std::string_view(value_).substr(0, n), ttl,
                                conn->next_id++);
      }
      conn->inflight.push_back({c->stash_get, now_ns(), conn->out.size() - before});
      c->has_stash = false;
    }
    for (auto& conn : c->conns) flush(conn.get());
    if (stopping_ || client_done(c)) {
      for (auto& conn : c->conns) {
        if (conn->inflight.empty()) close_conn(conn.get());
      }
    }
  }

  // --rate-limiting: a new interval; credit left over from the last one is dropped.
  void refill() {
    if (stopping_) return;
    for (auto& c : clients_) {
      for (auto& conn : c->conns) conn->credit = o_.rate_burst;
    }
    for (auto& c : clients_) fill(c.get());
  }

  void flush(Conn* c) {
    if (c->writing || !c->connected) return;
    if (c->tls && c->tls->handshake_done() && !c->out.empty()) {
      if (!c->tls->encrypt(c->out.view(), c->wire).is_ok()) {
        count_error();
        lost(c);
        return;
      }
      c->out.clear();
    }
    ByteBuffer& w = c->tls ? c->wire : c->out;  // TLS: requests wait for the handshake
    if (w.empty()) return;
    totals_.bytes += w.size();
    // Written at once when the socket takes it all (the usual case): a uv_write that completes
    // at once still costs libuv an epoll_ctl pair, CPU the server under test could have used.
    uv_buf_t whole = uv_buf_init(w.data(), static_cast<unsigned>(w.size()));
    int n = uv_try_write(reinterpret_cast<uv_stream_t*>(c->tcp), &whole, 1);
    if (n == static_cast<int>(w.size())) {
      w.clear();
      return;
    }
    if (n < 0 && n != UV_EAGAIN) {
      lost(c);
      return;
    }
    if (n > 0) w.consume(static_cast<size_t>(n));
    c->wbuf.swap(w);
    c->writing = true;
    c->wreq.data = c;
    uv_buf_t b = uv_buf_init(c->wbuf.data(), static_cast<unsigned>(c->wbuf.size()));
    uv_write(&c->wreq, reinterpret_cast<uv_stream_t*>(c->tcp), &b, 1, [](uv_write_t* w, int st) {
      auto* cn = static_cast<Conn*>(w->data);
      cn->writing = false;
      cn->wbuf.clear();
      if (st < 0) {
        if (cn->connected) cn->client->w->lost(cn);
        return;
      }
      cn->client->w->flush(cn);
    });
  }

  void close_conn(Conn* c) {
    if (!c->connected) return;
    c->connected = false;
    uv_close(reinterpret_cast<uv_handle_t*>(c->tcp), [](uv_handle_t* h) {
      auto* cn = static_cast<Conn*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      cn->client->w->finish(cn);
    });
    c->tcp = nullptr;
  }

  void finish(Conn* c) {
    if (c->done) return;
    c->done = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->retry), nullptr);
    if (++finished_conns_ == total_conns_ &&
        !uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&rate_timer_), nullptr);
    }
  }

  void stop() {
    stopping_ = true;
    for (auto& c : clients_) {
      for (auto& conn : c->conns) {
        if (conn->connected && conn->inflight.empty()) close_conn(conn.get());
      }
    }
    // Replies still missing 5 s after the end count as errors.
    uv_timer_start(
        &timer_,
        [](uv_timer_t* t) {
          auto* w = static_cast<Worker*>(t->data);
          for (auto& c : w->clients_) {
            for (auto& conn : c->conns) {
              for (size_t i = 0; i < conn->inflight.size(); ++i) w->count_error();
              conn->inflight.clear();
              w->close_conn(conn.get());
            }
          }
        },
        5000, 0);
  }

  const Options& o_;
  const cachetier::client::Ring* ring_;  // null: one server
  int index_;
  uv_loop_t loop_{};
  uv_timer_t timer_{};
  uv_timer_t rate_timer_{};  // --rate-limiting: one tick per interval for every connection
  std::vector<sockaddr_in> addrs_;
  std::vector<std::unique_ptr<Client>> clients_;
  size_t finished_conns_ = 0, total_conns_ = 0;
  bool stopping_ = false, connect_warned_ = false;
  char tls_scratch_[16 * 1024];  // TLS: where SSL_read decrypts
  // This thread's client context (OpenSSL 3.0 races in a client context shared by threads).
  std::shared_ptr<cachetier::net::TlsContext> tls_ctx_;
  bool tls_warned_ = false;
  std::mt19937_64 rng_;
  uint64_t base_seed_ = 0;
  std::string value_;
  RunTotals totals_;
  uint64_t started_ = 0, finished_ = 0;
  std::atomic<uint64_t> ops_{0};
};

// --scenario: runs the events at their times while the workers load, moving the phase on at
// each; records each phase's bounds and the router's failovers at each boundary.
class ScenarioRunner {
 public:
  ScenarioRunner(const Options& o, Scenario& s, std::atomic<int>& phase, uint64_t start)
      : o_(o), s_(s), phase_(phase), start_(start) {
    PhaseInfo first;
    first.label = "start";
    first.failovers = failovers();
    info_.push_back(first);
    thread_ = std::thread([this] { run(); });
  }
  // Once the load is over: the last phase ends now; events not reached are left out.
  std::vector<PhaseInfo> finish() {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
    info_.back().to = double(now_ns() - start_) / 1e9;
    int64_t f = failovers();
    for (size_t i = 0; i < info_.size(); ++i) {
      int64_t next = i + 1 < info_.size() ? info_[i + 1].failovers : f;
      info_[i].failovers = info_[i].failovers >= 0 && next >= 0 ? next - info_[i].failovers : -1;
    }
    return info_;
  }

 private:
  int64_t failovers() const {
    if (o_.router_stats.empty()) return -1;
    auto colon = o_.router_stats.rfind(':');
    auto st = router_stats(o_.router_stats.substr(0, colon),
                           std::stoi(o_.router_stats.substr(colon + 1)));
    return st.empty() ? -1 : int64_t(failovers_in(st));
  }
  void run() {
    for (const ScenarioEvent& e : s_.events()) {
      auto when = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(start_)) +
                  std::chrono::milliseconds(int64_t(e.at * 1000));
      {
        std::unique_lock<std::mutex> l(mu_);
        if (cv_.wait_until(l, when, [this] { return done_; })) return;
      }
      PhaseInfo p;
      p.label = e.label;
      p.from = double(now_ns() - start_) / 1e9;
      p.failovers = failovers();
      p.what = s_.run(e);
      std::printf("[%6.2fs] %s\n", p.from, p.what.c_str());
      std::fflush(stdout);
      info_.back().to = p.from;
      info_.push_back(p);
      phase_.store(static_cast<int>(info_.size() - 1), std::memory_order_relaxed);
    }
  }
  const Options& o_;
  Scenario& s_;
  std::atomic<int>& phase_;
  uint64_t start_;
  std::vector<PhaseInfo> info_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// One run: threads, the live progress line on a terminal, merged totals.
RunTotals run_once(const Options& o, const cachetier::client::Ring* ring, int run,
                   Scenario* scenario, std::atomic<int>* phase) {
  uint64_t seed = o.randomize ? std::random_device{}() : 0x9e3779b97f4a7c15ull;
  const uint64_t start_unix_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  std::vector<std::unique_ptr<Worker>> workers;
  uint64_t start = now_ns();
  for (int i = 0; i < o.threads; ++i) {
    workers.push_back(std::make_unique<Worker>(o, ring, i, seed + uint64_t(i) * 7919));
    workers.back()->set_start(start, seed + uint64_t(i) * 104729);
  }
  std::atomic<int> running{o.threads};
  std::unique_ptr<ScenarioRunner> timeline;
  if (scenario != nullptr) timeline = std::make_unique<ScenarioRunner>(o, *scenario, *phase, start);
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&w, &running] {
      w->run();
      running.fetch_sub(1);
    });
  }
  const bool tty = isatty(STDERR_FILENO) != 0;
  uint64_t last_ops = 0, last_t = start;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 1000 : 50));
    if (!tty) continue;
    uint64_t ops = 0;
    for (auto& w : workers) ops += w->ops_so_far();
    uint64_t t = now_ns();
    double secs = double(t - start) / 1e9;
    double rate = double(ops - last_ops) / (double(t - last_t) / 1e9);
    int pct = o.test_time > 0 ? std::min(100, int(secs * 100 / o.test_time)) : 0;
    std::fprintf(stderr, "\r[RUN #%d %3d%%, %3.0f secs] %2d threads: %11llu ops, %9.0f ops/sec",
                 run, pct, secs, running.load(), static_cast<unsigned long long>(ops), rate);
    std::fflush(stderr);
    last_ops = ops;
    last_t = t;
  }
  for (auto& t : threads) t.join();
  if (tty) std::fprintf(stderr, "\n");
  RunTotals all;
  if (timeline) all.phase_info = timeline->finish();
  all.start_unix_ms = start_unix_ms;
  uint64_t end = start;
  for (auto& w : workers) {
    all.merge(w->totals());
    end = std::max(end, w->finished());
  }
  all.seconds = double(end - start) / 1e9;
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  int rc = parse_options(argc, argv, o);
  if (rc >= 0) return rc;
  if (!make_protocol(o.protocol)) {
    std::fprintf(stderr, "cachebench: unknown protocol '%s'\n", o.protocol.c_str());
    return 2;
  }
  if (!o.trace_file.empty()) return run_trace(o);
  // --servers: client-side sharding with the client library's ring (shards named by address).
  std::unique_ptr<cachetier::client::Ring> ring;
  if (o.targets.size() > 1) {
    std::vector<cachetier::client::ShardSpec> specs;
    for (const auto& [host, port] : o.targets) {
      std::string a = host + ":" + std::to_string(port);
      specs.push_back({a, 1, {a}});
    }
    auto r = cachetier::client::Ring::create(specs);
    if (!r.is_ok()) {
      std::fprintf(stderr, "cachebench: --servers: %s\n", r.status().message().c_str());
      return 2;
    }
    ring = std::make_unique<cachetier::client::Ring>(std::move(r.value()));
  }
  if (o.tls) {
    cachetier::net::TlsOptions t;
    t.ca = o.tls_cacert;
    t.cert_chain = o.tls_cert;
    t.key = o.tls_key;
    t.verify_peer = !o.tls_skip_verify;
    auto ctx = cachetier::net::TlsContext::make_client(t);
    if (!ctx.is_ok()) {
      std::fprintf(stderr, "cachebench: --tls: %s\n", ctx.status().message().c_str());
      return 2;
    }
    o.tls_ctx = ctx.value();
  }
  Scenario scenario;
  std::atomic<int> phase{0};
  if (!o.scenario_file.empty()) {
    std::string err;
    if (!scenario.load(o.scenario_file, err)) {
      std::fprintf(stderr, "cachebench: --scenario %s\n", err.c_str());
      return 2;
    }
    if (!scenario.start_processes(err)) {
      std::fprintf(stderr, "cachebench: --scenario: %s\n", err.c_str());
      scenario.stop_processes();
      return 2;
    }
    o.phase = &phase;
  }
  print_header(o);
  std::vector<RunTotals> runs;
  for (int r = 1; r <= o.run_count; ++r) {
    runs.push_back(run_once(o, ring.get(), r, o.phase ? &scenario : nullptr, &phase));
  }
  scenario.stop_processes();
  return report(o, runs);
}
