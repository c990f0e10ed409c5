// Native protocol codec. See native.h and docs/protocol.md.
#include "protocol/native/native.h"

#include <algorithm>
#include <cstring>

#include "common/status.h"
#include "protocol/native/reader.h"

namespace cachetier::native {

namespace {

uint32_t read_be32(const char* p) {
  auto u = [&](int i) { return static_cast<uint32_t>(static_cast<uint8_t>(p[i])); };
  return (u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3);
}

DecodeResult need_more(size_t need) { return {DecodeStatus::kNeedMore, 0, need, 0, {}, {}}; }
DecodeResult fatal(size_t consumed, std::string_view why) {
  return {DecodeStatus::kFatal, consumed, 0, 0, Status::kBadRequest, why};
}

// Common framing: checks the header and the length limit; on success `body` holds the body
// bytes and the result the frame size.
DecodeResult frame_of(std::string_view in, size_t max_frame, std::string_view& body) {
  if (in.empty()) return need_more(kFrameHeader);
  if (static_cast<uint8_t>(in[0]) != kMagic) return fatal(in.size(), "bad frame magic");
  if (in.size() < kFrameHeader) return need_more(kFrameHeader);
  uint32_t len = read_be32(in.data() + 1);
  if (len > max_frame) return fatal(in.size(), "frame larger than the limit");
  if (in.size() < kFrameHeader + len) return need_more(kFrameHeader + len);
  body = in.substr(kFrameHeader, len);
  return {DecodeStatus::kComplete, kFrameHeader + len, 0, 0, {}, {}};
}

// Reads `[id, code, {` and returns the number of fields, or a fatal result.
DecodeResult open_body(MsgReader& r, std::string_view body, size_t frame, uint64_t& code,
                       uint32_t& nfields, bool& fields_not_map) {
  uint32_t n = 0;
  uint64_t id = 0;
  fields_not_map = false;
  if (!r.array(n) || n != 3 || !r.uint(id) || !r.uint(code)) {
    return fatal(frame,
                 prescan(body) ? "body is not [id, code, fields]" : "malformed msgpack body");
  }
  if (!r.map(nfields)) {
    if (!prescan(body)) return fatal(frame, "malformed msgpack body");
    fields_not_map = true;
  }
  return {DecodeStatus::kComplete, frame, 0, id, {}, {}};
}

// Depth left for skipping an unknown field's value: body array and fields map are two levels.
constexpr int kSkipDepth = 6;

bool valid_key(std::string_view k) { return !k.empty() && k.size() <= kMaxKeyLength; }

}  // namespace

std::string_view op_name(Op op) {
  static constexpr std::string_view kNames[kOpCount] = {
      "hello",        "get",    "gets",  "set",  "add",     "replace", "append",    "prepend",
      "cas",          "delete", "incr",  "decr", "touch",   "gat",     "multi_get", "multi_set",
      "multi_delete", "flush",  "stats", "noop", "version", "admin"};
  auto i = static_cast<size_t>(op);
  return i < kOpCount ? kNames[i] : "unknown";
}

std::string_view status_name(Status s) {
  static constexpr std::string_view kNames[] = {
      "OK",        "NOT_FOUND",   "EXISTS",     "NOT_STORED",    "NON_NUMERIC",  "TOO_LARGE",
      "NO_MEMORY", "BAD_REQUEST", "UNKNOWN_OP", "OLDER_VERSION", "SERVER_ERROR", "UNAUTHENTICATED"};
  auto i = static_cast<size_t>(s);
  return i < sizeof(kNames) / sizeof(kNames[0]) ? kNames[i] : "UNKNOWN";
}

void Request::clear() {
  id = 0;
  op = Op::kNoop;
  key = value = {};
  flags = 0;
  ttl = 0;
  cas = 0;
  delta = 1;
  version = initial = 0;
  delay = 0;
  options = 0;
  vivify_ttl = recache_ttl = touch_ttl = 0;
  new_cas = 0;
  has_ttl = has_cas = has_version = has_initial = false;
  has_vivify = has_recache = has_touch_ttl = false;
  keys.clear();
  items.clear();
  proto_version = 0;
  features.clear();
  user = password = {};
}

void Response::clear() {
  id = 0;
  status = Status::kOk;
  value = message = server = {};
  flags = 0;
  cas = number = version = max_frame = 0;
  ttl = 0;
  proto_version = 0;
  has_value = false;
  has_meta = fetched = false;
  idle = 0;
  prior_ttl = -1;
  lease = 0;
  values.clear();
  statuses.clear();
  stats.clear();
  features.clear();
}

// ---- prescan: a bounds-only walk of one msgpack object ----

void write_stats_field(FrameWriter& w, std::string_view all) {
  std::vector<std::pair<std::string_view, std::string_view>> kv;
  while (!all.empty()) {
    size_t eol = all.find("\r\n");
    std::string_view line = all.substr(0, eol);
    all.remove_prefix(eol == std::string_view::npos ? all.size() : eol + 2);
    if (line.substr(0, 5) != "STAT ") continue;
    line.remove_prefix(5);
    size_t sp = line.find(' ');
    kv.emplace_back(line.substr(0, sp),
                    sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1));
  }
  w.field(kStats);
  w.map(static_cast<uint32_t>(kv.size()));
  for (auto& [k, v] : kv) {
    w.str(k);
    w.str(v);
  }
}

