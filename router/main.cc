// cacherouter: consistent-hashing proxy over replica sets of cache nodes.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "common/metrics/exposition.h"
#include "common/version.h"
#include "router/config.h"
#include "router/router.h"

int main(int argc, char** argv) {
  std::string config_path;
  int port = -1, threads = -1, verbose = 0;
  bool check_only = false;
  CLI::App app{"cacherouter: consistent-hashing proxy over replica sets of cache nodes"};
  app.set_version_flag("--version", "cacherouter " CACHETIER_VERSION);
  app.add_option("-c,--config", config_path, "YAML config file (docs/operations.md)")->required();
  app.add_option("-p,--port", port, "listen on this port instead of the config's (0 = ephemeral)")
      ->check(CLI::Range(0, 65535));
  app.add_option("-t,--threads", threads, "worker threads instead of the config's")
      ->check(CLI::Range(1, 256));
  app.add_flag("--check-config", check_only, "validate the config and exit (0 = valid)");
  bool no_resolve = false;
  app.add_flag("--no-resolve", no_resolve,
               "with --check-config: do not require the replicas' names to resolve here (a "
               "config checked outside the cluster it is for)");
  app.add_flag("-v,--verbose", verbose, "more logging (-vv: debug)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  auto logger = spdlog::stderr_color_mt("cacherouter");
  spdlog::set_default_logger(logger);
  spdlog::set_level(verbose >= 2   ? spdlog::level::debug
                    : verbose == 1 ? spdlog::level::info
                                   : spdlog::level::warn);

  auto loaded = cachetier::router::load_config(config_path);
  if (!loaded.is_ok()) {
    std::fprintf(stderr, "cacherouter: %s\n", loaded.status().message().c_str());
    return 2;
  }
  cachetier::router::RouterConfig cfg = loaded.value();
  if (port >= 0) cfg.listen_port = port;
  if (threads > 0) cfg.threads = threads;
  cachetier::Status names = no_resolve && check_only ? cachetier::Status::ok()
                                                     : cachetier::router::check_names_resolve(cfg);
  if (check_only && !names.is_ok()) {
    std::fprintf(stderr, "cacherouter: %s: %s\n", config_path.c_str(), names.message().c_str());
    return 2;
  }
  if (!names.is_ok()) {
    // At run time a name that does not resolve is a node that is down: retried and counted
    // (node:ADDR:resolve_failures), so a tier can start before DNS knows every node.
    spdlog::warn("{}", names.message());
  }
  if (check_only) {
    cachetier::net::TlsReloadable listen_tls, backend_tls;
    cachetier::Status tls = cachetier::router::load_tls(cfg, listen_tls, backend_tls);
    if (tls.is_ok() && !cfg.auth_file.empty()) {
      cachetier::net::AuthFile users;
      tls = users.load(cfg.auth_file);
    }
    if (!tls.is_ok()) {
      std::fprintf(stderr, "cacherouter: %s: %s\n", config_path.c_str(), tls.message().c_str());
      return 2;
    }
    size_t nodes = 0;
    for (const auto& s : cfg.shards) nodes += s.replicas.size();
    std::printf("%s: ok (%zu shards, %zu nodes)\n", config_path.c_str(), cfg.shards.size(), nodes);
    return 0;
  }

  cachetier::router::Router router(cfg, config_path);
  // The main thread waits for signals: SIGTERM/SIGINT stop, SIGHUP reloads the config. The
  // handlers go in before the banner is printed: whoever starts the router may signal it as soon
  // as it reads the banner, and a SIGTERM before uv_run is kept in libuv's pipe, not lost.
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_signal_t term, intr, hup;
  for (uv_signal_t* s : {&term, &intr, &hup}) {
    uv_signal_init(&loop, s);
    s->data = &router;
  }
  auto on_stop = [](uv_signal_t* s, int) { uv_stop(s->loop); };
  uv_signal_start(&term, on_stop, SIGTERM);
  uv_signal_start(&intr, on_stop, SIGINT);
  uv_signal_start(
      &hup,
      [](uv_signal_t* s, int) {
        auto* r = static_cast<cachetier::router::Router*>(s->data);
        cachetier::Status rs = r->reload();
        if (rs.is_ok()) {
          spdlog::warn("config reloaded (generation {})", r->topology()->generation);
        } else {
          spdlog::error("config not reloaded, keeping the running one: {}", rs.message());
        }
      },
      SIGHUP);
  cachetier::Status st = router.start();
  if (!st.is_ok()) {
    std::fprintf(stderr, "cacherouter: %s\n", st.message().c_str());
    return 1;
  }
  std::string notes;
  if (cfg.tls) notes += " (TLS)";
  if (router.metrics_port() > 0) {
    notes +=
        ", metrics " + cachetier::metrics::join_host_port(cfg.metrics_host, router.metrics_port());
  }
  std::printf("cacherouter %s listening on %s:%d%s\n", CACHETIER_VERSION, cfg.listen_host.c_str(),
              router.port(), notes.c_str());
  std::fflush(stdout);

  uv_run(&loop, UV_RUN_DEFAULT);
  router.stop();
  for (uv_signal_t* s : {&term, &intr, &hup}) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return 0;
}
