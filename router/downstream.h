// Downstream: one client connection of cacherouter, on one worker. It reads requests (the
// protocol chosen by the first byte, common/net/sniff.h), gives each a Slot in its in-order
// reply queue, hands it to a front end (frontends/text, frontends/native), and writes replies
// in request order however the backends answer:
//
//   queue_:  [slot 1: done]-[slot 2: waiting]-[slot 3: done]-[slot 4: waiting]
//             ^ drained to the output        ^ its reply, when it comes, is next: written
//                                              straight to the output; slot 3's bytes wait
//                                              in the slot until then
//
// Isolation (one client never hurts another): a client is not read while it has its window of
// requests unanswered, or client_output_soft bytes of replies it has not read (in the slots
// and the socket's output); it is closed when they pass client_output_hard. The window is
// what client_output_soft holds of the replies this client has had (the largest recent one,
// decaying by 1/8 a reply), between 1 and client_max_in_flight, and starts at kFirstWindow:
// a client that asks for megabytes per request has one or two in flight, not 64, so the
// replies queued ahead of other clients' requests on the shared backend connections stay a
// few megabytes. Backend connections and node health never depend on one client: its
// requests in flight when it closes are answered by the nodes and dropped here.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "common/free_list.h"
#include "common/net/sniff.h"
#include "common/net/stream.h"
#include "protocol/memcache/server_codec.h"
#include "protocol/native/native.h"
#include "router/routes/env.h"
#include "router/stats.h"

namespace cachetier::router {

class Downstream;
struct RespConn;
class Worker;

// One request's place in the queue. Two references: the queue's and the pending reply's
// (Fill). Plain pointers and a count rather than shared_ptr: a Fill then fits in
// std::function's inline buffer, and routing a request allocates less.
// A meta command's flags, with its opaque kept here (the request's views die). Made only for
// meta commands: a plain get's slot stays small.
struct MetaKeep {
  memcache::MetaFlags meta;
  std::string opaque;
};

struct Slot {
  Downstream* owner = nullptr;       // null once the connection has closed
  Slot* next = nullptr;              // the next slot in its connection's queue
  FreeList<Slot>* spares = nullptr;  // the worker's, where the slot goes back when done
  WorkerStats* stats = nullptr;      // the worker's (counted also when the owner is gone)
  int refs = 2;
  bool done = false;
  uint8_t frontend = 0;         // which front end's latency histogram (WorkerStats::client_latency)
  uint64_t started_ns = 0;      // the read that brought the request (metrics::now_ns)
  bool with_cas = false;        // text get/gets: what the reply needs
  bool miss_when_down = false;  // the config's all_down: miss
  bool resp3 = false;           // RESP: the connection's protocol version at request time
  bool resp_integer = false;    // RESP SETNX/MSETNX: answer :1/:0 rather than +OK/nil
  std::string key;
  ByteBuffer out;  // the reply, while replies before it are still missing
  std::unique_ptr<MetaKeep> meta;
  void unref() {
    if (--refs == 0) spares->give(this);
  }
};

// Completes a Slot with its reply. Call exactly once, either way.
class Fill {
 public:
  explicit Fill(Slot* s) : s_(s) {}
  // The reply is these bytes.
  void operator()(std::string_view bytes) const;
  // The reply is what `produce(ByteBuffer&)` appends: straight into the connection's output
  // when this slot is next in order (the common case: no copy, no allocation), else into the
  // slot until the replies before it are out.
  template <class F>
  void write(F&& produce) const;
  Slot* slot() const { return s_; }
  // The connection is gone: the reply would be dropped.
  bool orphan() const { return s_->owner == nullptr; }

 private:
  ByteBuffer* target() const;  // where the reply goes now, or null (closed)
  void finish(size_t held, size_t bytes) const;  // bytes: the reply's size
  Slot* s_;
};

class Downstream final : public net::Stream::Handler {
 public:
  explicit Downstream(Worker& w);
  ~Downstream() override;
  net::Stream& stream() { return stream_; }
  void start() { stream_.start(); }
  void close() { stream_.close(); }
  // The worker's flush phase: hands finished replies to the kernel.
  void flush();

  // For the front ends.
  Worker& worker() { return w_; }
  RouteEnv& env();
  const Topology& topo() const;
  WorkerStats& stats();
  Fill push();
  // Admin commands (admin.h) from this client: with admin_users, only those users.
  bool admin_allowed() const;
  void close_after_replies() { quit_ = true; }  // quit, or a stream that cannot be parsed
  // RESP's AUTH and HELLO AUTH (auth_file); RESET (back to unauthenticated if auth is on).
  bool authenticated() const { return authenticated_; }
  bool resp_authenticate(std::string_view user, std::string_view password);
  void resp_reset_auth();
  // TLS: when the connection was accepted (uv_now), and its handshake deadline passed.
  uint64_t accepted_ms() const { return accepted_ms_; }
  void handshake_timed_out();

 private:
  size_t on_data(std::string_view data) override;
  void on_output_drained() override;
  void on_closed() override;
  void on_tls_open() override;
  void on_tls_error(const Status& error) override;
  std::string peer();
  void drain();
  // A refused authentication: counted, logged (peer only), closed after kMaxAuthFailures.
  void auth_failed();
  static constexpr int kMaxAuthFailures = 5;
  // True when a key of the request has a cas in flight on this worker: the connection stops
  // until that cas is through, then parses the request again.
  bool wait_for_cas(std::span<const std::string_view> keys);
  bool wait_for_any_cas();  // the same for a request on every key (flush_all)
  bool hold_input();        // true when this client must not be read now (and pauses it)
  void maybe_resume();
  void note_reply(size_t bytes);  // a reply's size: the window follows it
  size_t buffered() const { return stream_.unsent() + held_; }

  Worker& w_;
  // The client limits of the config this connection started with (a reload keeps them).
  const size_t max_in_flight_, output_soft_, output_hard_;
  static constexpr size_t kFirstWindow = 4;  // requests in flight before any reply was seen
  size_t window_;                            // requests in flight at most (1..max_in_flight_)
  size_t reply_est_ = 0;                     // recent reply size that the window is made for
  net::Stream stream_;
  net::Protocol proto_ = net::Protocol::kMemcacheText;
  bool sniffed_ = false;
  memcache::RequestDecoder text_;
  native::RequestDecoder native_;
  memcache::Request text_req_;
  native::Request native_req_;
  std::unique_ptr<RespConn> resp_;  // made when the first byte is '*' (frontends/resp.h)
  // The queue: an intrusive FIFO through Slot::next (no allocation, O(1) size).
  Slot* head_ = nullptr;
  Slot* tail_ = nullptr;
  size_t queued_ = 0;
  size_t held_ = 0;  // reply bytes waiting in slots behind a missing one
  bool quit_ = false, dirty_ = false, held_back_ = false, dropped_ = false;
  uint64_t accepted_ms_ = 0;
  bool authenticated_ = true;  // false with auth_file until the client authenticates
  std::string user_;           // who authenticated (auth_file)
  int auth_failures_ = 0;
  uint64_t read_ns_ = 0;  // when the on_data call under way began (its requests' start)

  friend class Fill;
};

template <class F>
void Fill::write(F&& produce) const {
  ByteBuffer* b = target();
  size_t before = b != nullptr ? b->size() : 0;
  if (b != nullptr) produce(*b);
  const size_t bytes = b != nullptr ? b->size() - before : 0;
  finish(b == &s_->out ? bytes : 0, bytes);
}

}  // namespace cachetier::router
