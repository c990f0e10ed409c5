// cacheserver's main thread: the listening sockets, accepting and handing connections to the
// workers in turn, the signals, and an orderly stop. Workers are in worker.cc, connections in
// connection.cc, `stats` in stats.cc. See server.h for the data flow.
#include "cacheserver/server/server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "cacheserver/server/worker.h"
#include "common/metrics/exposition.h"
#include "common/net/listen.h"
#include "common/version.h"
#include "protocol/memcache/request.h"

namespace cachetier::server {

struct Server::Loop {
  uv_loop_t loop{};
  std::vector<std::unique_ptr<uv_poll_t>> polls;
  uv_signal_t sigterm{};
  uv_signal_t sigint{};
  uv_signal_t sighup{};
  bool shutting_down = false;
};

bool parse_listen(const std::string& spec, std::vector<ListenAddr>& out, std::string& error) {
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    std::string e =
        spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
    ListenAddr a;
    if (e.rfind("notls:", 0) == 0) {
      a.notls = true;
      e = e.substr(6);
    }
    std::string port;
    if (!e.empty() && e[0] == '[') {  // [v6]:port or [v6]
      size_t close = e.find(']');
      if (close == std::string::npos) {
        error = "'" + e + "': no closing ]";
        return false;
      }
      a.host = e.substr(1, close - 1);
      if (close + 1 < e.size()) {
        if (e[close + 1] != ':') {
          error = "'" + e + "': want [ADDRESS]:PORT";
          return false;
        }
        port = e.substr(close + 2);
      }
    } else if (std::count(e.begin(), e.end(), ':') == 1) {  // host:port
      size_t colon = e.find(':');
      a.host = e.substr(0, colon);
      port = e.substr(colon + 1);
    } else {
      a.host = e;  // a host, or a bare IPv6 address
    }
    if (a.host.empty()) {
      error = "an empty address in '" + spec + "'";
      return false;
    }
    if (!port.empty()) {
      char* end = nullptr;
      long v = std::strtol(port.c_str(), &end, 10);
      if (*end != '\0' || v < 0 || v > 65535) {
        error = "'" + port + "' is not a port";
        return false;
      }
      a.port = static_cast<int>(v);
    }
    out.push_back(a);
  }
  return true;
}

Server::Server(const ServerConfig& config, engine::Engine& engine)
    : config_(config), engine_(engine) {
  verbosity_ = config.verbose;
}

Server::~Server() {
  for (auto& w : workers_) w->join();
  for (const Listening& l : listeners_) {
    if (l.fd >= 0) ::close(l.fd);
  }
}

bool parse_extended(const std::string& list, ServerConfig& cfg, bool& tls_given,
                    std::string& error) {
  size_t start = 0;
  while (start < list.size()) {
    size_t comma = list.find(',', start);
    std::string kv =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? list.size() : comma + 1;
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    std::string key = kv.substr(0, eq), value = eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (key == "ssl_handshake_timeout_ms") {
      char* end = nullptr;
      long v = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v < 100 || v > 600000) {
        error = "ssl_handshake_timeout_ms '" + value + "' (want 100 .. 600000)";
        return false;
      }
      cfg.tls_handshake_timeout_ms = static_cast<int>(v);
      continue;
    }
    Status st = net::apply_ssl_option(key, value, cfg.tls_options);
    if (!st.is_ok()) {
      error = kv + ": " + st.message();
      return false;
    }
    tls_given = true;
  }
  return true;
}

int Server::open_listener(const std::string& host, int port_number, int* bound) {
  auto fd = net::listen_socket(host, port_number);
  if (!fd.is_ok()) {
    spdlog::error("{}", fd.status().message());
    return -1;
  }
  *bound = net::bound_port(fd.value());
  return fd.value();
}

void Server::on_acceptable(size_t listener) {
  const Listening& l = listeners_[listener];
  for (;;) {
    int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno == EMFILE || errno == ENFILE) {
        spdlog::warn("accept: {}", std::strerror(errno));
      }
      return;
    }
    if (curr_connections_.load(std::memory_order_relaxed) >=
        static_cast<uint64_t>(config_.conn_limit)) {
      ssize_t ignored =
          ::send(fd, memcache::reply::kTooManyConnections.data(),
                 memcache::reply::kTooManyConnections.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)ignored;
      ::close(fd);
      rejected_connections_.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("connection refused: at the limit of {} connections", config_.conn_limit);
      continue;
    }
    curr_connections_.fetch_add(1, std::memory_order_relaxed);
    total_connections_.fetch_add(1, std::memory_order_relaxed);
    workers_[next_worker_]->hand_over(fd, l.proto, l.tls);
    next_worker_ = (next_worker_ + 1) % workers_.size();
  }
}

void Server::begin_shutdown() {
  if (loop_->shutting_down) return;
  loop_->shutting_down = true;
  spdlog::info("signal received: closing the listener, finishing in-flight requests");
  for (auto& p : loop_->polls) uv_close(reinterpret_cast<uv_handle_t*>(p.get()), nullptr);
  for (uv_signal_t* s : {&loop_->sigterm, &loop_->sigint, &loop_->sighup}) {
    uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
  }
  for (Listening& l : listeners_) {
    ::close(l.fd);
    l.fd = -1;
  }
  for (auto& w : workers_) w->request_stop();
}

