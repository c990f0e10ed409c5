#include "bench/cachebench/report.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace cachetier::bench {

namespace {

bool parse_pair(const std::string& s, char sep, long long& a, long long& b) {
  auto at = s.find(sep);
  if (at == std::string::npos) return false;
  try {
    size_t u1 = 0, u2 = 0;
    a = std::stoll(s.substr(0, at), &u1);
    b = std::stoll(s.substr(at + 1), &u2);
    return u1 == at && u2 == s.size() - at - 1;
  } catch (const std::exception&) {
    return false;
  }
}

std::string fmt(const char* f, const char* v) {
  char b[64];
  std::snprintf(b, sizeof(b), f, v);
  return b;
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof(b), f, v);
  return b;
}

// "50" -> "p50", "99.9" -> "p99.9" (the text column); "p50.00", "p99.90" (the JSON key).
std::string pname(double p) {
  std::string s = fmt("%.3f", p);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return "p" + s;
}
std::string pkey(double p) { return fmt("p%.2f", p); }

double ms(double ns) { return ns / 1e6; }

}  // namespace

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '<' || static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += c;
    }
  }
  return out;
}

void RunTotals::merge(const RunTotals& o) {
  sets += o.sets;
  gets += o.gets;
  hits += o.hits;
  misses += o.misses;
  errors += o.errors;
  bytes += o.bytes;
  set_lat.merge(o.set_lat);
  get_lat.merge(o.get_lat);
  if (series.size() < o.series.size()) series.resize(o.series.size());
  for (size_t i = 0; i < o.series.size(); ++i) series[i].merge(o.series[i]);
  set_rx += o.set_rx;
  set_tx += o.set_tx;
  get_rx += o.get_rx;
  get_tx += o.get_tx;
  if (start_unix_ms == 0) start_unix_ms = o.start_unix_ms;
  if (phases.size() < o.phases.size()) phases.resize(o.phases.size());
  for (size_t i = 0; i < o.phases.size(); ++i) phases[i].merge(o.phases[i]);
  if (phase_info.empty()) phase_info = o.phase_info;
  seconds = std::max(seconds, o.seconds);
  for (const auto& e : o.error_samples) {
    if (error_samples.size() < 5) error_samples.push_back(e);
  }
}

