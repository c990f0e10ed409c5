// cacheserver: one cache node. Flags follow memcached's where they overlap.
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cacheserver/engine/lru_engine.h"
#include "cacheserver/process/native_process.h"
#include "cacheserver/server/server.h"
#include "common/clock.h"
#include "common/version.h"

namespace {

// Parses "64", "64m", "512k", "1g" (bare numbers in `unit` bytes). Returns false on garbage.
bool parse_size(const std::string& s, size_t unit, size_t& out) {
  if (s.empty()) return false;
  size_t i = 0;
  unsigned long long v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
    if (v > (1ull << 40)) return false;
    ++i;
  }
  if (i == 0) return false;
  size_t mult = unit;
  if (i < s.size()) {
    if (i + 1 != s.size()) return false;
    switch (s[i]) {
      case 'k':
      case 'K':
        mult = 1024;
        break;
      case 'm':
      case 'M':
        mult = 1024 * 1024;
        break;
      case 'g':
      case 'G':
        mult = size_t{1} << 30;
        break;
      default:
        return false;
    }
  }
  out = static_cast<size_t>(v) * mult;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  cachetier::server::ServerConfig cfg;
  cfg.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string memory = "64", item_size = "1m", conn_output = "64m", max_frame;
  std::vector<std::string> listen_specs, extended;
  int verbose_count = 0;
  int udp_port = 0;

