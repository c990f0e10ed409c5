// cachebench: a memtier_benchmark-style load generator on the project's protocol codecs.
// One libuv loop per thread, --clients connections per thread, --pipeline requests in flight
// per connection. This is the first cut (memcache_text only); issue 5 grows it to memtier's
// full flag set, RESP and native protocols, and reports.
#include <uv.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/cachebench/histogram.h"
#include "common/buffer.h"
#include "protocol/memcache/client_codec.h"

namespace {

using cachetier::ByteBuffer;
using cachetier::bench::LatencyHistogram;
namespace mc = cachetier::memcache;

struct Options {
  std::string server = "127.0.0.1";
  int port = 11211;
  int threads = 1;
  int clients = 50;
  int pipeline = 1;
  int sets = 1, gets = 10;
  char set_pattern = 'R', get_pattern = 'R';
  uint64_t key_min = 0, key_max = 10000000;
  std::string key_prefix = "memtier-";
  size_t data_size = 32;
  int test_time = 0;
  uint64_t requests = 0;  // per client; 0 = until --test-time
  std::string json_out;
};

uint64_t now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

struct Totals {
  uint64_t sets = 0, gets = 0, hits = 0, misses = 0, errors = 0, bytes = 0;
  LatencyHistogram set_lat, get_lat;
  void merge(const Totals& o) {
    sets += o.sets;
    gets += o.gets;
    hits += o.hits;
    misses += o.misses;
    errors += o.errors;
    bytes += o.bytes;
    set_lat.merge(o.set_lat);
    get_lat.merge(o.get_lat);
  }
};

class Worker;

struct Pending {
  bool is_get;
  bool hit;
  uint64_t start;
};

struct Client {
  uv_tcp_t tcp{};
  uv_connect_t creq{};
  uv_write_t wreq{};
  Worker* w = nullptr;
  ByteBuffer in, out, wbuf;
  mc::ResponseDecoder dec;
  std::deque<Pending> inflight;
  uint64_t issued = 0;
  uint64_t seq = 0;
  bool writing = false, closed = false;
};

class Worker {
 public:
  Worker(const Options& o, int index)
      : o_(o), rng_(0x9e3779b9u * (index + 1)), value_(o.data_size, 'x') {
    for (size_t i = 0; i < value_.size(); ++i) value_[i] = static_cast<char>('a' + i % 26);
    seq_ = o.key_min + static_cast<uint64_t>(index) * 7919;
  }
  void run() {
    uv_loop_init(&loop_);
    sockaddr_in addr{};
    uv_ip4_addr(o_.server.c_str(), o_.port, &addr);
    clients_.resize(static_cast<size_t>(o_.clients));
    for (auto& c : clients_) {
      c = std::make_unique<Client>();
      c->w = this;
      c->tcp.data = c.get();
      uv_tcp_init(&loop_, &c->tcp);
      uv_tcp_nodelay(&c->tcp, 1);
      c->creq.data = c.get();
      uv_tcp_connect(&c->creq, &c->tcp, reinterpret_cast<const sockaddr*>(&addr), on_connect);
    }
    uv_timer_init(&loop_, &timer_);
    timer_.data = this;
    if (o_.test_time > 0) {
      uv_timer_start(
          &timer_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->stop(); },
          static_cast<uint64_t>(o_.test_time) * 1000, 0);
    }
    started_ = now_ns();
    uv_run(&loop_, UV_RUN_DEFAULT);
    finished_ = now_ns();
    uv_loop_close(&loop_);
  }
  const Totals& totals() const { return totals_; }
  double seconds() const { return double(finished_ - started_) / 1e9; }

