// Client throughput against one cacheserver: one client::Connection keeping DEPTH gets in
// flight (100-byte values, 10,000 keys), native protocol vs memcache text, depths 1, 16, 64,
// in one run. Usage: client_bench PORT [SECONDS_PER_CASE [native|text]]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>

#include "client/connection.h"
#include "client/loop_thread.h"

using namespace cachetier;
using namespace cachetier::client;

namespace {

double run_case(int port, Protocol proto, int depth, double seconds) {
  LoopThread loop;
  Connection* conn = nullptr;
  std::promise<double> result;
  struct State {
    uint64_t done = 0, errors = 0, issued = 0;
    std::chrono::steady_clock::time_point start, end;
    bool stopping = false;
    int outstanding = 0;
  };
  auto st = std::make_shared<State>();
  loop.post([&] {
    ConnectionOptions o;
    o.port = port;
    o.protocol = proto;
    o.timeout_ms = 5000;
    conn = Connection::create(loop.loop(), o);
  });
  // Warm up: wait for the connection, store the values.
  for (int i = 0; i < 10000; ++i) {
    std::promise<bool> p;
    loop.post([&, i] {
      Call c;
      c.op = native::Op::kSet;
      c.key = "bench:" + std::to_string(i);
      c.value = std::string(100, 'v');
      Status s = conn->send(c, [&](Reply&& r) { p.set_value(r.transport.is_ok()); });
      if (!s.is_ok()) p.set_value(false);
    });
    if (!p.get_future().get()) --i;  // not connected yet: retry
  }
  std::function<void()> issue;
  issue = [&, st] {
    while (!st->stopping && st->outstanding < depth) {
      Call c;
      c.op = native::Op::kGet;
      c.key = "bench:" + std::to_string(st->issued++ % 10000);
      ++st->outstanding;
      Status s = conn->send(c, [&, st](Reply&& r) {
        --st->outstanding;
        ++st->done;
        if (!r.transport.is_ok() || r.value.size() != 100) ++st->errors;
        if (std::chrono::steady_clock::now() >= st->end) st->stopping = true;
        if (st->stopping) {
          if (st->outstanding == 0) {
            double secs =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - st->start).count();
            result.set_value(st->errors ? -1.0 : double(st->done) / secs);
          }
          return;
        }
        issue();
      });
      if (!s.is_ok()) {
        --st->outstanding;
        ++st->errors;
        st->stopping = true;
      }
    }
  };
  loop.post([&, st] {
    st->start = std::chrono::steady_clock::now();
    st->end = st->start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(seconds));
    issue();
  });
  double ops = result.get_future().get();
  std::promise<void> closed;
  loop.post([&] {
    conn->close();
    closed.set_value();
  });
  closed.get_future().get();
  return ops;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: client_bench PORT [SECONDS_PER_CASE]\n");
    return 2;
  }
  int port = std::atoi(argv[1]);
  double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  // Optional third argument "native" or "text": run only that protocol at depth 64 (profiling).
  if (argc > 3) {
    Protocol p = std::string(argv[3]) == "text" ? Protocol::kMemcache : Protocol::kNative;
    std::printf("%s depth 64: %.0f ops/s\n", argv[3], run_case(port, p, 64, seconds));
    return 0;
  }
  std::printf(
      "| depth | native ops/s | memcache text ops/s | native / text |\n|---|---|---|---|\n");
  for (int depth : {1, 16, 64}) {
    double n = run_case(port, Protocol::kNative, depth, seconds);
    double t = run_case(port, Protocol::kMemcache, depth, seconds);
    std::printf("| %d | %.0f | %.0f | %.2fx |\n", depth, n, t, n / t);
    std::fflush(stdout);
  }
  return 0;
}
