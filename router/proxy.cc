// cacherouter's proxy: workers, client connections, routing. See proxy.h.
#include "router/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "client/connection.h"
#include "common/buffer.h"
#include "common/free_list.h"
#include "common/uvx/run_with_idle_polls.h"
#include "common/version.h"
#include "protocol/memcache/server_codec.h"
#include "protocol/native/native.h"

namespace cachetier::router {

namespace {
using client::Call;
using client::Reply;
using native::Op;
namespace mc = memcache;
using Done = std::function<void(Reply&&)>;

constexpr size_t kMaxQueued = 4096;         // requests in flight per client connection
constexpr size_t kOutHighWater = 4u << 20;  // stop reading a client that does not read
constexpr int64_t kTombstoneSeconds = 60;   // versioned deletes: lifetime of the tombstone
constexpr size_t kRepairBatch = 256;        // missed keys replayed per node per tick
constexpr uint64_t kHealthTickMs = 20;
constexpr size_t kMaxReplicas = 16;  // per shard (config check)

Reply failed(std::string why) {
  Reply r;
  r.transport = Status(StatusCode::kIoError, std::move(why));
  return r;
}

}  // namespace
native::Status superseded(Op op);
namespace {

bool versioned_op(Op op) {
  switch (op) {
    case Op::kSet:
    case Op::kAdd:
    case Op::kReplace:
    case Op::kAppend:
    case Op::kPrepend:
    case Op::kCas:
    case Op::kDelete:
    case Op::kIncr:
    case Op::kDecr:
      return true;
    default:
      return false;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Worker

class Downstream;
struct Slot;

class Worker {
 public:
  Worker(Router& router, int index, int listen_fd)
      : router_(router), index_(index), listen_fd_(listen_fd) {}

  void run();
  void post_stop() { uv_async_send(&stop_async_); }
  void post_reload() { uv_async_send(&reload_async_); }
  // Called before run(): initializes the loop and handles on the starting thread.
  void init();

  Router& router() { return router_; }
  const Topology& topo() const { return *topo_; }
  const RouterConfig& cfg() const { return topo_->config; }
  uv_loop_t* loop() { return &loop_; }
  void mark_dirty(Downstream* d) {
    ++activity_;
    dirty_.push_back(d);
  }
  void note_activity() { ++activity_; }
  void flush_dirty();
  void forget(Downstream* d);

  // Routing. Callbacks may run before these return (when no replica can be tried).
  void read(size_t shard, Call call, bool primary_only, Done done);
  void write(size_t shard, Call call, Done done);
  void cas(size_t shard, Call call, Done done);
  void flush_all(int64_t delay, Done done);

 private:
  // A read in progress: tries replicas in `order` until one answers. Owned by the request:
  // deleted when `done` has run (each Connection callback runs exactly once). Plain pointers
  // keep the Connection callback ([this, ctx]) inside std::function's inline buffer.
  struct ReadCtx {
    const Topology* topo = nullptr;
    size_t shard = 0;
    Call call;
    Done done;
    uint8_t order[kMaxReplicas];
    uint8_t n_order = 0, next = 0, current = 0;
    uint8_t cold[kMaxReplicas];  // warming replicas that missed: back-fill on a hit
    uint8_t n_cold = 0;
    std::optional<Reply> miss;  // a replica answered NOT_FOUND
    Reply last;
  };
  // A write in progress: one leg per replica written; deleted after the last leg's reply.
  struct WriteCtx;
  struct WriteLeg {
    WriteCtx* ctx;
    uint8_t replica;
  };
  struct WriteCtx {
    const Topology* topo = nullptr;
    size_t shard = 0;
    Call call;
    Done done;
    WriteLeg legs[kMaxReplicas];
    // The answer is the reply of the first replica (in replica order) that answered, else the
    // first failure: only those two are kept.
    std::optional<Reply> first_ok, first_failure;
    uint8_t first_ok_at = kMaxReplicas, first_failure_at = kMaxReplicas;
    size_t left = 0;
    bool answered = false;
    bool router_version = false;  // the version is ours (not the client's)
  };

  client::Connection* conn(const Node& n);
  void attempt(ReadCtx* ctx);
  void finish_read(ReadCtx* ctx, Reply&& r);
  void on_read_reply(ReadCtx* ctx, Reply&& r);
  void on_write_reply(WriteLeg* leg, Reply&& r);
  void note_missed(Node& n, const Call& call);
  bool missed_any(const Node& n, const Call& call) const;
  void backfill(const ReadCtx& ctx, const Reply& hit);
  void note_failure(Node& n, const Reply& r);
  void adopt_topology();
  void health_tick();
  void probe(const std::shared_ptr<Node>& n);
  void empty_node(const std::shared_ptr<const Topology>& topo, const std::shared_ptr<Node>& n);
  void repair(const std::shared_ptr<const Topology>& topo, size_t shard,
              const std::shared_ptr<Node>& n);
  void on_connection();

  Router& router_;
  int index_;
  int listen_fd_;
  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_async_t stop_async_{}, reload_async_{};
  uv_check_t flush_check_{};
  uv_prepare_t flush_prepare_{};
  uv_timer_t health_timer_{};
  std::shared_ptr<const Topology> topo_;
  // Every topology this worker has used: requests in flight point at theirs (reloads are rare;
  // each is a few KB).
  std::vector<std::shared_ptr<const Topology>> kept_;
  std::unordered_map<std::string, client::Connection*> conns_;      // by node address
  std::unordered_set<std::string> probing_, repairing_, emptying_;  // worker 0
  std::vector<Downstream*> dirty_;
  std::unordered_set<Downstream*> clients_;
  // Spare request contexts and reply slots (a pipelining client keeps hundreds in flight).
  FreeList<Slot> slots_{4096};
  FreeList<ReadCtx> read_ctxs_{4096};
  FreeList<WriteCtx> write_ctxs_{1024};
  uint64_t rr_ = 0;
  uint64_t activity_ = 0;  // reads and replies, for the idle polling in run()
  bool stopping_ = false;

  friend class Downstream;
};

// ---------------------------------------------------------------------------------------------
// Downstream: one client connection

// One request's place in a client connection's in-order reply queue. Two references: the
// queue's and the pending reply's (Fill). Plain pointers and a count rather than shared_ptr:
// a Fill then fits in std::function's inline buffer, and routing a request allocates less
// (bench/RESULTS.md, router profile).
struct Slot {
  Downstream* owner = nullptr;       // null once the connection has closed
  FreeList<Slot>* spares = nullptr;  // the worker's, where the slot goes back when done
  int refs = 2;
  bool done = false;
  bool close_after = false;
  bool with_cas = false;  // text get/gets: what the reply needs
  std::string key;
  ByteBuffer out;  // the reply, while replies before it are still missing
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

 private:
  bool next_out() const;  // the connection is open and this slot's reply is next
  void finish() const;
  Slot* s_;
};

class Downstream {
 public:
  explicit Downstream(Worker& w) : w_(w), text_(limits(w)), native_(native_frame(w)) {
    uv_tcp_init(w.loop(), &tcp_);
    tcp_.data = this;
  }
  uv_tcp_t* tcp() { return &tcp_; }
  void start();
  void close();
  void drain();
  void flush();
  RouterStats& stats() { return w_.router().stats(); }

 private:
  static mc::DecoderLimits limits(Worker& w) {
    mc::DecoderLimits l;
    l.max_value = w.cfg().max_value;
    return l;
  }
  static size_t native_frame(Worker& w) { return w.cfg().max_value * 2 + (64 << 10); }

  Fill push();
  void on_read(ssize_t n);
  void process();
  void handle_text(const mc::Request& req, Fill fill);
  void handle_native(const native::Request& req, Fill fill);
  void text_get(const mc::Request& req, Fill fill);
  void text_store(const mc::Request& req, Fill fill);
  void text_meta(const mc::Request& req, Fill fill);
  std::string text_stats();
  void maybe_resume();

  Worker& w_;
  uv_tcp_t tcp_{};
  uv_write_t write_req_{};
  enum class Proto { kUnknown, kText, kNative } proto_ = Proto::kUnknown;
  mc::RequestDecoder text_;
  native::RequestDecoder native_;
  mc::Request text_req_;
  native::Request native_req_;
  ByteBuffer in_, out_, inflight_;
  std::deque<Slot*> queue_;
  bool writing_ = false, closing_ = false, paused_ = false, dirty_ = false;
  bool close_when_flushed_ = false;

  friend class Fill;
};

Fill Downstream::push() {
  Slot* slot = w_.slots_.take();
  slot->spares = &w_.slots_;
  slot->owner = this;
  queue_.push_back(slot);
  return Fill(slot);
}

bool Fill::next_out() const {
  Downstream* d = s_->owner;
  return d != nullptr && !d->queue_.empty() && d->queue_.front() == s_;
}

void Fill::finish() const {
  if (s_->owner != nullptr) {
    s_->done = true;
    s_->owner->drain();  // (a slot written straight to the output adds nothing there)
  }
  s_->unref();
}

void Fill::operator()(std::string_view bytes) const {
  if (next_out()) {
    s_->owner->out_.append(bytes);
  } else if (s_->owner != nullptr) {
    s_->out.append(bytes);
  }
  finish();
}

template <class F>
void Fill::write(F&& produce) const {
  if (next_out()) {
    produce(s_->owner->out_);
  } else if (s_->owner != nullptr) {
    produce(s_->out);
  }
  finish();
}

void Downstream::start() {
  uv_tcp_nodelay(&tcp_, 1);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* d = static_cast<Downstream*>(h->data);
        char* p = d->in_.reserve(64 * 1024);
        *buf = uv_buf_init(p, static_cast<unsigned>(d->in_.writable()));
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        static_cast<Downstream*>(s->data)->on_read(n);
      });
}

void Downstream::on_read(ssize_t n) {
  if (n < 0) {
    close();
    return;
  }
  in_.commit(static_cast<size_t>(n));
  w_.note_activity();
  process();
}

void Downstream::process() {
  while (!in_.empty() && !closing_ && !close_when_flushed_) {
    if (queue_.size() >= kMaxQueued || out_.size() > kOutHighWater) {
      if (!paused_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
      paused_ = true;
      return;
    }
    if (proto_ == Proto::kUnknown) {
      proto_ =
          static_cast<uint8_t>(in_.data()[0]) == native::kMagic ? Proto::kNative : Proto::kText;
    }
    if (proto_ == Proto::kText) {
      // Reused so that its keys vector keeps its capacity; cleared whole, because the routing
      // code copies fields the decoder sets only for some commands (cas_unique, delta).
      mc::Request& req = text_req_;
      req.clear();
      mc::DecodeResult r = text_.feed(in_.view(), req);
      if (r.status == mc::DecodeStatus::kNeedMore) {
        in_.consume(r.consumed);
        break;
      }
      Fill fill = push();
      if (r.status == mc::DecodeStatus::kComplete) {
        handle_text(req, fill);
      } else {
        w_.router().stats().client_errors.fetch_add(1, std::memory_order_relaxed);
        fill(std::string(r.error));
        if (r.status == mc::DecodeStatus::kFatal) {
          close_when_flushed_ = true;
        }
      }
      in_.consume(r.consumed);
    } else {
      native::Request& req = native_req_;  // reused (cleared by feed)
      native::DecodeResult r = native_.feed(in_.view(), req);
      if (r.status == native::DecodeStatus::kNeedMore) break;
      Fill fill = push();
      if (r.status == native::DecodeStatus::kComplete) {
        handle_native(req, fill);
      } else if (r.status == native::DecodeStatus::kError) {
        w_.router().stats().client_errors.fetch_add(1, std::memory_order_relaxed);
        ByteBuffer b;
        native::FrameWriter fw(b);
        fw.begin_reply(r.id, r.error, 1);
        fw.field(native::kMessage);
        fw.str(r.message);
        fw.end();
        fill(std::string(b.view()));
      } else {
        w_.router().stats().client_errors.fetch_add(1, std::memory_order_relaxed);
        fill(std::string());
        close_when_flushed_ = true;
        in_.clear();
        break;
      }
      in_.consume(r.consumed);
    }
  }
}

void Downstream::drain() {
  while (!queue_.empty() && queue_.front()->done) {
    Slot* s = queue_.front();
    out_.append(s->out.view());
    if (s->close_after) close_when_flushed_ = true;
    queue_.pop_front();
    s->unref();
  }
  if (!dirty_) {
    dirty_ = true;
    w_.mark_dirty(this);
  }
}

void Downstream::flush() {
  dirty_ = false;
  if (closing_) return;
  if (!writing_ && !out_.empty()) {
    inflight_.swap(out_);
    writing_ = true;
    write_req_.data = this;
    uv_buf_t b = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
    int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
                      [](uv_write_t* req, int status) {
                        auto* d = static_cast<Downstream*>(req->data);
                        d->writing_ = false;
                        d->inflight_.clear();
                        if (status < 0 || d->closing_) {
                          d->close();
                          return;
                        }
                        d->flush();
                      });
    if (rc != 0) {
      writing_ = false;
      close();
      return;
    }
  }
  if (!writing_ && out_.empty() && close_when_flushed_ && queue_.empty()) {
    close();
    return;
  }
  maybe_resume();
}

void Downstream::maybe_resume() {
  if (!paused_ || closing_) return;
  if (queue_.size() < kMaxQueued / 2 && out_.size() < kOutHighWater / 2) {
    paused_ = false;
    start();
    process();  // bytes already buffered
  }
}

void Downstream::close() {
  if (closing_) return;
  closing_ = true;
  for (Slot* s : queue_) {  // replies still on their way are dropped when they arrive
    s->owner = nullptr;
    s->unref();
  }
  queue_.clear();
  w_.forget(this);
  w_.router().stats().curr_connections.fetch_sub(1, std::memory_order_relaxed);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_),
           [](uv_handle_t* h) { delete static_cast<Downstream*>(h->data); });
}