 private:
  static void on_connect(uv_connect_t* req, int status) {
    auto* c = static_cast<Client*>(req->data);
    if (status < 0) {
      std::fprintf(stderr, "cachebench: connect: %s\n", uv_strerror(status));
      c->w->totals_.errors++;
      c->w->close(c);
      return;
    }
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* cl = static_cast<Client*>(h->data);
          char* p = cl->in.reserve(64 * 1024);
          *b = uv_buf_init(p, static_cast<unsigned>(cl->in.writable()));
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
          auto* cl = static_cast<Client*>(s->data);
          if (n < 0) {
            if (!cl->inflight.empty()) cl->w->totals_.errors += cl->inflight.size();
            cl->inflight.clear();
            cl->w->close(cl);
            return;
          }
          cl->in.commit(static_cast<size_t>(n));
          cl->w->totals_.bytes += static_cast<uint64_t>(n);
          cl->w->on_data(cl);
        });
    c->w->fill(c);
  }

  void on_data(Client* c) {
    uint64_t t = now_ns();
    for (;;) {
      mc::Response r;
      auto res = c->dec.feed(c->in.view(), r);
      if (res.status == mc::DecodeStatus::kNeedMore) break;
      if (res.status != mc::DecodeStatus::kComplete || c->inflight.empty()) {
        totals_.errors++;
        close(c);
        return;
      }
      c->in.consume(res.consumed);
      Pending& p = c->inflight.front();
      if (p.is_get && r.kind == mc::ResponseKind::kValue) {
        p.hit = true;
        continue;
      }
      bool ok = p.is_get ? r.kind == mc::ResponseKind::kEnd : r.kind == mc::ResponseKind::kStored;
      if (!ok) totals_.errors++;
      if (p.is_get) {
        totals_.gets++;
        (p.hit ? totals_.hits : totals_.misses)++;
        totals_.get_lat.record(t - p.start);
      } else {
        totals_.sets++;
        totals_.set_lat.record(t - p.start);
      }
      c->inflight.pop_front();
    }
    fill(c);
  }

  std::string next_key(char pattern) {
    uint64_t span = o_.key_max - o_.key_min + 1;
    uint64_t k =
        pattern == 'S' ? o_.key_min + (seq_++ - o_.key_min) % span : o_.key_min + rng_() % span;
    return o_.key_prefix + std::to_string(k);
  }

  void fill(Client* c) {
    if (c->closed) return;
    while (!stopping_ && c->inflight.size() < static_cast<size_t>(o_.pipeline) &&
           (o_.requests == 0 || c->issued < o_.requests)) {
      bool is_get = o_.sets == 0 ||
                    (o_.gets > 0 && (c->seq % uint64_t(o_.sets + o_.gets)) >= uint64_t(o_.sets));
      c->seq++;
      c->issued++;
      std::string key = next_key(is_get ? o_.get_pattern : o_.set_pattern);
      if (is_get) {
        std::string_view k = key;
        mc::encode_retrieval(c->out, mc::Command::kGet, std::span<const std::string_view>(&k, 1));
      } else {
        mc::encode_storage(c->out, mc::Command::kSet, key, 0, 0, value_);
      }
      c->inflight.push_back({is_get, false, now_ns()});
    }
    flush(c);
    if (c->inflight.empty() && (stopping_ || (o_.requests && c->issued >= o_.requests))) close(c);
  }

  void flush(Client* c) {
    if (c->writing || c->out.empty() || c->closed) return;
    c->wbuf.swap(c->out);
    c->writing = true;
    c->wreq.data = c;
    totals_.bytes += c->wbuf.size();
    uv_buf_t b = uv_buf_init(c->wbuf.data(), static_cast<unsigned>(c->wbuf.size()));
    uv_write(&c->wreq, reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1, [](uv_write_t* w, int st) {
      auto* cl = static_cast<Client*>(w->data);
      cl->writing = false;
      cl->wbuf.clear();
      if (st < 0) {
        cl->w->close(cl);
        return;
      }
      cl->w->flush(cl);
    });
  }

  void close(Client* c) {
    if (c->closed) return;
    c->closed = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), nullptr);
    if (++closed_ == clients_.size() && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
    }
  }

  void stop() {
    stopping_ = true;
    for (auto& c : clients_) {
      if (c->inflight.empty()) close(c.get());
    }
    // Replies still missing 5 s after the end count as errors.
    uv_timer_start(
        &timer_,
        [](uv_timer_t* t) {
          auto* w = static_cast<Worker*>(t->data);
          for (auto& c : w->clients_) {
            w->totals_.errors += c->inflight.size();
            w->close(c.get());
          }
        },
        5000, 0);
  }

  const Options& o_;
  uv_loop_t loop_{};
  uv_timer_t timer_{};
  std::vector<std::unique_ptr<Client>> clients_;
  size_t closed_ = 0;
  bool stopping_ = false;
  std::mt19937_64 rng_;
  uint64_t seq_;
  std::string value_;
  Totals totals_;
  uint64_t started_ = 0, finished_ = 0;
};

