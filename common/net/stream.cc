// Stream. See stream.h for the data flow; libuv rules: a uv_write in flight when the handle
// closes gets its callback (UV_ECANCELED) before the close callback runs.
#include "common/net/stream.h"

#include <algorithm>

namespace cachetier::net {

namespace {
constexpr size_t kKeepBufferBytes = 16 * 1024;  // larger idle buffers go back to malloc
}

namespace {

std::string address_text(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(a, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
  uv_ip4_name(a, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
}

}  // namespace

std::string Stream::peer() const {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return address_text(ss);
}

std::string Stream::local() const {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return address_text(ss);
}

void Stream::start() {
  uv_tcp_nodelay(&tcp_, 1);
  resume();
}

void Stream::pause() {
  if (paused_ || closing_) return;
  paused_ = true;
  uv_read_stop(stream());
}

void Stream::resume() {
  if (closing_) return;
  paused_ = false;
  uv_read_start(
      stream(),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* s = static_cast<Stream*>(h->data);
        if (!s->in_.empty() && s->tls_ == nullptr) {
          size_t missing = s->need_ > s->in_.size() ? s->need_ - s->in_.size() : 0;
          char* p = s->in_.reserve(std::max(missing, s->shared_size_ / 4));
          *buf =
              uv_buf_init(p, static_cast<unsigned>(std::min<size_t>(s->in_.writable(), 1u << 30)));
        } else if (s->tls_ != nullptr) {
          // TLS: ciphertext into the first half; the second half takes the plaintext (the
          // session reads the ciphertext in place while it decrypts).
          *buf = uv_buf_init(s->shared_, static_cast<unsigned>(s->shared_size_ / 2));
        } else {
          *buf = uv_buf_init(s->shared_, static_cast<unsigned>(s->shared_size_));
        }
      },
      [](uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
        static_cast<Stream*>(st->data)->on_read(n, buf);
      });
}

void Stream::on_read(ssize_t n, const uv_buf_t* buf) {
  if (n < 0) {
    if (tls_ != nullptr && !tls_->handshake_done() && tls_->handshake_begun()) {
      handler_.on_tls_error(Status(StatusCode::kIoError, "closed during the TLS handshake"));
    }
    close();
    return;
  }
  if (n == 0) return;
  if (read_counter_ != nullptr) read_counter_->add(static_cast<uint64_t>(n));
  need_ = 0;
  if (tls_ != nullptr) {
    on_tls_read(std::string_view(buf->base, static_cast<size_t>(n)));
  } else if (buf->base == shared_) {
    deliver(std::string_view(buf->base, static_cast<size_t>(n)));
  } else {
    in_.commit(static_cast<size_t>(n));
    process_input();
  }
  if (!closing_) handler_.after_read();
}

bool Stream::deliver(std::string_view data) {
  if (closing_) return false;
  if (in_.empty()) {
    size_t used = handler_.on_data(data);
    if (used < data.size() && !closing_) in_.append(data.substr(used));
  } else {
    in_.append(data);
    process_input();
  }
  return !closing_;
}

void Stream::on_tls_read(std::string_view cipher) {
  // The ciphertext is in the shared buffer's first half (read there); the plaintext goes to
  // the second half.
  const bool was_open = tls_->handshake_done();
  const size_t half = shared_size_ / 2;
  Status st = tls_->feed(
      cipher, shared_ + half, shared_size_ - half,
      [this](std::string_view plain) {
        if (tls_->take_just_opened()) handler_.on_tls_open();
        return deliver(plain);
      },
      wire_);
  if (closing_) return;
  if (!st.is_ok()) {
    handler_.on_tls_error(st);
    flush();  // the alert, if any
    close();
    return;
  }
  if (tls_->take_just_opened()) handler_.on_tls_open();
  if (tls_->peer_closed()) {
    close();
    return;
  }
  // Handshake records, tickets: sent now (the handler flushes only when it has replies).
  if (!wire_.empty() || (!was_open && !out_.empty())) flush();
}

void Stream::process_input() {
  if (closing_ || in_.empty()) return;
  size_t used = handler_.on_data(in_.view());
  if (closing_) return;
  in_.consume(used);
  if (in_.empty()) in_.release();
}

void Stream::flush() {
  if (closing_ || writing_) return;
  if (tls_ != nullptr && !out_.empty() && tls_->handshake_done()) {
    Status st = tls_->encrypt(out_.view(), wire_);
    out_.clear();
    if (!st.is_ok()) {
      handler_.on_tls_error(st);
      close();
      return;
    }
  }
  // What goes to the socket: the output itself, or its ciphertext.
  ByteBuffer& w = tls_ != nullptr ? wire_ : out_;
  if (!w.empty()) {
    uv_buf_t b = uv_buf_init(w.data(), static_cast<unsigned>(w.size()));
    int n = uv_try_write(stream(), &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
      close();
      return;
    }
    if (n > 0) {
      if (written_counter_ != nullptr) written_counter_->add(static_cast<uint64_t>(n));
      w.consume(static_cast<size_t>(n));
    }
  }
  if (!w.empty()) {
    // The kernel is full: hand the rest to libuv and continue in the write callback.
    inflight_.swap(w);
    writing_ = true;
    wreq_.data = this;
    uv_buf_t b = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
    int rc = uv_write(&wreq_, stream(), &b, 1, [](uv_write_t* w, int status) {
      static_cast<Stream*>(w->data)->on_write_done(status);
    });
    if (rc != 0) {
      writing_ = false;
      close();
    }
    return;
  }
  if (out_.capacity() > kKeepBufferBytes) out_.release();
  if (wire_.capacity() > kKeepBufferBytes) wire_.release();
  if (!out_.empty()) return;  // TLS: output waiting for the handshake
  handler_.on_output_drained();
}

void Stream::on_write_done(int status) {
  writing_ = false;
  if (status < 0 || closing_) {
    close();
    return;
  }
  if (written_counter_ != nullptr) written_counter_->add(inflight_.size());
  inflight_.clear();
  if (inflight_.capacity() > kKeepBufferBytes) inflight_.release();
  flush();
}

void Stream::close() {
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_),
           [](uv_handle_t* h) { static_cast<Stream*>(h->data)->handler_.on_closed(); });
}

}  // namespace cachetier::net
