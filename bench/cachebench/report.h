// cachebench's options (memtier_benchmark's flags) and its reports: memtier's text report and
// JSON file, plus the per-second series as CSV and as a self-contained HTML page.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bench/cachebench/histogram.h"
#include "bench/cachebench/keys.h"
#include "common/net/tls.h"

namespace cachetier::bench {

struct Options {
  std::string server = "127.0.0.1";
  int port = 11211;
  // Where to connect: -s/-p, or every address of --servers (client-side sharding).
  std::vector<std::pair<std::string, int>> targets;
  std::string protocol = "memcache_text";
  int threads = 4;
  int clients = 50;
  int pipeline = 1;
  // --rate-limiting: requests per second per connection (memtier's flag); 0 = closed loop.
  // As memtier does, the second is cut into at most 50 intervals: each connection may send
  // rate_burst requests per interval of rate_interval_us, and unused credit is not carried.
  unsigned rate_limit = 0, rate_burst = 0;
  uint64_t rate_interval_us = 0;
  int sets = 1, gets = 10;
  char set_pattern = 'R', get_pattern = 'R';
  KeyPatternOptions keys;
  std::string key_prefix = "memtier-";
  size_t data_min = 32, data_max = 32;  // -d, or --data-size-range
  int64_t expiry_min = 0, expiry_max = 0;
  int test_time = 0;
  uint64_t requests = 0;  // per client; 0 = until --test-time
  int run_count = 1;
  std::vector<double> percentiles = {50, 99, 99.9};
  bool hide_histogram = false, distinct_client_seed = false, randomize = false;
  std::string json_out, csv_out, html_out;
  // TLS (memtier's flags): --tls, --cert/--key (client certificate), --cacert,
  // --tls-skip-verify, --sni. main() builds the context.
  bool tls = false, tls_skip_verify = false;
  std::string tls_cert, tls_key, tls_cacert, tls_sni;
  std::shared_ptr<cachetier::net::TlsContext> tls_ctx;
  // --scenario FILE (scenario.h) and --router-stats HOST:PORT (failovers per phase).
  std::string scenario_file, router_stats;
  // During a run with a scenario: the phase the load is in (the scenario thread advances it).
  const std::atomic<int>* phase = nullptr;
  // --trace FILE (trace_replay.h): --trace-format, --trace-speed (0: as fast as possible),
  // --trace-no-fill.
  std::string trace_file, trace_format;
  double trace_speed = 0;
  bool trace_fill = true;
};

// Parses argv. Returns -1 to go on, else the exit code (0 for --help, 2 for a bad flag).
int parse_options(int argc, char** argv, Options& o);

// One request type's share of a second (memtier's per-type Time-Serie).
struct TypeSecond {
  uint64_t count = 0, rx = 0, tx = 0;  // replies, and their bytes received / sent
  BasicLatencyHistogram<4> lat;
  void merge(const TypeSecond& o) {
    count += o.count;
    rx += o.rx;
    tx += o.tx;
    lat.merge(o.lat);
  }
};

struct Second {
  uint64_t hits = 0, misses = 0, errors = 0;
  TypeSecond set, get;
  TypeSecond all() const {  // both types: the second's requests and their latency
    TypeSecond t = set;
    t.merge(get);
    return t;
  }
  void merge(const Second& o) {
    hits += o.hits;
    misses += o.misses;
    errors += o.errors;
    set.merge(o.set);
    get.merge(o.get);
  }
};

// What the load saw in one phase of a scenario (between two events).
struct PhaseTotals {
  uint64_t requests = 0, errors = 0, hits = 0, misses = 0;
  LatencyHistogram lat;
  void merge(const PhaseTotals& o) {
    requests += o.requests;
    errors += o.errors;
    hits += o.hits;
    misses += o.misses;
    lat.merge(o.lat);
  }
};
// A phase's bounds and what started it, from the scenario thread.
struct PhaseInfo {
  std::string label;        // "start", then each event's label
  std::string what;         // what the event did ("kill -KILL node1 (pid 42)")
  double from = 0, to = 0;  // seconds from the start of the run
  int64_t failovers = -1;   // from --router-stats; -1: not known
};

struct RunTotals {
  uint64_t sets = 0, gets = 0, hits = 0, misses = 0, errors = 0, bytes = 0;
  // Plain-text bytes of the requests answered, per type: received (replies), sent (requests).
  uint64_t set_rx = 0, set_tx = 0, get_rx = 0, get_tx = 0;
  uint64_t start_unix_ms = 0;  // when the run started (memtier's "Start time")
  LatencyHistogram set_lat, get_lat;
  std::vector<Second> series;
  std::vector<PhaseTotals> phases;  // with --scenario: by phase
  std::vector<PhaseInfo> phase_info;
  std::vector<std::string> error_samples;  // the first few error replies, as received
  double seconds = 0;
  void merge(const RunTotals& o);
  // Phase i's totals (empty when the load saw nothing in it).
  const PhaseTotals& phase(size_t i) const {
    static const PhaseTotals kNone;
    return i < phases.size() ? phases[i] : kNone;
  }
};

void print_header(const Options& o);
// Prints the report(s), writes the files; returns the exit code (1 when any error happened).
int report(const Options& o, const std::vector<RunTotals>& runs);

// Pieces exposed for tests.
std::string all_stats_table(const Options& o, const RunTotals& t);
std::string json_report(const Options& o, const RunTotals& t);
std::string csv_series(const RunTotals& t);
std::string html_report(const Options& o, const RunTotals& t);
// `s` for inside a JSON (or JavaScript) string: quotes, backslashes, control characters and
// '<' (so that it is safe in an HTML <script>) escaped.
std::string json_escape(const std::string& s);
// The availability table of a scenario run (empty without one).
std::string phase_table(const Options& o, const RunTotals& t);

}  // namespace cachetier::bench