// ---- memcache text front end ----

namespace {

std::string server_error(const Reply& r) {
  return "SERVER_ERROR " +
         (r.transport.is_ok() ? std::string("backend error") : r.transport.message()) + "\r\n";
}

std::string text_status(const Reply& r, Op op) {
  if (!r.transport.is_ok()) return server_error(r);
  switch (r.code) {
    case native::Status::kOk:
      if (op == Op::kDelete) return "DELETED\r\n";
      if (op == Op::kTouch) return "TOUCHED\r\n";
      if (op == Op::kIncr || op == Op::kDecr) return std::to_string(r.number) + "\r\n";
      return "STORED\r\n";
    case native::Status::kNotStored:
      return "NOT_STORED\r\n";
    case native::Status::kExists:
      return "EXISTS\r\n";
    case native::Status::kNotFound:
      return "NOT_FOUND\r\n";
    case native::Status::kNonNumeric:
      return std::string(mc::reply::kNonNumeric);
    case native::Status::kTooLarge:
      return std::string(mc::reply::kTooLarge);
    case native::Status::kNoMemory:
      return std::string(mc::reply::kNoMemory);
    case native::Status::kOlderVersion:
      if (op == Op::kIncr || op == Op::kDecr) {
        return "SERVER_ERROR superseded by a concurrent write\r\n";
      }
      return "NOT_STORED\r\n";
    default:
      return "SERVER_ERROR " + std::string(native::status_name(r.code)) + "\r\n";
  }
}

// An mg hit: VA (with v) or HD, then the asked return flags in the order sent, then the echoed
// ones (O, k, b) in `base`.
std::string meta_value_reply(const mc::MetaFlags& f, const Reply& r, const std::string& base) {
  std::string flags;
  for (int i = 0; i < f.count; ++i) {
    char ch = f.order[i];
    if (ch == 'f') flags += " f" + std::to_string(r.flags);
    if (ch == 'c') flags += " c" + std::to_string(r.cas);
    if (ch == 's') flags += " s" + std::to_string(r.value.size());
    if (ch == 't') flags += " t" + std::to_string(r.ttl > 0 ? r.ttl : -1);
  }
  if (f.has('v')) {
    return "VA " + std::to_string(r.value.size()) + flags + base + "\r\n" + r.value + "\r\n";
  }
  return "HD" + flags + base + "\r\n";
}

}  // namespace

// A write whose router-issued version lost to a newer one already on the node: another client
// wrote the key concurrently (through another worker or router) and that write wins on every
// replica. For the client this write happened just before the winning one: a set, replace,
// append, prepend, touch or delete took effect and was overwritten. An add lost (the key
// exists) and a cas lost (the item changed). incr/decr keep OLDER_VERSION: the number it
// would return is unknown.
native::Status superseded(Op op) {
  switch (op) {
    case Op::kAdd:
      return native::Status::kNotStored;
    case Op::kCas:
      return native::Status::kExists;
    case Op::kIncr:
    case Op::kDecr:
      return native::Status::kOlderVersion;
    default:
      return native::Status::kOk;
  }
}

namespace {

Op text_op(mc::Command c) {
  switch (c) {
    case mc::Command::kSet:
      return Op::kSet;
    case mc::Command::kAdd:
      return Op::kAdd;
    case mc::Command::kReplace:
      return Op::kReplace;
    case mc::Command::kAppend:
      return Op::kAppend;
    case mc::Command::kPrepend:
      return Op::kPrepend;
    case mc::Command::kCas:
      return Op::kCas;
    case mc::Command::kDelete:
      return Op::kDelete;
    case mc::Command::kIncr:
      return Op::kIncr;
    case mc::Command::kDecr:
      return Op::kDecr;
    case mc::Command::kTouch:
      return Op::kTouch;
    default:
      return Op::kNoop;
  }
}

}  // namespace

