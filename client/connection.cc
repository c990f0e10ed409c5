// Connection implementation. See connection.h for the contract and the queue diagram.
#include "client/connection.h"

#include <algorithm>
#include <cstring>

#include "protocol/memcache/text.h"

namespace cachetier::client {

namespace {
using Clock = std::chrono::steady_clock;

bool resolve(const std::string& host, int port, sockaddr_storage* out) {
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  if (uv_ip4_addr(h.c_str(), port, reinterpret_cast<sockaddr_in*>(out)) == 0) return true;
  return uv_ip6_addr(h.c_str(), port, reinterpret_cast<sockaddr_in6*>(out)) == 0;
}

// Writes `call` as one request frame.
void encode(native::FrameWriter& w, uint64_t id, const Call& c) {
  using native::Op;
  switch (c.op) {
    case Op::kMultiGet:
    case Op::kMultiDelete:
      w.begin_request(id, c.op, 1);
      w.field(native::kKeys);
      w.array(static_cast<uint32_t>(c.keys.size()));
      for (const auto& k : c.keys) w.bin(k);
      w.end();
      return;
    case Op::kMultiSet:
      w.begin_request(id, c.op, 1);
      w.field(native::kItems);
      w.array(static_cast<uint32_t>(c.items.size()));
      for (const auto& [k, v] : c.items) {
        w.array(4);
        w.bin(k);
        w.bin(v);
        w.uint(c.flags);
        w.sint(c.ttl);
      }
      w.end();
      return;
    case Op::kNoop:
    case Op::kStats:
    case Op::kVersion:
      w.begin_request(id, c.op, 0);
      w.end();
      return;
    case Op::kHello:  // key, value: the user and password, when set
      w.begin_request(id, c.op, c.key.empty() ? 1 : 3);
      w.field(native::kProtoVersion);
      w.uint(native::kProtocolVersion);
      if (!c.key.empty()) {
        w.field(native::kUser);
        w.bin(c.key);
        w.field(native::kPassword);
        w.bin(c.value);
      }
      w.end();
      return;
    case Op::kFlush:
      w.begin_request(id, c.op, 1);
      w.field(native::kDelay);
      w.sint(c.ttl);
      w.end();
      return;
    case Op::kAdmin:  // the command line, in value
      w.begin_request(id, c.op, 1);
      w.field(native::kValue);
      w.bin(c.value);
      w.end();
      return;
    default:
      break;
  }
  const bool store = c.op == Op::kSet || c.op == Op::kAdd || c.op == Op::kReplace ||
                     c.op == Op::kAppend || c.op == Op::kPrepend || c.op == Op::kCas;
  const bool arith = c.op == Op::kIncr || c.op == Op::kDecr;
  const bool with_cas = c.op == Op::kCas || c.compare_cas;
  uint32_t n = 1;     // key
  if (store) n += 3;  // value, flags, ttl
  if (with_cas) ++n;
  if (c.op == Op::kTouch || c.op == Op::kGat) ++n;
  if (arith) n += c.has_initial ? 3 : 1;  // number [, initial, ttl]
  if (c.version != 0) n += c.op == Op::kDelete ? 2 : 1;
  n += (c.options != 0) + c.has_vivify + c.has_recache + c.has_touch_ttl + (c.new_cas != 0);
  w.begin_request(id, c.op, n);
  w.field(native::kKey);
  w.bin(c.key);
  if (c.options != 0) {
    w.field(native::kOptions);
    w.uint(c.options);
  }
  if (c.has_vivify) {
    w.field(native::kVivify);
    w.sint(c.vivify_ttl);
  }
  if (c.has_recache) {
    w.field(native::kRecache);
    w.sint(c.recache_ttl);
  }
  if (c.has_touch_ttl) {
    w.field(native::kTouchTtl);
    w.sint(c.touch_ttl);
  }
  if (c.new_cas != 0) {
    w.field(native::kNewCas);
    w.uint(c.new_cas);
  }
  if (store) {
    w.field(native::kValue);
    w.bin(c.value);
    w.field(native::kFlags);
    w.uint(c.flags);
    w.field(native::kTtl);
    w.sint(c.ttl);
  }
  if (with_cas) {
    w.field(native::kCas);
    w.uint(c.cas);
  }
  if (c.op == Op::kTouch || c.op == Op::kGat) {
    w.field(native::kTtl);
    w.sint(c.ttl);
  }
  if (arith) {
    w.field(native::kNumber);
    w.uint(c.delta);
    if (c.has_initial) {
      w.field(native::kInitial);
      w.uint(c.initial);
      w.field(native::kTtl);
      w.sint(c.ttl);
    }
  }
  if (c.version != 0) {
    w.field(native::kVersion);
    w.uint(c.version);
    if (c.op == Op::kDelete) {  // the tombstone's lifetime
      w.field(native::kTtl);
      w.sint(c.ttl);
    }
  }
  w.end();
}

Reply to_reply(const native::Response& r) {
  Reply out;
  out.code = r.status;
  out.value.assign(r.value.data(), r.value.size());
  out.flags = r.flags;
  out.cas = r.cas;
  out.number = r.number;
  out.version = r.version;
  out.ttl = r.ttl;
  out.has_meta = r.has_meta;
  out.fetched = r.fetched;
  out.idle = r.idle;
  out.prior_ttl = r.prior_ttl;
  out.lease = r.lease;
  if (!r.values.empty()) {  // one block for all the values, one allocation
    size_t bytes = 0;
    for (const native::Item& it : r.values) bytes += it.present ? it.value.size() : 0;
    char* at = out.hold(bytes);
    out.values.reserve(r.values.size());
    for (const native::Item& it : r.values) {
      if (!it.present) {
        out.values.emplace_back(std::nullopt);
        continue;
      }
      std::memcpy(at, it.value.data(), it.value.size());
      out.values.emplace_back(
          Reply::Value{std::string_view(at, it.value.size()), it.flags, it.cas});
      at += it.value.size();
    }
  }
  out.statuses = r.statuses;
  return out;
}
}  // namespace

Connection* Connection::create(uv_loop_t* loop, const ConnectionOptions& options) {
  auto* c = new Connection(loop, options);
  c->start_connect();
  return c;
}

Connection::Connection(uv_loop_t* loop, const ConnectionOptions& options)
    : loop_(loop), opts_(options), decoder_(options.max_frame) {
  uv_timer_init(loop_, &timer_);
  uv_timer_init(loop_, &retry_timer_);
  timer_.data = retry_timer_.data = this;
  open_handles_ = 2;
}

void Connection::queue_auth() {
  Call c;
  if (opts_.protocol == Protocol::kMemcache) {  // memcached's ASCII auth: a set of "user pass"
    c.op = native::Op::kSet;
    c.classic = true;
    c.key = "cachetier-auth";
    c.value = opts_.auth_user + " " + opts_.auth_password;
  } else {  // HELLO with credentials
    c.op = native::Op::kHello;
    c.key = opts_.auth_user;
    c.value = opts_.auth_password;
  }
  Status st = send(c, [this](Reply&& r) {
    if (r.transport.is_ok() && r.code != native::Status::kOk) auth_failed_ = true;
  });
  (void)st;  // refused only when closing
}

void Connection::start_connect() {
  state_ = State::kConnecting;
  // Nothing is queued yet (a lost connection failed everything): the credentials go first.
  if (!opts_.auth_user.empty()) queue_auth();
  sockaddr_storage addr{};
  if (resolve(opts_.host, opts_.port, &addr)) {
    connect_to(reinterpret_cast<const sockaddr*>(&addr));
    return;
  }
  // A name: resolved on libuv's thread pool (never on the loop thread), and again on every
  // reconnect, so a node replaced under the same name at a new address is found.
  auto* req = new uv_getaddrinfo_t;
  req->data = this;
  ++open_handles_;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;  // IPv4 and IPv6
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(
      loop_, req,
      [](uv_getaddrinfo_t* r, int status, addrinfo* res) {
        auto* c = static_cast<Connection*>(r->data);
        delete r;
        --c->open_handles_;
        if (c->state_ != State::kConnecting) {  // closed while resolving
          if (res != nullptr) uv_freeaddrinfo(res);
          c->maybe_free();
          return;
        }
        if (status < 0 || res == nullptr) {
          if (res != nullptr) uv_freeaddrinfo(res);
          c->resolve_failed();
          return;
        }
        c->connect_to(res->ai_addr);
        uv_freeaddrinfo(res);
      },
      opts_.host.c_str(), std::to_string(opts_.port).c_str(), &hints);
  if (rc != 0) {
    delete req;
    --open_handles_;
    resolve_failed();
  }
}

void Connection::resolve_failed() {
  ++resolve_failures_;
  if (opts_.on_resolve_failure) opts_.on_resolve_failure();
  on_lost("cannot resolve host");  // retried with the reconnect backoff
}

void Connection::connect_to(const sockaddr* addr) {
  tcp_ = new uv_tcp_t;
  uv_tcp_init(loop_, tcp_);
  tcp_->data = this;
  ++open_handles_;
  connect_req_.data = this;
  int rc = uv_tcp_connect(&connect_req_, tcp_, addr, [](uv_connect_t* req, int status) {
    static_cast<Connection*>(req->data)->on_connected(status);
  });
  if (rc != 0) on_lost("cannot connect");  // the callback will not run
}

void Connection::on_connected(int status) {
  if (state_ != State::kConnecting) return;  // closed or lost meanwhile
  if (status < 0) {
    on_lost("connect failed");
    return;
  }
  state_ = State::kConnected;
  backoff_ms_ = 0;
  bool again = ever_connected_;
  ever_connected_ = true;
  if (again && opts_.on_reconnect) opts_.on_reconnect();
  uv_tcp_nodelay(tcp_, 1);
  if (opts_.tls) {
    tls_ = std::make_unique<net::TlsSession>(
        opts_.tls, opts_.tls_server_name.empty() ? opts_.host : opts_.tls_server_name);
    if (!tls_scratch_) tls_scratch_.reset(new char[kTlsScratch]);
    Status st = tls_->start_client(wire_);
    if (!st.is_ok()) {
      on_lost(st.message());
      return;
    }
  }
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* c = static_cast<Connection*>(h->data);
        ByteBuffer& b = c->tls_ ? c->cin_ : c->in_;  // TLS: ciphertext first
        char* p = b.reserve(64 * 1024);
        *buf = uv_buf_init(p, static_cast<unsigned>(b.writable()));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        static_cast<Connection*>(s->data)->on_read(n);
      });
  flush();
}