bool prescan(std::string_view body, int max_depth) {
  MsgReader r(body);
  return r.skip(max_depth) && r.at_end();
}

bool MsgReader::skip(int max_depth) {
  const uint8_t*& p = p_;
  const uint8_t* end = end_;
  // Pending element counts per nesting level; one root object.
  uint64_t pending[16];
  if (max_depth > 15) max_depth = 15;
  int depth = 0;
  pending[0] = 1;
  auto need = [&](uint64_t n) { return static_cast<uint64_t>(end - p) >= n; };
  auto be = [&](int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
    p += bytes;
    return v;
  };
  while (true) {
    while (depth >= 0 && pending[depth] == 0) --depth;
    if (depth < 0) return true;
    --pending[depth];
    if (!need(1)) return false;
    uint8_t t = *p++;
    uint64_t skip = 0, children = 0;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
      // fixint, nil, bool
    } else if ((t & 0xe0) == 0xa0) {
      skip = t & 0x1f;
    } else if ((t & 0xf0) == 0x90) {
      children = t & 0x0f;
    } else if ((t & 0xf0) == 0x80) {
      children = 2 * uint64_t(t & 0x0f);
    } else {
      switch (t) {
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xca:
        case 0xce:
        case 0xd2:
          skip = 4;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          skip = 8;
          break;
        case 0xd9:
        case 0xc4:
          if (!need(1)) return false;
          skip = be(1);
          break;
        case 0xda:
        case 0xc5:
          if (!need(2)) return false;
          skip = be(2);
          break;
        case 0xdb:
        case 0xc6:
          if (!need(4)) return false;
          skip = be(4);
          break;
        case 0xdc:
          if (!need(2)) return false;
          children = be(2);
          break;
        case 0xdd:
          if (!need(4)) return false;
          children = be(4);
          break;
        case 0xde:
          if (!need(2)) return false;
          children = 2 * be(2);
          break;
        case 0xdf:
          if (!need(4)) return false;
          children = 2 * be(4);
          break;
        case 0xd4:
          skip = 2;
          break;  // fixext: type + data
        case 0xd5:
          skip = 3;
          break;
        case 0xd6:
          skip = 5;
          break;
        case 0xd7:
          skip = 9;
          break;
        case 0xd8:
          skip = 17;
          break;
        case 0xc7:
          if (!need(1)) return false;
          skip = be(1) + 1;
          break;
        case 0xc8:
          if (!need(2)) return false;
          skip = be(2) + 1;
          break;
        case 0xc9:
          if (!need(4)) return false;
          skip = be(4) + 1;
          break;
        default:
          return false;  // 0xc1: never used
      }
    }
    if (!need(skip)) return false;
    p += skip;
    if (children > 0) {
      // Every element takes at least one byte: a count larger than what is left is a lie.
      if (!need(children) || depth + 1 > max_depth) return false;
      pending[++depth] = children;
    }
  }
}