int parse_options(int argc, char** argv, Options& o) {
  std::string ratio = "1:10", pattern = "R:R", requests, data_range, expiry_range, percentiles;
  std::vector<std::string> servers;
  size_t data_size = 32;
  CLI::App app{
      "cachebench: a memtier_benchmark-style load generator (memcache_text, redis, "
      "native)"};
  app.add_option("-s,--server", o.server, "server address")->capture_default_str();
  app.add_option("-p,--port", o.port, "server port")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  app.add_option("--servers", servers,
                 "several host:port: client-side sharding with the client ring (no router)")
      ->delimiter(',');
  app.add_option("-P,--protocol", o.protocol, "memcache_text, redis (RESP2) or native")
      ->check(CLI::IsMember({"memcache_text", "redis", "native"}))
      ->capture_default_str();
  app.add_option("-t,--threads", o.threads, "threads")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("-c,--clients", o.clients, "connections per thread")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--pipeline", o.pipeline, "requests in flight per connection")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--rate-limiting", o.rate_limit,
                 "requests per second per connection (default: unlimited)")
      ->check(CLI::Range(1u, 100'000'000u));
  app.add_option("--ratio", ratio, "set:get ratio")->capture_default_str();
  app.add_option("--key-pattern", pattern,
                 "set:get key pattern: R uniform, S sequential, P parallel sequential, "
                 "G gaussian, Z zipf")
      ->capture_default_str();
  app.add_option("--key-minimum", o.keys.min, "smallest key id")->capture_default_str();
  app.add_option("--key-maximum", o.keys.max, "largest key id")->capture_default_str();
  app.add_option("--key-prefix", o.key_prefix, "key prefix")->capture_default_str();
  app.add_option("--key-median", o.keys.median, "G: median key id (default: the middle)");
  app.add_option("--key-stddev", o.keys.stddev, "G: standard deviation (default: range / 6)");
  app.add_option("--key-zipf-exp", o.keys.zipf_exp, "Z: exponent")
      ->check(CLI::Range(0.01, 5.0))
      ->capture_default_str();
  app.add_option("-d,--data-size", data_size, "value size in bytes")
      ->check(CLI::Range(size_t{1}, size_t{64} << 20))
      ->capture_default_str();
  app.add_option("--data-size-range", data_range, "random value sizes MIN-MAX");
  app.add_option("--expiry-range", expiry_range, "random TTL in seconds MIN-MAX for sets");
  app.add_option("--test-time", o.test_time, "seconds to run")->check(CLI::Range(1, 86400));
  app.add_option("-n,--requests", requests, "requests per client, or allkeys");
  app.add_option("-x,--run-count", o.run_count, "number of full test runs")
      ->check(CLI::Range(1, 1000));
  app.add_option("--print-percentiles", percentiles, "latency percentiles (default 50,99,99.9)");
  app.add_flag("--hide-histogram", o.hide_histogram, "no histogram (cachebench never prints one)");
  app.add_flag("--distinct-client-seed", o.distinct_client_seed, "a random seed per client");
  app.add_flag("--randomize", o.randomize, "seed from the clock instead of a fixed seed");
  app.add_option("--json-out-file", o.json_out, "memtier-style JSON results");
  app.add_flag("--tls", o.tls, "connect with TLS");
  app.add_option("--cert", o.tls_cert, "TLS: client certificate (PEM)");
  app.add_option("--key", o.tls_key, "TLS: client private key (PEM)");
  app.add_option("--cacert", o.tls_cacert, "TLS: CA to verify the server against");
  app.add_flag("--tls-skip-verify", o.tls_skip_verify, "TLS: do not verify the server");
  app.add_option("--sni", o.tls_sni, "TLS: server name sent and checked");
  app.add_option("--scenario", o.scenario_file,
                 "a YAML timeline of kill/stop/cont/restart/reload/exec during the run");
  app.add_option("--router-stats", o.router_stats,
                 "HOST:PORT of a cacherouter: failovers per scenario phase from its stats");
  app.add_option("--trace", o.trace_file,
                 "replay a cache trace (csv time_ms,op,key,size,ttl or libCacheSim "
                 "oracleGeneral) over one connection; reports the hit ratio per phase");
  app.add_option("--trace-format", o.trace_format, "csv or oracle (default: by the suffix)")
      ->check(CLI::IsMember({"csv", "oracle"}));
  app.add_option("--trace-speed", o.trace_speed,
                 "replay at the trace's pace times this (0: as fast as possible)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  bool no_fill = false;
  app.add_flag("--trace-no-fill", no_fill, "a get that misses is not followed by a set");
  app.add_option("--csv", o.csv_out, "the per-second series as CSV");
  app.add_option("--report", o.html_out, "a self-contained HTML report with charts");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "cachebench: %s\n", e.what());
    return 2;
  }
  auto bad = [](const std::string& what) {
    std::fprintf(stderr, "cachebench: %s\n", what.c_str());
    return 2;
  };
  long long a = 0, b = 0;
  if (!parse_pair(ratio, ':', a, b) || a < 0 || b < 0 || a + b == 0) {
    return bad("bad --ratio '" + ratio + "' (want S:G, e.g. 1:10)");
  }
  o.sets = int(a);
  o.gets = int(b);
  if (o.rate_limit > 0) {  // memtier's split: the burst rounded up, the interval to match
    o.rate_burst = (o.rate_limit + 49) / 50;
    o.rate_interval_us = 1'000'000 / (o.rate_limit / o.rate_burst);
  }
  const std::string letters = "RSPGZ";
  if (pattern.size() != 3 || pattern[1] != ':' || letters.find(pattern[0]) == std::string::npos ||
      letters.find(pattern[2]) == std::string::npos) {
    return bad("bad --key-pattern '" + pattern + "' (want X:Y, each of R S P G Z)");
  }
  o.set_pattern = pattern[0];
  o.get_pattern = pattern[2];
  if (o.keys.max < o.keys.min) return bad("--key-maximum is below --key-minimum");
  o.data_min = o.data_max = data_size;
  if (!data_range.empty()) {
    if (!parse_pair(data_range, '-', a, b) || a < 1 || b < a || b > (64ll << 20)) {
      return bad("bad --data-size-range '" + data_range + "' (want MIN-MAX bytes)");
    }
    o.data_min = size_t(a);
    o.data_max = size_t(b);
  }
  if (!expiry_range.empty()) {
    if (!parse_pair(expiry_range, '-', a, b) || a < 0 || b < a) {
      return bad("bad --expiry-range '" + expiry_range + "' (want MIN-MAX seconds)");
    }
    o.expiry_min = a;
    o.expiry_max = b;
  }
  if (!requests.empty()) {
    if (requests == "allkeys") {
      uint64_t span = o.keys.max - o.keys.min + 1;
      uint64_t all = uint64_t(o.threads) * uint64_t(o.clients);
      o.requests = (span + all - 1) / all;
    } else {
      try {
        size_t used = 0;
        o.requests = std::stoull(requests, &used);
        if (used != requests.size() || o.requests == 0) throw std::invalid_argument("");
      } catch (const std::exception&) {
        return bad("bad --requests '" + requests + "' (want a count or allkeys)");
      }
    }
  }
  if (!percentiles.empty()) {
    o.percentiles.clear();
    std::stringstream ss(percentiles);
    std::string item;
    while (std::getline(ss, item, ',')) {
      try {
        size_t used = 0;
        double p = std::stod(item, &used);
        if (used != item.size() || p <= 0 || p > 100) throw std::invalid_argument("");
        o.percentiles.push_back(p);
      } catch (const std::exception&) {
        return bad("bad --print-percentiles '" + percentiles + "' (want e.g. 50,99,99.9)");
      }
    }
  }
  o.trace_fill = !no_fill;
  if (!o.trace_file.empty()) {
    // A replay ends with its trace; --test-time, if given, bounds it.
    if (o.tls || !servers.empty() || !o.scenario_file.empty() || o.run_count > 1) {
      return bad(
          "--trace replays over one plain connection: not with --tls, --servers, "
          "--scenario or --run-count");
    }
  } else if (o.test_time == 0 && o.requests == 0) {
    o.test_time = 10;
  }
  if (!o.scenario_file.empty() && o.run_count > 1) {
    return bad("--scenario runs once: not with --run-count");
  }
  if (!o.router_stats.empty()) {
    auto colon = o.router_stats.rfind(':');
    long long port = 0;
    try {
      port = colon == std::string::npos ? 0 : std::stoll(o.router_stats.substr(colon + 1));
    } catch (const std::exception&) {
      port = 0;
    }
    if (port < 1 || port > 65535) return bad("bad --router-stats '" + o.router_stats + "'");
  }
  if (servers.empty()) {
    o.targets.emplace_back(o.server, o.port);
  } else {
    for (const auto& a : servers) {
      auto colon = a.rfind(':');
      int port = 0;
      try {
        size_t used = 0;
        if (colon == std::string::npos) throw std::invalid_argument("");
        port = std::stoi(a.substr(colon + 1), &used);
        if (used != a.size() - colon - 1 || port < 1 || port > 65535) {
          throw std::invalid_argument("");
        }
      } catch (const std::exception&) {
        return bad("bad --servers address '" + a + "' (want host:port)");
      }
      o.targets.emplace_back(a.substr(0, colon), port);
    }
  }
  return -1;
}