Status Connection::send(const Call& call, ReplyCallback done) {
  if (state_ == State::kClosing) return Status(StatusCode::kIoError, "connection closed");
  if (state_ == State::kBackoff) return Status(StatusCode::kIoError, "not connected");
  // Bounded by entries, not by waiting ones: a reply missing at the front holds the entries
  // behind it, and they must stay bounded too.
  if (pending_.size() >= opts_.max_in_flight) {
    return Status(StatusCode::kResourceExhausted, "too many requests in flight");
  }
  uint64_t id = next_id_;
  if (opts_.protocol == Protocol::kMemcache) {
    Status s = encode_text(id, call);
    if (!s.is_ok()) return s;
  } else {
    native::FrameWriter w(out_);
    encode(w, id, call);
  }
  ++next_id_;
  auto deadline = Clock::now() + std::chrono::milliseconds(opts_.timeout_ms);
  pending_.push_back(Pending{std::move(done), deadline, true});
  ++waiting_;
  if (pending_.size() == 1) arm_timer();
  if (!opts_.defer_flush) flush();
  return Status::ok();
}

void Connection::flush() {
  if (state_ != State::kConnected || writing_) return;
  if (tls_ && tls_->handshake_done() && !out_.empty()) {
    Status st = tls_->encrypt(out_.view(), wire_);
    out_.clear();
    if (!st.is_ok()) {
      on_lost(st.message());
      return;
    }
  }
  // What goes to the socket: the requests, or their ciphertext (requests sent during the TLS
  // handshake wait in out_).
  ByteBuffer& w = tls_ ? wire_ : out_;
  if (w.empty()) return;
  if (opts_.defer_flush) {
    // One write per phase already batches: try it directly. A uv_write that completes costs
    // an epoll_ctl on the next loop turn (libuv stops watching for POLLOUT), so it is kept for
    // what the kernel does not take at once.
    uv_buf_t b = uv_buf_init(w.data(), static_cast<unsigned>(w.size()));
    int n = uv_try_write(reinterpret_cast<uv_stream_t*>(tcp_), &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
      on_lost("write failed");
      return;
    }
    if (n > 0) w.consume(static_cast<size_t>(n));
    if (w.empty()) return;
  }
  inflight_.swap(w);
  writing_ = true;
  write_req_.data = this;
  uv_buf_t b = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
  int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(tcp_), &b, 1,
                    [](uv_write_t* w, int status) {
                      auto* c = static_cast<Connection*>(w->data);
                      c->writing_ = false;
                      c->inflight_.clear();
                      if (status < 0) {
                        c->on_lost("write failed");
                        return;
                      }
                      c->flush();
                    });
  if (rc != 0) {
    writing_ = false;
    on_lost("write failed");
  }
}

