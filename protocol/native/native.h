// The native protocol (docs/protocol.md): msgpack bodies in length-prefixed frames, request ids,
// pipelining with out-of-order replies allowed, multi-key ops and per-write versions. Both sides
// of the codec, sans-I/O like protocol/memcache:
//
//   frame:  0xFA | body length (u32, big endian) | body (one msgpack array)
//   request body:  [id, op, {field: value, ...}]
//   reply body:    [id, status, {field: value, ...}]
//
// Decoders check the frame length against the limit before anything is allocated, then read the
// body in one pass with MsgReader (reader.h), which checks every declared size against the
// bytes that remain and allocates nothing; FrameWriter writes msgpack's smallest encodings. Both
// are checked against msgpack-c (unit tests, fuzz oracle). Views in decoded structs
// point into the fed bytes and are valid until the next feed().
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "common/buffer.h"

namespace cachetier::native {

inline constexpr uint8_t kMagic = 0xFA;
inline constexpr size_t kFrameHeader = 5;
inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kMaxKeyLength = 250;
// How long a versioned delete's tombstone lasts when the request gives no ttl: long enough for
// writes still in flight from other routers to arrive and be refused. cacherouter sends it.
inline constexpr int64_t kDefaultTombstoneSeconds = 30;

enum class Op : uint8_t {
  kHello = 0,
  kGet = 1,
  kGets = 2,
  kSet = 3,
  kAdd = 4,
  kReplace = 5,
  kAppend = 6,
  kPrepend = 7,
  kCas = 8,
  kDelete = 9,
  kIncr = 10,
  kDecr = 11,
  kTouch = 12,
  kGat = 13,
  kMultiGet = 14,
  kMultiSet = 15,
  kMultiDelete = 16,
  kFlush = 17,
  kStats = 18,
  kNoop = 19,
  kVersion = 20,
  // cacherouter's admin command, as its text line in kValue ("drain HOST:PORT", "route KEY",
  // "stats nodes", ...); the reply's kValue is the text reply. Nodes answer UNKNOWN_OP.
  kAdmin = 21,
};
inline constexpr uint8_t kOpCount = 22;

enum class Status : uint8_t {
  kOk = 0,
  kNotFound = 1,
  kExists = 2,
  kNotStored = 3,
  kNonNumeric = 4,
  kTooLarge = 5,
  kNoMemory = 6,
  kBadRequest = 7,
  kUnknownOp = 8,
  kOlderVersion = 9,
  kServerError = 10,
  kUnauthenticated = 11,  // -Y: a request before HELLO with good credentials, or bad ones
};
inline constexpr Status kLastStatus = Status::kUnauthenticated;

// Field numbers of the request and reply maps.
enum Field : uint8_t {
  kKey = 1,
  kKeys = 2,
  kValue = 3,
  kFlags = 4,
  kTtl = 5,
  kCas = 6,
  kNumber = 7,
  kVersion = 8,
  kInitial = 9,
  kItems = 10,
  kDelay = 11,
  kOptions = 12,   // request: Options bits
  kVivify = 13,    // request: create a missing item (get: an empty placeholder; append, prepend:
                   // the value) with this ttl
  kRecache = 14,   // request (get with kLeases): win when the item expires within this ttl
  kNewCas = 15,    // request: the CAS the changed or created item takes (0 = the node's own)
  kTouchTtl = 16,  // request: incr/decr, and delete with kInvalidate: the existing item's new ttl
  kValues = 20,
  kStats = 21,
  kMessage = 22,
  kStatuses = 23,
  kFetched = 24,   // reply with kItemMeta: 1 if the item was read before this request
  kIdle = 25,      // reply with kItemMeta: seconds since the item was last read or written
  kPriorTtl = 26,  // reply with kItemMeta: seconds left before this request changed it; -1 never
  kLease = 27,     // reply: Lease bits
  kProtoVersion = 30,
  kFeatures = 31,
  kServer = 32,
  kMaxFrame = 33,
  kUser = 34,  // hello: credentials for a server with -Y (sent over TLS)
  kPassword = 35,
};

// Request options (field kOptions): what the memcache meta commands ask beyond the plain ops.
inline constexpr uint32_t kNoBump = 1;      // a get that does not count as a use (mg u)
inline constexpr uint32_t kLeases = 2;      // get: stale items and kRecache hand out one win (mg)
inline constexpr uint32_t kInvalidate = 4;  // set/cas with kCas: an older CAS stores, marked
                                            // stale (ms I); delete: mark stale (md I)
inline constexpr uint32_t kRecacheAfterTouch = 8;  // gat: judge kRecache on the ttl it sets
inline constexpr uint32_t kDropValue = 16;  // delete: keep the item with an empty value (md x)
inline constexpr uint32_t kItemMeta = 32;   // replies carry kFetched, kIdle, kPriorTtl, kLease

// Reply bits (field kLease).
inline constexpr uint32_t kWon = 1;      // this request won the right to recache (meta W)
inline constexpr uint32_t kStale = 2;    // the item is stale (meta X); a store: stored stale
inline constexpr uint32_t kWinSent = 4;  // a win was handed out before (meta Z)
inline constexpr uint32_t kCreated = 8;  // this request created the item (vivify)

std::string_view op_name(Op op);
std::string_view status_name(Status s);

// One item of a multi-set (request) or a multi-get (reply).
struct Item {
  std::string_view key;
  std::string_view value;
  uint32_t flags = 0;
  int64_t ttl = 0;
  uint64_t cas = 0;
  bool present = true;  // multi-get reply: false for a miss
};

struct Request {
  uint64_t id = 0;
  Op op = Op::kNoop;
  std::string_view key, value;
  uint32_t flags = 0;
  int64_t ttl = 0;  // memcached exptime rules
  uint64_t cas = 0;
  uint64_t delta = 1;  // incr/decr (field kNumber)
  uint64_t version = 0;
  uint64_t initial = 0;
  int64_t delay = 0;
  uint32_t options = 0;  // Options bits
  int64_t vivify_ttl = 0, recache_ttl = 0, touch_ttl = 0;
  uint64_t new_cas = 0;
  bool has_ttl = false, has_cas = false, has_version = false, has_initial = false;
  bool has_vivify = false, has_recache = false, has_touch_ttl = false;
  std::vector<std::string_view> keys;  // multi-get, multi-delete
  std::vector<Item> items;             // multi-set
  uint32_t proto_version = 0;          // hello
  std::vector<std::string_view> features;
  std::string_view user, password;  // hello, with -Y
  void clear();
};

struct Response {
  uint64_t id = 0;
  Status status = Status::kOk;
  std::string_view value, message, server;
  uint32_t flags = 0;
  uint64_t cas = 0, number = 0, version = 0, max_frame = 0;
  int64_t ttl = 0;  // get replies: seconds left for an item that expires, else 0
  uint32_t proto_version = 0;
  bool has_value = false;
  // kItemMeta replies.
  bool has_meta = false;
  bool fetched = false;
  uint64_t idle = 0;
  int64_t prior_ttl = -1;
  uint32_t lease = 0;            // Lease bits
  std::vector<Item> values;      // multi-get
  std::vector<Status> statuses;  // multi-set / multi-delete
  std::vector<std::pair<std::string_view, std::string_view>> stats;
  std::vector<std::string_view> features;
  void clear();
};

enum class DecodeStatus { kComplete, kNeedMore, kError, kFatal };

struct DecodeResult {
  DecodeStatus status;
  size_t consumed = 0;
  size_t need = 0;             // kNeedMore: total bytes the frame needs, when known
  uint64_t id = 0;             // kError: the request id to answer
  Status error = Status::kOk;  // kError: the status to answer with
  std::string_view message;    // kError / kFatal: what was wrong
};

// Server side: bytes -> Request. kError means the frame was well formed and its id known but
// the request was not valid (answer `error` for `id`, keep going); kFatal means the stream
// cannot be trusted (bad magic, oversized frame, body that is not msgpack or has no id).
class RequestDecoder {
 public:
  explicit RequestDecoder(size_t max_frame);
  DecodeResult feed(std::string_view in, Request& req);