void print_header(const Options& o) {
  (void)o;
  // On stderr, as memtier: stdout holds the report alone.
  std::fprintf(stderr, "Writing results to stdout\n");
  std::fprintf(stderr,
               "[RUN #1] Preparing benchmark client...\n[RUN #1] Launching threads now...\n");
}

std::string all_stats_table(const Options& o, const RunTotals& t) {
  std::ostringstream out;
  double secs = t.seconds > 0 ? t.seconds : 1;
  std::string head = fmt("%-8s", "Type") + fmt("%12s", "Ops/sec") + fmt("%13s", "Hits/sec") +
                     fmt("%13s", "Misses/sec") + fmt("%16s", "Avg. Latency");
  for (double p : o.percentiles) {
    char b[40];
    std::snprintf(b, sizeof(b), "%16s", (pname(p) + " Latency").c_str());
    head += b;
  }
  head += fmt("%13s", "KB/sec");
  // (memtier's columns each end in a space: its rules are one longer than the titles.)
  out << "ALL STATS\n"
      << std::string(head.size() + 1, '=') << "\n"
      << head << " \n"
      << std::string(head.size() + 1, '-') << "\n";
  auto row = [&](const char* name, uint64_t count, double hits, double misses,
                 const LatencyHistogram& h, double kb, bool has_hits) {
    std::string r = fmt("%-8s", name) + fmt("%12.2f", double(count) / secs);
    r += has_hits ? fmt("%13.2f", hits / secs) + fmt("%13.2f", misses / secs)
                  : std::string(10, ' ') + "---" + std::string(10, ' ') + "---";
    r += fmt("%16.5f", ms(h.mean_ns()));
    for (double p : o.percentiles) r += fmt("%16.5f", ms(double(h.percentile(p))));
    r += kb >= 0 ? fmt("%13.2f", kb) : std::string(10, ' ') + "---";
    out << r << " \n";
  };
  LatencyHistogram all;
  all.merge(t.set_lat);
  all.merge(t.get_lat);
  auto kb = [&](uint64_t rx, uint64_t tx) { return double(rx + tx) / 1024 / secs; };
  row("Sets", t.sets, 0, 0, t.set_lat, kb(t.set_rx, t.set_tx), false);
  row("Gets", t.gets, double(t.hits), double(t.misses), t.get_lat, kb(t.get_rx, t.get_tx), true);
  std::string waits = fmt("%-8s", "Waits") + fmt("%12.2f", 0.0) + fmt("%13s", "---") +
                      fmt("%13s", "---") + fmt("%16s", "---");
  for (size_t i = 0; i < o.percentiles.size(); ++i) waits += fmt("%16s", "---");
  waits += fmt("%13s", "---");
  out << waits << " \n";
  row("Totals", t.sets + t.gets, double(t.hits), double(t.misses), all,
      kb(t.set_rx + t.get_rx, t.set_tx + t.get_tx), true);
  if (t.errors > 0) out << "Errors: " << t.errors << "\n";  // (beyond memtier)
  return out.str();
}

