// Client throughput against one cacheserver: CONNECTIONS client::Connections on one loop
// thread, each keeping DEPTH gets in flight (100-byte values over 10,000 keys), native protocol
// vs memcache text, at each depth, in one run.
//
//   client_bench -p PORT [--seconds S] [--depths 1,16,64] [--connections C]
//                [--protocol both|native|text] [--requests N] [--server-pid PID]
//
// With --server-pid (the cacheserver's pid, on this machine) each case also reports the
// server's user and system CPU microseconds per get, from /proc/PID/stat.
//
// With --requests N a case stops after N gets instead of after S seconds (for callgrind:
// instructions per get are the difference between a run with N and one with 0; 0 runs only the
// connect and the warm-up sets).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "client/connection.h"
#include "client/loop_thread.h"

using namespace cachetier;
using namespace cachetier::client;

namespace {

constexpr int kKeys = 10000;

struct Case {
  int port = 0;
  Protocol protocol = Protocol::kNative;
  int depth = 1;
  int connections = 1;
  double seconds = 2;
  bool limited = false;  // stop after `requests` gets instead of after `seconds`
  uint64_t requests = 0;
};

// Shared by the connections of one case; touched only on the loop thread.
struct State {
  uint64_t done = 0, errors = 0, issued = 0;
  int outstanding = 0;
  bool stopping = false;
  std::chrono::steady_clock::time_point start, end;
  std::promise<double> result;
};

void finish_if_drained(State& st) {
  if (!st.stopping || st.outstanding != 0) return;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - st.start).count();
  st.result.set_value(st.errors != 0 ? -1.0 : double(st.done) / secs);
}

// Keeps `depth` gets in flight on one connection until the case stops.
void issue(Connection* conn, const Case& c, State& st, int& in_flight) {
  while (!st.stopping && in_flight < c.depth && (!c.limited || st.issued < c.requests)) {
    Call call;
    call.op = native::Op::kGet;
    call.key = "bench:" + std::to_string(st.issued++ % kKeys);
    ++in_flight;
    ++st.outstanding;
    Status s = conn->send(call, [conn, &c, &st, &in_flight](Reply&& r) {
      --in_flight;
      --st.outstanding;
      ++st.done;
      if (!r.transport.is_ok() || r.value.size() != 100) ++st.errors;
      if (c.limited ? st.done >= c.requests : std::chrono::steady_clock::now() >= st.end) {
        st.stopping = true;
      }
      if (st.stopping) {
        finish_if_drained(st);
        return;
      }
      issue(conn, c, st, in_flight);
    });
    if (!s.is_ok()) {
      --in_flight;
      --st.outstanding;
      ++st.errors;
      st.stopping = true;
      finish_if_drained(st);
    }
  }
}

// utime and stime of a process, in seconds.
struct Cpu {
  double user = 0, sys = 0;
};
Cpu cpu_of(int pid) {
  Cpu cpu;
  if (pid <= 0) return cpu;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return cpu;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  // Fields after the command: state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) cpu.user = std::stod(field) / double(sysconf(_SC_CLK_TCK));
    if (i == 15) cpu.sys = std::stod(field) / double(sysconf(_SC_CLK_TCK));
  }
  return cpu;
}

struct Outcome {
  double ops = 0;      // gets per second, -1 if any failed
  double user_us = 0;  // server CPU per get (with --server-pid)
  double sys_us = 0;
};

