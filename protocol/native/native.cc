// Native protocol codec. See native.h and docs/protocol.md.
#include "protocol/native/native.h"

#include <cstring>

#include "common/status.h"

namespace cachetier::native {

namespace {

uint32_t read_be32(const char* p) {
  auto u = [&](int i) { return static_cast<uint32_t>(static_cast<uint8_t>(p[i])); };
  return (u(0) << 24) | (u(1) << 16) | (u(2) << 8) | u(3);
}

int append_to_buffer(void* data, const char* buf, size_t len) {
  static_cast<ByteBuffer*>(data)->append(std::string_view(buf, len));
  return 0;
}

DecodeResult need_more(size_t need) { return {DecodeStatus::kNeedMore, 0, need, 0, {}, {}}; }
DecodeResult fatal(size_t consumed, std::string_view why) {
  return {DecodeStatus::kFatal, consumed, 0, 0, Status::kBadRequest, why};
}

// Common framing: checks the header and the body's shape; on success `body` holds the
// three-element array and `frame` the frame size.
// msgpack-c's msgpack_unpack_next() creates (mallocs) a new zone for every object; with one
// zone per decoder, cleared between frames, a frame costs no allocation once the zone has
// grown to the working size (measured: bench/RESULTS.md, client benchmark).
DecodeResult parse_frame(std::string_view in, size_t max_frame, msgpack_zone& zone,
                         msgpack_object& obj, const msgpack_object** body) {
  if (in.empty()) return need_more(kFrameHeader);
  if (static_cast<uint8_t>(in[0]) != kMagic) return fatal(in.size(), "bad frame magic");
  if (in.size() < kFrameHeader) return need_more(kFrameHeader);
  uint32_t len = read_be32(in.data() + 1);
  if (len > max_frame) return fatal(in.size(), "frame larger than the limit");
  if (in.size() < kFrameHeader + len) return need_more(kFrameHeader + len);
  size_t frame = kFrameHeader + len;
  std::string_view bytes = in.substr(kFrameHeader, len);
  if (!prescan(bytes)) return fatal(frame, "malformed msgpack body");
  size_t off = 0;
  msgpack_zone_clear(&zone);
  msgpack_unpack_return r = msgpack_unpack(bytes.data(), bytes.size(), &off, &zone, &obj);
  if (r != MSGPACK_UNPACK_SUCCESS || off != bytes.size()) {
    return fatal(frame, "malformed msgpack body");
  }
  const msgpack_object& o = obj;
  if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 3 ||
      o.via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      o.via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    return fatal(frame, "body is not [id, code, fields]");
  }
  *body = &o;
  return {DecodeStatus::kComplete, frame, 0, o.via.array.ptr[0].via.u64, {}, {}};
}

bool as_bytes(const msgpack_object& o, std::string_view& out) {
  if (o.type == MSGPACK_OBJECT_BIN) {
    out = {o.via.bin.ptr, o.via.bin.size};
    return true;
  }
  if (o.type == MSGPACK_OBJECT_STR) {
    out = {o.via.str.ptr, o.via.str.size};
    return true;
  }
  return false;
}

bool as_u64(const msgpack_object& o, uint64_t& out) {
  if (o.type != MSGPACK_OBJECT_POSITIVE_INTEGER) return false;
  out = o.via.u64;
  return true;
}

bool as_i64(const msgpack_object& o, int64_t& out) {
  if (o.type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
    out = o.via.i64;
    return true;
  }
  if (o.type == MSGPACK_OBJECT_POSITIVE_INTEGER && o.via.u64 <= INT64_MAX) {
    out = static_cast<int64_t>(o.via.u64);
    return true;
  }
  return false;
}

bool valid_key(std::string_view k) { return !k.empty() && k.size() <= kMaxKeyLength; }

}  // namespace

std::string_view op_name(Op op) {
  static constexpr std::string_view kNames[kOpCount] = {
      "hello",     "get",       "gets",         "set",   "add",   "replace", "append",
      "prepend",   "cas",       "delete",       "incr",  "decr",  "touch",   "gat",
      "multi_get", "multi_set", "multi_delete", "flush", "stats", "noop",    "version"};
  auto i = static_cast<size_t>(op);
  return i < kOpCount ? kNames[i] : "unknown";
}

std::string_view status_name(Status s) {
  static constexpr std::string_view kNames[] = {
      "OK",        "NOT_FOUND",   "EXISTS",     "NOT_STORED",    "NON_NUMERIC", "TOO_LARGE",
      "NO_MEMORY", "BAD_REQUEST", "UNKNOWN_OP", "OLDER_VERSION", "SERVER_ERROR"};
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
  has_ttl = has_cas = has_version = has_initial = false;
  keys.clear();
  items.clear();
  proto_version = 0;
  features.clear();
}

void Response::clear() {
  id = 0;
  status = Status::kOk;
  value = message = server = {};
  flags = 0;
  cas = number = version = max_frame = 0;
  proto_version = 0;
  has_value = false;
  values.clear();
  statuses.clear();
  stats.clear();
  features.clear();
}

// ---- prescan: a bounds-only walk of one msgpack object ----