void Downstream::handle_text(const mc::Request& req, Fill fill) {
  switch (req.command) {
    case mc::Command::kGet:
    case mc::Command::kGets:
    case mc::Command::kGat:
    case mc::Command::kGats:
      text_get(req, std::move(fill));
      return;
    case mc::Command::kSet:
    case mc::Command::kAdd:
    case mc::Command::kReplace:
    case mc::Command::kAppend:
    case mc::Command::kPrepend:
    case mc::Command::kCas:
    case mc::Command::kDelete:
    case mc::Command::kIncr:
    case mc::Command::kDecr:
    case mc::Command::kTouch:
      text_store(req, std::move(fill));
      return;
    case mc::Command::kFlushAll: {
      bool quiet = req.noreply;
      w_.flush_all(req.delay, [fill, quiet](Reply&& r) {
        fill(quiet ? "" : r.transport.is_ok() ? "OK\r\n" : server_error(r));
      });
      return;
    }
    case mc::Command::kVersion:
      fill("VERSION " CACHETIER_VERSION "-cacherouter\r\n");
      return;
    case mc::Command::kVerbosity:
      fill(req.noreply ? "" : "OK\r\n");
      return;
    case mc::Command::kStats:
      // The router's own counters; per-node details (items, slabs, ...) live on the nodes.
      fill(req.stats_arg.empty() ? text_stats()
                                 : "CLIENT_ERROR stats " + std::string(req.stats_arg) +
                                       " is not answered by cacherouter: ask the nodes\r\n");
      return;
    case mc::Command::kQuit:
      fill("");
      close_when_flushed_ = true;
      return;
    case mc::Command::kMetaNoop:
      fill("MN\r\n");
      return;
    case mc::Command::kMetaGet:
    case mc::Command::kMetaSet:
    case mc::Command::kMetaDelete:
    case mc::Command::kMetaArithmetic:
      text_meta(req, std::move(fill));
      return;
  }
  fill("ERROR\r\n");
}

void Downstream::text_get(const mc::Request& req, Fill fill) {
  const bool with_cas = req.command == mc::Command::kGets || req.command == mc::Command::kGats;
  const bool touch = req.command == mc::Command::kGat || req.command == mc::Command::kGats;
  const Topology& topo = w_.topo();
  const bool miss_when_down = topo.config.all_down == AllDown::kMiss;
  RouterStats& stats = w_.router().stats();
  stats.cmd_get.fetch_add(req.keys.size(), std::memory_order_relaxed);
  if (req.keys.size() == 1 && !touch) {
    // The common case, kept lean: everything the reply needs is in the slot.
    Slot* slot = fill.slot();
    slot->key.assign(req.keys[0].data(), req.keys[0].size());
    slot->with_cas = with_cas;
    Call c;
    c.op = with_cas ? Op::kGets : Op::kGet;
    c.key = slot->key;
    size_t shard = topo.ring.shard_for(c.key);
    w_.read(shard, std::move(c), with_cas, [fill](Reply&& r) {
      Slot* s = fill.slot();
      if (s->owner == nullptr) return fill(std::string());
      RouterStats& st = s->owner->stats();
      if (r.transport.is_ok() && r.code == native::Status::kOk) {
        st.get_hits.fetch_add(1, std::memory_order_relaxed);
        return fill.write([&](ByteBuffer& out) {
          mc::write_value(out, s->key, r.flags, r.value, s->with_cas ? &r.cas : nullptr);
          out.append("END\r\n");
        });
      }
      if (r.transport.is_ok() && r.code == native::Status::kNotFound) {
        st.get_misses.fetch_add(1, std::memory_order_relaxed);
        return fill("END\r\n");
      }
      if (!r.transport.is_ok() && s->owner->w_.cfg().all_down == AllDown::kMiss) {
        st.get_misses.fetch_add(1, std::memory_order_relaxed);
        return fill("END\r\n");
      }
      fill(server_error(r));
    });
    return;
  }
  if (touch) {
    // gat/gats: a write (the new TTL goes to every replica), one key at a time.
    struct Acc {
      std::vector<std::string> keys;
      std::vector<std::optional<Reply>> hits;
      size_t left = 0;
      std::string error;
    };
    auto acc = std::make_shared<Acc>();
    for (auto k : req.keys) acc->keys.emplace_back(k);
    acc->hits.resize(req.keys.size());
    acc->left = req.keys.size();
    for (size_t i = 0; i < req.keys.size(); ++i) {
      std::string key(req.keys[i]);
      Call c;
      c.op = Op::kGat;
      c.key = key;
      c.ttl = req.exptime;
      size_t shard = topo.ring.shard_for(key);
      w_.write(shard, std::move(c), [acc, i, with_cas, miss_when_down, fill, &stats](Reply&& r) {
        if (r.transport.is_ok() && r.code == native::Status::kOk) {
          stats.get_hits.fetch_add(1, std::memory_order_relaxed);
          acc->hits[i] = std::move(r);
        } else if (r.transport.is_ok() && r.code == native::Status::kNotFound) {
          stats.get_misses.fetch_add(1, std::memory_order_relaxed);
        } else if (!r.transport.is_ok() && miss_when_down) {
          stats.get_misses.fetch_add(1, std::memory_order_relaxed);
        } else if (acc->error.empty()) {
          acc->error = server_error(r);
        }
        if (--acc->left > 0) return;
        if (!acc->error.empty()) return fill(acc->error);
        fill.write([&](ByteBuffer& out) {
          for (size_t k = 0; k < acc->keys.size(); ++k) {
            const auto& h = acc->hits[k];
            if (h)
              mc::write_value(out, acc->keys[k], h->flags, h->value, with_cas ? &h->cas : nullptr);
          }
          out.append("END\r\n");
        });
      });
    }
    return;
  }
  // Multi-get: one multi_get per shard, all in parallel, merged in request order.
  struct Multi {
    std::vector<std::string> keys;
    std::vector<std::optional<Reply::Value>> values;
    size_t left = 0;
    std::string error;
  };
  auto m = std::make_shared<Multi>();
  for (auto k : req.keys) m->keys.emplace_back(k);
  m->values.resize(m->keys.size());
  std::map<size_t, std::vector<size_t>> by_shard;  // shard -> positions
  for (size_t i = 0; i < m->keys.size(); ++i)
    by_shard[topo.ring.shard_for(m->keys[i])].push_back(i);
  m->left = by_shard.size();
  for (auto& [shard, positions] : by_shard) {
    Call c;
    c.op = Op::kMultiGet;
    for (size_t p : positions) c.keys.push_back(m->keys[p]);
    w_.read(shard, std::move(c), with_cas,
            [m, positions = positions, with_cas, miss_when_down, fill, &stats](Reply&& r) {
              if (r.transport.is_ok() && r.code == native::Status::kOk &&
                  r.values.size() == positions.size()) {
                for (size_t j = 0; j < positions.size(); ++j) {
                  m->values[positions[j]] = std::move(r.values[j]);
                }
              } else if (!(!r.transport.is_ok() && miss_when_down) && m->error.empty()) {
                m->error = server_error(r);
              }
              if (--m->left > 0) return;
              if (!m->error.empty()) return fill(m->error);
              uint64_t hits = 0;
              for (const auto& v : m->values) hits += v.has_value();
              fill.write([&](ByteBuffer& out) {
                for (size_t i = 0; i < m->keys.size(); ++i) {
                  const auto& v = m->values[i];
                  if (v) {
                    mc::write_value(out, m->keys[i], v->flags, v->value,
                                    with_cas ? &v->cas : nullptr);
                  }
                }
                out.append("END\r\n");
              });
              stats.get_hits.fetch_add(hits, std::memory_order_relaxed);
              stats.get_misses.fetch_add(m->keys.size() - hits, std::memory_order_relaxed);
            });
  }
}

void Downstream::text_store(const mc::Request& req, Fill fill) {
  Call c;
  c.op = text_op(req.command);
  c.key = std::string(req.key());
  c.value = std::string(req.value);
  c.flags = req.client_flags;
  c.ttl = req.exptime;
  c.cas = req.cas_unique;
  c.delta = req.delta;
  if (c.op == Op::kDelete) c.ttl = kTombstoneSeconds;
  if (c.op != Op::kDelete && c.op != Op::kIncr && c.op != Op::kDecr && c.op != Op::kTouch) {
    w_.router().stats().cmd_set.fetch_add(1, std::memory_order_relaxed);
  }
  size_t shard = w_.topo().ring.shard_for(c.key);
  Op op = c.op;
  bool quiet = req.noreply;
  if (quiet) fill("");  // nothing to wait for: the client expects no reply
  Done done = [fill, op, quiet](Reply&& r) {
    if (!quiet) fill(text_status(r, op));
  };
  if (op == Op::kCas) {
    w_.cas(shard, std::move(c), std::move(done));
  } else {
    w_.write(shard, std::move(c), std::move(done));
  }
}

