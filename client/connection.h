// Connection: one client connection to one cache node over the native protocol, on a libuv
// loop. Many requests are kept in flight (pipelining); replies are matched by request id, so
// the server may answer in any order. Every request has a deadline; the in-flight count is
// bounded (a full queue is an error, not unbounded memory); a lost connection is re-opened
// with exponential backoff.
//
//   send() -> encode into `out_` -> one uv_write per batch ---------> server
//   pending_: FIFO of (callback, deadline), entry i is request id first_id_ + i
//   replies -> decode -> pending_[id - first_id_] -> callback (answered entries are dropped
//                                                   once every older one is answered too)
//   timer at the oldest entry's deadline -> fail expired requests (one timeout for every
//   request of a connection, so send order is deadline order)
//
// Threading: a Connection belongs to its loop's thread; call everything on that thread.
// Callbacks run on that thread, exactly once per accepted request (also when the request
// fails, times out or the connection closes). As in libuv: when send() returns an error the
// callback is never called; otherwise it is called later, never from inside send().
// Lifetime (libuv rule): create() allocates; close() starts closing and the object deletes
// itself once its handles are closed. Pending requests fail with kIoError ("closed").
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/buffer.h"
#include "common/metrics/histogram.h"
#include "common/net/tls.h"
#include "common/status.h"
#include "protocol/memcache/client_codec.h"
#include "protocol/native/native.h"