// ---- server side ----

RequestDecoder::RequestDecoder(size_t max_frame) : max_frame_(max_frame) {}

DecodeResult RequestDecoder::feed(std::string_view in, Request& req) {
  std::string_view body;
  DecodeResult r = frame_of(in, max_frame_, body);
  if (r.status != DecodeStatus::kComplete) return r;
  MsgReader rd(body);
  uint64_t op = 0;
  uint32_t nfields = 0;
  bool not_map = false;
  r = open_body(rd, body, r.consumed, op, nfields, not_map);
  if (r.status != DecodeStatus::kComplete) return r;
  req.clear();
  req.id = r.id;
  // A well-formed body with a wrong value is answered (kError); bytes that are not msgpack at
  // all end the stream, as before anything was read.
  auto fail = [&](Status s, std::string_view why) {
    if (!prescan(body)) return fatal(r.consumed, "malformed msgpack body");
    return DecodeResult{DecodeStatus::kError, r.consumed, 0, r.id, s, why};
  };
  if (op >= kOpCount) return fail(Status::kUnknownOp, "unknown op");
  req.op = static_cast<Op>(op);
  if (not_map) return fail(Status::kBadRequest, "fields must be a map");
  bool has_key = false, has_value = false, has_keys = false, has_items = false;
  for (uint32_t i = 0; i < nfields; ++i) {
    uint64_t f;
    if (!rd.uint(f)) return fail(Status::kBadRequest, "field names are integers");
    bool ok = true;
    uint32_t n = 0;
    switch (f) {
      case kKey:
        ok = rd.bytes(req.key) && valid_key(req.key);
        has_key = ok;
        break;
      case kValue:
        ok = rd.bytes(req.value);
        has_value = ok;
        break;
      case kFlags: {
        uint64_t x = 0;
        ok = rd.uint(x) && x <= UINT32_MAX;
        req.flags = static_cast<uint32_t>(x);
        break;
      }
      case kTtl:
        ok = rd.sint(req.ttl);
        req.has_ttl = ok;
        break;
      case kCas:
        ok = rd.uint(req.cas);
        req.has_cas = ok;
        break;
      case kNumber:
        ok = rd.uint(req.delta);
        break;
      case kVersion:
        ok = rd.uint(req.version);
        req.has_version = ok;
        break;
      case kInitial:
        ok = rd.uint(req.initial);
        req.has_initial = ok;
        break;
      case kDelay:
        ok = rd.sint(req.delay) && req.delay >= 0;
        break;
      case kOptions: {
        uint64_t x = 0;
        ok = rd.uint(x) && x <= UINT32_MAX;
        req.options = static_cast<uint32_t>(x);
        break;
      }
      case kVivify:
        ok = rd.sint(req.vivify_ttl);
        req.has_vivify = ok;
        break;
      case kRecache:
        ok = rd.sint(req.recache_ttl);
        req.has_recache = ok;
        break;
      case kNewCas:
        ok = rd.uint(req.new_cas);
        break;
      case kTouchTtl:
        ok = rd.sint(req.touch_ttl);
        req.has_touch_ttl = ok;
        break;
      case kProtoVersion: {
        uint64_t x = 0;
        ok = rd.uint(x) && x <= UINT32_MAX;
        req.proto_version = static_cast<uint32_t>(x);
        break;
      }
      case kKeys:
        ok = rd.array(n);
        for (uint32_t k = 0; ok && k < n; ++k) {
          std::string_view key;
          ok = rd.bytes(key) && valid_key(key);
          req.keys.push_back(key);
        }
        has_keys = ok;
        break;
      case kItems:
        ok = rd.array(n);
        for (uint32_t k = 0; ok && k < n; ++k) {
          Item item;
          uint32_t parts = 0;
          ok = rd.array(parts) && parts >= 2 && parts <= 4 && rd.bytes(item.key) &&
               valid_key(item.key) && rd.bytes(item.value);
          uint64_t fl = 0;
          if (ok && parts >= 3) ok = rd.uint(fl) && fl <= UINT32_MAX;
          if (ok && parts == 4) ok = rd.sint(item.ttl);
          item.flags = static_cast<uint32_t>(fl);
          req.items.push_back(item);
        }
        has_items = ok;
        break;
      case kFeatures:
        ok = rd.array(n);
        for (uint32_t k = 0; ok && k < n; ++k) {
          std::string_view s;
          ok = rd.bytes(s);
          req.features.push_back(s);
        }
        break;
      case kUser:
        ok = rd.bytes(req.user);
        break;
      case kPassword:
        ok = rd.bytes(req.password);
        break;
      default:
        ok = rd.skip(kSkipDepth);  // unknown fields are ignored (newer clients)
        break;
    }
    if (!ok) return fail(Status::kBadRequest, "bad field value");
  }
  if (!rd.at_end()) return fatal(r.consumed, "bytes after the body");
  switch (req.op) {
    case Op::kGet:
    case Op::kGets:
    case Op::kDelete:
    case Op::kIncr:
    case Op::kDecr:
      if (!has_key) return fail(Status::kBadRequest, "key required");
      break;
    case Op::kTouch:
    case Op::kGat:
      if (!has_key || !req.has_ttl) return fail(Status::kBadRequest, "key and ttl required");
      break;
    case Op::kSet:
    case Op::kAdd:
    case Op::kReplace:
    case Op::kAppend:
    case Op::kPrepend:
      if (!has_key || !has_value) return fail(Status::kBadRequest, "key and value required");
      break;
    case Op::kCas:
      if (!has_key || !has_value || !req.has_cas) {
        return fail(Status::kBadRequest, "key, value and cas required");
      }
      break;
    case Op::kMultiGet:
    case Op::kMultiDelete:
      if (!has_keys) return fail(Status::kBadRequest, "keys required");
      break;
    case Op::kMultiSet:
      if (!has_items) return fail(Status::kBadRequest, "items required");
      break;
    case Op::kAdmin:
      if (!has_value) return fail(Status::kBadRequest, "the command (value) required");
      break;
    default:
      break;
  }
  return r;
}