// Meta commands: mg, ms, md and ma with the common flags, translated to the same routes.
void Downstream::text_meta(const mc::Request& req, Fill fill) {
  const mc::MetaFlags& f = req.meta;
  for (int i = 0; i < f.count; ++i) {
    if (std::string_view("vfcktsOqbTFCMDNJI").find(f.order[i]) == std::string_view::npos) {
      fill(std::string("CLIENT_ERROR flag ") + f.order[i] + " is not supported by cacherouter\r\n");
      return;
    }
  }
  std::string key(req.key());
  // Return flags echoed on every reply: O(opaque), k(key), b.
  auto echo = [&f, key]() {
    std::string o;
    for (int i = 0; i < f.count; ++i) {
      char c = f.order[i];
      if (c == 'O') o += " O" + std::string(f.opaque);
      if (c == 'k') o += " k" + std::string(f.raw_key);
      if (c == 'b') o += " b";
    }
    return o;
  };
  std::string base = echo();
  bool quiet = f.has('q');
  size_t shard = w_.topo().ring.shard_for(key);
  switch (req.command) {
    case mc::Command::kMetaGet: {
      Call c;
      c.op = f.has('T') ? Op::kGat : Op::kGet;
      c.key = key;
      c.ttl = f.ttl;
      w_.router().stats().cmd_get.fetch_add(1, std::memory_order_relaxed);
      // Copy the flags: the request's views die after this call.
      auto owned = std::make_shared<mc::MetaFlags>(f);
      auto done = [owned, fill, base, quiet, miss = w_.cfg().all_down == AllDown::kMiss,
                   &stats = w_.router().stats()](Reply&& r) {
        bool hit = r.transport.is_ok() && r.code == native::Status::kOk;
        if (!hit && (r.transport.is_ok() || miss)) {
          stats.get_misses.fetch_add(1, std::memory_order_relaxed);
          return fill(quiet ? "" : "EN\r\n");
        }
        if (!hit) return fill(server_error(r));
        stats.get_hits.fetch_add(1, std::memory_order_relaxed);
        fill(meta_value_reply(*owned, r, base));
      };
      if (c.op == Op::kGat) {
        w_.write(shard, std::move(c), std::move(done));
      } else {
        w_.read(shard, std::move(c), f.has('c'), std::move(done));
      }
      return;
    }
    case mc::Command::kMetaSet: {
      Call c;
      c.key = key;
      c.value = std::string(req.value);
      c.flags = f.client_flags;
      c.ttl = f.ttl;
      c.op = Op::kSet;
      switch (f.mode) {
        case 'E':
        case 'e':
          c.op = Op::kAdd;
          break;
        case 'A':
        case 'a':
          c.op = Op::kAppend;
          break;
        case 'P':
        case 'p':
          c.op = Op::kPrepend;
          break;
        case 'R':
        case 'r':
          c.op = Op::kReplace;
          break;
        default:
          break;
      }
      if (f.has('C')) {
        c.op = Op::kCas;
        c.cas = f.compare_cas;
      }
      w_.router().stats().cmd_set.fetch_add(1, std::memory_order_relaxed);
      auto done = [fill, base, quiet](Reply&& r) {
        if (!r.transport.is_ok()) return fill(server_error(r));
        switch (r.code) {
          case native::Status::kOk:
            return fill(quiet ? "" : "HD" + base + "\r\n");
          case native::Status::kNotStored:
          case native::Status::kOlderVersion:
            return fill("NS" + base + "\r\n");
          case native::Status::kExists:
            return fill("EX" + base + "\r\n");
          case native::Status::kNotFound:
            return fill("NF" + base + "\r\n");
          default:
            return fill(text_status(r, Op::kSet));
        }
      };
      if (c.op == Op::kCas) {
        w_.cas(shard, std::move(c), done);
      } else {
        w_.write(shard, std::move(c), done);
      }
      return;
    }
    case mc::Command::kMetaDelete: {
      Call c;
      c.op = Op::kDelete;
      c.key = key;
      c.ttl = kTombstoneSeconds;
      w_.write(shard, std::move(c), [fill, base, quiet](Reply&& r) {
        if (!r.transport.is_ok()) return fill(server_error(r));
        if (r.code == native::Status::kOk) return fill(quiet ? "" : "HD" + base + "\r\n");
        if (r.code == native::Status::kNotFound) return fill("NF" + base + "\r\n");
        fill(text_status(r, Op::kDelete));
      });
      return;
    }
    case mc::Command::kMetaArithmetic: {
      Call c;
      c.op = (f.mode == 'D' || f.mode == 'd' || f.mode == '-') ? Op::kDecr : Op::kIncr;
      c.key = key;
      c.delta = f.delta;
      if (f.has('N')) {
        c.has_initial = true;
        c.initial = f.initial;
        c.ttl = f.vivify_ttl;
      }
      bool want_value = f.has('v');
      w_.write(shard, std::move(c), [fill, base, quiet, want_value](Reply&& r) {
        if (!r.transport.is_ok()) return fill(server_error(r));
        if (r.code == native::Status::kOk) {
          if (want_value) {
            std::string n = std::to_string(r.number);
            return fill("VA " + std::to_string(n.size()) + base + "\r\n" + n + "\r\n");
          }
          return fill(quiet ? "" : "HD" + base + "\r\n");
        }
        if (r.code == native::Status::kNotFound) return fill("NF" + base + "\r\n");
        fill(text_status(r, Op::kIncr));
      });
      return;
    }
    default:
      fill("ERROR\r\n");
  }
}

std::string Downstream::text_stats() {
  ByteBuffer b;
  Router& r = w_.router();
  RouterStats& s = r.stats();
  auto topo = r.topology();
  auto stat = [&b](std::string_view name, auto v) {
    if constexpr (std::is_arithmetic_v<decltype(v)>) {
      mc::write_stat(b, name, static_cast<uint64_t>(v));
    } else {
      mc::write_stat(b, name, std::string_view(v));
    }
  };
  stat("pid", static_cast<uint64_t>(getpid()));
  stat("uptime", static_cast<uint64_t>((now_ms() - r.started_ms()) / 1000));
  stat("version", CACHETIER_VERSION "-cacherouter");
  stat("threads", static_cast<uint64_t>(r.startup_config().threads));
  stat("curr_connections", s.curr_connections.load());
  stat("total_connections", s.total_connections.load());
  stat("rejected_connections", s.rejected_connections.load());
  stat("cmd_get", s.cmd_get.load());
  stat("cmd_set", s.cmd_set.load());
  stat("get_hits", s.get_hits.load());
  stat("get_misses", s.get_misses.load());
  stat("client_errors", s.client_errors.load());
  stat("config_generation", topo->generation);
  stat("reloads", s.reloads.load());
  stat("reload_errors", s.reload_errors.load());
  for (const Shard& sh : topo->shards) {
    std::string p = "shard:" + sh.name + ":";
    stat(p + "requests", sh.counters->requests.load());
    stat(p + "errors", sh.counters->errors.load());
    stat(p + "all_down", sh.counters->all_down.load());
    for (const auto& n : sh.replicas) {
      std::string q = "node:" + n->addr() + ":";
      stat(q + "shard", sh.name);
      stat(q + "state", state_name(n->state()));
      stat(q + "requests", n->counters.requests.load());
      stat(q + "errors", n->counters.errors.load());
      stat(q + "timeouts", n->counters.timeouts.load());
      stat(q + "failovers", n->counters.failovers.load());
      stat(q + "marked_down", n->counters.marked_down.load());
      stat(q + "missed_keys", static_cast<uint64_t>(n->missed_size()));
      stat(q + "repaired", n->counters.repaired.load());
      stat(q + "backfills", n->counters.backfills.load());
      stat(q + "flushed", n->counters.flushed.load());
    }
  }
  b.append("END\r\n");
  return std::string(b.view());
}

// ---- native front end ----