// Returns gets per second, or -1 if any get failed.
double run_case(const Case& c, uint64_t* done = nullptr) {
  LoopThread loop;
  std::vector<Connection*> conns(static_cast<size_t>(c.connections));
  std::vector<int> in_flight(conns.size(), 0);
  State st;
  loop.post([&] {
    ConnectionOptions o;
    o.port = c.port;
    o.protocol = c.protocol;
    o.timeout_ms = 5000;
    for (auto& conn : conns) conn = Connection::create(loop.loop(), o);
  });
  // Warm up: wait for every connection, store the values.
  for (size_t n = 0; n < conns.size(); ++n) {
    for (int i = n == 0 ? 0 : kKeys - 1; i < kKeys; ++i) {
      std::promise<bool> p;
      loop.post([&, i, n] {
        Call call;
        call.op = native::Op::kSet;
        call.key = "bench:" + std::to_string(i);
        call.value = std::string(100, 'v');
        Status s = conns[n]->send(call, [&](Reply&& r) { p.set_value(r.transport.is_ok()); });
        if (!s.is_ok()) p.set_value(false);
      });
      if (!p.get_future().get()) --i;  // not connected yet: retry
    }
  }
  loop.post([&] {
    st.start = std::chrono::steady_clock::now();
    st.end = st.start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(c.seconds));
    if (c.limited && c.requests == 0) {
      st.result.set_value(0.0);  // warm-up only
      return;
    }
    for (size_t n = 0; n < conns.size(); ++n) issue(conns[n], c, st, in_flight[n]);
  });
  double ops = st.result.get_future().get();
  if (done != nullptr) *done = st.done;
  std::promise<void> closed;
  loop.post([&] {
    for (auto* conn : conns) conn->close();
    closed.set_value();
  });
  closed.get_future().get();
  return ops;
}

Outcome measure(const Case& c, int server_pid) {
  Cpu before = cpu_of(server_pid);
  uint64_t done = 0;
  Outcome o;
  o.ops = run_case(c, &done);
  // The 10,000 warm-up sets are counted too (against hundreds of thousands of gets).
  Cpu after = cpu_of(server_pid);
  if (done != 0) {
    o.user_us = (after.user - before.user) * 1e6 / double(done);
    o.sys_us = (after.sys - before.sys) * 1e6 / double(done);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"client_bench: client::Connection throughput, native protocol vs memcache text"};
  Case base;
  std::vector<int> depths{1, 16, 64};
  std::string protocol = "both";
  app.add_option("-p,--port", base.port, "cacheserver port on 127.0.0.1")->required();
  app.add_option("--seconds", base.seconds, "seconds per case")->check(CLI::PositiveNumber);
  app.add_option("--depths", depths, "gets in flight per connection")
      ->delimiter(',')
      ->check(CLI::Range(1, 100000));
  app.add_option("--connections", base.connections, "connections, all on one loop thread")
      ->check(CLI::Range(1, 1000));
  app.add_option("--protocol", protocol, "both, native or text")
      ->check(CLI::IsMember({"both", "native", "text"}));
  auto* req = app.add_option("--requests", base.requests, "stop each case after N gets");
  int server_pid = 0;
  app.add_option("--server-pid", server_pid, "report this cacheserver's CPU per get")
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return e.get_exit_code() == 0 ? rc : 2;
  }
  base.limited = req->count() > 0;
  bool both = protocol == "both";
  std::printf("connections %d, %s\n\n", base.connections,
              base.limited ? ("requests " + std::to_string(base.requests)).c_str()
                           : ("seconds " + CLI::detail::to_string(base.seconds)).c_str());
  bool cpu = server_pid > 0;
  if (both) {
    std::printf("| depth | native ops/s | memcache text ops/s | native / text |%s\n",
                cpu ? " server us/get native (user+sys) | text (user+sys) |" : "");
    std::printf("|---|---|---|---|%s\n", cpu ? "---|---|" : "");
  }
  for (int depth : depths) {
    Case n = base, t = base;
    n.depth = t.depth = depth;
    n.protocol = Protocol::kNative;
    t.protocol = Protocol::kMemcache;
    if (both) {
      Outcome a = measure(n, server_pid), b = measure(t, server_pid);
      std::printf("| %d | %.0f | %.0f | %.2fx |", depth, a.ops, b.ops, a.ops / b.ops);
      if (cpu) std::printf(" %.2f+%.2f | %.2f+%.2f |", a.user_us, a.sys_us, b.user_us, b.sys_us);
      std::printf("\n");
    } else {
      Outcome a = measure(protocol == "text" ? t : n, server_pid);
      std::printf("%s depth %d: %.0f ops/s", protocol.c_str(), depth, a.ops);
      if (cpu) std::printf(", server %.2f+%.2f us/get (user+sys)", a.user_us, a.sys_us);
      std::printf("\n");
    }
    std::fflush(stdout);
  }
  return 0;
}