std::string json_report(const Options& o, const RunTotals& t) {
  std::ostringstream j;
  double secs = t.seconds > 0 ? t.seconds : 1;
  // One request type as memtier writes it ("Sets", "Gets", "Waits", "Totals"), with its
  // per-second "Time-Serie"; `part` picks the type's share of each second (null: both).
  auto section = [&](const char* name, uint64_t count, uint64_t hits, uint64_t misses,
                     const LatencyHistogram& h, uint64_t rx, uint64_t tx, TypeSecond Second::*part,
                     bool with_series) {
    const double kb_rx = double(rx) / 1024 / secs, kb_tx = double(tx) / 1024 / secs;
    j << "    \"" << name << "\": {\"Count\": " << count
      << ", \"Ops/sec\": " << fmt("%.2f", double(count) / secs)
      << ", \"Hits/sec\": " << fmt("%.2f", double(hits) / secs)
      << ", \"Misses/sec\": " << fmt("%.2f", double(misses) / secs)
      << ", \"Connection Errors/sec\": 0.00, \"Connection Errors\": 0"
      << ", \"Latency\": " << fmt("%.5f", ms(h.mean_ns()))
      << ", \"Average Latency\": " << fmt("%.5f", ms(h.mean_ns()))
      << ", \"Accumulated Latency\": " << fmt("%.0f", ms(double(h.sum_ns())))
      << ", \"Min Latency\": " << fmt("%.5f", ms(double(h.min())))
      << ", \"Max Latency\": " << fmt("%.5f", ms(double(h.max())))
      << ", \"KB/sec\": " << fmt("%.2f", kb_rx + kb_tx)
      << ", \"KB/sec RX/TX\": " << fmt("%.2f", kb_rx + kb_tx)
      << ", \"KB/sec RX\": " << fmt("%.2f", kb_rx) << ", \"KB/sec TX\": " << fmt("%.2f", kb_tx)
      << ",\n      \"Time-Serie\": {";
    for (size_t i = 0; with_series && i < t.series.size(); ++i) {
      const bool waits = name[0] == 'W';  // (always empty: cachebench sends no WAIT)
      const TypeSecond ts = part != nullptr ? t.series[i].*part
                            : waits         ? TypeSecond{}
                                            : t.series[i].all();
      j << (i ? ", " : "") << "\"" << i << "\": {\"Bytes RX\": " << ts.rx
        << ", \"Bytes TX\": " << ts.tx << ", \"Count\": " << ts.count;
      if (ts.count == 0) {  // as memtier: no latency for a second without a reply
        j << "}";
        continue;
      }
      j << ", \"Average Latency\": " << fmt("%.5f", ms(ts.lat.mean_ns()))
        << ", \"Accumulated Latency\": " << fmt("%.0f", ms(double(ts.lat.sum_ns())))
        << ", \"Min Latency\": " << fmt("%.5f", ms(double(ts.lat.min())))
        << ", \"Max Latency\": " << fmt("%.5f", ms(double(ts.lat.max())));
      for (double p : o.percentiles) {
        j << ", \"" << pkey(p) << "\": " << fmt("%.5f", ms(double(ts.lat.percentile(p))));
      }
      j << "}";
    }
    j << "},\n      \"Percentile Latencies\": {";
    for (size_t i = 0; i < o.percentiles.size(); ++i) {
      j << (i ? ", " : "") << "\"" << pkey(o.percentiles[i])
        << "\": " << fmt("%.5f", ms(double(h.percentile(o.percentiles[i]))));
    }
    j << "}},\n";
  };
  LatencyHistogram all, none;
  all.merge(t.set_lat);
  all.merge(t.get_lat);
  auto opt = [](const std::string& v) { return v.empty() ? "null" : "\"" + json_escape(v) + "\""; };
  const bool by_requests = o.requests > 0;
  j << "{\n  \"configuration\": {\"server\": \"" << json_escape(o.server)
    << "\", \"port\": " << o.port << ", \"protocol\": \"" << o.protocol << "\", \"tls\": \""
    << (o.tls ? "true" : "false") << "\", \"cert\": " << opt(o.tls_cert)
    << ", \"key\": " << opt(o.tls_key) << ", \"cacert\": " << opt(o.tls_cacert)
    << ", \"tls_skip_verify\": \"" << (o.tls_skip_verify ? "true" : "false")
    << "\", \"sni\": " << opt(o.tls_sni) << ", \"out_file\": null, \"run_count\": " << o.run_count
    << ", \"requests\": " << o.requests << ", \"rate_limit\": " << o.rate_limit
    << ", \"clients\": " << o.clients << ", \"threads\": " << o.threads
    << ", \"test_time\": " << o.test_time << ", \"ratio\": \"" << o.sets << ":" << o.gets
    << "\", \"pipeline\": " << o.pipeline << ", \"data_size\": " << o.data_max
    << ", \"data_size_range\": \"" << (o.data_min == o.data_max ? 0 : o.data_min) << ":"
    << (o.data_min == o.data_max ? 0 : o.data_max) << "\", \"expiry_range\": \"" << o.expiry_min
    << ":" << o.expiry_max << "\", \"key_prefix\": \"" << json_escape(o.key_prefix)
    << "\", \"key_minimum\": " << o.keys.min << ", \"key_maximum\": " << o.keys.max
    << ", \"key_pattern\": \"" << o.set_pattern << ":" << o.get_pattern
    << "\", \"key_stddev\": " << fmt("%.1f", o.keys.stddev)
    << ", \"key_median\": " << fmt("%.1f", o.keys.median)
    << ", \"key_zipf_exp\": " << fmt("%.1f", o.keys.zipf_exp) << "},\n";
  j << "  \"run information\": {\"Threads\": " << o.threads
    << ", \"Connections per thread\": " << o.clients << ", \""
    << (by_requests ? "Requests per client" : "Seconds")
    << "\": " << (by_requests ? o.requests : uint64_t(o.test_time))
    << ", \"Format version\": 2},\n  \"ALL STATS\": {\n";
  section("Sets", t.sets, 0, 0, t.set_lat, t.set_rx, t.set_tx, &Second::set, true);
  section("Gets", t.gets, t.hits, t.misses, t.get_lat, t.get_rx, t.get_tx, &Second::get, true);
  section("Waits", 0, 0, 0, none, 0, 0, nullptr, true);
  section("Totals", t.sets + t.gets, t.hits, t.misses, all, t.set_rx + t.get_rx,
          t.set_tx + t.get_tx, nullptr, true);
  const uint64_t dur = static_cast<uint64_t>(secs * 1000 + 0.5);
  j << "    \"Runtime\": {\"Start time\": " << t.start_unix_ms
    << ", \"Finish time\": " << t.start_unix_ms + dur << ", \"Total duration\": " << dur
    << ", \"Time unit\": \"MILLISECONDS\", \"Interrupted\": \"false\"},\n";
  // Beyond memtier: the errors, and a per-second series with hits, misses and errors.
  j << "    \"Errors\": " << t.errors << ",\n    \"Time-Serie\": [";
  for (size_t i = 0; i < t.series.size(); ++i) {
    const Second& s = t.series[i];
    const TypeSecond all = s.all();
    j << (i ? ", " : "") << "{\"second\": " << i << ", \"Count\": " << all.count
      << ", \"Hits\": " << s.hits << ", \"Misses\": " << s.misses << ", \"Errors\": " << s.errors
      << ", \"p50.00\": " << fmt("%.5f", ms(double(all.lat.percentile(50))))
      << ", \"p99.00\": " << fmt("%.5f", ms(double(all.lat.percentile(99)))) << "}";
  }
  j << "]\n  }";
  if (!t.phase_info.empty()) {
    j << ",\n  \"Phases\": [";
    for (size_t i = 0; i < t.phase_info.size(); ++i) {
      const PhaseInfo& pi = t.phase_info[i];
      const PhaseTotals& pt = t.phase(i);
      const uint64_t looked = pt.hits + pt.misses;
      j << (i ? ",\n    " : "\n    ") << "{\"Phase\": \"" << json_escape(pi.label)
        << "\", \"Event\": \"" << json_escape(pi.what) << "\", \"From\": " << fmt("%.3f", pi.from)
        << ", \"To\": " << fmt("%.3f", pi.to) << ", \"Requests\": " << pt.requests
        << ", \"Errors\": " << pt.errors << ", \"Hits\": " << pt.hits
        << ", \"Misses\": " << pt.misses << ", \"Hit Ratio\": "
        << (looked ? fmt("%.4f", double(pt.hits) / double(looked)) : std::string("null"));
      for (double p : o.percentiles) {
        j << ", \"" << pkey(p) << "\": " << fmt("%.5f", ms(double(pt.lat.percentile(p))));
      }
      j << ", \"Failovers\": "
        << (pi.failovers >= 0 ? std::to_string(pi.failovers) : std::string("null")) << "}";
    }
    j << "\n  ]";
  }
  j << "\n}\n";
  return j.str();
}

