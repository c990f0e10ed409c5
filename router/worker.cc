// A cacherouter worker. See worker.h.
#include "router/worker.h"

#include "common/uvx/run_with_idle_polls.h"
#include "protocol/memcache/request.h"
#include "router/router.h"

namespace cachetier::router {

Worker::Worker(Router& router, int index, int listen_fd)
    : router_(router),
      index_(index),
      listen_fd_(listen_fd),
      backends_(&loop_, index),
      env_(backends_, router.versions(), index) {}

void Worker::init() {
  uv_loop_init(&loop_);
  topo_ = router_.topology();
  if (cfg().backend_tls) {
    // One client context per worker: OpenSSL 3.0 races inside a client SSL_CTX shared by
    // threads that verify certificates at once (TSan, ASN1_STRING_cmp vs _set).
    renew_backend_tls();
    backends_.use_tls([this] { return backend_tls_; });
  }
  if (cfg().tls) {
    uv_timer_init(&loop_, &tls_timer_);
    tls_timer_.data = this;
    uv_timer_start(
        &tls_timer_,
        [](uv_timer_t* t) {
          auto* w = static_cast<Worker*>(t->data);
          const uint64_t now = uv_now(&w->loop_);
          std::vector<Downstream*> late;
          for (Downstream* d : w->clients_) {
            if (d->stream().handshaking() &&
                now - d->accepted_ms() >= w->cfg().tls_handshake_timeout_ms) {
              late.push_back(d);
            }
          }
          for (Downstream* d : late) d->handshake_timed_out();
        },
        1000, 1000);
  }
  uv_async_init(&loop_, &stop_async_,
                [](uv_async_t* a) { static_cast<Worker*>(a->data)->shut_down(); });
  stop_async_.data = this;
  uv_async_init(&loop_, &reload_async_,
                [](uv_async_t* a) { static_cast<Worker*>(a->data)->adopt_topology(); });
  reload_async_.data = this;
  uv_check_init(&loop_, &flush_check_);
  flush_check_.data = this;
  uv_check_start(&flush_check_,
                 [](uv_check_t* h) { static_cast<Worker*>(h->data)->flush_dirty(); });
  uv_prepare_init(&loop_, &flush_prepare_);
  flush_prepare_.data = this;
  uv_prepare_start(&flush_prepare_,
                   [](uv_prepare_t* h) { static_cast<Worker*>(h->data)->flush_dirty(); });
  uv_tcp_init(&loop_, &listener_);
  listener_.data = this;
  uv_tcp_open(&listener_, listen_fd_);
  // Clients are accepted once the nodes are verified (post_listen): until then they wait in
  // the kernel's accept queue.
  uv_async_init(&loop_, &listen_async_,
                [](uv_async_t* a) { static_cast<Worker*>(a->data)->start_listening(); });
  listen_async_.data = this;
  if (index_ == 0) {
    health_ = std::make_unique<HealthChecker>(backends_, router_.versions(),
                                              [this] { router_.on_verified(); });
    uv_timer_init(&loop_, &health_timer_);
    health_timer_.data = this;
    const uint64_t tick = health_tick_ms(cfg());
    uv_timer_start(
        &health_timer_,
        [](uv_timer_t* t) {
          auto* w = static_cast<Worker*>(t->data);
          w->health_->tick(w->topo_);
          if (w->topo_->migration != nullptr) w->router_.end_migration_if_due();
        },
        tick, tick);
  }
  adopt_topology();
}

void Worker::run() {
  uvx::run_with_idle_polls(&loop_, static_cast<int>(cfg().idle_polls),
                           [this] { return activity_; });
  uv_loop_close(&loop_);
}

void Worker::start_listening() {
  if (listening_ || stopping_) return;
  listening_ = true;
  uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 1024, [](uv_stream_t* s, int status) {
    if (status == 0) static_cast<Worker*>(s->data)->on_connection();
  });
}

void Worker::shut_down() {
  stopping_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  std::vector<Downstream*> all(clients_.begin(), clients_.end());
  for (Downstream* d : all) d->close();
  backends_.close_all();
  uv_close(reinterpret_cast<uv_handle_t*>(&stop_async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&reload_async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&listen_async_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&flush_check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&flush_prepare_), nullptr);
  if (index_ == 0) uv_close(reinterpret_cast<uv_handle_t*>(&health_timer_), nullptr);
  if (cfg().tls) uv_close(reinterpret_cast<uv_handle_t*>(&tls_timer_), nullptr);
}

bool Worker::may_log_refusal() { return tls_log_.allow(uv_now(&loop_)); }

void Worker::on_connection() {
  auto* d = new Downstream(*this);  // counted open until its close callback
  stats_.opened.add();
  const bool over = router_.open_connections().fetch_add(1, std::memory_order_relaxed) + 1 >
                    static_cast<int64_t>(cfg().max_connections);
  clients_.insert(d);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_), d->stream().stream()) != 0) {
    d->close();
    return;
  }
  if (over) {
    // As memcached: say why, then close.
    stats_.rejected.add();
    uv_buf_t b = uv_buf_init(const_cast<char*>(memcache::reply::kTooManyConnections.data()),
                             static_cast<unsigned>(memcache::reply::kTooManyConnections.size()));
    uv_try_write(d->stream().stream(), &b, 1);
    d->close();
    return;
  }
  if (cfg().tls) d->stream().use_tls(router_.listen_tls());
  d->start();
}

void Worker::flush_dirty() {
  backends_.flush();  // requests first: the nodes start on them while the replies go out
  // flush() may close a connection (and so change the sets), so take the list first.
  std::vector<Downstream*> dirty;
  dirty.swap(dirty_);
  for (Downstream* d : dirty) {
    if (clients_.count(d)) d->flush();
  }
}

void Worker::adopt_topology() {
  if (stopping_) return;
  topo_ = router_.topology();
  kept_.push_back(topo_);
  if (cfg().backend_tls) renew_backend_tls();  // a reload re-reads the files
  backends_.adopt(*topo_);
}

void Worker::renew_backend_tls() {
  auto ctx = net::TlsContext::make_client(topo_->config.backend_tls_options);
  if (ctx.is_ok()) {
    backend_tls_ = ctx.value();
  } else if (!backend_tls_) {  // the router checked the files before it started the workers
    backend_tls_ = router_.backend_tls();
  }
}

}  // namespace cachetier::router