Status Server::refresh_certs() {
  if (!config_.tls) return Status(StatusCode::kNotFound, "TLS is not enabled (-Z)");
  Status st = tls_.reload();
  if (st.is_ok()) {
    spdlog::info("TLS certificate and key reloaded");
  } else {
    spdlog::error("TLS reload failed, the previous certificate stays: {}", st.message());
  }
  return st;
}

void Server::on_sighup() {
  if (config_.tls) (void)refresh_certs();
  if (auth_required()) {
    Status st = auth_.reload();
    if (st.is_ok()) {
      spdlog::info("auth file reloaded ({} users)", auth_.users());
    } else {
      spdlog::error("auth file not reloaded, the previous users stay: {}", st.message());
    }
  }
}

int Server::run() {
  std::signal(SIGPIPE, SIG_IGN);
  if (config_.tls) {
    Status st = tls_.load(config_.tls_options, true);
    if (!st.is_ok()) {
      spdlog::error("{}", st.message());
      return 1;
    }
  }
  if (auth_required()) {
    Status st = auth_.load(config_.auth_file);
    if (!st.is_ok()) {
      spdlog::error("{}", st.message());
      return 1;
    }
  }
  std::vector<ListenAddr> addrs = config_.listen_addrs;
  if (addrs.empty()) addrs.push_back({config_.listen, -1, false});
  for (const ListenAddr& a : addrs) {
    Listening l;
    l.host = a.host;
    l.tls = config_.tls && !a.notls;
    l.fd = open_listener(a.host, a.port >= 0 ? a.port : config_.port, &l.port);
    if (l.fd < 0) return 1;
    listeners_.push_back(l);
  }
  if (config_.native_port >= 0) {
    Listening l;
    l.host = addrs[0].host;
    l.proto = Proto::kNative;
    l.tls = config_.tls && !addrs[0].notls;
    l.fd = open_listener(l.host, config_.native_port, &l.port);
    if (l.fd < 0) return 1;
    listeners_.push_back(l);
  }
  if (config_.resp_port >= 0) {
    Listening l;
    l.host = addrs[0].host;
    l.proto = Proto::kResp;
    l.tls = config_.tls && !addrs[0].notls;
    l.fd = open_listener(l.host, config_.resp_port, &l.port);
    if (l.fd < 0) return 1;
    listeners_.push_back(l);
  }
  started_at_ = engine_.clock().now();
  for (int i = 0; i < config_.threads; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this));
    workers_.back()->start();
  }
  if (config_.metrics_port >= 0) {
    const std::string host =
        config_.metrics_listen.empty() ? listeners_[0].host : config_.metrics_listen;
    auto ep =
        metrics::MetricsEndpoint::start(metrics::join_host_port(host, config_.metrics_port),
                                        [this](metrics::MetricsSink& m) { collect_metrics(m); });
    if (!ep.is_ok()) {
      spdlog::error("{}", ep.status().message());
      for (auto& w : workers_) w->request_stop();
      for (auto& w : workers_) w->join();
      return 1;
    }
    metrics_ = std::move(ep.value());
  }
  loop_ = std::make_unique<Loop>();
  uv_loop_init(&loop_->loop);
  for (size_t i = 0; i < listeners_.size(); ++i) {
    loop_->polls.push_back(std::make_unique<uv_poll_t>());
    uv_poll_t* p = loop_->polls.back().get();
    p->data = this;
    uv_poll_init(&loop_->loop, p, listeners_[i].fd);
    uv_poll_start(p, UV_READABLE, [](uv_poll_t* h, int status, int) {
      auto* self = static_cast<Server*>(h->data);
      if (status != 0) return;
      for (size_t k = 0; k < self->loop_->polls.size(); ++k) {
        if (self->loop_->polls[k].get() == h) self->on_acceptable(k);
      }
    });
  }
  for (uv_signal_t* s : {&loop_->sigterm, &loop_->sigint, &loop_->sighup}) {
    uv_signal_init(&loop_->loop, s);
    s->data = this;
  }
  auto on_signal = [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->begin_shutdown(); };
  uv_signal_start(&loop_->sigterm, on_signal, SIGTERM);
  uv_signal_start(&loop_->sigint, on_signal, SIGINT);
  uv_signal_start(
      &loop_->sighup, [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->on_sighup(); },
      SIGHUP);

  // The first listener's address leads the line (scripts read its port); the others follow.
  auto where = [](const Listening& l) {
    std::string h = l.host.find(':') != std::string::npos ? "[" + l.host + "]" : l.host;
    return h + ":" + std::to_string(l.port);
  };
  std::string notes;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    const Listening& l = listeners_[i];
    if (i == 0) {
      if (l.tls) notes += ", TLS";
      continue;
    }
    notes += l.proto == Proto::kNative ? ", native port " + std::to_string(l.port)
             : l.proto == Proto::kResp ? ", resp port " + std::to_string(l.port)
                                       : ", also " + where(l);
    if (l.tls) notes += " TLS";
  }
  if (metrics_) {
    const std::string host =
        config_.metrics_listen.empty() ? listeners_[0].host : config_.metrics_listen;
    notes += ", metrics " + metrics::join_host_port(host, metrics_->port());
  }
  std::printf("cacheserver %s listening on %s (threads %d, memory %zu MB%s)\n", CACHETIER_VERSION,
              where(listeners_[0]).c_str(), config_.threads, config_.memory_limit >> 20,
              notes.c_str());
  std::fflush(stdout);

  uv_run(&loop_->loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop_->loop);
  metrics_.reset();  // no scrape reads the workers once they are gone
  for (auto& w : workers_) w->join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace cachetier::server
