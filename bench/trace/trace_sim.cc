// trace_sim: the hit ratio of each eviction policy on a trace with a byte budget (sim.h).
//
//   trace_sim --trace zipf099.csv --budget 32m --per-object 48 --policies lru,s3fifo,opt
//
// Prints one row per policy and phase; --json FILE writes the same as JSON.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/trace/sim.h"

using namespace cachetier::bench::trace;

namespace {

bool parse_bytes(const std::string& s, uint64_t& out) {
  if (s.empty()) return false;
  size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &used);
  } catch (const std::exception&) {
    return false;
  }
  uint64_t unit = 1;
  if (used < s.size()) {
    if (used + 1 != s.size()) return false;
    switch (s[used]) {
      case 'k':
      case 'K':
        unit = 1ull << 10;
        break;
      case 'm':
      case 'M':
        unit = 1ull << 20;
        break;
      case 'g':
      case 'G':
        unit = 1ull << 30;
        break;
      default:
        return false;
    }
  }
  out = v * unit;
  return out > 0;
}

// Keys (so phase names) may hold '"' and '\\' (never control characters: trace_file.h).
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  std::string file, format, budget = "64m", policies = "lru,fifo,clock,sieve,s3fifo,opt", json;
  SimConfig cfg;
  CLI::App app{"trace_sim: hit ratios of eviction policies on a cache trace"};
  app.add_option("--trace", file, "the trace (csv or oracleGeneral)")->required();
  app.add_option("--trace-format", format, "csv or oracle (default: by the suffix)");
  app.add_option("--budget", budget, "bytes the cached objects may cost (k/m/g)")
      ->capture_default_str();
  app.add_option("--per-object", cfg.per_object, "bytes each object costs beyond key and value")
      ->capture_default_str();
  app.add_option("--policies", policies, "comma-separated: lru fifo clock sieve s3fifo opt")
      ->capture_default_str();
  app.add_option("--small-ratio", cfg.small_ratio, "s3fifo: the small queue's share")
      ->check(CLI::Range(0.01, 0.9))
      ->capture_default_str();
  app.add_option("--move-threshold", cfg.move_threshold,
                 "s3fifo: hits in the small queue that earn the main queue")
      ->check(CLI::Range(1u, 3u))
      ->capture_default_str();
  bool no_fill = false;
  app.add_flag("--no-fill", no_fill,
               "a get that misses does not store (cachebench's --trace-no-fill)");
  app.add_flag("--adaptive", cfg.adaptive, "s3fifo: the small queue's share adapts to ghost hits");
  app.add_option("--adapt-step", cfg.adapt_step, "s3fifo --adaptive: the share one ghost hit moves")
      ->check(CLI::Range(0.0001, 0.1));
  app.add_option("--small-min", cfg.small_min, "s3fifo --adaptive: the least share of the small queue")
      ->check(CLI::Range(0.01, 0.9))
      ->capture_default_str();
  app.add_option("--small-max", cfg.small_max, "s3fifo --adaptive: the largest share of the small queue")
      ->check(CLI::Range(0.01, 0.99))
      ->capture_default_str();
  app.add_option("--ghost-ratio", cfg.ghost_ratio,
                 "s3fifo: the ghost's bytes as a share of the main queue's (0: no ghost)")
      ->check(CLI::Range(0.0, 4.0))
      ->capture_default_str();
  app.add_option("--json", json, "write the results as JSON");
  CLI11_PARSE(app, argc, argv);
  cfg.fill = !no_fill;
  if (!parse_bytes(budget, cfg.budget)) {
    std::fprintf(stderr, "trace_sim: bad --budget '%s'\n", budget.c_str());
    return 2;
  }
  std::vector<Policy> list;
  std::stringstream ss(policies);
  for (std::string name; std::getline(ss, name, ',');) {
    Policy p;
    if (!parse_policy(name, p)) {
      std::fprintf(stderr, "trace_sim: unknown policy '%s'\n", name.c_str());
      return 2;
    }
    list.push_back(p);
  }
  auto reader = Reader::open(file, format);
  if (!reader.is_ok()) {
    std::fprintf(stderr, "trace_sim: %s\n", reader.status().message().c_str());
    return 2;
  }
  auto trace = load_trace(*reader.value());
  if (!trace.is_ok()) {
    std::fprintf(stderr, "trace_sim: %s\n", trace.status().message().c_str());
    return 2;
  }
  const Trace& t = trace.value();
  std::printf("%s: %zu requests, %zu keys, budget %llu bytes, %u bytes per object\n", file.c_str(),
              t.requests.size(), t.keys(), static_cast<unsigned long long>(cfg.budget),
              cfg.per_object);
  std::printf("%-8s %-16s %12s %12s %10s\n", "policy", "phase", "gets", "hits", "hit ratio");
  std::string j = "{\"trace\": " + json_string(file) +
                  ", \"budget\": " + std::to_string(cfg.budget) +
                  ", \"per_object\": " + std::to_string(cfg.per_object) + ", \"results\": [";
  for (size_t k = 0; k < list.size(); ++k) {
    SimResult r = simulate(t, list[k], cfg);
    j += std::string(k ? ", " : "") + "{\"policy\": \"" + policy_name(list[k]) +
         "\", \"gets\": " + std::to_string(r.gets) + ", \"hits\": " + std::to_string(r.hits) +
         ", \"phases\": [";
    for (size_t i = 0; i < r.phases.size(); ++i) {
      const PhaseResult& p = r.phases[i];
      if (r.phases.size() > 1) {
        std::printf("%-8s %-16s %12llu %12llu %10.4f\n", policy_name(list[k]), p.name.c_str(),
                    static_cast<unsigned long long>(p.gets),
                    static_cast<unsigned long long>(p.hits), p.hit_ratio());
      }
      j += std::string(i ? ", " : "") + "{\"phase\": " + json_string(p.name) +
           ", \"gets\": " + std::to_string(p.gets) + ", \"hits\": " + std::to_string(p.hits) + "}";
    }
    j += "]}";
    std::printf("%-8s %-16s %12llu %12llu %10.4f\n", policy_name(list[k]), "ALL",
                static_cast<unsigned long long>(r.gets), static_cast<unsigned long long>(r.hits),
                r.hit_ratio());
  }
  j += "]}\n";
  if (!json.empty()) std::ofstream(json) << j;
  return 0;
}