  CLI::App app{"cacheserver: a memcached-compatible, memory-bounded cache node"};
  app.set_version_flag("--version", "cacheserver " CACHETIER_VERSION);
  app.add_option("-p,--port", cfg.port, "TCP port to listen on (0 = ephemeral)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("-l,--listen", listen_specs,
                 "interfaces to listen on, comma-separated or repeated: HOST, HOST:PORT, "
                 "[IPV6]:PORT; with -Z a notls: prefix makes one plaintext (default 127.0.0.1)");
  app.add_flag("-Z,--enable-ssl", cfg.tls, "TLS on every listener not marked notls:");
  app.add_option("-Y,--auth-file", cfg.auth_file,
                 "memcached's ASCII authentication: a file of user:password lines (re-read on "
                 "SIGHUP)");
  bool no_flush = false;
  app.add_flag("-F,--disable-flush-all", no_flush, "refuse flush_all");
  bool debug_clock = false;
  app.add_flag("--debug-clock", debug_clock,
               "for tests: RESP's DEBUG ADVANCE-CLOCK <seconds> moves this node's clock forward");
  app.add_option("-o,--extended", extended,
                 "comma-separated KEY=VALUE options: ssl_chain_cert, ssl_key, ssl_ca_cert, "
                 "ssl_verify_mode (0-3), ssl_min_version (tlsv1.2, tlsv1.3), ssl_ciphers, "
                 "ssl_handshake_timeout_ms");
  app.add_option("--native-port", cfg.native_port,
                 "also listen here for the native protocol only (0 = ephemeral); the main port "
                 "serves both, chosen by each connection's first byte")
      ->check(CLI::Range(0, 65535));
  app.add_option("--resp-port", cfg.resp_port,
                 "also listen here for RESP (the Redis protocol) only, inline commands too (0 = "
                 "ephemeral); the main port serves RESP to a connection whose first byte is '*'")
      ->check(CLI::Range(0, 65535));
  app.add_option("--max-frame", max_frame,
                 "largest native protocol frame (k/m suffixes; default 2 x -I + 64k)");
  app.add_option("-t,--threads", cfg.threads, "worker threads (default: number of cores)")
      ->check(CLI::Range(1, 256));
  app.add_option("-m,--memory-limit", memory, "memory limit in MB (k/m/g suffixes allowed)")
      ->capture_default_str();
  app.add_option("-c,--conn-limit", cfg.conn_limit, "max simultaneous connections")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("-I,--max-item-size", item_size, "max item value size (k/m suffixes)")
      ->capture_default_str();
  app.add_option("-U,--udp-port", udp_port, "UDP port; only 0 (off) is supported")
      ->check(CLI::Range(0, 0));
  app.add_option("--max-line", cfg.max_line, "longest command line accepted, bytes")
      ->check(CLI::Range(size_t{256}, size_t{1} << 24))
      ->capture_default_str();
  app.add_option("--max-conn-output", conn_output,
                 "output a single connection may buffer before it is closed (k/m suffixes)")
      ->capture_default_str();
  app.add_option("--idle-polls", cfg.idle_polls,
                 "non-blocking polls, each after a yield, before a worker sleeps (0 = sleep at "
                 "once)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  app.add_option("--metrics-port", cfg.metrics_port,
                 "serve Prometheus metrics (GET /metrics) on this port (0 = ephemeral)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--metrics-listen", cfg.metrics_listen,
                 "address of the metrics endpoint (default: the first --listen host)");
  app.add_flag("-v,--verbose", verbose_count, "verbose logging (repeat for more)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "cacheserver: %s\nRun with --help for the options.\n", e.what());
    return 2;
  }
  cfg.verbose = verbose_count;
  cfg.flush_enabled = !no_flush;
  for (const std::string& spec : listen_specs) {
    std::string error;
    if (!cachetier::server::parse_listen(spec, cfg.listen_addrs, error)) {
      std::fprintf(stderr, "cacheserver: bad --listen: %s\n", error.c_str());
      return 2;
    }
  }
  bool tls_options_given = false;
  for (const std::string& list : extended) {
    std::string error;
    if (!cachetier::server::parse_extended(list, cfg, tls_options_given, error)) {
      std::fprintf(stderr, "cacheserver: bad -o: %s\n", error.c_str());
      return 2;
    }
  }
  if (cfg.tls && cfg.tls_options.cert_chain.empty()) {
    std::fprintf(stderr,
                 "cacheserver: -Z needs a certificate: -o ssl_chain_cert=FILE[,ssl_key=FILE]\n");
    return 2;
  }
  bool any_notls = false;
  for (const auto& a : cfg.listen_addrs) any_notls = any_notls || a.notls;
  if (!cfg.tls && any_notls) {
    std::fprintf(stderr,
                 "cacheserver: a notls: listener without -Z (every listener is plaintext)\n");
    return 2;
  }
  // Logs go to stderr; stdout carries only the "listening on" line that scripts read.
  spdlog::set_default_logger(spdlog::stderr_color_mt("cacheserver"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(verbose_count >= 2   ? spdlog::level::debug
                    : verbose_count == 1 ? spdlog::level::info
                                         : spdlog::level::warn);
  if (!parse_size(memory, 1024 * 1024, cfg.memory_limit) || cfg.memory_limit < (1u << 20)) {
    std::fprintf(stderr, "cacheserver: bad --memory-limit '%s' (want MB >= 1, e.g. 64 or 1g)\n",
                 memory.c_str());
    return 2;
  }
  if (!parse_size(item_size, 1, cfg.max_item_size) || cfg.max_item_size < 1024 ||
      cfg.max_item_size > cfg.memory_limit / 4 || cfg.max_item_size > (1u << 30)) {
    std::fprintf(stderr,
                 "cacheserver: bad --max-item-size '%s' (want 1k .. a quarter of the memory "
                 "limit, at most 1g)\n",
                 item_size.c_str());
    return 2;
  }
  if (!parse_size(conn_output, 1, cfg.output_limit) || cfg.output_limit < (64u << 10)) {
    std::fprintf(stderr, "cacheserver: bad --max-conn-output '%s' (want >= 64k)\n",
                 conn_output.c_str());
    return 2;
  }
  if (!cfg.tls && tls_options_given) {
    spdlog::warn("-o ssl_* options have no effect without -Z");
  }
  cfg.output_high_water = std::min(cfg.output_high_water, cfg.output_limit / 2);
  cfg.max_frame = cachetier::process::default_max_frame(cfg.max_item_size);
  if (!max_frame.empty() &&
      (!parse_size(max_frame, 1, cfg.max_frame) || cfg.max_frame < cfg.max_item_size + 4096 ||
       cfg.max_frame > 0xFFFFFFFFu)) {
    std::fprintf(stderr, "cacheserver: bad --max-frame '%s' (want -I + 4k .. 4g)\n",
                 max_frame.c_str());
    return 2;
  }

  // Items live in the engine's own pages; malloc only serves buffers, so a couple of arenas
  // are plenty and keep RSS from drifting.
  mallopt(M_ARENA_MAX, 2);

  cachetier::SystemClock system_clock;
  cachetier::OffsetClock debug;
  if (debug_clock) cfg.debug_clock = &debug;
  cachetier::engine::LruEngineConfig ecfg;
  ecfg.memory_limit = cfg.memory_limit;
  ecfg.max_item_size = cfg.max_item_size;
  cachetier::engine::LruEngine engine(
      ecfg, debug_clock ? static_cast<const cachetier::Clock&>(debug) : system_clock);
  engine.start_reclaimer();
  cachetier::server::Server server(cfg, engine);
  return server.run();
}