// ---- client side ----

ResponseDecoder::ResponseDecoder(size_t max_frame) : max_frame_(max_frame) {}

DecodeResult ResponseDecoder::feed(std::string_view in, Response& resp) {
  std::string_view body;
  DecodeResult r = frame_of(in, max_frame_, body);
  if (r.status != DecodeStatus::kComplete) return r;
  MsgReader rd(body);
  uint64_t st = 0;
  uint32_t nfields = 0;
  bool not_map = false;
  r = open_body(rd, body, r.consumed, st, nfields, not_map);
  if (r.status != DecodeStatus::kComplete) return r;
  resp.clear();
  resp.id = r.id;
  if (st > static_cast<uint64_t>(kLastStatus)) return fatal(r.consumed, "unknown status");
  resp.status = static_cast<Status>(st);
  if (not_map) return fatal(r.consumed, "fields must be a map");
  for (uint32_t i = 0; i < nfields; ++i) {
    uint64_t f;
    if (!rd.uint(f)) return fatal(r.consumed, "field names are integers");
    bool ok = true;
    uint64_t x = 0;
    uint32_t n = 0;
    switch (f) {
      case kValue:
        ok = rd.bytes(resp.value);
        resp.has_value = ok;
        break;
      case kFlags:
        ok = rd.uint(x) && x <= UINT32_MAX;
        resp.flags = static_cast<uint32_t>(x);
        break;
      case kCas:
        ok = rd.uint(resp.cas);
        break;
      case kNumber:
        ok = rd.uint(resp.number);
        break;
      case kVersion:
        ok = rd.uint(resp.version);
        break;
      case kMessage:
        ok = rd.bytes(resp.message);
        break;
      case kServer:
        ok = rd.bytes(resp.server);
        break;
      case kMaxFrame:
        ok = rd.uint(resp.max_frame);
        break;
      case kTtl:
        ok = rd.sint(resp.ttl);
        break;
      case kFetched:
        ok = rd.uint(x);
        resp.fetched = x != 0;
        resp.has_meta = true;
        break;
      case kIdle:
        ok = rd.uint(resp.idle);
        resp.has_meta = true;
        break;
      case kPriorTtl:
        ok = rd.sint(resp.prior_ttl);
        resp.has_meta = true;
        break;
      case kLease:
        ok = rd.uint(x) && x <= UINT32_MAX;
        resp.lease = static_cast<uint32_t>(x);
        break;
      case kProtoVersion:
        ok = rd.uint(x) && x <= UINT32_MAX;
        resp.proto_version = static_cast<uint32_t>(x);
        break;
      case kValues:
        ok = rd.array(n);
        // n is bounded by the frame (prescan), but an Item is bigger than its encoding.
        if (ok) resp.values.reserve(resp.values.size() + std::min<uint32_t>(n, 4096));
        for (uint32_t k = 0; ok && k < n; ++k) {
          Item item;
          uint32_t parts = 0;
          if (rd.nil()) {
            item.present = false;
          } else {
            uint64_t fl = 0;
            ok = rd.array(parts) && parts == 3 && rd.bytes(item.value) && rd.uint(fl) &&
                 fl <= UINT32_MAX && rd.uint(item.cas);
            item.flags = static_cast<uint32_t>(fl);
          }
          resp.values.push_back(item);
        }
        break;
      case kStatuses:
        ok = rd.array(n);
        for (uint32_t k = 0; ok && k < n; ++k) {
          ok = rd.uint(x) && x <= static_cast<uint64_t>(kLastStatus);
          resp.statuses.push_back(static_cast<Status>(x));
        }
        break;
      case kStats:
        ok = rd.map(n);
        for (uint32_t k = 0; ok && k < n; ++k) {
          std::string_view a, b;
          ok = rd.bytes(a) && rd.bytes(b);
          resp.stats.emplace_back(a, b);
        }
        break;
      case kFeatures:
        ok = rd.array(n);
        for (uint32_t k = 0; ok && k < n; ++k) {
          std::string_view s;
          ok = rd.bytes(s);
          resp.features.push_back(s);
        }
        break;
      default:
        ok = rd.skip(kSkipDepth);
        break;
    }
    if (!ok) return fatal(r.consumed, "bad field value in reply");
  }
  if (!rd.at_end()) return fatal(r.consumed, "bytes after the body");
  return r;
}