void Connection::on_read(ssize_t n) {
  if (n < 0) {
    on_lost(n == UV_EOF ? "closed by server" : "read failed");
    return;
  }
  if (tls_) {
    cin_.commit(static_cast<size_t>(n));
    Status st = tls_->feed(
        cin_.view(), tls_scratch_.get(), kTlsScratch,
        [this](std::string_view plain) {
          in_.append(plain);
          return true;
        },
        wire_);
    cin_.clear();
    if (!st.is_ok()) {
      on_lost(st.message());
      return;
    }
    if (tls_->peer_closed()) {
      on_lost("closed by server");
      return;
    }
    // The handshake's next flight, or the requests that waited for it.
    if (tls_->take_just_opened() || !wire_.empty()) flush();
    if (state_ != State::kConnected) return;
  } else {
    in_.commit(static_cast<size_t>(n));
  }
  // One clock read per read, for the liveness stamp and every reply's latency in it.
  if (opts_.heard_ms != nullptr || opts_.latency != nullptr || opts_.queue_timeout_ms != 0) {
    read_at_ = Clock::now();
  }
  if (opts_.heard_ms != nullptr) {
    opts_.heard_ms->store(
        std::chrono::duration_cast<std::chrono::milliseconds>(read_at_.time_since_epoch()).count(),
        std::memory_order_relaxed);
  }
  if (opts_.protocol == Protocol::kMemcache) {
    on_read_text();
  } else {
    native::Response& resp = decoded_;
    while (state_ == State::kConnected && !in_.empty()) {
      native::DecodeResult r = decoder_.feed(in_.view(), resp);
      if (r.status == native::DecodeStatus::kNeedMore) break;
      if (r.status != native::DecodeStatus::kComplete) {
        on_lost("malformed reply");
        return;
      }
      Reply reply = to_reply(resp);
      uint64_t id = resp.id;
      in_.consume(r.consumed);
      complete(id, std::move(reply));
    }
  }
  // The credentials were refused (noted by the reply's callback, acted on here, outside the
  // reply loop): the connection is failed and retried with the backoff.
  if (auth_failed_ && state_ == State::kConnected) {
    auth_failed_ = false;
    on_lost("authentication failed (auth_user / auth_password)");
  }
}