bool prescan(std::string_view body, int max_depth) {
  const auto* p = reinterpret_cast<const uint8_t*>(body.data());
  const uint8_t* end = p + body.size();
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
    if (depth < 0) return p == end;
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

RequestDecoder::RequestDecoder(size_t max_frame) : max_frame_(max_frame), body_() {
  if (!msgpack_zone_init(&zone_, 4096)) fatal_out_of_memory("msgpack zone", 4096);
}
RequestDecoder::~RequestDecoder() { msgpack_zone_destroy(&zone_); }

DecodeResult RequestDecoder::feed(std::string_view in, Request& req) {
  const msgpack_object* body = nullptr;
  DecodeResult r = parse_frame(in, max_frame_, zone_, body_, &body);
  if (r.status != DecodeStatus::kComplete) return r;
  req.clear();
  req.id = r.id;
  auto fail = [&](Status s, std::string_view why) {
    return DecodeResult{DecodeStatus::kError, r.consumed, 0, r.id, s, why};
  };
  uint64_t op = body->via.array.ptr[1].via.u64;
  if (op >= kOpCount) return fail(Status::kUnknownOp, "unknown op");
  req.op = static_cast<Op>(op);
  const msgpack_object& fields = body->via.array.ptr[2];
  if (fields.type != MSGPACK_OBJECT_MAP) return fail(Status::kBadRequest, "fields must be a map");
  bool has_key = false, has_value = false, has_keys = false, has_items = false;
  for (uint32_t i = 0; i < fields.via.map.size; ++i) {
    const msgpack_object_kv& kv = fields.via.map.ptr[i];
    uint64_t f;
    if (!as_u64(kv.key, f)) return fail(Status::kBadRequest, "field names are integers");
    const msgpack_object& v = kv.val;
    bool ok = true;
    switch (f) {
      case kKey:
        ok = as_bytes(v, req.key) && valid_key(req.key);
        has_key = ok;
        break;
      case kValue:
        ok = as_bytes(v, req.value);
        has_value = ok;
        break;
      case kFlags: {
        uint64_t x = 0;
        ok = as_u64(v, x) && x <= UINT32_MAX;
        req.flags = static_cast<uint32_t>(x);
        break;
      }
      case kTtl:
        ok = as_i64(v, req.ttl);
        req.has_ttl = ok;
        break;
      case kCas:
        ok = as_u64(v, req.cas);
        req.has_cas = ok;
        break;
      case kNumber:
        ok = as_u64(v, req.delta);
        break;
      case kVersion:
        ok = as_u64(v, req.version);
        req.has_version = ok;
        break;
      case kInitial:
        ok = as_u64(v, req.initial);
        req.has_initial = ok;
        break;
      case kDelay:
        ok = as_i64(v, req.delay) && req.delay >= 0;
        break;
      case kProtoVersion: {
        uint64_t x = 0;
        ok = as_u64(v, x) && x <= UINT32_MAX;
        req.proto_version = static_cast<uint32_t>(x);
        break;
      }
      case kKeys:
        ok = v.type == MSGPACK_OBJECT_ARRAY;
        for (uint32_t k = 0; ok && k < v.via.array.size; ++k) {
          std::string_view key;
          ok = as_bytes(v.via.array.ptr[k], key) && valid_key(key);
          req.keys.push_back(key);
        }
        has_keys = ok;
        break;
      case kItems:
        ok = v.type == MSGPACK_OBJECT_ARRAY;
        for (uint32_t k = 0; ok && k < v.via.array.size; ++k) {
          const msgpack_object& it = v.via.array.ptr[k];
          Item item;
          ok = it.type == MSGPACK_OBJECT_ARRAY && it.via.array.size >= 2 &&
               it.via.array.size <= 4 && as_bytes(it.via.array.ptr[0], item.key) &&
               valid_key(item.key) && as_bytes(it.via.array.ptr[1], item.value);
          uint64_t fl = 0;
          if (ok && it.via.array.size >= 3) {
            ok = as_u64(it.via.array.ptr[2], fl) && fl <= UINT32_MAX;
          }
          if (ok && it.via.array.size == 4) ok = as_i64(it.via.array.ptr[3], item.ttl);
          item.flags = static_cast<uint32_t>(fl);
          req.items.push_back(item);
        }
        has_items = ok;
        break;
      case kFeatures:
        ok = v.type == MSGPACK_OBJECT_ARRAY;
        for (uint32_t k = 0; ok && k < v.via.array.size; ++k) {
          std::string_view s;
          ok = as_bytes(v.via.array.ptr[k], s);
          req.features.push_back(s);
        }
        break;
      default:
        break;  // unknown fields are ignored (newer clients)
    }
    if (!ok) return fail(Status::kBadRequest, "bad field value");
  }
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
    default:
      break;
  }
  return r;
}

// ---- client side ----

ResponseDecoder::ResponseDecoder(size_t max_frame) : max_frame_(max_frame), body_() {
  if (!msgpack_zone_init(&zone_, 4096)) fatal_out_of_memory("msgpack zone", 4096);
}
ResponseDecoder::~ResponseDecoder() { msgpack_zone_destroy(&zone_); }

