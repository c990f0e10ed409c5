// One client connection of cacheserver, on its worker's loop: the bytes a read brings are
// parsed and executed at once (process::handle), replies go to the output, and after the whole
// read batch ONE write hands them to the kernel (net::Stream, common/net/stream.h).
//
// Backpressure: a connection whose unsent output reaches `output_high_water` stops reading and
// parsing until the output drains, so a client that sends but never reads holds at most about
// that much memory. A single reply larger than `output_limit` is replaced by an error (the
// connection goes on: it may be a router's, shared by many clients).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "cacheserver/process/process.h"
#include "cacheserver/process/resp_process.h"
#include "cacheserver/server/worker.h"
#include "common/net/stream.h"
#include "protocol/memcache/server_codec.h"
#include "protocol/native/native.h"
#include "protocol/resp/resp.h"

namespace cachetier::server {

class Connection final : public net::Stream::Handler, public process::RespPeer {
 public:
  Connection(Worker& w, Proto p, bool tls);
  net::Stream& stream() { return stream_; }
  void start() { stream_.start(); }
  // The server is stopping: read nothing more, close once what was read is answered.
  void drain();
  // TLS: when the connection was accepted (uv_now), and the handshake deadline passed.
  uint64_t accepted_ms() const { return accepted_ms_; }
  void handshake_timed_out();

  Connection* prev = nullptr;  // the worker's list
  Connection* next = nullptr;

  // For `stats conns` (read by other workers under the worker's list lock): set once when the
  // socket is open, and the loop time of the last read batch.
  void note_open(int fd);
  int fd() const { return fd_; }
  const std::string& peer_text() const { return peer_text_; }
  const std::string& local_text() const { return local_text_; }
  bool tls() const { return tls_; }
  uint64_t last_read_ms() const { return last_read_ms_.load(std::memory_order_relaxed); }

 private:
  size_t on_data(std::string_view data) override;
  void after_read() override { stream_.flush(); }
  void on_output_drained() override;
  void on_closed() override;
  void on_tls_open() override;
  void on_tls_error(const Status& error) override;
  std::string peer() const;

  size_t process_memcache(std::string_view data);
  // -Y, not authenticated yet: memcached's ASCII authentication (auth_codec.h). Returns the
  // bytes used; sets authenticated_ on success.
  size_t process_auth(std::string_view data);
  // -Y on a native connection: only HELLO with good credentials passes (true: go on and
  // answer it); anything else is answered UNAUTHENTICATED.
  bool native_auth(const native::Request& req, ByteBuffer& out);
  // A refused attempt (already answered): count, log the peer, close after auth_max_failures.
  void auth_failed();
  size_t process_native(std::string_view data);
  // RESP (resp_process.h): made when the connection turns RESP.
  size_t process_resp(std::string_view data);
  void start_resp();
  bool auth_required() const override;
  bool check_auth(std::string_view user, std::string_view password) override;
  std::string client_info() const override;
  int listen_port() const override;
  // True (and reading paused) when the unsent output has reached the high-water mark.
  bool output_backed_up();
  void stop_reading_for_good();

  Worker& worker_;
  net::Stream stream_;
  Proto proto_;
  memcache::RequestDecoder decoder_;
  memcache::Request req_;
  std::unique_ptr<native::RequestDecoder> ndecoder_;  // made when the connection turns native
  native::Request nreq_;
  struct Resp {
    resp::RequestDecoder decoder;
    resp::Command cmd;
    process::RespSession session;
  };
  std::unique_ptr<Resp> resp_;
  process::Context ctx_;
  bool backed_up_ = false;          // reading stopped for backpressure
  bool close_after_write_ = false;  // quit or a fatal error: parse nothing more
  bool draining_ = false;           // server stopping
  uint64_t accepted_ms_ = 0;
  bool authenticated_ = true;  // false with -Y until a good `set` of credentials
  int auth_failures_ = 0;
  // Requests of each family answered by the on_data call under way (its latency histogram).
  uint32_t batch_[process::kFamilies] = {};
  int fd_ = -1;
  bool tls_ = false;
  std::string peer_text_, local_text_;
  std::atomic<uint64_t> last_read_ms_{0};
};

}  // namespace cachetier::server
