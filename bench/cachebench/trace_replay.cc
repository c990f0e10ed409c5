// cachebench --trace (trace_replay.h): one non-blocking connection, poll() for both
// directions, a window of --pipeline requests, fills sent before the next record.
#include "bench/cachebench/trace_replay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <string>
#include <vector>

#include "bench/cachebench/proto.h"
#include "bench/trace/trace_file.h"
#include "common/buffer.h"

namespace cachetier::bench {

namespace {

using trace::Op;
using trace::Record;

struct PhaseCount {
  std::string name;
  uint64_t gets = 0, hits = 0, sets = 0, errors = 0;
};

struct Pending {
  bool is_get;
  size_t phase;
  std::string key;  // a get: what a miss fills
  uint32_t size, ttl;
};

struct Fill {
  std::string key;
  uint32_t size, ttl;
  size_t phase;
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int connect_to(const std::string& host, int port, std::string& err) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *a4;
  } else if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *a6;
  } else {
    err = "--trace needs a numeric -s address, not '" + host + "'";
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    err = "connect to " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
    if (fd >= 0) close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  return fd;
}

std::string json(const Options& o, const std::vector<PhaseCount>& phases, const PhaseCount& all,
                 uint64_t skipped, double seconds) {
  auto ratio = [](const PhaseCount& p) { return p.gets ? double(p.hits) / double(p.gets) : 0.0; };
  std::string j = "{\n  \"Trace\": {\"File\": \"" + json_escape(o.trace_file) +
                  "\", \"Speed\": " + std::to_string(o.trace_speed) +
                  ", \"Pipeline\": " + std::to_string(o.pipeline) +
                  ", \"Fill\": " + (o.trace_fill ? "true" : "false") +
                  ", \"Seconds\": " + std::to_string(seconds) +
                  ", \"Skipped\": " + std::to_string(skipped) + ",\n    \"Phases\": [";
  auto one = [&](const PhaseCount& p) {
    char b[64];
    std::snprintf(b, sizeof b, "%.6f", ratio(p));
    return "{\"Phase\": \"" + json_escape(p.name) + "\", \"Gets\": " + std::to_string(p.gets) +
           ", \"Hits\": " + std::to_string(p.hits) + ", \"Hit Ratio\": " + b +
           ", \"Sets\": " + std::to_string(p.sets) + ", \"Errors\": " + std::to_string(p.errors) +
           "}";
  };
  for (size_t i = 0; i < phases.size(); ++i) j += (i ? ",\n      " : "\n      ") + one(phases[i]);
  j += "],\n    \"Totals\": " + one(all) + "}\n}\n";
  return j;
}

}  // namespace

