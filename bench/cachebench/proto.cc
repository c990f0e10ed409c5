#include "bench/cachebench/proto.h"

#include <algorithm>
#include <span>

namespace cachetier::bench {

namespace {

namespace mc = memcache;

class MemcacheText : public WireProtocol {
 public:
  void encode_get(ByteBuffer& out, std::string_view key, uint64_t) override {
    mc::encode_retrieval(out, mc::Command::kGet, std::span<const std::string_view>(&key, 1));
  }
  void encode_set(ByteBuffer& out, std::string_view key, std::string_view value, int64_t ttl,
                  uint64_t) override {
    mc::encode_storage(out, mc::Command::kSet, key, 0, ttl, value);
  }
  // A get's reply is VALUE ... then END: one Decoded for the pair.
  Decoded decode(std::string_view in, bool is_get) override {
    Decoded d;
    size_t used = 0;
    for (;;) {
      mc::Response r;
      auto res = dec_.feed(in.substr(used), r);
      if (res.status == mc::DecodeStatus::kNeedMore) return d;  // (VALUE re-read next time)
      if (res.status != mc::DecodeStatus::kComplete) {
        d.status = Decoded::kFatal;
        return d;
      }
      used += res.consumed;
      if (is_get && r.kind == mc::ResponseKind::kValue) {
        hit_ = true;
        continue;
      }
      d.status = Decoded::kReply;
      d.consumed = used;
      if (is_get) {
        d.kind = r.kind == mc::ResponseKind::kEnd ? (hit_ ? ReplyKind::kHit : ReplyKind::kMiss)
                                                  : ReplyKind::kError;
      } else {
        d.kind = r.kind == mc::ResponseKind::kStored ? ReplyKind::kStored : ReplyKind::kError;
      }
      if (d.kind == ReplyKind::kError) {
        d.error = in.substr(used - res.consumed, std::min<size_t>(res.consumed, 80));
      }
      hit_ = false;
      return d;
    }
  }

 private:
  mc::ResponseDecoder dec_;
  bool hit_ = false;
};

// RESP2: GET/SET as arrays of bulk strings; replies +OK, $-1, $N data, -ERR.
class Redis : public WireProtocol {
 public:
  void encode_get(ByteBuffer& out, std::string_view key, uint64_t) override {
    out.append("*2\r\n$3\r\nGET\r\n");
    bulk(out, key);
  }
  void encode_set(ByteBuffer& out, std::string_view key, std::string_view value, int64_t ttl,
                  uint64_t) override {
    out.append(ttl > 0 ? "*5\r\n$3\r\nSET\r\n" : "*3\r\n$3\r\nSET\r\n");
    bulk(out, key);
    bulk(out, value);
    if (ttl > 0) {
      out.append("$2\r\nEX\r\n");
      bulk(out, std::to_string(ttl));
    }
  }
  Decoded decode(std::string_view in, bool is_get) override {
    Decoded d;
    size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos) {
      if (in.size() > 64 * 1024) d.status = Decoded::kFatal;
      return d;
    }
    char t = in.empty() ? 0 : in[0];
    if (t == '+' || t == '-' || t == ':') {
      d.status = Decoded::kReply;
      d.consumed = eol + 2;
      d.kind = t == '+' && !is_get ? ReplyKind::kStored : ReplyKind::kError;
      if (d.kind == ReplyKind::kError) d.error = in.substr(0, std::min<size_t>(eol, 80));
      return d;
    }
    if (t != '$') {
      d.status = Decoded::kFatal;
      return d;
    }
    long long n = 0;
    bool neg = false;
    for (size_t i = 1; i < eol; ++i) {
      if (in[i] == '-' && i == 1) {
        neg = true;
      } else if (in[i] >= '0' && in[i] <= '9') {
        n = n * 10 + (in[i] - '0');
      } else {
        d.status = Decoded::kFatal;
        return d;
      }
    }
    if (neg) {
      d.status = Decoded::kReply;
      d.consumed = eol + 2;
      d.kind = is_get ? ReplyKind::kMiss : ReplyKind::kError;
      return d;
    }
    if (in.size() < eol + 2 + size_t(n) + 2) return d;
    d.status = Decoded::kReply;
    d.consumed = eol + 2 + size_t(n) + 2;
    d.kind = is_get ? ReplyKind::kHit : ReplyKind::kError;
    return d;
  }

 private:
  static void bulk(ByteBuffer& out, std::string_view s) {
    out.append('$');
    out.append_u64(s.size());
    out.append("\r\n");
    out.append(s);
    out.append("\r\n");
  }
};

class Native : public WireProtocol {
 public:
  void encode_get(ByteBuffer& out, std::string_view key, uint64_t id) override {
    native::FrameWriter w(out);
    w.begin_request(id, native::Op::kGet, 1);
    w.field(native::kKey);
    w.bin(key);
    w.end();
  }
  void encode_set(ByteBuffer& out, std::string_view key, std::string_view value, int64_t ttl,
                  uint64_t id) override {
    native::FrameWriter w(out);
    w.begin_request(id, native::Op::kSet, ttl > 0 ? 3 : 2);
    w.field(native::kKey);
    w.bin(key);
    w.field(native::kValue);
    w.bin(value);
    if (ttl > 0) {
      w.field(native::kTtl);
      w.sint(ttl);
    }
    w.end();
  }
  Decoded decode(std::string_view in, bool is_get) override {
    Decoded d;
    native::DecodeResult r = dec_.feed(in, resp_);
    if (r.status == native::DecodeStatus::kNeedMore) return d;
    if (r.status != native::DecodeStatus::kComplete) {
      d.status = Decoded::kFatal;
      return d;
    }
    d.status = Decoded::kReply;
    d.consumed = r.consumed;
    if (resp_.status == native::Status::kOk) {
      d.kind = is_get ? ReplyKind::kHit : ReplyKind::kStored;
    } else if (resp_.status == native::Status::kNotFound && is_get) {
      d.kind = ReplyKind::kMiss;
    } else {
      d.kind = ReplyKind::kError;
    }
    return d;
  }

 private:
  native::ResponseDecoder dec_{64u << 20};
  native::Response resp_;
};

}  // namespace

std::unique_ptr<WireProtocol> make_protocol(std::string_view name) {
  if (name == "memcache_text") return std::make_unique<MemcacheText>();
  if (name == "redis") return std::make_unique<Redis>();
  if (name == "native") return std::make_unique<Native>();
  return nullptr;
}

}  // namespace cachetier::bench
