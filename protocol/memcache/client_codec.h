// Client side of the memcache text codec: encode requests, decode responses (for the load
// generator, the client library and the router's memcache backends). Sans-I/O like the server
// side: ResponseDecoder::feed never reads a socket.
//
// Responses are decoded one unit at a time: a VALUE block, an END, a STAT line, a meta reply
// with its data block, or a one-line status. Callers collect VALUEs until END themselves,
// because only they know which request a reply answers.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "common/buffer.h"
#include "protocol/memcache/request.h"
#include "protocol/memcache/server_codec.h"

namespace cachetier::memcache {

// get/gets with one or more keys; gat/gats with an exptime.
void encode_retrieval(ByteBuffer& out, Command cmd, std::span<const std::string_view> keys,
                      int64_t exptime = 0);
// set/add/replace/append/prepend/cas.
void encode_storage(ByteBuffer& out, Command cmd, std::string_view key, uint32_t flags,
                    int64_t exptime, std::string_view value, uint64_t cas = 0,
                    bool noreply = false);
void encode_delete(ByteBuffer& out, std::string_view key, bool noreply = false);
void encode_arith(ByteBuffer& out, Command cmd, std::string_view key, uint64_t delta,
                  bool noreply = false);
void encode_touch(ByteBuffer& out, std::string_view key, int64_t exptime, bool noreply = false);
// A meta command: "<mg|ms|md|ma|mn> <key> [<datalen>] <flags>\r\n[<value>\r\n]".
// `value` is sent (with its length) only for ms.
void encode_meta(ByteBuffer& out, Command cmd, std::string_view key, std::string_view flags,
                 std::string_view value = {});

enum class ResponseKind : uint8_t {
  kValue,
  kEnd,
  kStored,
  kNotStored,
  kExists,
  kNotFound,
  kDeleted,
  kTouched,
  kOk,
  kNumber,
  kStat,
  kVersion,
  kError,
  kClientError,
  kServerError,
  kMetaHD,
  kMetaVA,
  kMetaEN,
  kMetaNS,
  kMetaEX,
  kMetaNF,
  kMetaMN,
};

struct Response {
  ResponseKind kind = ResponseKind::kEnd;
  std::string_view line;        // the first line without \r\n
  std::string_view key;         // VALUE; STAT name
  std::string_view value;       // VALUE / VA data; STAT value; VERSION text; error message
  std::string_view meta_flags;  // meta return flags, as text
  uint32_t client_flags = 0;
  uint64_t cas = 0;
  bool has_cas = false;
  uint64_t number = 0;  // incr/decr result
};

class ResponseDecoder {
 public:
  explicit ResponseDecoder(size_t max_value = 64 * 1024 * 1024) : max_value_(max_value) {}
  // kComplete: one response unit in `resp`, `consumed` bytes. kNeedMore: nothing yet.
  // kFatal: the stream is not memcache text (the connection should be dropped).
  DecodeResult feed(std::string_view in, Response& resp);

 private:
  size_t max_value_;
};

}  // namespace cachetier::memcache