 private:
  size_t max_frame_;
};

// Client side: bytes -> Response.
class ResponseDecoder {
 public:
  explicit ResponseDecoder(size_t max_frame);
  DecodeResult feed(std::string_view in, Response& resp);

 private:
  size_t max_frame_;
};

// Writes one frame: begin() with the number of map fields that will follow, then exactly that
// many field calls (a field whose value is an array or map is opened with its size and filled
// with the value calls), then end() patches the length.
//
// Values are written straight into the buffer in msgpack's smallest encoding, byte for byte
// what msgpack-c's packer writes (tested against it): going through msgpack-c's packer callback
// cost a 100-byte value reply 77 ns against 32 ns for the memcache text reply (bench/RESULTS.md).
class FrameWriter {
 public:
  explicit FrameWriter(ByteBuffer& out) : out_(out) {}
  void begin_request(uint64_t id, Op op, uint32_t nfields);
  void begin_reply(uint64_t id, Status status, uint32_t nfields);
  void end();

  void field(Field f) { uint(f); }
  // Field keys, small ids and most flags are positive fixints: one byte, written inline.
  void uint(uint64_t v) {
    if (v < 0x80) {
      out_.append(static_cast<char>(v));
    } else {
      wide_uint(v);
    }
  }
  void sint(int64_t v);
  void bin(std::string_view v);
  void str(std::string_view v);
  void nil() { out_.append(static_cast<char>(0xc0)); }
  void array(uint32_t n) { header(0x90, 0xdc, n); }
  void map(uint32_t n) { header(0x80, 0xde, n); }

 private:
  void begin(uint64_t id, uint8_t code, uint32_t nfields);
  void wide_uint(uint64_t v);
  // Up to 15 elements: the one-byte fix form, written inline.
  void header(uint8_t fix, uint8_t wide16, uint32_t n) {
    if (n < 16) {
      out_.append(static_cast<char>(fix | n));
    } else {
      wide_header(wide16, n);
    }
  }
  void wide_header(uint8_t wide16, uint32_t n);
  void bytes(uint8_t fix, uint8_t w8, uint8_t w16, std::string_view v);
  ByteBuffer& out_;
  size_t start_ = 0;
};

// What a kItemMeta reply adds about the item.
struct ItemMeta {
  bool fetched = false;
  uint64_t idle = 0;
  int64_t prior_ttl = -1;
  uint32_t lease = 0;
};

// A get/gets/gat hit: value, flags, cas, then version and ttl (seconds left) when non-zero,
// then the item's meta when `meta` is given (kItemMeta) and its lease bits when there are any.
// The one place that lays out this reply (cacheserver and cacherouter both send it).
void write_value_reply(FrameWriter& w, uint64_t id, std::string_view value, uint32_t flags,
                       uint64_t cas, uint64_t version, int64_t ttl, const ItemMeta* meta = nullptr);

// Writes field kStats, a map of name -> value, from memcache "STAT <name> <value>\r\n" lines
// (both programs keep their stats as those lines; other lines are skipped).
void write_stats_field(FrameWriter& w, std::string_view stat_lines);

// Checks that a msgpack body is one object whose declared container and string sizes all fit
// in the bytes present, nested at most `max_depth` deep. Exposed for tests.
bool prescan(std::string_view body, int max_depth = 8);

}  // namespace cachetier::native
