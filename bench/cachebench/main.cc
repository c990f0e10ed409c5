// cachebench: a memtier_benchmark-style load generator on the project's protocol codecs.
// Same flags and report as memtier_benchmark (see bench/cachebench/README.md); one libuv loop
// per thread, --clients connections per thread, --pipeline requests in flight per connection.
// Beyond memtier: a per-second series of the run (--csv, --report HTML), errors counted per
// second (a dropped connection reconnects instead of ending the run), and the native protocol.
#include <unistd.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/cachebench/histogram.h"
#include "bench/cachebench/keys.h"
#include "bench/cachebench/proto.h"
#include "bench/cachebench/report.h"
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
};

class Worker;

struct Client {
  uv_tcp_t* tcp = nullptr;  // a fresh handle per connection attempt
  uv_connect_t creq{};
  uv_write_t wreq{};
  uv_timer_t retry{};
  Worker* w = nullptr;
  size_t index = 0;  // among all clients
  ByteBuffer in, out, wbuf;
  std::unique_ptr<WireProtocol> proto;
  std::unique_ptr<KeyGen> set_keys, get_keys;
  std::deque<Pending> inflight;
  uint64_t issued = 0, seq = 0, next_id = 1;
  bool writing = false, connected = false, done = false;
};

class Worker {
 public:
  Worker(const Options& o, int index, uint64_t seed) : o_(o), index_(index), rng_(seed) {
    value_.resize(o.data_max);
    for (size_t i = 0; i < value_.size(); ++i) value_[i] = static_cast<char>('a' + i % 26);
  }

  void run() {
    uv_loop_init(&loop_);
    uv_ip4_addr(o_.server.c_str(), o_.port, &addr_);
    clients_.resize(static_cast<size_t>(o_.clients));
    for (size_t i = 0; i < clients_.size(); ++i) {
      auto c = std::make_unique<Client>();
      c->w = this;
      c->index = static_cast<size_t>(index_) * clients_.size() + i;
      c->proto = make_protocol(o_.protocol);
      uint64_t total = uint64_t(o_.threads) * uint64_t(o_.clients);
      uint64_t seed = o_.distinct_client_seed ? rng_() : base_seed_;
      c->set_keys = std::make_unique<KeyGen>(o_.set_pattern, o_.keys, c->index, total, seed);
      c->get_keys = std::make_unique<KeyGen>(o_.get_pattern, o_.keys, c->index, total, seed + 1);
      uv_timer_init(&loop_, &c->retry);
      c->retry.data = c.get();
      clients_[i] = std::move(c);
      connect(clients_[i].get());
    }
    uv_timer_init(&loop_, &timer_);
    timer_.data = this;
    if (o_.test_time > 0) {
      uv_timer_start(
          &timer_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->stop(); },
          static_cast<uint64_t>(o_.test_time) * 1000, 0);
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
  void connect(Client* c) {
    c->tcp = new uv_tcp_t;
    uv_tcp_init(&loop_, c->tcp);
    c->tcp->data = c;
    uv_tcp_nodelay(c->tcp, 1);
    c->creq.data = c;
    ++open_handles_;
    uv_tcp_connect(&c->creq, c->tcp, reinterpret_cast<const sockaddr*>(&addr_), on_connect);
  }

  static void on_connect(uv_connect_t* req, int status) {
    auto* c = static_cast<Client*>(req->data);
    Worker* w = c->w;
    if (status < 0) {
      if (!w->connect_warned_) {
        std::fprintf(stderr, "cachebench: connect to %s:%d: %s\n", w->o_.server.c_str(), w->o_.port,
                     uv_strerror(status));
        w->connect_warned_ = true;
      }
      w->count_error();
      w->lost(c);
      return;
    }
    c->connected = true;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(c->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* cl = static_cast<Client*>(h->data);
          char* p = cl->in.reserve(64 * 1024);
          *b = uv_buf_init(p, static_cast<unsigned>(cl->in.writable()));
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
          auto* cl = static_cast<Client*>(s->data);
          if (n < 0) {
            cl->w->lost(cl);
            return;
          }
          cl->in.commit(static_cast<size_t>(n));
          cl->w->totals_.bytes += static_cast<uint64_t>(n);
          cl->w->on_data(cl);
        });
    w->fill(c);
  }

  // The connection dropped or never came up: what was in flight counts as errors, and the
  // client reconnects after 100 ms unless the run is over.
  void lost(Client* c) {
    for (size_t i = 0; i < c->inflight.size(); ++i) count_error();
    c->inflight.clear();
    c->in.clear();
    c->out.clear();
    c->proto = make_protocol(o_.protocol);
    c->connected = false;
    uv_close(reinterpret_cast<uv_handle_t*>(c->tcp), [](uv_handle_t* h) {
      auto* cl = static_cast<Client*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      cl->w->closed_one(cl);
    });
    c->tcp = nullptr;
  }

  void closed_one(Client* c) {
    --open_handles_;
    if (stopping_ || finished_client(c)) {
      finish(c);
      return;
    }
    uv_timer_start(
        &c->retry,
        [](uv_timer_t* t) {
          auto* cl = static_cast<Client*>(t->data);
          if (cl->w->stopping_) {
            cl->w->finish(cl);
            return;
          }
          cl->w->connect(cl);
        },
        100, 0);
  }

  bool finished_client(const Client* c) const {
    return o_.requests > 0 && c->issued >= o_.requests && c->inflight.empty();
  }

