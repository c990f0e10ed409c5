// The wire protocols cachebench speaks (-P): memcache_text, redis (RESP2) and native. Each
// encodes a get or a set into the connection's output and decodes one reply at a time; replies
// come back in request order on every protocol (cachetier's servers answer native requests in
// order too).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/buffer.h"
#include "protocol/memcache/client_codec.h"
#include "protocol/native/native.h"

namespace cachetier::bench {

enum class ReplyKind { kHit, kMiss, kStored, kError };

struct Decoded {
  enum { kNeedMore, kReply, kFatal } status = kNeedMore;
  size_t consumed = 0;
  ReplyKind kind = ReplyKind::kError;
  std::string_view error;  // kError: the reply as received (a prefix), for the report
};

class WireProtocol {
 public:
  virtual ~WireProtocol() = default;
  virtual void encode_get(ByteBuffer& out, std::string_view key, uint64_t id) = 0;
  virtual void encode_set(ByteBuffer& out, std::string_view key, std::string_view value,
                          int64_t ttl, uint64_t id) = 0;
  // One reply (or kNeedMore). `is_get`: what the oldest request in flight was.
  virtual Decoded decode(std::string_view in, bool is_get) = 0;
};

// "memcache_text", "redis", "native"; null for anything else.
std::unique_ptr<WireProtocol> make_protocol(std::string_view name);

}  // namespace cachetier::bench