void Downstream::handle_native(const native::Request& req, Fill fill) {
  const uint64_t id = req.id;
  auto frame = [id](native::Status st, auto&& fields, uint32_t n) {
    ByteBuffer b;
    native::FrameWriter fw(b);
    fw.begin_reply(id, st, n);
    fields(fw);
    fw.end();
    return std::string(b.view());
  };
  auto status_only = [frame](native::Status st) {
    return frame(
        st, [](native::FrameWriter&) {}, 0);
  };
  auto error_frame = [frame](const Reply& r) {
    std::string msg = r.transport.is_ok() ? "backend error" : r.transport.message();
    return frame(
        native::Status::kServerError,
        [&msg](native::FrameWriter& fw) {
          fw.field(native::kMessage);
          fw.str(msg);
        },
        1);
  };
  const Topology& topo = w_.topo();
  const bool miss_when_down = topo.config.all_down == AllDown::kMiss;
  RouterStats& stats = w_.router().stats();
  switch (req.op) {
    case Op::kHello:
      fill(frame(
          native::Status::kOk,
          [](native::FrameWriter& fw) {
            fw.field(native::kProtoVersion);
            fw.uint(native::kProtocolVersion);
            fw.field(native::kFeatures);
            fw.array(1);
            fw.str("multi");
            fw.field(native::kServer);
            fw.str("cacherouter " CACHETIER_VERSION);
          },
          3));
      return;
    case Op::kNoop:
      fill(status_only(native::Status::kOk));
      return;
    case Op::kVersion:
      fill(frame(
          native::Status::kOk,
          [](native::FrameWriter& fw) {
            fw.field(native::kServer);
            fw.str("cacherouter " CACHETIER_VERSION);
          },
          1));
      return;
    case Op::kStats: {
      // The same counters as the text `stats`, as a map.
      std::string text = text_stats();
      std::vector<std::pair<std::string, std::string>> kv;
      size_t pos = 0;
      while (true) {
        size_t end = text.find("\r\n", pos);
        if (end == std::string::npos) break;
        std::string line = text.substr(pos, end - pos);
        pos = end + 2;
        if (line.rfind("STAT ", 0) != 0) continue;
        size_t sp = line.find(' ', 5);
        kv.emplace_back(line.substr(5, sp - 5), sp == std::string::npos ? "" : line.substr(sp + 1));
      }
      fill(frame(
          native::Status::kOk,
          [&kv](native::FrameWriter& fw) {
            fw.field(native::kStats);
            fw.map(static_cast<uint32_t>(kv.size()));
            for (auto& [k, v] : kv) {
              fw.str(k);
              fw.str(v);
            }
          },
          1));
      return;
    }
    case Op::kFlush:
      w_.flush_all(req.delay, [fill, status_only, error_frame](Reply&& r) {
        fill(r.transport.is_ok() ? status_only(native::Status::kOk) : error_frame(r));
      });
      return;
    case Op::kGet:
    case Op::kGets:
    case Op::kGat: {
      Call c;
      c.op = req.op;
      c.key = std::string(req.key);
      c.ttl = req.ttl;
      stats.cmd_get.fetch_add(1, std::memory_order_relaxed);
      auto done = [id, fill, status_only, error_frame, miss_when_down, &stats](Reply&& r) {
        if (r.transport.is_ok() && r.code == native::Status::kOk) {
          stats.get_hits.fetch_add(1, std::memory_order_relaxed);
          ByteBuffer b;
          native::FrameWriter fw(b);
          native::write_value_reply(fw, id, r.value, r.flags, r.cas, r.version, r.ttl);
          return fill(std::string(b.view()));
        }
        if (r.transport.is_ok() || miss_when_down) {
          stats.get_misses.fetch_add(1, std::memory_order_relaxed);
          if (r.transport.is_ok() && r.code != native::Status::kNotFound) {
            return fill(status_only(r.code));
          }
          return fill(status_only(native::Status::kNotFound));
        }
        fill(error_frame(r));
      };
      size_t shard = topo.ring.shard_for(c.key);
      if (req.op == Op::kGat) {
        w_.write(shard, std::move(c), done);
      } else {
        w_.read(shard, std::move(c), req.op == Op::kGets, done);
      }
      return;
    }
    case Op::kSet:
    case Op::kAdd:
    case Op::kReplace:
    case Op::kAppend:
    case Op::kPrepend:
    case Op::kCas:
    case Op::kDelete:
    case Op::kIncr:
    case Op::kDecr:
    case Op::kTouch: {
      Call c;
      c.op = req.op;
      c.key = std::string(req.key);
      c.value = std::string(req.value);
      c.flags = req.flags;
      c.ttl = req.ttl;
      c.cas = req.cas;
      c.delta = req.delta;
      c.version = req.has_version ? req.version : 0;
      c.has_initial = req.has_initial;
      c.initial = req.initial;
      if (req.op == Op::kDelete && !req.has_ttl) c.ttl = kTombstoneSeconds;
      if (req.op == Op::kDelete && req.has_cas) {
        fill(status_only(native::Status::kBadRequest));  // cas tokens are per node
        return;
      }
      Op op = req.op;
      auto done = [fill, frame, status_only, error_frame, op](Reply&& r) {
        if (!r.transport.is_ok()) return fill(error_frame(r));
        if ((op == Op::kIncr || op == Op::kDecr) && r.code == native::Status::kOk) {
          return fill(frame(
              native::Status::kOk,
              [&r](native::FrameWriter& fw) {
                fw.field(native::kNumber);
                fw.uint(r.number);
              },
              1));
        }
        fill(status_only(r.code));
      };
      size_t shard = topo.ring.shard_for(c.key);
      if (op == Op::kCas) {
        w_.cas(shard, std::move(c), done);
      } else {
        w_.write(shard, std::move(c), done);
      }
      return;
    }
    case Op::kMultiGet: {
      struct Multi {
        std::vector<std::optional<Reply::Value>> values;
        size_t left = 0;
        std::optional<Reply> error;
      };
      auto m = std::make_shared<Multi>();
      m->values.resize(req.keys.size());
      std::map<size_t, std::vector<size_t>> by_shard;
      for (size_t i = 0; i < req.keys.size(); ++i) {
        by_shard[topo.ring.shard_for(req.keys[i])].push_back(i);
      }
      m->left = by_shard.size();
      stats.cmd_get.fetch_add(req.keys.size(), std::memory_order_relaxed);
      if (by_shard.empty()) {
        fill(frame(
            native::Status::kOk,
            [](native::FrameWriter& fw) {
              fw.field(native::kValues);
              fw.array(0);
            },
            1));
        return;
      }
      for (auto& [shard, positions] : by_shard) {
        Call c;
        c.op = Op::kMultiGet;
        for (size_t p : positions) c.keys.emplace_back(req.keys[p]);
        w_.read(shard, std::move(c), false,
                [m, positions = positions, fill, frame, error_frame, miss_when_down](Reply&& r) {
                  if (r.transport.is_ok() && r.code == native::Status::kOk &&
                      r.values.size() == positions.size()) {
                    for (size_t j = 0; j < positions.size(); ++j) {
                      m->values[positions[j]] = std::move(r.values[j]);
                    }
                  } else if (!(!r.transport.is_ok() && miss_when_down) && !m->error) {
                    m->error = std::move(r);
                  }
                  if (--m->left > 0) return;
                  if (m->error) return fill(error_frame(*m->error));
                  fill(frame(
                      native::Status::kOk,
                      [&m](native::FrameWriter& fw) {
                        fw.field(native::kValues);
                        fw.array(static_cast<uint32_t>(m->values.size()));
                        for (auto& v : m->values) {
                          if (!v) {
                            fw.nil();
                            continue;
                          }
                          fw.array(3);
                          fw.bin(v->value);
                          fw.uint(v->flags);
                          fw.uint(v->cas);
                        }
                      },
                      1));
                });
      }
      return;
    }
    case Op::kMultiSet:
    case Op::kMultiDelete: {
      // One routed write per item; statuses in request order.
      struct Multi {
        std::vector<native::Status> statuses;
        size_t left = 0;
      };
      auto m = std::make_shared<Multi>();
      size_t n = req.op == Op::kMultiSet ? req.items.size() : req.keys.size();
      m->statuses.assign(n, native::Status::kOk);
      m->left = n;
      auto finish = [m, fill, frame]() {
        fill(frame(
            native::Status::kOk,
            [&m](native::FrameWriter& fw) {
              fw.field(native::kStatuses);
              fw.array(static_cast<uint32_t>(m->statuses.size()));
              for (auto s : m->statuses) fw.uint(static_cast<uint8_t>(s));
            },
            1));
      };
      if (n == 0) return finish();
      for (size_t i = 0; i < n; ++i) {
        Call c;
        if (req.op == Op::kMultiSet) {
          c.op = Op::kSet;
          c.key = std::string(req.items[i].key);
          c.value = std::string(req.items[i].value);
          c.flags = req.items[i].flags;
          c.ttl = req.items[i].ttl;
        } else {
          c.op = Op::kDelete;
          c.key = std::string(req.keys[i]);
          c.ttl = kTombstoneSeconds;
        }
        size_t shard = topo.ring.shard_for(c.key);
        w_.write(shard, std::move(c), [m, i, finish](Reply&& r) {
          m->statuses[i] = r.transport.is_ok() ? r.code : native::Status::kServerError;
          if (--m->left == 0) finish();
        });
      }
      return;
    }
  }
  fill(status_only(native::Status::kUnknownOp));
}

// ---------------------------------------------------------------------------------------------
// Worker: loop, listener, routing

