// cacherouter's lifecycle. See router.h.
#include "router/router.h"

#include <unistd.h>

#include <chrono>

#include "common/metrics/exposition.h"
#include "common/net/listen.h"
#include "router/stats.h"
#include "router/worker.h"

namespace cachetier::router {

Router::Router(RouterConfig cfg, std::string config_path)
    : cfg_(std::move(cfg)), config_path_(std::move(config_path)) {}

Router::~Router() { stop(); }

std::shared_ptr<const Topology> Router::topology() const {
  std::lock_guard<std::mutex> lock(topo_mu_);
  return topo_;
}

Status Router::start() {
  started_ms_ = now_ms();
  Status tls = load_tls(cfg_, listen_tls_, backend_tls_);
  if (!tls.is_ok()) return tls;
  if (!cfg_.auth_file.empty()) {
    Status st = auth_.load(cfg_.auth_file);
    if (!st.is_ok()) return st;
  }
  auto topo = build_topology(cfg_, nullptr);
  if (!topo.is_ok()) return topo.status();
  topo_ = topo.value();
  std::vector<int> fds;
  net::ListenOptions lo;
  lo.reuse_port = true;
  for (int i = 0; i < cfg_.threads; ++i) {
    auto fd = net::listen_socket(cfg_.listen_host, i == 0 ? cfg_.listen_port : port_, lo);
    if (!fd.is_ok()) {
      for (int f : fds) ::close(f);
      return fd.status();
    }
    if (i == 0) port_ = net::bound_port(fd.value());
    fds.push_back(fd.value());
  }
  for (int i = 0; i < cfg_.threads; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, i, fds[i]));
    workers_.back()->init();
  }
  for (auto& w : workers_) threads_.emplace_back([w = w.get()] { w->run(); });
  if (cfg_.metrics_port >= 0) {
    auto ep = metrics::MetricsEndpoint::start(
        metrics::join_host_port(cfg_.metrics_host, cfg_.metrics_port),
        [this](metrics::MetricsSink& m) { collect_metrics(m); });
    if (!ep.is_ok()) {
      stop();
      return ep.status();
    }
    metrics_ = std::move(ep.value());
  }
  // Start returns (and main prints "listening") once the nodes are verified; the health
  // checker has its own deadline, this one is a backstop.
  std::unique_lock<std::mutex> lock(verified_mu_);
  const auto backstop =
      std::chrono::milliseconds(uint64_t{cfg_.timeout_ms} * (cfg_.failure_limit + 4) + 2000);
  if (!verified_cv_.wait_for(lock, backstop, [this] { return verified_; })) {
    verified_ = true;
    lock.unlock();
    for (auto& w : workers_) w->post_listen();
  }
  return Status::ok();
}

void Router::on_verified() {
  {
    std::lock_guard<std::mutex> lock(verified_mu_);
    if (verified_) return;
    verified_ = true;
  }
  for (auto& w : workers_) w->post_listen();
  verified_cv_.notify_all();
}

Status Router::reload() {
  auto cfg = load_config(config_path_);
  if (!cfg.is_ok()) {
    reload_errors_.fetch_add(1);
    return cfg.status();
  }
  RouterConfig next = cfg.value();
  // Listening address and thread count are fixed for the life of the process, and so is
  // whether each side speaks TLS; the certificate files are read again.
  next.listen_host = cfg_.listen_host;
  next.listen_port = cfg_.listen_port;
  next.threads = cfg_.threads;
  next.metrics_host = cfg_.metrics_host;
  next.metrics_port = cfg_.metrics_port;
  if (next.tls != cfg_.tls || next.backend_tls != cfg_.backend_tls) {
    reload_errors_.fetch_add(1);
    return Status(StatusCode::kInvalidArgument,
                  "tls: and backend_tls: cannot be turned on or off by a reload (restart)");
  }
  {
    net::TlsReloadable listen, backend;  // built aside: on error the running ones stay
    Status st = load_tls(next, listen, backend);
    if (!st.is_ok()) {
      reload_errors_.fetch_add(1);
      return st;
    }
    if (next.tls) (void)listen_tls_.load(next.tls_options, true);
    if (next.backend_tls) (void)backend_tls_.load(next.backend_tls_options, false);
  }
  if (next.auth_file.empty() != cfg_.auth_file.empty()) {
    reload_errors_.fetch_add(1);
    return Status(StatusCode::kInvalidArgument,
                  "auth_file cannot be turned on or off by a reload (restart)");
  }
  if (!next.auth_file.empty()) {
    Status st = auth_.load(next.auth_file);
    if (!st.is_ok()) {
      reload_errors_.fetch_add(1);
      return st;
    }
  }
  auto current = topology();
  auto topo = build_topology(next, current.get());
  if (!topo.is_ok()) {
    reload_errors_.fetch_add(1);
    return topo.status();
  }
  {
    std::lock_guard<std::mutex> lock(topo_mu_);
    topo_ = topo.value();
  }
  reloads_.fetch_add(1);
  for (auto& w : workers_) w->post_reload();
  return Status::ok();
}

int Router::metrics_port() const { return metrics_ ? metrics_->port() : 0; }

void Router::stop() {
  metrics_.reset();  // no scrape reads the workers once they are gone
  for (auto& w : workers_) w->post_stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  workers_.clear();
}

void Router::write_stats(ByteBuffer& out) const {
  std::vector<const WorkerStats*> stats;
  for (const auto& w : workers_) stats.push_back(&w->stats());
  RouterInfo info;
  info.started_ms = started_ms_;
  info.threads = cfg_.threads;
  info.tls = cfg_.tls;
  info.tls_loaded_at = listen_tls_.loaded_at();
  info.reloads = reloads_.load();
  info.reload_errors = reload_errors_.load();
  router::write_stats(out, stats, info, *topology());
}

}  // namespace cachetier::router