DecodeResult ResponseDecoder::feed(std::string_view in, Response& resp) {
  const msgpack_object* body = nullptr;
  DecodeResult r = parse_frame(in, max_frame_, zone_, body_, &body);
  if (r.status != DecodeStatus::kComplete) return r;
  resp.clear();
  resp.id = r.id;
  uint64_t st = body->via.array.ptr[1].via.u64;
  if (st > static_cast<uint64_t>(Status::kServerError)) return fatal(r.consumed, "unknown status");
  resp.status = static_cast<Status>(st);
  const msgpack_object& fields = body->via.array.ptr[2];
  if (fields.type != MSGPACK_OBJECT_MAP) return fatal(r.consumed, "fields must be a map");
  for (uint32_t i = 0; i < fields.via.map.size; ++i) {
    const msgpack_object_kv& kv = fields.via.map.ptr[i];
    uint64_t f;
    if (!as_u64(kv.key, f)) return fatal(r.consumed, "field names are integers");
    const msgpack_object& v = kv.val;
    bool ok = true;
    uint64_t x = 0;
    switch (f) {
      case kValue:
        ok = as_bytes(v, resp.value);
        resp.has_value = ok;
        break;
      case kFlags:
        ok = as_u64(v, x) && x <= UINT32_MAX;
        resp.flags = static_cast<uint32_t>(x);
        break;
      case kCas:
        ok = as_u64(v, resp.cas);
        break;
      case kNumber:
        ok = as_u64(v, resp.number);
        break;
      case kVersion:
        ok = as_u64(v, resp.version);
        break;
      case kMessage:
        ok = as_bytes(v, resp.message);
        break;
      case kServer:
        ok = as_bytes(v, resp.server);
        break;
      case kMaxFrame:
        ok = as_u64(v, resp.max_frame);
        break;
      case kProtoVersion:
        ok = as_u64(v, x) && x <= UINT32_MAX;
        resp.proto_version = static_cast<uint32_t>(x);
        break;
      case kValues:
        ok = v.type == MSGPACK_OBJECT_ARRAY;
        for (uint32_t k = 0; ok && k < v.via.array.size; ++k) {
          const msgpack_object& it = v.via.array.ptr[k];
          Item item;
          if (it.type == MSGPACK_OBJECT_NIL) {
            item.present = false;
          } else {
            uint64_t fl = 0;
            ok = it.type == MSGPACK_OBJECT_ARRAY && it.via.array.size == 3 &&
                 as_bytes(it.via.array.ptr[0], item.value) && as_u64(it.via.array.ptr[1], fl) &&
                 fl <= UINT32_MAX && as_u64(it.via.array.ptr[2], item.cas);
            item.flags = static_cast<uint32_t>(fl);
          }
          resp.values.push_back(item);
        }
        break;
      case kStatuses:
        ok = v.type == MSGPACK_OBJECT_ARRAY;
        for (uint32_t k = 0; ok && k < v.via.array.size; ++k) {
          ok = as_u64(v.via.array.ptr[k], x) && x <= static_cast<uint64_t>(Status::kServerError);
          resp.statuses.push_back(static_cast<Status>(x));
        }
        break;
      case kStats:
        ok = v.type == MSGPACK_OBJECT_MAP;
        for (uint32_t k = 0; ok && k < v.via.map.size; ++k) {
          std::string_view a, b;
          ok = as_bytes(v.via.map.ptr[k].key, a) && as_bytes(v.via.map.ptr[k].val, b);
          resp.stats.emplace_back(a, b);
        }
        break;
      case kFeatures:
        ok = v.type == MSGPACK_OBJECT_ARRAY;
        for (uint32_t k = 0; ok && k < v.via.array.size; ++k) {
          std::string_view s;
          ok = as_bytes(v.via.array.ptr[k], s);
          resp.features.push_back(s);
        }
        break;
      default:
        break;
    }
    if (!ok) return fatal(r.consumed, "bad field value in reply");
  }
  return r;
}

// ---- writer ----

FrameWriter::FrameWriter(ByteBuffer& out) : out_(out) {
  msgpack_packer_init(&pk_, &out_, append_to_buffer);
}

void FrameWriter::begin(uint64_t id, uint8_t code, uint32_t nfields) {
  start_ = out_.size();
  char header[kFrameHeader] = {static_cast<char>(kMagic), 0, 0, 0, 0};
  out_.append(std::string_view(header, kFrameHeader));
  msgpack_pack_array(&pk_, 3);
  msgpack_pack_uint64(&pk_, id);
  msgpack_pack_uint8(&pk_, code);
  msgpack_pack_map(&pk_, nfields);
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

void FrameWriter::bin(std::string_view v) {
  msgpack_pack_bin(&pk_, v.size());
  msgpack_pack_bin_body(&pk_, v.data(), v.size());
}

void FrameWriter::str(std::string_view v) {
  msgpack_pack_str(&pk_, v.size());
  msgpack_pack_str_body(&pk_, v.data(), v.size());
}

}  // namespace cachetier::native
