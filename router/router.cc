// cacherouter's lifecycle. See router.h.
#include "router/router.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>

#include "common/metrics/exposition.h"
#include "common/net/listen.h"
#include "router/stats.h"
#include "router/worker.h"

namespace cachetier::router {

Router::Router(RouterConfig cfg, std::string config_path)
    : cfg_(cfg), file_cfg_(std::move(cfg)), config_path_(std::move(config_path)) {}

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
  if (Discovery::wanted(file_cfg_)) {
    cfg_ = expand(file_cfg_);
    Status st = check_replicas(cfg_);
    if (!st.is_ok()) return st;
  }
  running_ = cfg_;
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
  if (Discovery::wanted(file_cfg_) && file_cfg_.dns_refresh_ms > 0) {
    dns_thread_ = std::thread([this] { dns_loop(); });
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
  std::lock_guard<std::mutex> lock(apply_mu_);
  Status st = apply(cfg.value(), expand(cfg.value()), /*read_files=*/true);
  if (!st.is_ok()) {
    reload_errors_.fetch_add(1);
    return st;
  }
  reloads_.fetch_add(1);
  return Status::ok();
}

bool Router::refresh_dns() {
  std::lock_guard<std::mutex> lock(apply_mu_);
  RouterConfig next = expand(file_cfg_);
  if (Discovery::same_replicas(next, running_)) return false;
  RouterConfig file = file_cfg_;
  Status st = apply(file, std::move(next), /*read_files=*/false);
  if (!st.is_ok()) {
    spdlog::error("discovered addresses not applied: {}", st.message());
    return false;
  }
  dns_changes_.fetch_add(1);
  spdlog::warn("discovered addresses changed: topology generation {}", topology()->generation);
  return true;
}

RouterConfig Router::expand(const RouterConfig& file) {
  if (!Discovery::wanted(file)) return file;
  std::vector<std::string> errors;
  RouterConfig out = discovery_.expand(file, errors);
  dns_refreshes_.fetch_add(1);
  dns_failures_.fetch_add(errors.size());
  for (const std::string& e : errors) spdlog::warn("{}", e);
  return out;
}

Status Router::check_replicas(const RouterConfig& c) {
  for (const auto& sh : c.shards) {
    if (sh.replicas.empty()) {
      return Status(StatusCode::kInvalidArgument,
                    "shard " + sh.name + " has no replica (its discover names resolve to nothing)");
    }
  }
  return Status::ok();
}

void Router::dns_loop() {
  std::unique_lock<std::mutex> lock(dns_mu_);
  while (!dns_stop_) {
    const uint32_t every = cfg_.dns_refresh_ms;  // fixed for the process (not reloaded)
    if (dns_cv_.wait_for(lock, std::chrono::milliseconds(every), [this] { return dns_stop_; })) {
      break;
    }
    lock.unlock();
    refresh_dns();
    lock.lock();
  }
}

void Router::end_migration_if_due() {
  auto current = topology();
  if (current->migration == nullptr || current->migration->active(now_ms())) return;
  std::unique_lock<std::mutex> lock(apply_mu_, std::try_to_lock);
  if (!lock.owns_lock() || topology() != current) return;
  auto topo = build_topology(running_, current);  // the window is over: no migration
  if (!topo.is_ok()) return;
  {
    std::lock_guard<std::mutex> tl(topo_mu_);
    topo_ = topo.value();
  }
  spdlog::info("migration window over: topology generation {}", topo.value()->generation);
  for (auto& w : workers_) w->post_reload();
}

Status Router::apply(const RouterConfig& file, RouterConfig next, bool read_files) {
  // Listening address and thread count are fixed for the life of the process, and so is
  // whether each side speaks TLS; the certificate files are read again.
  next.listen_host = cfg_.listen_host;
  next.listen_port = cfg_.listen_port;
  next.threads = cfg_.threads;
  next.metrics_host = cfg_.metrics_host;
  next.metrics_port = cfg_.metrics_port;
  next.dns_refresh_ms = cfg_.dns_refresh_ms;
  if (next.tls != cfg_.tls || next.backend_tls != cfg_.backend_tls) {
    return Status(StatusCode::kInvalidArgument,
                  "tls: and backend_tls: cannot be turned on or off by a reload (restart)");
  }
  if (read_files) {
    net::TlsReloadable listen, backend;  // built aside: on error the running ones stay
    Status st = load_tls(next, listen, backend);
    if (!st.is_ok()) return st;
    if (next.tls) (void)listen_tls_.load(next.tls_options, true);
    if (next.backend_tls) (void)backend_tls_.load(next.backend_tls_options, false);
  }
  if (next.auth_file.empty() != cfg_.auth_file.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "auth_file cannot be turned on or off by a reload (restart)");
  }
  if (read_files && !next.auth_file.empty()) {
    Status st = auth_.load(next.auth_file);
    if (!st.is_ok()) return st;
  }
  if (Status st = check_replicas(next); !st.is_ok()) return st;
  auto current = topology();
  auto topo = build_topology(next, current);
  if (!topo.is_ok()) return topo.status();
  const Migration* mig = topo.value()->migration.get();
  if (mig != nullptr && (current->migration == nullptr || current->migration->from != mig->from)) {
    spdlog::warn(
        "placement changed: {:.1f}% of keys have a new owner; for {} ms (migration_ms) each is "
        "read from its new and its previous owner, and copied on a hit",
        mig->moved_share * 100, next.migration_ms);
    if (mig->moved_share > 0.5) {
      spdlog::warn("most keys move: were shards renamed? (placement hashes shard names)");
    }
  } else if (mig == nullptr && placement_changed(*current, next)) {
    spdlog::warn("placement changed with migration_ms: 0: the keys that moved miss");
  }
  {
    std::lock_guard<std::mutex> lock(topo_mu_);
    topo_ = topo.value();
  }
  running_ = std::move(next);
  file_cfg_ = file;
  for (auto& w : workers_) w->post_reload();
  return Status::ok();
}

int Router::metrics_port() const { return metrics_ ? metrics_->port() : 0; }

void Router::stop() {
  {
    std::lock_guard<std::mutex> lock(dns_mu_);
    dns_stop_ = true;
  }
  dns_cv_.notify_all();
  if (dns_thread_.joinable()) dns_thread_.join();
  metrics_.reset();  // no scrape reads the workers once they are gone
  for (auto& w : workers_) w->post_stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  workers_.clear();
}

std::vector<const WorkerStats*> Router::worker_stats() const {
  std::vector<const WorkerStats*> stats;
  for (const auto& w : workers_) stats.push_back(&w->stats());
  return stats;
}

void Router::write_stats(ByteBuffer& out) const {
  const std::vector<const WorkerStats*> stats = worker_stats();
  RouterInfo info;
  info.started_ms = started_ms_;
  info.threads = cfg_.threads;
  info.tls = cfg_.tls;
  info.tls_loaded_at = listen_tls_.loaded_at();
  info.reloads = reloads_.load();
  info.reload_errors = reload_errors_.load();
  info.dns_refreshes = dns_refreshes_.load();
  info.dns_changes = dns_changes_.load();
  info.dns_failures = dns_failures_.load();
  router::write_stats(out, stats, info, *topology());
}

}  // namespace cachetier::router
