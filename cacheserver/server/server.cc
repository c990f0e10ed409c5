// cacheserver's main thread: the listening sockets, accepting and handing connections to the
// workers in turn, the signals, and an orderly stop. Workers are in worker.cc, connections in
// connection.cc, `stats` in stats.cc. See server.h for the data flow.
#include "cacheserver/server/server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "cacheserver/server/worker.h"
#include "common/net/listen.h"
#include "common/version.h"
#include "protocol/memcache/request.h"

namespace cachetier::server {

struct Server::Loop {
  uv_loop_t loop{};
  uv_poll_t polls[2]{};
  uv_signal_t sigterm{};
  uv_signal_t sigint{};
  bool shutting_down = false;
};

Server::Server(const ServerConfig& config, engine::Engine& engine)
    : config_(config), engine_(engine) {
  verbosity_ = config.verbose;
}

Server::~Server() {
  for (auto& w : workers_) w->join();
  for (int fd : listen_fds_) {
    if (fd >= 0) ::close(fd);
  }
}

int Server::open_listener(int port_number, int* bound) {
  auto fd = net::listen_socket(config_.listen, port_number);
  if (!fd.is_ok()) {
    spdlog::error("{}", fd.status().message());
    return -1;
  }
  *bound = net::bound_port(fd.value());
  return fd.value();
}

void Server::on_acceptable(size_t listener) {
  const Proto proto = listener == 0 ? Proto::kDetect : Proto::kNative;
  for (;;) {
    int fd = ::accept4(listen_fds_[listener], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
    workers_[next_worker_]->hand_over(fd, proto);
    next_worker_ = (next_worker_ + 1) % workers_.size();
  }
}

void Server::begin_shutdown() {
  if (loop_->shutting_down) return;
  loop_->shutting_down = true;
  spdlog::info("signal received: closing the listener, finishing in-flight requests");
  for (size_t i = 0; i < listen_fds_.size(); ++i) {
    uv_close(reinterpret_cast<uv_handle_t*>(&loop_->polls[i]), nullptr);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&loop_->sigterm), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&loop_->sigint), nullptr);
  for (int& fd : listen_fds_) {
    ::close(fd);
    fd = -1;
  }
  for (auto& w : workers_) w->request_stop();
}

int Server::run() {
  std::signal(SIGPIPE, SIG_IGN);
  int bound = 0;
  int fd = open_listener(config_.port, &bound);
  if (fd < 0) return 1;
  listen_fds_.push_back(fd);
  bound_ports_.push_back(bound);
  if (config_.native_port >= 0) {
    fd = open_listener(config_.native_port, &bound);
    if (fd < 0) return 1;
    listen_fds_.push_back(fd);
    bound_ports_.push_back(bound);
  }
  started_at_ = engine_.clock().now();
  for (int i = 0; i < config_.threads; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this));
    workers_.back()->start();
  }
  loop_ = std::make_unique<Loop>();
  uv_loop_init(&loop_->loop);
  for (size_t i = 0; i < listen_fds_.size(); ++i) {
    uv_poll_t* p = &loop_->polls[i];
    p->data = this;
    uv_poll_init(&loop_->loop, p, listen_fds_[i]);
    uv_poll_start(p, UV_READABLE, [](uv_poll_t* h, int status, int) {
      auto* self = static_cast<Server*>(h->data);
      if (status == 0) self->on_acceptable(static_cast<size_t>(h - self->loop_->polls));
    });
  }
  for (uv_signal_t* s : {&loop_->sigterm, &loop_->sigint}) {
    uv_signal_init(&loop_->loop, s);
    s->data = this;
  }
  auto on_signal = [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->begin_shutdown(); };
  uv_signal_start(&loop_->sigterm, on_signal, SIGTERM);
  uv_signal_start(&loop_->sigint, on_signal, SIGINT);

  std::string native_note;
  if (bound_ports_.size() > 1) native_note = ", native port " + std::to_string(bound_ports_[1]);
  std::printf("cacheserver %s listening on %s:%d (threads %d, memory %zu MB%s)\n",
              CACHETIER_VERSION, config_.listen.c_str(), bound_ports_[0], config_.threads,
              config_.memory_limit >> 20, native_note.c_str());
  std::fflush(stdout);

  uv_run(&loop_->loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop_->loop);
  for (auto& w : workers_) w->join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace cachetier::server