bool parse_ratio(const std::string& s, int& a, int& b) {
  return std::sscanf(s.c_str(), "%d:%d", &a, &b) == 2 && a >= 0 && b >= 0 && a + b > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string ratio = "1:10", pattern = "R:R";
  CLI::App app{"cachebench: memtier_benchmark-style load generator (memcache_text)"};
  app.add_option("-s,--server", o.server, "server address")->capture_default_str();
  app.add_option("-p,--port", o.port, "server port")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("-t,--threads", o.threads, "threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("-c,--clients", o.clients, "connections per thread")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--pipeline", o.pipeline, "requests in flight per connection")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--ratio", ratio, "set:get ratio")->capture_default_str();
  app.add_option("--key-pattern", pattern, "set:get key pattern, R (uniform) or S (sequential)")
      ->capture_default_str();
  app.add_option("--key-minimum", o.key_min, "smallest key id")->capture_default_str();
  app.add_option("--key-maximum", o.key_max, "largest key id")->capture_default_str();
  app.add_option("--key-prefix", o.key_prefix, "key prefix")->capture_default_str();
  app.add_option("-d,--data-size", o.data_size, "value size in bytes")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--test-time", o.test_time, "seconds to run")->check(CLI::Range(1, 86400));
  app.add_option("-n,--requests", o.requests, "requests per client");
  app.add_option("--json-out-file", o.json_out, "write memtier-style JSON results here");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "cachebench: %s\n", e.what());
    return 2;
  }
  if (!parse_ratio(ratio, o.sets, o.gets)) {
    std::fprintf(stderr, "cachebench: bad --ratio '%s' (want S:G)\n", ratio.c_str());
    return 2;
  }
  if (pattern.size() != 3 || pattern[1] != ':' ||
      std::string("RS").find(pattern[0]) == std::string::npos ||
      std::string("RS").find(pattern[2]) == std::string::npos) {
    std::fprintf(stderr, "cachebench: bad --key-pattern '%s' (want X:Y with R or S)\n",
                 pattern.c_str());
    return 2;
  }
  o.set_pattern = pattern[0];
  o.get_pattern = pattern[2];
  if (o.key_max < o.key_min) {
    std::fprintf(stderr, "cachebench: --key-maximum is below --key-minimum\n");
    return 2;
  }
  if (o.test_time == 0 && o.requests == 0) o.test_time = 10;

  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;
  for (int i = 0; i < o.threads; ++i) workers.push_back(std::make_unique<Worker>(o, i));
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  for (auto& t : threads) t.join();

  Totals all;
  double secs = 0;
  for (auto& w : workers) {
    all.merge(w->totals());
    secs = std::max(secs, w->seconds());
  }
  auto ms = [](double ns) { return ns / 1e6; };
  double set_ops = double(all.sets) / secs, get_ops = double(all.gets) / secs;
  double hit_s = double(all.hits) / secs, miss_s = double(all.misses) / secs;
  LatencyHistogram tot;
  tot.merge(all.set_lat);
  tot.merge(all.get_lat);
  std::printf("%d Threads\n%d Connections per thread\n%.0f Seconds\n\nALL STATS\n", o.threads,
              o.clients, secs);
  std::printf("%-10s %12s %12s %12s %14s %14s %14s %14s %12s\n", "Type", "Ops/sec", "Hits/sec",
              "Misses/sec", "Avg. Latency", "p50 Latency", "p99 Latency", "p99.9 Latency",
              "KB/sec");
  auto row = [&](const char* name, double ops, double hits, double misses,
                 const LatencyHistogram& h, double kb) {
    std::printf("%-10s %12.2f %12.2f %12.2f %14.5f %14.5f %14.5f %14.5f %12.2f\n", name, ops, hits,
                misses, ms(h.mean_ns()), ms(double(h.percentile(50))), ms(double(h.percentile(99))),
                ms(double(h.percentile(99.9))), kb);
  };
  double kb = double(all.bytes) / 1024 / secs;
  row("Sets", set_ops, 0, 0, all.set_lat, 0);
  row("Gets", get_ops, hit_s, miss_s, all.get_lat, 0);
  row("Totals", set_ops + get_ops, hit_s, miss_s, tot, kb);
  std::printf("Errors: %llu\n", static_cast<unsigned long long>(all.errors));
  if (!o.json_out.empty()) {
    FILE* f = std::fopen(o.json_out.c_str(), "w");
    if (f == nullptr) {
      std::fprintf(stderr, "cachebench: cannot write %s\n", o.json_out.c_str());
      return 1;
    }
    std::fprintf(
        f,
        "{\"ALL STATS\": {\"Totals\": {\"Count\": %llu, \"Ops/sec\": %.2f, \"Hits/sec\": %.2f, "
        "\"Misses/sec\": %.2f, \"Latency\": %.5f, \"Percentile Latencies\": {\"p50.00\": %.5f, "
        "\"p99.00\": %.5f, \"p99.90\": %.5f}}, \"Runtime\": {\"Total duration\": %.0f}, "
        "\"Errors\": %llu}}\n",
        static_cast<unsigned long long>(all.sets + all.gets), set_ops + get_ops, hit_s, miss_s,
        ms(tot.mean_ns()), ms(double(tot.percentile(50))), ms(double(tot.percentile(99))),
        ms(double(tot.percentile(99.9))), secs * 1000, static_cast<unsigned long long>(all.errors));
    std::fclose(f);
  }
  return all.errors == 0 ? 0 : 1;
}