std::string phase_table(const Options& o, const RunTotals& t) {
  if (t.phase_info.empty()) return "";
  std::ostringstream out;
  std::string head = fmt("%-28s", "Phase") + fmt("%9s", "From(s)") + fmt("%9s", "To(s)") +
                     fmt("%12s", "Requests") + fmt("%9s", "Errors") + fmt("%9s", "Hit %");
  for (double p : o.percentiles) head += fmt("%12s", (pname(p) + " ms").c_str());
  head += fmt("%11s", "Failovers");
  out << "AVAILABILITY BY PHASE\n"
      << std::string(head.size(), '=') << "\n"
      << head << "\n"
      << std::string(head.size(), '-') << "\n";
  for (size_t i = 0; i < t.phase_info.size(); ++i) {
    const PhaseInfo& pi = t.phase_info[i];
    const PhaseTotals& pt = t.phase(i);
    std::string label = pi.label.size() > 27 ? pi.label.substr(0, 27) : pi.label;
    std::string r = fmt("%-28s", label.c_str()) + fmt("%9.2f", pi.from) + fmt("%9.2f", pi.to) +
                    fmt("%12.0f", double(pt.requests)) + fmt("%9.0f", double(pt.errors));
    const uint64_t looked = pt.hits + pt.misses;
    r += looked ? fmt("%9.2f", 100.0 * double(pt.hits) / double(looked)) : fmt("%9s", "-");
    for (double p : o.percentiles) {
      r += pt.requests ? fmt("%12.3f", ms(double(pt.lat.percentile(p)))) : fmt("%12s", "-");
    }
    r += pi.failovers >= 0 ? fmt("%11.0f", double(pi.failovers)) : fmt("%11s", "-");
    out << r << "\n";
  }
  for (const PhaseInfo& pi : t.phase_info) {
    if (!pi.what.empty()) out << fmt("  %7.2fs  ", pi.from) << pi.what << "\n";
  }
  return out.str();
}

