// Stream: the plumbing of one client connection on a libuv loop, shared by cacheserver's
// connections and cacherouter's downstream connections.
//
//   read   -> into the worker's shared read buffer when nothing is pending, or straight behind
//             a partial request in input() (a large value lands in its final buffer)
//          -> Handler::on_data(bytes) parses and executes what it can; what it leaves stays
//             in input() for the next call
//   output -> the handler appends replies to output(); flush() hands them to the kernel with
//             one try_write, and one uv_write for whatever the kernel did not take
//   drained-> Handler::on_output_drained(): everything is with the kernel (a handler paused
//             for backpressure resumes here)
//   close  -> Handler::on_closed() from the handle's close callback, the last call: the owner
//             may free itself (and this Stream) there (libuv: memory goes in the close cb)
//
// Backpressure is the handler's policy: it stops reading (pause()) while its output is too
// large and calls resume() when it is not. Loop thread only; not copyable or movable (libuv
// holds pointers into it).
//
// With TLS (use_tls() before start()): reads are ciphertext into the first half of the shared
// buffer, handed to the TlsSession (tls.h), which decrypts them into the second half for
// on_data; flush() encrypts output() into the wire buffer that the writes take. Output waits
// until the handshake is done.
#pragma once

#include <uv.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/buffer.h"
#include "common/counter.h"
#include "common/net/tls.h"

namespace cachetier::net {

class Stream {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // Bytes arrived (`data` is input()'s bytes, or the shared buffer's when input() was
    // empty). Returns how many it used; the rest is kept. May call close().
    virtual size_t on_data(std::string_view data) = 0;
    // A read's bytes have all been given to on_data (what it left is in input()): where a
    // handler that writes once per read batch flushes.
    virtual void after_read() {}
    // All output has been handed to the kernel.
    virtual void on_output_drained() = 0;
    // TLS: the handshake completed / failed (the stream closes after a failure).
    virtual void on_tls_open() {}
    virtual void on_tls_error(const Status& /*error*/) {}
    // The connection is closed; nothing else is called after this.
    virtual void on_closed() = 0;
  };

  // `shared` (owned by the worker, `shared_size` bytes) receives reads when input() is empty.
  Stream(Handler& handler, char* shared, size_t shared_size)
      : handler_(handler), shared_(shared), shared_size_(shared_size) {
    tcp_.data = this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // The peer's address ("10.0.0.1:5000", "[::1]:5000"; "?" if unknown), for log lines.
  std::string peer() const;
  std::string local() const;  // the address the connection was accepted on
  // The handle to init and accept into (uv_tcp_init + uv_accept), or to uv_tcp_open.
  uv_tcp_t* tcp() { return &tcp_; }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  // Speaks TLS with `ctx` from start() on (a server context: this side accepts).
  void use_tls(std::shared_ptr<TlsContext> ctx) { tls_ = std::make_unique<TlsSession>(ctx); }
  bool tls() const { return tls_ != nullptr; }
  // TLS and the handshake not finished yet.
  bool handshaking() const { return tls_ != nullptr && !tls_->handshake_done(); }
  const TlsSession* tls_session() const { return tls_.get(); }
  // Starts reading (TCP_NODELAY on).
  void start();
  // Stops / restarts reading. Bytes already read stay in input().
  void pause();
  void resume();
  bool paused() const { return paused_; }

  ByteBuffer& input() { return in_; }
  ByteBuffer& output() { return out_; }
  // Bytes of output not yet with the kernel (queued plus the write in flight).
  size_t unsent() const { return out_.size() + inflight_.size() + wire_.size(); }
  bool writing() const { return writing_; }
  // Bytes the pending request needs in total, when known (read straight into input()).
  void set_need(size_t bytes) { need_ = bytes; }
  // Feeds input() to the handler again (after a pause).
  void process_input();

  // Hands output() to the kernel; on_output_drained() follows once all of it is there (at
  // once, or from the write callback).
  void flush();
  // Closes the connection; on_closed() runs from the close callback. Idempotent.
  void close();
  bool closing() const { return closing_; }

  // Where bytes read and written are counted (the worker's counters; optional).
  void count_into(Counter* read, Counter* written) {
    read_counter_ = read;
    written_counter_ = written;
  }

 private:
  void on_read(ssize_t n, const uv_buf_t* buf);
  void on_tls_read(std::string_view cipher);
  // Plaintext that arrived: to on_data straight from `data` when nothing is pending, else
  // behind what is. False once the stream is closing.
  bool deliver(std::string_view data);
  void on_write_done(int status);

  Handler& handler_;
  char* shared_;
  size_t shared_size_;
  uv_tcp_t tcp_{};
  uv_write_t wreq_{};
  ByteBuffer in_, out_, inflight_;
  ByteBuffer wire_;  // TLS: ciphertext waiting to be written
  std::unique_ptr<TlsSession> tls_;
  size_t need_ = 0;
  Counter* read_counter_ = nullptr;
  Counter* written_counter_ = nullptr;
  bool paused_ = false, writing_ = false, closing_ = false;
};

}  // namespace cachetier::net