int run_trace(const Options& o) {
  auto opened = trace::Reader::open(o.trace_file, o.trace_format);
  if (!opened.is_ok()) {
    std::fprintf(stderr, "cachebench: --trace %s\n", opened.status().message().c_str());
    return 2;
  }
  trace::Reader& reader = *opened.value();
  std::string err;
  int fd = connect_to(o.server, o.port, err);
  if (fd < 0) {
    std::fprintf(stderr, "cachebench: %s\n", err.c_str());
    return 1;
  }
  auto proto = make_protocol(o.protocol);
  std::string value;
  std::vector<PhaseCount> phases(1);
  phases[0].name = "start";
  std::deque<Pending> inflight;
  std::deque<Fill> fills;
  ByteBuffer out, in;
  uint64_t skipped = 0, id = 0;
  const double start = now_s();
  const double deadline = o.test_time > 0 ? start + o.test_time : 1e300;
  Record next;
  bool have = reader.next(next);
  bool failed = false, dropped = false, timed_out = false;
  auto val = [&](uint32_t n) {
    if (value.size() < n) value.assign(n, 'x');
    return std::string_view(value.data(), n);
  };
  while (have || !fills.empty() || !inflight.empty() || !out.empty()) {
    int wait_ms = -1;
    while (inflight.size() < static_cast<size_t>(o.pipeline)) {
      if (!fills.empty()) {
        Fill& f = fills.front();
        proto->encode_set(out, f.key, val(f.size), f.ttl, ++id);
        inflight.push_back({false, f.phase, {}, 0, 0});
        ++phases[f.phase].sets;
        fills.pop_front();
        continue;
      }
      if (!have) break;
      if (next.op == Op::kPhase) {
        if (phases.size() == 1 && phases[0].gets == 0 && phases[0].sets == 0 && skipped == 0) {
          phases[0].name = next.key;
        } else {
          phases.push_back({next.key});
        }
        have = reader.next(next);
        continue;
      }
      if (o.trace_speed > 0) {
        const double due = start + double(next.time_ms) / 1000.0 / o.trace_speed;
        const double now = now_s();
        if (now < due) {
          wait_ms = static_cast<int>((due - now) * 1000) + 1;
          break;
        }
      }
      const size_t ph = phases.size() - 1;
      if (next.op == Op::kGet) {
        proto->encode_get(out, next.key, ++id);
        inflight.push_back({true, ph, next.key, next.size, next.ttl});
        ++phases[ph].gets;
      } else if (next.op == Op::kSet) {
        proto->encode_set(out, next.key, val(next.size), next.ttl, ++id);
        inflight.push_back({false, ph, {}, 0, 0});
        ++phases[ph].sets;
      } else {
        ++skipped;  // deletes: not in cachebench's wire protocols
      }
      have = reader.next(next);
    }
    if (now_s() > deadline) {
      timed_out = true;
      break;
    }
    if (inflight.empty() && out.empty() && fills.empty()) {
      if (!have) break;
      if (wait_ms > 0) poll(nullptr, 0, std::min(wait_ms, 1000));
      continue;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)), 0};
    if (poll(&p, 1, 1000) < 0 && errno != EINTR) break;
    if ((p.revents & POLLOUT) != 0) {
      ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        out.consume(static_cast<size_t>(n));
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        dropped = true;
        break;
      }
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char* buf = in.reserve(256 * 1024);
      ssize_t n = ::recv(fd, buf, in.writable(), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        dropped = true;
        break;
      }
      if (n > 0) in.commit(static_cast<size_t>(n));
      while (!inflight.empty()) {
        Pending& q = inflight.front();
        Decoded d = proto->decode(in.view(), q.is_get);
        if (d.status == Decoded::kNeedMore) break;
        if (d.status == Decoded::kFatal) {
          std::fprintf(stderr, "cachebench: --trace: a reply could not be decoded\n");
          dropped = true;
          break;
        }
        in.consume(d.consumed);
        PhaseCount& pc = phases[q.phase];
        if (d.kind == ReplyKind::kHit) {
          ++pc.hits;
        } else if (d.kind == ReplyKind::kMiss) {
          if (o.trace_fill) fills.push_back({std::move(q.key), q.size, q.ttl, q.phase});
        } else if (d.kind == ReplyKind::kError) {
          ++pc.errors;
          if (!failed) {
            std::fprintf(stderr, "cachebench: --trace: error reply: %.*s\n",
                         static_cast<int>(d.error.size()), d.error.data());
          }
          failed = true;
        }
        inflight.pop_front();
      }
      if (dropped) break;
    }
  }
  close(fd);
  const double seconds = now_s() - start;
  if (!reader.error().empty()) {
    std::fprintf(stderr, "cachebench: --trace %s\n", reader.error().c_str());
    return 2;
  }
  PhaseCount all;
  all.name = "ALL";
  for (const auto& p : phases) {
    all.gets += p.gets;
    all.hits += p.hits;
    all.sets += p.sets;
    all.errors += p.errors;
  }
  std::printf("Trace replay: %s, %s, pipeline %d, %s, %.1f s\n", o.trace_file.c_str(),
              o.trace_speed > 0 ? ("speed " + std::to_string(o.trace_speed)).c_str()
                                : "as fast as possible",
              o.pipeline, o.trace_fill ? "misses filled" : "no fill", seconds);
  std::printf("%-16s %12s %12s %10s %12s %8s\n", "Phase", "Gets", "Hits", "Hit ratio", "Sets",
              "Errors");
  auto row = [](const PhaseCount& p) {
    std::printf("%-16s %12llu %12llu %10.4f %12llu %8llu\n", p.name.c_str(),
                static_cast<unsigned long long>(p.gets), static_cast<unsigned long long>(p.hits),
                p.gets ? double(p.hits) / double(p.gets) : 0.0,
                static_cast<unsigned long long>(p.sets), static_cast<unsigned long long>(p.errors));
  };
  for (const auto& p : phases) row(p);
  row(all);
  if (skipped) std::printf("Skipped: %llu deletes\n", static_cast<unsigned long long>(skipped));
  if (!o.json_out.empty()) {
    std::ofstream f(o.json_out);
    f << json(o, phases, all, skipped, seconds);
  }
  if (dropped) std::fprintf(stderr, "cachebench: --trace: the connection dropped\n");
  if (timed_out) std::fprintf(stderr, "cachebench: --trace: stopped at --test-time\n");
  return (failed || dropped) ? 1 : 0;
}

}  // namespace cachetier::bench