void Worker::init() {
  uv_loop_init(&loop_);
  topo_ = router_.topology();
  uv_async_init(&loop_, &stop_async_, [](uv_async_t* a) {
    auto* w = static_cast<Worker*>(a->data);
    w->stopping_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&w->listener_), nullptr);
    std::vector<Downstream*> all(w->clients_.begin(), w->clients_.end());
    for (Downstream* d : all) d->close();
    for (auto& [addr, c] : w->conns_) c->close();
    w->conns_.clear();
    uv_close(reinterpret_cast<uv_handle_t*>(&w->stop_async_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->reload_async_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->flush_check_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->flush_prepare_), nullptr);
    if (w->index_ == 0) uv_close(reinterpret_cast<uv_handle_t*>(&w->health_timer_), nullptr);
  });
  stop_async_.data = this;
  uv_async_init(&loop_, &reload_async_,
                [](uv_async_t* a) { static_cast<Worker*>(a->data)->adopt_topology(); });
  reload_async_.data = this;
  // Replies are written once per loop iteration: after the poll phase (replies that backend
  // reads completed) and before the loop blocks again (replies that timers completed, e.g. a
  // backend timeout, which would otherwise wait for the next wake-up).
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
  uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 1024, [](uv_stream_t* s, int status) {
    if (status == 0) static_cast<Worker*>(s->data)->on_connection();
  });
  if (index_ == 0) {
    uv_timer_init(&loop_, &health_timer_);
    health_timer_.data = this;
    uv_timer_start(
        &health_timer_, [](uv_timer_t* t) { static_cast<Worker*>(t->data)->health_tick(); },
        kHealthTickMs, kHealthTickMs);
  }
  adopt_topology();
}

void Worker::run() {
  uvx::run_with_idle_polls(&loop_, static_cast<int>(cfg().idle_polls),
                           [this] { return activity_; });
  uv_loop_close(&loop_);
}

void Worker::on_connection() {
  auto* d = new Downstream(*this);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_),
                reinterpret_cast<uv_stream_t*>(d->tcp())) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(d->tcp()),
             [](uv_handle_t* h) { delete static_cast<Downstream*>(h->data); });
    return;
  }
  RouterStats& s = router_.stats();
  clients_.insert(d);
  s.curr_connections.fetch_add(1, std::memory_order_relaxed);
  if (s.curr_connections.load() > cfg().max_connections) {
    // As memcached: say why, then close.
    s.rejected_connections.fetch_add(1, std::memory_order_relaxed);
    static const char kMsg[] = "SERVER_ERROR too many open connections\r\n";
    uv_buf_t b = uv_buf_init(const_cast<char*>(kMsg), sizeof(kMsg) - 1);
    uv_try_write(reinterpret_cast<uv_stream_t*>(d->tcp()), &b, 1);
    d->close();
    return;
  }
  s.total_connections.fetch_add(1, std::memory_order_relaxed);
  d->start();
}

void Worker::forget(Downstream* d) { clients_.erase(d); }

void Worker::flush_dirty() {
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
  std::unordered_set<std::string> wanted;
  for (const Shard& s : topo_->shards) {
    for (const auto& n : s.replicas) {
      wanted.insert(n->addr());
      if (conns_.count(n->addr())) continue;
      client::ConnectionOptions o;
      o.host = n->host();
      o.port = n->port();
      o.protocol = topo_->config.backend_protocol;
      o.timeout_ms = topo_->config.timeout_ms;
      o.max_frame = topo_->config.max_value * 2 + (64 << 10);
      // A restarted node is picked up about as fast as a down one is probed.
      o.reconnect_max_ms = std::max<uint32_t>(o.reconnect_min_ms, topo_->config.retry_ms);
      // A connection that comes back means the node may have restarted empty: from now on,
      // misses on it are retried on a sibling and back-filled (on every worker, at once).
      o.on_reconnect = [node = n, warmup_ms = topo_->config.warmup_ms] {
        node->start_warmup(now_ms() + warmup_ms);
      };
      conns_[n->addr()] = client::Connection::create(&loop_, o);
    }
  }
  // Nodes no longer in the config: close their connections once requests on them are done
  // (their deadline at most).
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    client::Connection* c = it->second;
    auto* t = new uv_timer_t;
    uv_timer_init(&loop_, t);
    t->data = c;
    uv_timer_start(
        t,
        [](uv_timer_t* h) {
          static_cast<client::Connection*>(h->data)->close();
          uv_close(reinterpret_cast<uv_handle_t*>(h),
                   [](uv_handle_t* x) { delete reinterpret_cast<uv_timer_t*>(x); });
        },
        topo_->config.timeout_ms * 4 + 100, 0);
    it = conns_.erase(it);
  }
}

client::Connection* Worker::conn(const Node& n) {
  auto it = conns_.find(n.addr());
  return it == conns_.end() ? nullptr : it->second;
}

void Worker::note_failure(Node& n, const Reply& r) {
  if (r.timed_out()) {
    n.counters.timeouts.fetch_add(1, std::memory_order_relaxed);
  } else {
    n.counters.errors.fetch_add(1, std::memory_order_relaxed);
  }
  if (n.on_failure(cfg().failure_limit, cfg().retry_ms)) {
    spdlog::warn("node {} marked down ({})", n.addr(), r.transport.message());
  }
}

bool Worker::missed_any(const Node& n, const Call& call) const {
  if (!n.any_missed() && !n.overflowed()) return false;
  if (call.op == Op::kMultiGet || call.op == Op::kMultiDelete) {
    for (const auto& k : call.keys) {
      if (n.has_missed(k)) return true;
    }
    return false;
  }
  if (call.op == Op::kMultiSet) {
    for (const auto& [k, v] : call.items) {
      if (n.has_missed(k)) return true;
    }
    return false;
  }
  return n.has_missed(call.key);
}

void Worker::note_missed(Node& n, const Call& call) {
  uint64_t limit = cfg().max_missed_keys;
  if (call.op == Op::kMultiGet || call.op == Op::kMultiDelete) {
    for (const auto& k : call.keys) n.note_missed(k, limit);
  } else if (call.op == Op::kMultiSet) {
    for (const auto& [k, v] : call.items) n.note_missed(k, limit);
  } else {
    n.note_missed(call.key, limit);
  }
}

void Worker::read(size_t shard, Call call, bool primary_only, Done done) {
  ReadCtx* ctx = read_ctxs_.take();
  ctx->topo = topo_.get();
  ctx->shard = shard;
  ctx->done = std::move(done);
  const Shard& s = topo_->shards[shard];
  s.counters->requests.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < s.replicas.size() && i < kMaxReplicas; ++i) {
    const Node& n = *s.replicas[i];
    if (n.readable() && !missed_any(n, call)) ctx->order[ctx->n_order++] = static_cast<uint8_t>(i);
  }
  ctx->call = std::move(call);
  if (ctx->n_order == 0) {
    s.counters->all_down.fetch_add(1, std::memory_order_relaxed);
    finish_read(ctx, failed("no live replica in shard " + s.name));
    return;
  }
  if (!primary_only && ctx->n_order > 1) {
    uint8_t* b = ctx->order;
    uint8_t* e = ctx->order + ctx->n_order;
    switch (cfg().read_policy) {
      case ReadPolicy::kPrimary:
        break;
      case ReadPolicy::kRoundRobin:
        std::rotate(b, b + (rr_++ % ctx->n_order), e);
        break;
      case ReadPolicy::kLeastOutstanding: {
        auto load = [&](uint8_t i) {
          client::Connection* c = conn(*s.replicas[i]);
          return c == nullptr ? SIZE_MAX : c->in_flight();
        };
        // Ties go round robin so that idle replicas share the load.
        std::rotate(b, b + (rr_++ % ctx->n_order), e);
        std::stable_sort(b, e, [&](uint8_t x, uint8_t y) { return load(x) < load(y); });
        break;
      }
    }
  }
  attempt(ctx);
}

void Worker::finish_read(ReadCtx* ctx, Reply&& r) {
  Done done = std::move(ctx->done);
  read_ctxs_.give(ctx);
  done(std::move(r));
}

void Worker::attempt(ReadCtx* ctx) {
  const Shard& s = ctx->topo->shards[ctx->shard];
  while (ctx->next < ctx->n_order) {
    uint8_t i = ctx->order[ctx->next++];
    Node& n = *s.replicas[i];
    if (ctx->next > 1) n.counters.failovers.fetch_add(1, std::memory_order_relaxed);
    if (!n.readable() && ctx->next < ctx->n_order) continue;  // went down meanwhile
    client::Connection* c = conn(n);
    n.counters.requests.fetch_add(1, std::memory_order_relaxed);
    ctx->current = i;
    Status st =
        c == nullptr
            ? Status(StatusCode::kIoError, "no connection")
            : c->send(ctx->call, [this, ctx](Reply&& r) { on_read_reply(ctx, std::move(r)); });
    if (st.is_ok()) return;
    Reply r = failed(n.addr() + ": " + st.message());
    note_failure(n, r);
    ctx->last = std::move(r);
  }
  if (!ctx->miss) s.counters->errors.fetch_add(1, std::memory_order_relaxed);
  Reply out = ctx->miss ? std::move(*ctx->miss) : std::move(ctx->last);
  finish_read(ctx, std::move(out));
}