void Connection::complete(uint64_t id, Reply&& reply) {
  if (id < first_id_ || id - first_id_ >= pending_.size()) return;  // timed out, failed, unknown
  Pending& p = pending_[id - first_id_];
  if (!p.waiting) return;  // answered already: a duplicate reply is dropped
  ReplyCallback done = std::move(p.done);
  p.waiting = false;
  --waiting_;
  if (opts_.latency != nullptr) {
    // Replies are completed from reads (on_read sets read_at_ first).
    auto sent = p.deadline - std::chrono::milliseconds(opts_.timeout_ms);
    auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(read_at_ - sent);
    opts_.latency->record(static_cast<uint64_t>(std::max<int64_t>(0, took.count())));
  }
  drop_answered();
  done(std::move(reply));
}

void Connection::drop_answered() {
  while (!pending_.empty() && !pending_.front().waiting) {
    pending_.pop_front();
    ++first_id_;
  }
}

void Connection::arm_timer() {
  if (pending_.empty() || state_ == State::kClosing) {
    uv_timer_stop(&timer_);
    return;
  }
  auto wait =
      std::chrono::ceil<std::chrono::milliseconds>(pending_.front().deadline - Clock::now());
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->on_timer(); },
      static_cast<uint64_t>(std::max<int64_t>(wait.count(), 0)), 0);
}