std::string csv_series(const RunTotals& t) {
  std::ostringstream c;
  c << "second,ops,hits,misses,errors,p50_ms,p99_ms\n";
  for (size_t i = 0; i < t.series.size(); ++i) {
    const Second& s = t.series[i];
    const TypeSecond all = s.all();
    c << i << "," << all.count << "," << s.hits << "," << s.misses << "," << s.errors << ","
      << fmt("%.5f", ms(double(all.lat.percentile(50)))) << ","
      << fmt("%.5f", ms(double(all.lat.percentile(99)))) << "\n";
  }
  return c.str();
}

int report(const Options& o, const std::vector<RunTotals>& runs) {
  RunTotals agg;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (runs.size() > 1) std::printf("\n[RUN #%zu RESULTS]\n", i + 1);
    // memtier's run information, then its table.
    if (o.requests > 0) {
      std::printf("%-9d Threads\n%-9d Connections per thread\n%-9llu Requests per client\n",
                  o.threads, o.clients, static_cast<unsigned long long>(o.requests));
    } else {
      std::printf("%-9d Threads\n%-9d Connections per thread\n%-9d Seconds\n", o.threads, o.clients,
                  o.test_time);
    }
    std::printf("\n\n%s", all_stats_table(o, runs[i]).c_str());
    if (!runs[i].phase_info.empty()) std::printf("\n%s", phase_table(o, runs[i]).c_str());
    agg.merge(runs[i]);
  }
  if (runs.size() > 1) {
    // Averages: counts over the summed durations.
    double total_secs = 0;
    for (const auto& r : runs) total_secs += r.seconds;
    agg.seconds = total_secs;
    std::printf("\nAGGREGATED AVERAGE RESULTS (%zu runs)\n\n%s", runs.size(),
                all_stats_table(o, agg).c_str());
  } else {
    agg = runs.front();
  }
  auto write = [](const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) {
      std::fprintf(stderr, "cachebench: cannot write %s\n", path.c_str());
      return false;
    }
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    return true;
  };
  bool ok = true;
  if (!o.json_out.empty()) ok &= write(o.json_out, json_report(o, agg));
  if (!o.csv_out.empty()) ok &= write(o.csv_out, csv_series(agg));
  if (!o.html_out.empty()) ok &= write(o.html_out, html_report(o, agg));
  for (const auto& e : agg.error_samples) {
    std::fprintf(stderr, "cachebench: error reply: %s\n", e.c_str());
  }
  if (!ok) return 1;
  return agg.errors == 0 ? 0 : 1;
}

}  // namespace cachetier::bench