void Worker::on_read_reply(ReadCtx* ctx, Reply&& r) {
  const Shard& s = ctx->topo->shards[ctx->shard];
  uint8_t i = ctx->current;
  Node& n = *s.replicas[i];
  if (!r.transport.is_ok()) {
    note_failure(n, r);
    ctx->last = std::move(r);
    attempt(ctx);
    return;
  }
  n.on_success();
  bool single = ctx->call.op == Op::kGet || ctx->call.op == Op::kGets;
  if (single && r.code == native::Status::kNotFound && ctx->next < ctx->n_order &&
      n.warming(now_ms())) {
    // A cold replica's miss: ask a warm sibling, and back-fill this one on a hit.
    ctx->cold[ctx->n_cold++] = i;
    ctx->miss = std::move(r);
    attempt(ctx);
    return;
  }
  if (single && r.code == native::Status::kOk && ctx->n_cold > 0) backfill(*ctx, r);
  finish_read(ctx, std::move(r));
}

void Worker::backfill(const ReadCtx& ctx, const Reply& hit) {
  const Shard& s = ctx.topo->shards[ctx.shard];
  Call c;
  c.op = Op::kSet;
  c.key = ctx.call.key;
  c.value = hit.value;
  c.flags = hit.flags;
  c.ttl = hit.ttl;
  // The hit's own version: a newer write that reaches the cold replica first still wins.
  c.version = cfg().backend_protocol == client::Protocol::kNative
                  ? (hit.version != 0 ? hit.version : 1)
                  : 0;
  if (cfg().backend_protocol == client::Protocol::kMemcache) c.op = Op::kAdd;  // never clobber
  for (uint8_t k = 0; k < ctx.n_cold; ++k) {
    Node& n = *s.replicas[ctx.cold[k]];
    client::Connection* conn_i = conn(n);
    if (conn_i == nullptr) continue;
    n.counters.backfills.fetch_add(1, std::memory_order_relaxed);
    (void)conn_i->send(c, [](Reply&&) {});
  }
}

void Worker::write(size_t shard, Call call, Done done) {
  const Shard& s = topo_->shards[shard];
  s.counters->requests.fetch_add(1, std::memory_order_relaxed);
  bool router_version = false;
  if (cfg().backend_protocol == client::Protocol::kNative && call.version == 0 &&
      versioned_op(call.op)) {
    call.version = router_.versions().next();
    router_version = true;
  }
  uint8_t targets[kMaxReplicas];
  size_t n_targets = 0;
  for (size_t i = 0; i < s.replicas.size() && i < kMaxReplicas; ++i) {
    Node& n = *s.replicas[i];
    if (n.writable()) {
      targets[n_targets++] = static_cast<uint8_t>(i);
    } else {
      note_missed(n, call);
    }
  }
  if (n_targets == 0) {
    s.counters->all_down.fetch_add(1, std::memory_order_relaxed);
    s.counters->errors.fetch_add(1, std::memory_order_relaxed);
    done(failed("all replicas of shard " + s.name + " are down"));
    return;
  }
  WriteCtx* ctx = write_ctxs_.take();
  ctx->topo = topo_.get();
  ctx->shard = shard;
  ctx->done = std::move(done);
  ctx->call = std::move(call);
  ctx->router_version = router_version;
  ctx->left = n_targets;
  for (size_t t = 0; t < n_targets; ++t) {
    uint8_t i = targets[t];
    WriteLeg* leg = &ctx->legs[i];
    leg->ctx = ctx;
    leg->replica = i;
    Node& n = *s.replicas[i];
    client::Connection* c = conn(n);
    n.counters.requests.fetch_add(1, std::memory_order_relaxed);
    Status st =
        c == nullptr
            ? Status(StatusCode::kIoError, "no connection")
            : c->send(ctx->call, [this, leg](Reply&& r) { on_write_reply(leg, std::move(r)); });
    // (ctx may be gone after the last on_write_reply: nothing below touches it.)
    if (!st.is_ok()) on_write_reply(leg, failed(n.addr() + ": " + st.message()));
  }
}

void Worker::on_write_reply(WriteLeg* leg, Reply&& r) {
  WriteCtx* ctx = leg->ctx;
  const Shard& s = ctx->topo->shards[ctx->shard];
  uint8_t i = leg->replica;
  Node& n = *s.replicas[i];
  if (!r.transport.is_ok()) {
    note_failure(n, r);
    note_missed(n, ctx->call);
  } else {
    n.on_success();
  }
  bool ok = r.transport.is_ok();
  if (ok && r.code == native::Status::kOlderVersion && ctx->router_version) {
    r.code = superseded(ctx->call.op);
  }
  --ctx->left;
  if (!ctx->answered && ok && ctx->topo->config.write_policy == WritePolicy::kAllAsync) {
    ctx->answered = true;
    ctx->done(std::move(r));
  } else if (!ctx->answered) {
    if (ok && i < ctx->first_ok_at) {
      ctx->first_ok = std::move(r);
      ctx->first_ok_at = i;
    } else if (!ok && i < ctx->first_failure_at) {
      ctx->first_failure = std::move(r);
      ctx->first_failure_at = i;
    }
    if (ctx->left == 0) {
      ctx->answered = true;
      if (!ctx->first_ok) s.counters->errors.fetch_add(1, std::memory_order_relaxed);
      Done done = std::move(ctx->done);
      Reply out = ctx->first_ok ? std::move(*ctx->first_ok) : std::move(*ctx->first_failure);
      write_ctxs_.give(ctx);
      done(std::move(out));
      return;
    }
  }
  if (ctx->left == 0) write_ctxs_.give(ctx);
}

// CAS tokens are per node: compare on the first readable replica; on success copy the value to
// the others with a versioned set.
void Worker::cas(size_t shard, Call call, Done done) {
  const Shard& s = topo_->shards[shard];
  s.counters->requests.fetch_add(1, std::memory_order_relaxed);
  size_t first = s.replicas.size();
  for (size_t i = 0; i < s.replicas.size(); ++i) {
    if (s.replicas[i]->readable() && !s.replicas[i]->has_missed(call.key)) {
      first = i;
      break;
    }
  }
  if (first == s.replicas.size()) {
    s.counters->all_down.fetch_add(1, std::memory_order_relaxed);
    done(failed("no live replica in shard " + s.name));
    return;
  }
  if (cfg().backend_protocol == client::Protocol::kNative) call.version = router_.versions().next();
  Node& primary = *s.replicas[first];
  client::Connection* c = conn(primary);
  auto topo = topo_;
  auto copy = std::make_shared<Call>(call);
  copy->op = Op::kSet;
  copy->cas = 0;
  Status st = c == nullptr
                  ? Status(StatusCode::kIoError, "no connection")
                  : c->send(call, [this, topo, shard, first, copy, done](Reply&& r) {
                      const Shard& sh = topo->shards[shard];
                      if (!r.transport.is_ok()) {
                        note_failure(*sh.replicas[first], r);
                        return done(std::move(r));
                      }
                      sh.replicas[first]->on_success();
                      if (r.code == native::Status::kOlderVersion) r.code = superseded(Op::kCas);
                      if (r.code == native::Status::kOk) {
                        for (size_t i = 0; i < sh.replicas.size(); ++i) {
                          if (i == first) continue;
                          Node& n = *sh.replicas[i];
                          client::Connection* ci = conn(n);
                          if (!n.writable() || ci == nullptr ||
                              !ci->send(*copy, [this, topo, shard, i, copy](Reply&& cr) {
                                   Node& m = *topo->shards[shard].replicas[i];
                                   if (!cr.transport.is_ok()) {
                                     note_failure(m, cr);
                                     m.note_missed(copy->key, topo->config.max_missed_keys);
                                   }
                                 }).is_ok()) {
                            n.note_missed(copy->key, topo->config.max_missed_keys);
                          }
                        }
                      }
                      done(std::move(r));
                    });
  if (!st.is_ok()) {
    Reply r = failed(primary.addr() + ": " + st.message());
    note_failure(primary, r);
    done(std::move(r));
  }
}

void Worker::flush_all(int64_t delay, Done done) {
  struct Acc {
    size_t left = 0;
    std::optional<Reply> error;
    Done done;
  };
  auto acc = std::make_shared<Acc>();
  acc->done = std::move(done);
  Call c;
  c.op = Op::kFlush;
  c.ttl = delay;
  std::vector<client::Connection*> targets;
  for (const Shard& s : topo_->shards) {
    for (const auto& n : s.replicas) {
      if (!n->writable()) continue;
      if (auto* x = conn(*n)) targets.push_back(x);
    }
  }
  acc->left = targets.size();
  if (targets.empty()) return acc->done(failed("no live node"));
  for (client::Connection* x : targets) {
    auto one = [acc](Reply&& r) {
      if (!r.transport.is_ok() && !acc->error) acc->error = std::move(r);
      if (--acc->left == 0) acc->done(acc->error ? std::move(*acc->error) : Reply{});
    };
    if (!x->send(c, one).is_ok()) one(failed("not connected"));
  }
}

