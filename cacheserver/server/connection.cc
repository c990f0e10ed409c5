// A cacheserver connection. See connection.h.
#include "cacheserver/server/connection.h"

#include <spdlog/spdlog.h>

#include <optional>

#include "cacheserver/process/native_process.h"
#include "cacheserver/server/server.h"
#include "protocol/memcache/auth_codec.h"

namespace cachetier::server {

Connection::Connection(Worker& w, Proto p, bool tls)
    : worker_(w),
      stream_(*this, w.read_buffer(), Worker::kReadChunk),
      proto_(p),
      decoder_(
          memcache::DecoderLimits{w.server().config().max_line, w.server().config().max_item_size}),
      ctx_{w.server().engine(),
           w.counters(),
           &w.server(),
           &w.server().verbosity(),
           w.server().config().output_limit,
           w.server().config().max_frame,
           w.server().config().flush_enabled} {
  stream_.count_into(&w.bytes_read(), &w.bytes_written());
  ctx_.max_item_size = w.server().config().max_item_size;
  ctx_.debug_clock = w.server().config().debug_clock;
  accepted_ms_ = uv_now(w.loop());
  tls_ = tls;
  authenticated_ = !w.server().auth_required();
  if (tls) {
    auto ctx = w.server().tls_context();
    if (ctx) stream_.use_tls(std::move(ctx));
  }
}

std::string Connection::peer() const { return stream_.peer(); }

void Connection::on_tls_open() {
  const net::TlsSession* t = stream_.tls_session();
  if (!t->resumed()) worker_.counters().ssl_new_sessions.add();
  spdlog::debug("TLS connection from {}: {}{}", peer(), t->describe(),
                t->resumed() ? " (resumed)" : "");
}

void Connection::on_tls_error(const Status& error) {
  const bool handshake = stream_.handshaking();
  if (handshake) worker_.counters().ssl_handshake_errors.add();
  if (worker_.may_log_refusal()) {
    spdlog::warn("TLS connection from {} closed: {}", peer(), error.message());
  }
}

void Connection::handshake_timed_out() {
  worker_.counters().ssl_handshake_errors.add();
  if (worker_.may_log_refusal()) {
    spdlog::warn("TLS connection from {} closed: no handshake within {} ms", peer(),
                 worker_.server().config().tls_handshake_timeout_ms);
  }
  stream_.close();
}

void Connection::note_open(int fd) {
  fd_ = fd;
  peer_text_ = stream_.peer();
  local_text_ = stream_.local();
  last_read_ms_.store(accepted_ms_, std::memory_order_relaxed);
}

size_t Connection::on_data(std::string_view data) {
  worker_.note_activity();
  last_read_ms_.store(uv_now(worker_.loop()), std::memory_order_relaxed);
  if (proto_ == Proto::kDetect) {
    proto_ = data[0] == '*' ? Proto::kResp
             : net::sniff(static_cast<uint8_t>(data[0])) == net::Protocol::kNative
                 ? Proto::kNative
                 : Proto::kMemcache;
  }
  // One clock read before and one after the batch: each request's latency is from the read
  // that brought it to its reply being ready for the batch's one write.
  const uint64_t t0 = metrics::now_ns();
  size_t used = proto_ == Proto::kNative ? process_native(data)
                : proto_ == Proto::kResp ? process_resp(data)
                                         : process_memcache(data);
  std::optional<uint64_t> took;  // the second clock read, only if a request was answered
  for (size_t f = 0; f < process::kFamilies; ++f) {
    if (batch_[f] == 0) continue;
    if (!took) took = metrics::now_ns() - t0;
    worker_.latency(f).record(*took, batch_[f]);
    batch_[f] = 0;
  }
  return used;
}

bool Connection::output_backed_up() {
  if (stream_.output().size() < worker_.server().config().output_high_water) return false;
  if (!backed_up_) {
    backed_up_ = true;
    stream_.pause();
  }
  return true;
}

void Connection::stop_reading_for_good() {
  close_after_write_ = true;
  stream_.pause();
}

size_t Connection::process_auth(std::string_view data) {
  ByteBuffer& out = stream_.output();
  size_t pos = 0;
  while (!authenticated_ && pos < data.size() && !close_after_write_) {
    memcache::AuthStep st = memcache::auth_step(data.substr(pos));
    switch (st.kind) {
      case memcache::AuthStep::kNeedMore:
        return pos;
      case memcache::AuthStep::kReply:
        out.append(st.reply);
        break;
      case memcache::AuthStep::kClose:
        out.append(st.reply);
        stop_reading_for_good();
        return data.size();
      case memcache::AuthStep::kCredentials:
        worker_.counters().auth_cmds.add();
        if (worker_.server().auth().check(st.user, st.password)) {
          authenticated_ = true;
          out.append(memcache::reply::kStored);
        } else {
          out.append(memcache::reply::kAuthFailure);
          auth_failed();
          if (close_after_write_) return data.size();
        }
        break;
    }
    pos += st.consumed;
  }
  return pos;
}

bool Connection::native_auth(const native::Request& req, ByteBuffer& out) {
  if (req.op != native::Op::kHello || req.user.empty()) {
    process::native_error(req.id, native::Status::kUnauthenticated,
                          "unauthenticated: send HELLO with user and password", out);
    return false;
  }
  worker_.counters().auth_cmds.add();
  if (worker_.server().auth().check(req.user, req.password)) {
    authenticated_ = true;
    return true;  // answered as any HELLO
  }
  process::native_error(req.id, native::Status::kUnauthenticated, "authentication failure", out);
  auth_failed();
  return false;
}

void Connection::auth_failed() {
  worker_.counters().auth_errors.add();
  // No user name in the log: it may be a password typed in the wrong field.
  if (worker_.may_log_refusal()) spdlog::warn("authentication failed from {}", peer());
  if (++auth_failures_ >= worker_.server().config().auth_max_failures) {
    spdlog::warn("closing {}: {} failed authentication attempts", peer(), auth_failures_);
    stop_reading_for_good();
  }
}

size_t Connection::process_memcache(std::string_view data) {
  ByteBuffer& out = stream_.output();
  size_t pos = 0;
  if (!authenticated_) {
    pos = process_auth(data);
    if (!authenticated_ || close_after_write_) return pos;
  }
  while (pos < data.size() && !close_after_write_ && !output_backed_up()) {
    memcache::DecodeResult r = decoder_.feed(data.substr(pos), req_);
    switch (r.status) {
      case memcache::DecodeStatus::kComplete:
        pos += r.consumed;
        ++batch_[static_cast<size_t>(process::family_of(req_.command))];
        if (process::handle(req_, ctx_, out) != process::Action::kContinue) {
          stop_reading_for_good();  // quit
        }
        break;
      case memcache::DecodeStatus::kNeedMore:
        stream_.set_need(r.need > r.consumed ? r.need - r.consumed : 0);
        return pos + r.consumed;
      case memcache::DecodeStatus::kError:
        out.append(r.error);
        pos += r.consumed;
        break;
      case memcache::DecodeStatus::kFatal:
        spdlog::debug("closing a connection: {}", r.error.substr(0, r.error.size() - 2));
        out.append(r.error);
        stop_reading_for_good();
        return data.size();
    }
  }
  return pos;
}

size_t Connection::process_native(std::string_view data) {
  if (!ndecoder_) ndecoder_ = std::make_unique<native::RequestDecoder>(ctx_.max_frame);
  ByteBuffer& out = stream_.output();
  size_t pos = 0;
  while (pos < data.size() && !close_after_write_ && !output_backed_up()) {
    native::DecodeResult r = ndecoder_->feed(data.substr(pos), nreq_);
    switch (r.status) {
      case native::DecodeStatus::kComplete:
        pos += r.consumed;
        if (!authenticated_ && !native_auth(nreq_, out)) break;
        ++batch_[static_cast<size_t>(process::family_of(nreq_.op))];
        if (process::handle_native(nreq_, ctx_, out) != process::Action::kContinue) {
          stop_reading_for_good();
        }
        break;
      case native::DecodeStatus::kNeedMore:
        stream_.set_need(r.need);
        return pos;
      case native::DecodeStatus::kError:
        process::native_error(r.id, r.error, r.message, out);
        pos += r.consumed;
        break;
      case native::DecodeStatus::kFatal:
        // No request id to answer: the stream cannot be trusted any more.
        spdlog::debug("closing a native connection: {}", r.message);
        stop_reading_for_good();
        return data.size();
    }
  }
  return pos;
}

void Connection::start_resp() {
  resp_ = std::make_unique<Resp>();
  resp_->session.id = worker_.server().next_client_id();
  resp_->session.authenticated = authenticated_;
  resp_->decoder.limits().unauthenticated = !authenticated_;
}

bool Connection::auth_required() const { return worker_.server().auth_required(); }

bool Connection::check_auth(std::string_view user, std::string_view password) {
  if (worker_.server().auth().check(user, password)) {
    authenticated_ = true;
    resp_->decoder.limits().unauthenticated = false;
    return true;
  }
  auth_failed();
  return false;
}

std::string Connection::client_info() const {
  const uint64_t now = uv_now(worker_.loop());
  // Redis's fields, in its order; the buffer and memory ones this node does not keep are 0.
  return fmt::format(
      "id={} addr={} laddr={} fd={} name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 "
      "multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 "
      "tot-mem=0 events=r cmd=client|info user=default redir=-1 resp={} lib-name={} lib-ver={}",
      resp_->session.id, peer_text_, local_text_, fd_, resp_->session.name,
      (now - accepted_ms_) / 1000, (now - last_read_ms()) / 1000, resp_->session.resp3 ? 3 : 2,
      resp_->session.lib_name, resp_->session.lib_ver);
}

int Connection::listen_port() const { return worker_.server().main_port(); }

size_t Connection::process_resp(std::string_view data) {
  if (!resp_) start_resp();
  ByteBuffer& out = stream_.output();
  size_t pos = 0;
  while (pos < data.size() && !close_after_write_ && !output_backed_up()) {
    resp::DecodeResult r = resp_->decoder.feed(data.substr(pos), resp_->cmd);
    switch (r.status) {
      case resp::DecodeStatus::kComplete: {
        pos += r.consumed;
        ++batch_[static_cast<size_t>(process::family_of_resp(resp_->cmd.argv[0]))];
        const bool was = resp_->session.authenticated;
        if (process::handle_resp(resp_->cmd, ctx_, resp_->session, *this, out) !=
            process::Action::kContinue) {
          stop_reading_for_good();  // QUIT
        }
        if (resp_->session.authenticated != was) {
          // AUTH, HELLO AUTH or RESET changed it.
          authenticated_ = resp_->session.authenticated;
          resp_->decoder.limits().unauthenticated = !authenticated_;
        }
        break;
      }
      case resp::DecodeStatus::kEmpty:
        pos += r.consumed;
        break;
      case resp::DecodeStatus::kNeedMore:
        stream_.set_need(r.need);
        return pos;
      case resp::DecodeStatus::kFatal:
        spdlog::debug("closing a RESP connection: {}", r.error.substr(0, r.error.size() - 2));
        out.append(r.error);
        stop_reading_for_good();
        return data.size();
    }
  }
  return pos;
}

void Connection::on_output_drained() {
  if (close_after_write_) {
    stream_.close();
    return;
  }
  if (backed_up_) {
    // Everything is with the kernel: parse what was read meanwhile (also when stopping: it
    // was in flight), and read again unless that filled the output once more.
    backed_up_ = false;
    stream_.process_input();
    if (stream_.closing()) return;
    if (!backed_up_ && !close_after_write_ && !draining_) stream_.resume();
    stream_.flush();
    return;
  }
  if (draining_) stream_.close();
}

void Connection::drain() {
  draining_ = true;
  stream_.pause();
  stream_.flush();
}

void Connection::on_closed() {
  worker_.detach(this);
  worker_.server().connection_closed();
  delete this;
}

}  // namespace cachetier::server