// ---- writer ----

namespace {

// Writes the type byte then v in n big-endian bytes; returns the bytes written.
size_t put_be(char* p, uint8_t type, uint64_t v, unsigned n) {
  p[0] = static_cast<char>(type);
  for (unsigned i = 0; i < n; ++i) p[1 + i] = static_cast<char>(v >> (8 * (n - 1 - i)));
  return 1 + n;
}

}  // namespace

void FrameWriter::begin(uint64_t id, uint8_t code, uint32_t nfields) {
  start_ = out_.size();
  char header[kFrameHeader] = {static_cast<char>(kMagic), 0, 0, 0, 0};
  out_.append(std::string_view(header, kFrameHeader));
  array(3);
  uint(id);
  uint(code);
  map(nfields);
}

void FrameWriter::begin_request(uint64_t id, Op op, uint32_t nfields) {
  begin(id, static_cast<uint8_t>(op), nfields);
}

void FrameWriter::begin_reply(uint64_t id, Status status, uint32_t nfields) {
  begin(id, static_cast<uint8_t>(status), nfields);
}

void FrameWriter::end() {
  size_t len = out_.size() - start_ - kFrameHeader;
  char* h = out_.data() + start_ + 1;
  h[0] = static_cast<char>(len >> 24);
  h[1] = static_cast<char>(len >> 16);
  h[2] = static_cast<char>(len >> 8);
  h[3] = static_cast<char>(len);
}