namespace cachetier::client {

enum class Protocol { kNative, kMemcache };

struct ConnectionOptions {
  Protocol protocol = Protocol::kNative;  // kMemcache: text + meta, for stock memcached
  std::string host = "127.0.0.1";
  int port = 11211;  // host: an IPv4 or IPv6 address, or a name (getaddrinfo, off the loop)
  uint32_t timeout_ms = 250;  // per-request deadline, from send() to the reply
  // 0: a request fails timeout_ms after send(). Else a request whose deadline passes while
  // replies are still arriving (the last read less than timeout_ms ago: it waits behind
  // other requests' replies, a huge multi-get's, on a connection shared by many clients) is
  // given until timeout_ms after the last read, and at most queue_timeout_ms after send().
  // A connection that goes silent still fails its requests timeout_ms after the last byte.
  uint32_t queue_timeout_ms = 0;
  size_t max_in_flight = 16384;    // requests sent or waiting; more are refused
  uint32_t reconnect_min_ms = 20;  // first retry after a failure; doubles up to max
  uint32_t reconnect_max_ms = 2000;
  size_t max_frame = 64u << 20;  // largest reply frame accepted
  // Called on the loop thread each time the connection comes back after being lost (not on
  // the first connect): the server may have restarted empty (the router warms it then).
  std::function<void()> on_reconnect;
  // Called on the loop thread each time `host`, a name, does not resolve (it is retried with
  // the reconnect backoff, as a refused connection is).
  std::function<void()> on_resolve_failure;
  // false: send() writes at once (what a plain client wants). true: send() only queues, and the
  // owner calls flush_queued() once per loop phase, so every request queued in that phase goes
  // out in one write (cacherouter, which flushes in uv_prepare and uv_check).
  bool defer_flush = false;
  // When set, every read from the server stores the time (steady clock, ms) here: a node's
  // liveness seen across all the connections to it (cacherouter's health checker).
  std::atomic<int64_t>* heard_ms = nullptr;
  // When set, each answered request's time from send() to its reply is recorded here (by the
  // loop thread: the histogram must have no other writer). cacherouter's backend latency.
  metrics::LatencyHistogram* latency = nullptr;
  // TLS to the server when set (a client context, net::TlsContext::make_client). Requests
  // sent while the handshake runs wait for it. tls_server_name: the name sent as SNI and
  // checked in the server's certificate (default: host; an IP address is checked as one).
  std::shared_ptr<net::TlsContext> tls;
  std::string tls_server_name;
  // Credentials for a server with -Y, sent first on every connection (native: in HELLO;
  // memcache text: memcached's `set` of "user password"). Refused: the connection fails.
  std::string auth_user, auth_password;
};

// What a request asks for (the native op and its fields).
struct Call {
  native::Op op = native::Op::kNoop;
  std::string key;
  std::string value;
  uint32_t flags = 0;
  int64_t ttl = 0;
  uint64_t cas = 0;
  uint64_t delta = 1;
  uint64_t version = 0;  // 0 = none
  bool has_initial = false;
  uint64_t initial = 0;
  // What the memcache meta commands add (docs/protocol.md, "Meta options"); cacherouter sets
  // them, plain clients leave them alone.
  uint32_t options = 0;      // native::kNoBump, kLeases, ... bits
  bool compare_cas = false;  // set/replace/append/prepend/delete/incr/decr: compare `cas`
  bool has_vivify = false;   // get: create a placeholder; append/prepend: create the item
  int64_t vivify_ttl = 0;
  bool has_recache = false;  // get with kLeases: win when the item expires within recache_ttl
  int64_t recache_ttl = 0;
  bool has_touch_ttl = false;  // incr/decr, invalidating delete: the item's new ttl
  bool classic = false;        // memcache text: a store as the classic command, not ms (auth)
  int64_t touch_ttl = 0;
  uint64_t new_cas = 0;           // the CAS the changed or created item takes (0 = the node's own)
  std::vector<std::string> keys;  // multi_get / multi_delete
  // multi_set: (key, value) pairs, all with the call's flags and ttl. Over memcache text it is
  // sent as one set per item, answered as one Reply with a status per item.
  std::vector<std::pair<std::string, std::string>> items;
};

// The outcome of one request. `transport` is ok when a reply arrived (its code may still be
// NOT_FOUND and so on); otherwise kIoError (connection lost or not up), kResourceExhausted
// (queue full) or kInternal with "timeout".
struct Reply {
  Status transport;
  native::Status code = native::Status::kOk;
  std::string value;
  uint32_t flags = 0;
  uint64_t cas = 0;
  uint64_t number = 0;
  uint64_t version = 0;
  int64_t ttl = 0;  // native get replies: seconds left for an item that expires, else 0
  // Replies to calls with native::kItemMeta.
  bool has_meta = false;
  bool fetched = false;    // read before this request
  uint64_t idle = 0;       // seconds since the item was last read or written
  int64_t prior_ttl = -1;  // seconds left before this request changed it; -1 never
  uint32_t lease = 0;      // native::kWon, kStale, kWinSent, kCreated bits
  struct Value {
    std::string_view value;  // bytes held by `storage` below
    uint32_t flags = 0;
    uint64_t cas = 0;
  };
  std::vector<std::optional<Value>> values;  // multi_get, in key order; nullopt = miss
  // The bytes `values` point into: one block per decoded reply (a native multi-get reply's
  // values share one), shared, so copies and moves of the Reply keep them valid and a route
  // merging replies moves their blocks along. Whoever keeps a value past its Reply copies it.
  std::vector<std::shared_ptr<char[]>> storage;
  // A block of `n` bytes owned by this Reply, for values to point into.
  char* hold(size_t n) {
    storage.push_back(std::make_shared_for_overwrite<char[]>(n > 0 ? n : 1));
    return storage.back().get();
  }
  std::vector<native::Status> statuses;  // multi_set / multi_delete
  bool timed_out() const { return !transport.is_ok() && transport.message() == "timeout"; }
};

using ReplyCallback = std::function<void(Reply&&)>;

class Connection {
 public:
  static Connection* create(uv_loop_t* loop, const ConnectionOptions& options);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues `call`; `done` runs later with its reply or failure. Refused (and `done` dropped)
  // when the in-flight limit is reached, while reconnecting, or after close().
  Status send(const Call& call, ReplyCallback done);
  // Fails what is pending and frees the connection after its handles close.
  void close();