// ---- worker 0: probes and repair ----

void Worker::health_tick() {
  auto topo = topo_;
  int64_t now = now_ms();
  for (size_t si = 0; si < topo->shards.size(); ++si) {
    for (const auto& n : topo->shards[si].replicas) {
      switch (n->state()) {
        case NodeState::kDown:
          if (n->probe_due(now) && !probing_.count(n->addr())) probe(n);
          break;
        case NodeState::kSyncing:
        case NodeState::kUp:
          if (n->overflowed()) {
            if (!emptying_.count(n->addr())) empty_node(topo, n);
          } else if (n->any_missed() && !repairing_.count(n->addr())) {
            repair(topo, si, n);
          } else if (n->state() == NodeState::kSyncing && !repairing_.count(n->addr())) {
            n->set_state(NodeState::kUp);
            spdlog::info("node {} is back in service", n->addr());
          }
          break;
      }
    }
  }
}

// A node that missed more writes than max_missed_keys cannot be repaired key by key: it is
// emptied with flush_all, then serves again as a cold replica that warms from its siblings.
// Reads skip it (has_missed) until the flush has answered and no write to it failed meanwhile
// (that write could have landed before the flush and been lost after it: flush again).
void Worker::empty_node(const std::shared_ptr<const Topology>& topo,
                        const std::shared_ptr<Node>& n) {
  client::Connection* c = conn(*n);
  if (c == nullptr) return;
  uint64_t misses = n->overflow_misses();
  Call f;
  f.op = Op::kFlush;
  emptying_.insert(n->addr());
  Status st = c->send(f, [this, n, topo, misses](Reply&& r) {
    emptying_.erase(n->addr());
    if (!r.transport.is_ok() || r.code != native::Status::kOk) return;  // the next tick retries
    n->start_warmup(now_ms() + topo->config.warmup_ms);
    if (!n->clear_overflow_if(misses)) return;
    n->counters.flushed.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("node {} missed more than {} writes: emptied, warming from its siblings",
                 n->addr(), topo->config.max_missed_keys);
  });
  if (!st.is_ok()) emptying_.erase(n->addr());
}

void Worker::probe(const std::shared_ptr<Node>& n) {
  client::Connection* c = conn(*n);
  Call noop;
  noop.op = Op::kNoop;
  auto topo = topo_;
  probing_.insert(n->addr());
  auto on_reply = [this, n, topo](Reply&& r) {
    probing_.erase(n->addr());
    if (!r.transport.is_ok()) {
      n->probe_failed(topo->config.retry_max_ms);
      return;
    }
    n->on_success();
    n->start_warmup(now_ms() + topo->config.warmup_ms);
    // (An overflowed node is emptied by the next health ticks before it serves: empty_node.)
    n->set_state(NodeState::kSyncing);
    spdlog::info("node {} answers again: replaying {} missed keys", n->addr(), n->missed_size());
  };
  if (c == nullptr || !c->send(noop, on_reply).is_ok()) {
    probing_.erase(n->addr());
    n->probe_failed(topo->config.retry_max_ms);
  }
}

// Replays up to kRepairBatch missed keys on `n`: each is read from a sibling that has it right
// and written to `n` with the sibling's version (or deleted). Over memcache text (no versions)
// the key is deleted on `n` instead, so that it refills from a sibling on its next miss.
void Worker::repair(const std::shared_ptr<const Topology>& topo, size_t shard,
                    const std::shared_ptr<Node>& n) {
  const Shard& s = topo->shards[shard];
  std::vector<std::pair<std::string, uint64_t>> keys = n->take_missed(kRepairBatch);
  if (keys.empty()) return;
  struct Batch {
    size_t left = 0;
  };
  auto batch = std::make_shared<Batch>();
  batch->left = keys.size();
  repairing_.insert(n->addr());
  auto one_done = [this, batch, n]() {
    if (--batch->left == 0) repairing_.erase(n->addr());
  };
  client::Connection* target = conn(*n);
  const bool native_backend = topo->config.backend_protocol == client::Protocol::kNative;
  for (const auto& [key, generation] : keys) {
    auto write_to_target = [this, n, key = key, generation = generation, one_done, target](Call c) {
      if (target == nullptr || !n->writable()) return one_done();
      Status st = target->send(c, [n, key, generation, one_done](Reply&& r) {
        if (r.transport.is_ok() && r.code != native::Status::kServerError) {
          n->unmiss(key, generation);
          n->counters.repaired.fetch_add(1, std::memory_order_relaxed);
        }
        one_done();
      });
      if (!st.is_ok()) one_done();
    };
    Call del;
    del.op = Op::kDelete;
    del.key = key;
    del.ttl = kTombstoneSeconds;
    if (!native_backend) {
      write_to_target(del);
      continue;
    }
    // A sibling that is up and did not miss this key.
    const Node* source = nullptr;
    for (const auto& m : s.replicas) {
      if (m.get() != n.get() && m->readable() && !m->has_missed(key)) {
        source = m.get();
        break;
      }
    }
    client::Connection* sc = source != nullptr ? conn(*source) : nullptr;
    if (sc == nullptr) {
      one_done();  // nobody to copy from yet: try again on a later tick
      continue;
    }
    Call get;
    get.op = Op::kGet;
    get.key = key;
    Status st = sc->send(get, [this, key = key, del, write_to_target, one_done](Reply&& r) mutable {
      if (!r.transport.is_ok()) return one_done();
      if (r.code == native::Status::kNotFound) {
        del.version = router_.versions().next();
        return write_to_target(del);
      }
      if (r.code != native::Status::kOk) return one_done();
      Call set;
      set.op = Op::kSet;
      set.key = key;
      set.value = std::move(r.value);
      set.flags = r.flags;
      set.ttl = r.ttl;
      set.version = r.version != 0 ? r.version : router_.versions().next();
      write_to_target(set);
    });
    if (!st.is_ok()) one_done();
  }
}

// ---------------------------------------------------------------------------------------------
// Router

namespace {

// A listening socket with SO_REUSEPORT, so every worker can have its own on the same port.
int listen_socket(const std::string& host, int port, std::string& err) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    err = "listen: '" + host + "' is not an IP address";
    return -1;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 1024) != 0) {
    err = "cannot listen on " + host + ":" + std::to_string(port) + ": " + strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

int bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

}  // namespace

Router::Router(RouterConfig cfg, std::string config_path)
    : cfg_(std::move(cfg)), config_path_(std::move(config_path)) {}

Router::~Router() { stop(); }

std::shared_ptr<const Topology> Router::topology() const {
  std::lock_guard<std::mutex> lock(topo_mu_);
  return topo_;
}

Status Router::start() {
  started_ms_ = now_ms();
  auto topo = build_topology(cfg_, nullptr);
  if (!topo.is_ok()) return topo.status();
  topo_ = topo.value();
  std::vector<int> fds;
  std::string err;
  for (int i = 0; i < cfg_.threads; ++i) {
    int fd = listen_socket(cfg_.listen_host, i == 0 ? cfg_.listen_port : port_, err);
    if (fd < 0) {
      for (int f : fds) ::close(f);
      return Status(StatusCode::kIoError, err);
    }
    if (i == 0) port_ = bound_port(fd);
    fds.push_back(fd);
  }
  for (int i = 0; i < cfg_.threads; ++i) {
    workers_.push_back(std::make_unique<Worker>(*this, i, fds[i]));
    workers_.back()->init();
  }
  for (auto& w : workers_) threads_.emplace_back([w = w.get()] { w->run(); });
  return Status::ok();
}

Status Router::reload() {
  auto cfg = load_config(config_path_);
  if (!cfg.is_ok()) {
    stats_.reload_errors.fetch_add(1);
    return cfg.status();
  }
  RouterConfig next = cfg.value();
  // Listening address and thread count are fixed for the life of the process.
  next.listen_host = cfg_.listen_host;
  next.listen_port = cfg_.listen_port;
  next.threads = cfg_.threads;
  auto current = topology();
  auto topo = build_topology(next, current.get());
  if (!topo.is_ok()) {
    stats_.reload_errors.fetch_add(1);
    return topo.status();
  }
  {
    std::lock_guard<std::mutex> lock(topo_mu_);
    topo_ = topo.value();
  }
  stats_.reloads.fetch_add(1);
  for (auto& w : workers_) w->post_reload();
  return Status::ok();
}

void Router::stop() {
  for (auto& w : workers_) w->post_stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  workers_.clear();
}

}  // namespace cachetier::router