void FrameWriter::wide_uint(uint64_t v) {
  char* p = out_.reserve(9);
  size_t n;
  if (v <= UINT8_MAX) {
    n = put_be(p, 0xcc, v, 1);
  } else if (v <= UINT16_MAX) {
    n = put_be(p, 0xcd, v, 2);
  } else if (v <= UINT32_MAX) {
    n = put_be(p, 0xce, v, 4);
  } else {
    n = put_be(p, 0xcf, v, 8);
  }
  out_.commit(n);
}

void FrameWriter::sint(int64_t v) {
  if (v >= 0) {
    uint(static_cast<uint64_t>(v));
    return;
  }
  char* p = out_.reserve(9);
  auto u = static_cast<uint64_t>(v);
  size_t n;
  if (v >= -32) {
    p[0] = static_cast<char>(u);
    n = 1;
  } else if (v >= INT8_MIN) {
    n = put_be(p, 0xd0, u, 1);
  } else if (v >= INT16_MIN) {
    n = put_be(p, 0xd1, u, 2);
  } else if (v >= INT32_MIN) {
    n = put_be(p, 0xd2, u, 4);
  } else {
    n = put_be(p, 0xd3, u, 8);
  }
  out_.commit(n);
}

void FrameWriter::wide_header(uint8_t wide16, uint32_t n) {
  char* p = out_.reserve(5);
  size_t w;
  if (n <= UINT16_MAX) {
    w = put_be(p, wide16, n, 2);
  } else {
    w = put_be(p, wide16 + 1, n, 4);
  }
  out_.commit(w);
}

// fix == 0 means there is no fix form (bin); w8/w16 then +1 for the 32-bit length.
void FrameWriter::bytes(uint8_t fix, uint8_t w8, uint8_t w16, std::string_view v) {
  char* p = out_.reserve(5 + v.size());
  size_t n = v.size(), w;
  if (fix != 0 && n < 32) {
    p[0] = static_cast<char>(fix | n);
    w = 1;
  } else if (n <= UINT8_MAX) {
    w = put_be(p, w8, n, 1);
  } else if (n <= UINT16_MAX) {
    w = put_be(p, w16, n, 2);
  } else {
    w = put_be(p, w16 + 1, n, 4);
  }
  if (n > 0) std::memcpy(p + w, v.data(), n);
  out_.commit(w + n);
}

void write_value_reply(FrameWriter& w, uint64_t id, std::string_view value, uint32_t flags,
                       uint64_t cas, uint64_t version, int64_t ttl, const ItemMeta* meta) {
  uint32_t extra = meta == nullptr ? 0 : 3 + (meta->lease != 0);
  w.begin_reply(id, Status::kOk, 3 + (version != 0) + (ttl != 0) + extra);
  w.field(kValue);
  w.bin(value);
  w.field(kFlags);
  w.uint(flags);
  w.field(kCas);
  w.uint(cas);
  if (version != 0) {
    w.field(kVersion);
    w.uint(version);
  }
  if (ttl != 0) {
    w.field(kTtl);
    w.sint(ttl);
  }
  if (meta != nullptr) {
    w.field(kFetched);
    w.uint(meta->fetched ? 1 : 0);
    w.field(kIdle);
    w.uint(meta->idle);
    w.field(kPriorTtl);
    w.sint(meta->prior_ttl);
    if (meta->lease != 0) {
      w.field(kLease);
      w.uint(meta->lease);
    }
  }
  w.end();
}

void FrameWriter::bin(std::string_view v) { bytes(0, 0xc4, 0xc5, v); }
void FrameWriter::str(std::string_view v) { bytes(0xa0, 0xd9, 0xda, v); }

}  // namespace cachetier::native