  // defer_flush: writes what send() queued. The first send() after a flush_queued() returns
  // with queued() true once, so the owner lists the connection to flush exactly once.
  void flush_queued() {
    queued_ = false;
    flush();
  }
  bool take_queued() {
    if (!opts_.defer_flush || queued_ || out_.empty()) return false;
    queued_ = true;
    return true;
  }

  bool connected() const { return state_ == State::kConnected; }
  size_t in_flight() const { return waiting_; }
  uint64_t reconnects() const { return reconnects_; }
  uint64_t resolve_failures() const { return resolve_failures_; }

 private:
  enum class State { kConnecting, kConnected, kBackoff, kClosing };
  struct Pending {
    ReplyCallback done;
    std::chrono::steady_clock::time_point deadline;
    bool waiting = true;  // false once answered, failed or timed out
  };
  // memcache text has no ids: replies come in request order. What the head request expects.
  struct TextExpect {
    uint64_t id;
    native::Op op;
    std::vector<std::string> keys;  // multi_get: to put values back in key order
    size_t replies_left = 1;        // multi_delete: one reply per key
    Reply partial;
    bool meta = false;  // sent as a meta command with return flags (meta options)
  };

  Connection(uv_loop_t* loop, const ConnectionOptions& options);
  static constexpr size_t kTlsScratch = 16 * 1024;
  ~Connection() = default;
  void start_connect();  // resolves a name first (uv_getaddrinfo), then connect_to
  void connect_to(const sockaddr* addr);
  void resolve_failed();
  void on_connected(int status);
  void on_read(ssize_t n);
  void on_read_text();
  Status encode_text(uint64_t id, const Call& call);
  // A call with meta options (cacherouter's mg/ms/md/ma) as the meta command that asks the
  // same of memcached; false when the call has none (the classic commands do).
  bool encode_text_meta(const Call& call, TextExpect& expect);
  void on_lost(std::string_view why);
  void queue_auth();
  void flush();
  void arm_timer();
  void on_timer();
  void fail_all(const Status& why);
  void complete(uint64_t id, Reply&& reply);
  void drop_answered();  // pops answered entries off the front of pending_
  void maybe_free();

  uv_loop_t* loop_;
  ConnectionOptions opts_;
  State state_ = State::kConnecting;
  uv_tcp_t* tcp_ = nullptr;  // a fresh handle per connection attempt
  uv_connect_t connect_req_{};
  uv_write_t write_req_{};
  uv_timer_t timer_{};        // deadlines
  uv_timer_t retry_timer_{};  // reconnect backoff
  int open_handles_ = 0;
  bool writing_ = false;
  bool queued_ = false;  // defer_flush: the owner has this connection on its list to flush
  ByteBuffer out_, inflight_, in_;
  // TLS: the session, ciphertext read (cin_) and to write (wire_), and where SSL_read
  // decrypts before the plaintext joins in_.
  std::unique_ptr<net::TlsSession> tls_;
  ByteBuffer cin_, wire_;
  std::unique_ptr<char[]> tls_scratch_;
  bool auth_failed_ = false;  // the credentials' reply was an error
  native::ResponseDecoder decoder_;
  native::Response decoded_;  // reused, so its vectors keep their capacity
  memcache::ResponseDecoder text_decoder_;
  std::deque<TextExpect> text_queue_;
  // Requests first_id_ .. next_id_ - 1 in send order; the front one is always waiting.
  std::deque<Pending> pending_;
  uint64_t first_id_ = 1;
  size_t waiting_ = 0;  // entries of pending_ still waiting
  uint64_t next_id_ = 1;
  uint32_t backoff_ms_ = 0;
  uint64_t reconnects_ = 0;
  uint64_t resolve_failures_ = 0;
  std::chrono::steady_clock::time_point read_at_{};  // the read being handled (on_read)
  bool ever_connected_ = false;
};

}  // namespace cachetier::client