  Second& second_at(uint64_t t) {
    size_t s = static_cast<size_t>((t - started_) / 1'000'000'000ull);
    if (totals_.series.size() <= s) totals_.series.resize(s + 1);
    return totals_.series[s];
  }

  void count_error() {
    ++totals_.errors;
    second_at(now_ns()).errors++;
  }

  void on_data(Client* c) {
    uint64_t t = now_ns();
    Second& sec = second_at(t);
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
      c->in.consume(d.consumed);
      uint64_t lat = t - p.start;
      if (d.kind == ReplyKind::kError) {
        ++totals_.errors;
        ++sec.errors;
        if (totals_.error_samples.size() < 5) {
          std::string e(d.error);
          while (!e.empty() && (e.back() == '\n' || e.back() == '\r')) e.pop_back();
          totals_.error_samples.push_back(e);
        }
      }
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
      ++sec.ops;
      sec.lat.record(lat);
      ops_.store(ops_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      c->inflight.pop_front();
    }
    fill(c);
  }

  void fill(Client* c) {
    if (!c->connected) return;
    while (!stopping_ && c->inflight.size() < static_cast<size_t>(o_.pipeline) &&
           (o_.requests == 0 || c->issued < o_.requests)) {
      bool is_get = o_.sets == 0 ||
                    (o_.gets > 0 && (c->seq % uint64_t(o_.sets + o_.gets)) >= uint64_t(o_.sets));
      c->seq++;
      c->issued++;
      uint64_t id = is_get ? c->get_keys->next() : c->set_keys->next();
      key_.assign(o_.key_prefix);
      key_.append(std::to_string(id));
      if (is_get) {
        c->proto->encode_get(c->out, key_, c->next_id++);
      } else {
        size_t n = o_.data_min == o_.data_max
                       ? o_.data_min
                       : std::uniform_int_distribution<size_t>(o_.data_min, o_.data_max)(rng_);
        int64_t ttl = o_.expiry_max == 0 ? 0
                                         : std::uniform_int_distribution<int64_t>(
                                               o_.expiry_min, o_.expiry_max)(rng_);
        c->proto->encode_set(c->out, key_, std::string_view(value_).substr(0, n), ttl,
                             c->next_id++);
      }
      c->inflight.push_back({is_get, now_ns()});
    }
    flush(c);
    if (c->inflight.empty() && (stopping_ || finished_client(c))) close_client(c);
  }

  void flush(Client* c) {
    if (c->writing || c->out.empty() || !c->connected) return;
    c->wbuf.swap(c->out);
    c->writing = true;
    c->wreq.data = c;
    totals_.bytes += c->wbuf.size();
    uv_buf_t b = uv_buf_init(c->wbuf.data(), static_cast<unsigned>(c->wbuf.size()));
    uv_write(&c->wreq, reinterpret_cast<uv_stream_t*>(c->tcp), &b, 1, [](uv_write_t* w, int st) {
      auto* cl = static_cast<Client*>(w->data);
      cl->writing = false;
      cl->wbuf.clear();
      if (st < 0) {
        if (cl->connected) cl->w->lost(cl);
        return;
      }
      cl->w->flush(cl);
    });
  }

  void close_client(Client* c) {
    if (!c->connected) return;
    c->connected = false;
    uv_close(reinterpret_cast<uv_handle_t*>(c->tcp), [](uv_handle_t* h) {
      auto* cl = static_cast<Client*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      --cl->w->open_handles_;
      cl->w->finish(cl);
    });
    c->tcp = nullptr;
  }

  void finish(Client* c) {
    if (c->done) return;
    c->done = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->retry), nullptr);
    if (++finished_clients_ == clients_.size() &&
        !uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    }
  }

  void stop() {
    stopping_ = true;
    for (auto& c : clients_) {
      if (c->connected && c->inflight.empty()) close_client(c.get());
    }
    // Replies still missing 5 s after the end count as errors.
    uv_timer_start(
        &timer_,
        [](uv_timer_t* t) {
          auto* w = static_cast<Worker*>(t->data);
          for (auto& c : w->clients_) {
            for (size_t i = 0; i < c->inflight.size(); ++i) w->count_error();
            c->inflight.clear();
            w->close_client(c.get());
          }
        },
        5000, 0);
  }

  const Options& o_;
  int index_;
  uv_loop_t loop_{};
  uv_timer_t timer_{};
  sockaddr_in addr_{};
  std::vector<std::unique_ptr<Client>> clients_;
  size_t finished_clients_ = 0;
  int open_handles_ = 0;
  bool stopping_ = false, connect_warned_ = false;
  std::mt19937_64 rng_;
  uint64_t base_seed_ = 0;
  std::string value_, key_;
  RunTotals totals_;
  uint64_t started_ = 0, finished_ = 0;
  std::atomic<uint64_t> ops_{0};
};

// One run: threads, the live progress line on a terminal, merged totals.
RunTotals run_once(const Options& o, int run) {
  uint64_t seed = o.randomize ? std::random_device{}() : 0x9e3779b97f4a7c15ull;
  std::vector<std::unique_ptr<Worker>> workers;
  uint64_t start = now_ns();
  for (int i = 0; i < o.threads; ++i) {
    workers.push_back(std::make_unique<Worker>(o, i, seed + uint64_t(i) * 7919));
    workers.back()->set_start(start, seed + uint64_t(i) * 104729);
  }
  std::atomic<int> running{o.threads};
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
  print_header(o);
  std::vector<RunTotals> runs;
  for (int r = 1; r <= o.run_count; ++r) runs.push_back(run_once(o, r));
  return report(o, runs);
}
