// A client connection of cacherouter. See downstream.h for the queue and the limits.
#include "router/downstream.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "protocol/memcache/auth_codec.h"
#include "router/frontends/native.h"
#include "router/frontends/resp.h"
#include "router/frontends/text.h"
#include "router/router.h"
#include "router/worker.h"

namespace cachetier::router {

namespace mc = memcache;

ByteBuffer* Fill::target() const {
  Downstream* d = s_->owner;
  if (d == nullptr || d->stream_.closing()) return nullptr;
  if (d->head_ == s_) return &d->stream_.output();
  return &s_->out;
}

void Fill::finish(size_t held, size_t bytes) const {
  Slot* s = s_;
  s->stats->client_latency[s->frontend].record(metrics::now_ns() - s->started_ns);
  if (Downstream* d = s->owner) {
    d->held_ += held;
    d->note_reply(bytes);
    s->done = true;
    d->drain();  // (may close the connection: it stays allocated until its close callback)
  }
  s->unref();
}

void Fill::operator()(std::string_view bytes) const {
  ByteBuffer* b = target();
  if (b != nullptr) b->append(bytes);
  finish(b == &s_->out ? bytes.size() : 0, b != nullptr ? bytes.size() : 0);
}

Downstream::Downstream(Worker& w)
    : w_(w),
      max_in_flight_(w.cfg().client_max_in_flight),
      output_soft_(w.cfg().client_output_soft),
      output_hard_(w.cfg().client_output_hard),
      window_(std::min(max_in_flight_, kFirstWindow)),
      stream_(*this, w.read_buffer(), Worker::kReadBuffer),
      text_(mc::DecoderLimits{64 * 1024, w.cfg().max_value, /*admin=*/true}),
      native_(w.cfg().max_value * 2 + (64 << 10)) {
  uv_tcp_init(w.loop(), stream_.tcp());
  accepted_ms_ = uv_now(w.loop());
  authenticated_ = !w.router().auth_required();
}

Downstream::~Downstream() = default;

bool Downstream::resp_authenticate(std::string_view user, std::string_view password) {
  if (w_.router().auth().check(user, password)) {
    authenticated_ = true;
    user_.assign(user);
    resp_->decoder.limits().unauthenticated = false;
    return true;
  }
  auth_failed();
  return false;
}

void Downstream::resp_reset_auth() {
  if (!w_.router().auth_required()) return;
  authenticated_ = false;
  user_.clear();
  resp_->decoder.limits().unauthenticated = true;
}

void Downstream::auth_failed() {
  stats().auth_errors.add();
  // The peer only: a password typed in the user field must not reach the log.
  if (w_.may_log_refusal()) spdlog::warn("authentication failed from {}", stream_.peer());
  if (++auth_failures_ >= kMaxAuthFailures) {
    spdlog::warn("closing {}: {} failed authentication attempts", stream_.peer(), auth_failures_);
    quit_ = true;
  }
}

void Downstream::on_tls_open() {
  if (!stream_.tls_session()->resumed()) stats().ssl_new_sessions.add();
}

void Downstream::on_tls_error(const Status& error) {
  if (stream_.handshaking()) stats().ssl_handshake_errors.add();
  if (w_.may_log_refusal()) {
    spdlog::warn("TLS client {} closed: {}", stream_.peer(), error.message());
  }
}

void Downstream::handshake_timed_out() {
  stats().ssl_handshake_errors.add();
  if (w_.may_log_refusal()) {
    spdlog::warn("TLS client {} closed: no handshake within {} ms", stream_.peer(),
                 w_.cfg().tls_handshake_timeout_ms);
  }
  stream_.close();
}

RouteEnv& Downstream::env() { return w_.env(); }
const Topology& Downstream::topo() const { return w_.topo(); }
WorkerStats& Downstream::stats() { return w_.stats(); }

bool Downstream::admin_allowed() const {
  const std::vector<std::string>& admins = w_.cfg().admin_users;
  if (admins.empty()) return true;  // auth_file alone: every authenticated user
  return std::find(admins.begin(), admins.end(), user_) != admins.end();
}

Fill Downstream::push() {
  Slot* slot = w_.slots().take();
  slot->spares = &w_.slots();
  slot->owner = this;
  slot->stats = &w_.stats();
  slot->miss_when_down = w_.cfg().all_down == AllDown::kMiss;
  slot->frontend = resp_ ? 2 : proto_ == net::Protocol::kNative ? 1 : 0;
  slot->started_ns = read_ns_;
  if (tail_ != nullptr) {
    tail_->next = slot;
  } else {
    head_ = slot;
  }
  tail_ = slot;
  ++queued_;
  return Fill(slot);
}

void Downstream::note_reply(size_t bytes) {
  // Up at once to a larger reply, down by an eighth a reply: one small reply between large
  // ones does not open the window.
  reply_est_ = std::max(bytes, reply_est_ - reply_est_ / 8);
  const size_t fits = reply_est_ == 0 ? max_in_flight_ : output_soft_ / reply_est_;
  window_ = std::clamp<size_t>(fits, 1, max_in_flight_);
}

bool Downstream::hold_input() {
  if (queued_ < window_ && buffered() < output_soft_) return false;
  if (!held_back_) {
    held_back_ = true;
    stats().clients_paused.add();
    stream_.pause();
  }
  return true;
}

void Downstream::maybe_resume() {
  if (!held_back_ || stream_.closing()) return;
  if (queued_ >= window_ || buffered() >= output_soft_ / 2) return;
  held_back_ = false;
  stream_.resume();
  stream_.process_input();  // requests already read
}

size_t Downstream::on_data(std::string_view data) {
  w_.note_activity();
  read_ns_ = metrics::now_ns();
  if (!sniffed_) {
    proto_ = net::sniff(static_cast<uint8_t>(data[0]));
    sniffed_ = true;
    if (data[0] == '*') {
      resp_ = std::make_unique<RespConn>();
      resp_->id = next_resp_client_id();
      resp::Limits& l = resp_->decoder.limits();
      l.max_bulk = std::max<uint64_t>(w_.cfg().max_value, 64 << 10);
      l.unauthenticated = !authenticated_;
    }
  }
  size_t pos = 0;
  while (pos < data.size() && !quit_ && !stream_.closing() && !hold_input()) {
    std::string_view rest = data.substr(pos);
    if (resp_) {
      resp::DecodeResult r = resp_->decoder.feed(rest, resp_->cmd);
      if (r.status == resp::DecodeStatus::kNeedMore) {
        stream_.set_need(r.need);
        break;
      }
      if (r.status == resp::DecodeStatus::kEmpty) {
        pos += r.consumed;
        continue;
      }
      if (r.status == resp::DecodeStatus::kFatal) {
        stats().client_errors.add();
        push()(r.error);
        quit_ = true;
        pos = data.size();
        break;
      }
      const std::span<const std::string_view> keys(resp_->cmd.argv.data() + 1,
                                                   resp_->cmd.argv.size() - 1);
      if (env().any_in_flight() && wait_for_cas(keys)) break;
      handle_resp(*this, *resp_, resp_->cmd, push());
      pos += r.consumed;
      continue;
    }
    if (proto_ == net::Protocol::kMemcacheText && !authenticated_) {
      // auth_file: memcached's ASCII authentication first (protocol/memcache/auth_codec.h).
      mc::AuthStep st = mc::auth_step(rest);
      if (st.kind == mc::AuthStep::kNeedMore) break;
      Fill fill = push();
      if (st.kind == mc::AuthStep::kCredentials) {
        if (w_.router().auth().check(st.user, st.password)) {
          authenticated_ = true;
          user_.assign(st.user);
          fill(mc::reply::kStored);
        } else {
          fill(mc::reply::kAuthFailure);
          auth_failed();
        }
      } else {
        fill(st.reply);
        if (st.kind == mc::AuthStep::kClose) quit_ = true;
      }
      pos += st.kind == mc::AuthStep::kClose ? rest.size() : st.consumed;
      continue;
    }
    if (proto_ == net::Protocol::kMemcacheText) {
      // Reused, so that its keys vector keeps its capacity; cleared whole, because the front
      // end copies fields the decoder sets only for some commands (cas_unique, delta).
      mc::Request& req = text_req_;
      req.clear();
      mc::DecodeResult r = text_.feed(rest, req);
      if (r.status == mc::DecodeStatus::kNeedMore) {
        pos += r.consumed;
        stream_.set_need(r.need > r.consumed ? r.need - r.consumed : 0);
        break;
      }
      if (r.status == mc::DecodeStatus::kComplete && env().any_in_flight() &&
          (req.command == mc::Command::kFlushAll ? wait_for_any_cas() : wait_for_cas(req.keys))) {
        break;  // parsed again once the cas on its key is through
      }
      Fill fill = push();
      if (r.status == mc::DecodeStatus::kComplete) {
        handle_text(*this, req, fill);
      } else {
        stats().client_errors.add();
        fill(r.error);
        if (r.status == mc::DecodeStatus::kFatal) quit_ = true;
      }
      pos += r.consumed;
    } else {
      native::Request& req = native_req_;  // reused (cleared by feed)
      native::DecodeResult r = native_.feed(rest, req);
      if (r.status == native::DecodeStatus::kNeedMore) {
        stream_.set_need(r.need);
        break;
      }
      if (r.status == native::DecodeStatus::kComplete && env().any_in_flight()) {
        if (req.op == native::Op::kFlush && wait_for_any_cas()) break;
        std::vector<std::string_view> keys(req.keys.begin(), req.keys.end());
        if (!req.key.empty()) keys.push_back(req.key);
        for (const auto& it : req.items) keys.push_back(it.key);
        if (wait_for_cas(keys)) break;
      }
      Fill fill = push();
      if (r.status == native::DecodeStatus::kComplete && !authenticated_) {
        // auth_file: only a HELLO with good credentials passes.
        pos += r.consumed;
        if (req.op != native::Op::kHello || req.user.empty()) {
          native_error(fill, req.id, native::Status::kUnauthenticated,
                       "unauthenticated: send HELLO with user and password");
          continue;
        }
        if (!w_.router().auth().check(req.user, req.password)) {
          native_error(fill, req.id, native::Status::kUnauthenticated, "authentication failure");
          auth_failed();
          continue;
        }
        authenticated_ = true;
        user_.assign(req.user);
        handle_native(*this, req, fill);
      } else if (r.status == native::DecodeStatus::kComplete) {
        handle_native(*this, req, fill);
        pos += r.consumed;
      } else {
        stats().client_errors.add();
        if (r.status == native::DecodeStatus::kError) {
          native_error(fill, r.id, r.error, r.message);
          pos += r.consumed;
        } else {  // the stream cannot be trusted: answer what came before, then close
          fill(std::string_view());
          quit_ = true;
          pos = data.size();
        }
      }
    }
  }
  return pos;
}

bool Downstream::wait_for_any_cas() {
  // A flush_all must follow every cas before it on every replica, or a sibling's copy of a
  // cas's change, sent once the primary answers, could land after the flush and outlive it.
  // It waits for one cas at a time (parsed again each time), until none is in flight.
  if (env().cas_pending.empty()) return false;
  std::string_view k = env().cas_pending.begin()->first;
  return wait_for_cas(std::span<const std::string_view>(&k, 1));
}

bool Downstream::wait_for_cas(std::span<const std::string_view> keys) {
  for (std::string_view k : keys) {
    if (!env().cas_in_flight(k)) continue;
    // This request must follow the cas on `k` on every replica (routes/env.h): stop reading
    // and parsing until it is through.
    stream_.pause();
    Worker* w = &w_;
    env().wait_for_cas(k, [w, self = this] {
      if (!w->alive(self)) return;  // closed meanwhile
      if (!self->held_back_) self->stream_.resume();
      self->stream_.process_input();
    });
    return true;
  }
  return false;
}

void Downstream::drain() {
  while (head_ != nullptr && head_->done) {
    Slot* s = head_;
    if (!s->out.empty()) {
      held_ -= s->out.size();
      stream_.output().append(s->out.view());
    }
    head_ = s->next;
    if (head_ == nullptr) tail_ = nullptr;
    --queued_;
    s->unref();
  }
  if (buffered() > output_hard_ && !dropped_) {
    // Replies it does not read have piled up past the hard bound: this client goes, nobody
    // else notices (its requests in flight are answered by the nodes and dropped here).
    dropped_ = true;
    stats().clients_dropped.add();
    spdlog::info("closing a client that does not read its replies ({} bytes waiting)", buffered());
    close();
    return;
  }
  if (!dirty_) {
    dirty_ = true;
    w_.mark_dirty(this);
  }
}

void Downstream::flush() {
  dirty_ = false;
  if (stream_.closing()) return;
  stream_.flush();  // on_output_drained() follows when everything is with the kernel
  maybe_resume();
}

void Downstream::on_output_drained() {
  if (quit_ && head_ == nullptr) {
    close();
    return;
  }
  maybe_resume();
}

void Downstream::on_closed() {
  for (Slot* s = head_; s != nullptr;) {  // replies on their way are dropped when they arrive
    Slot* next = s->next;
    s->owner = nullptr;
    s->unref();
    s = next;
  }
  head_ = tail_ = nullptr;
  queued_ = 0;
  stats().closed.add();
  w_.router().open_connections().fetch_sub(1, std::memory_order_relaxed);
  w_.forget(this);
  delete this;
}

}  // namespace cachetier::router