void Connection::on_timer() {
  auto now = Clock::now();
  // The front entry is waiting (drop_answered keeps it so) and is the oldest deadline.
  while (!pending_.empty() && pending_.front().deadline <= now) {
    if (opts_.queue_timeout_ms > opts_.timeout_ms && state_ == State::kConnected) {
      // Still receiving: the front request waits behind replies, not for a silent server.
      const auto sent = pending_.front().deadline - std::chrono::milliseconds(opts_.timeout_ms);
      const auto until = std::min(read_at_ + std::chrono::milliseconds(opts_.timeout_ms),
                                  sent + std::chrono::milliseconds(opts_.queue_timeout_ms));
      if (until > now) {
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(until - now);
        uv_timer_start(
            &timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->on_timer(); },
            static_cast<uint64_t>(std::max<int64_t>(wait.count(), 1)), 0);
        return;
      }
    }
    ReplyCallback done = std::move(pending_.front().done);
    pending_.front().waiting = false;
    --waiting_;
    drop_answered();
    Reply r;
    r.transport = Status(StatusCode::kInternal, "timeout");
    done(std::move(r));  // may send (appends) or close (empties pending_)
  }
  arm_timer();
}

void Connection::fail_all(const Status& why) {
  auto pending = std::move(pending_);
  pending_.clear();
  first_id_ = next_id_;
  waiting_ = 0;
  uv_timer_stop(&timer_);
  for (auto& p : pending) {
    if (!p.waiting) continue;
    Reply r;
    r.transport = why;
    p.done(std::move(r));
  }
}

void Connection::on_lost(std::string_view why) {
  if (state_ == State::kClosing || state_ == State::kBackoff) return;
  state_ = State::kBackoff;
  if (tcp_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_), [](uv_handle_t* h) {
      auto* c = static_cast<Connection*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      --c->open_handles_;
      c->maybe_free();
    });
    tcp_ = nullptr;
  }
  out_.clear();
  in_.clear();
  tls_.reset();
  cin_.clear();
  wire_.clear();
  text_queue_.clear();
  fail_all(Status(StatusCode::kIoError, std::string(why)));
  backoff_ms_ =
      backoff_ms_ == 0 ? opts_.reconnect_min_ms : std::min(backoff_ms_ * 2, opts_.reconnect_max_ms);
  uv_timer_start(
      &retry_timer_,
      [](uv_timer_t* t) {
        auto* c = static_cast<Connection*>(t->data);
        if (c->state_ != State::kBackoff) return;
        ++c->reconnects_;
        c->start_connect();
      },
      backoff_ms_, 0);
}

void Connection::close() {
  if (state_ == State::kClosing) return;
  state_ = State::kClosing;
  fail_all(Status(StatusCode::kIoError, "closed"));
  auto on_closed = [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    --c->open_handles_;
    c->maybe_free();
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&retry_timer_), on_closed);
  if (tcp_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_), [](uv_handle_t* h) {
      auto* c = static_cast<Connection*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      --c->open_handles_;
      c->maybe_free();
    });
    tcp_ = nullptr;
  }
}

void Connection::maybe_free() {
  if (state_ == State::kClosing && open_handles_ == 0) delete this;
}

}  // namespace cachetier::client
