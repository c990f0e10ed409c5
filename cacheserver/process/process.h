// process: joins the memcache codec to the storage engine. handle() executes one decoded
// request against the engine and appends the response to `out`. No I/O, no libuv: the server
// owns sockets, this layer owns command semantics (memcached's doc/protocol.txt).
#pragma once

#include <atomic>
#include <string_view>

#include "cacheserver/engine/engine.h"
#include "common/buffer.h"
#include "common/counter.h"
#include "common/status.h"
#include "protocol/memcache/request.h"
#include "protocol/native/native.h"

namespace cachetier::process {

// Per-worker command counters (memcached's names); one writer thread each.
struct Counters {
  Counter cmd_get, cmd_set, cmd_touch, cmd_flush;
  Counter get_hits, get_misses, get_expired;
  Counter delete_hits, delete_misses;
  Counter incr_hits, incr_misses, decr_hits, decr_misses;
  Counter cas_hits, cas_misses, cas_badval;
  Counter touch_hits, touch_misses;
  // The connection layer's: TLS handshakes (-Z) and ASCII / HELLO authentication (-Y).
  Counter ssl_handshake_errors, ssl_new_sessions, auth_cmds, auth_errors;
};

// Command families of the latency histograms (cachetier_request_duration_seconds{family}).
enum class Family : uint8_t { kGet, kSet, kDelete, kArith, kTouch, kOther };
inline constexpr size_t kFamilies = 6;
inline constexpr const char* kFamilyNames[kFamilies] = {"get",   "set",   "delete",
                                                        "arith", "touch", "other"};

constexpr Family family_of(memcache::Command c) {
  using memcache::Command;
  switch (c) {
    case Command::kGet:
    case Command::kGets:
    case Command::kGat:
    case Command::kGats:
    case Command::kMetaGet:
      return Family::kGet;
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
    case Command::kMetaSet:
      return Family::kSet;
    case Command::kDelete:
    case Command::kMetaDelete:
      return Family::kDelete;
    case Command::kIncr:
    case Command::kDecr:
    case Command::kMetaArithmetic:
      return Family::kArith;
    case Command::kTouch:
      return Family::kTouch;
    default:
      return Family::kOther;
  }
}

constexpr Family family_of(native::Op op) {
  using native::Op;
  switch (op) {
    case Op::kGet:
    case Op::kGets:
    case Op::kGat:
    case Op::kMultiGet:
      return Family::kGet;
    case Op::kSet:
    case Op::kAdd:
    case Op::kReplace:
    case Op::kAppend:
    case Op::kPrepend:
    case Op::kCas:
    case Op::kMultiSet:
      return Family::kSet;
    case Op::kDelete:
    case Op::kMultiDelete:
      return Family::kDelete;
    case Op::kIncr:
    case Op::kDecr:
      return Family::kArith;
    case Op::kTouch:
      return Family::kTouch;
    default:
      return Family::kOther;
  }
}

// Writes the server-wide part of `stats [arg]` (the server knows connections, threads, ...).
class StatsSource {
 public:
  virtual ~StatsSource() = default;
  // Appends "STAT name value" lines for `arg` (empty = general); returns false for an unknown
  // arg. The caller appends END.
  virtual bool write_stats(std::string_view arg, ByteBuffer& out) = 0;
  // memcached's refresh_certs: reloads the TLS certificate and key.
  virtual Status refresh_certs() { return Status(StatusCode::kNotFound, "TLS is not enabled"); }
};

struct Context {
  engine::Engine& engine;
  Counters& counters;
  StatsSource* stats = nullptr;
  std::atomic<int>* verbosity = nullptr;
  // A reply larger than this is replaced by an error (the connection goes on).
  size_t output_limit = 64u << 20;
  size_t max_frame = 0;                // native frames accepted (reported by hello)
  bool flush_enabled = true;           // false (-F): flush_all is refused
  size_t max_item_size = 1u << 20;     // RESP: a string that would grow past it is refused first
  OffsetClock* debug_clock = nullptr;  // cacheserver --debug-clock (RESP DEBUG ADVANCE-CLOCK)
};

enum class Action {
  kContinue,
  kClose,  // quit: close after flushing what is already in `out`
};

Action handle(const memcache::Request& req, Context& ctx, ByteBuffer& out);

// A multi-key reply larger than this is checked ahead (reply_cannot_fit) before it grows more.
inline constexpr size_t kReplyPrecheck = 1u << 20;

// True when the values of keys [from, to) alone (key_at(i) gives key i) would take a reply
// already `so_far` bytes long past `limit`: it is refused before it is built. Building 64 MB
// only to throw it away kept a node busy for 150 ms, long enough for a router to time it out.
// A peek (no bump, nothing counted); the values' sizes are a lower bound of any encoding, so
// a reply that would fit is never refused (the caller still checks as it writes).
template <class KeyAt>
bool reply_cannot_fit(engine::Engine& e, size_t from, size_t to, KeyAt key_at, size_t so_far,
                      size_t limit) {
  engine::LookupOptions peek;
  peek.bump = false;
  size_t total = so_far;
  for (size_t i = from; i < to && total <= limit; ++i) {
    e.lookup(key_at(i), peek, [&](const engine::ItemView& v) { total += v.value.size(); });
  }
  return total > limit;
}

// Shared by both protocols' handlers.
// Counts a CAS store's outcome under memcached's names.
inline void count_cas(Counters& c, engine::EngineStatus st) {
  if (st == engine::EngineStatus::kOk) c.cas_hits.add();
  if (st == engine::EngineStatus::kNotFound) c.cas_misses.add();
  if (st == engine::EngineStatus::kExists) c.cas_badval.add();
}

}  // namespace cachetier::process
