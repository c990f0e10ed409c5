// Server side of the memcache text codec: RequestDecoder turns bytes into Requests without
// touching a socket, and the write_* functions append responses to an output buffer.
//
// feed() contract: given the unparsed bytes, it returns
//   kComplete  one request is in `req`; `consumed` bytes belong to it
//   kNeedMore  no whole request yet; `consumed` bytes (a swallowed data block) may be dropped,
//              and `need` is the total byte count that would let the next feed make progress
//   kError     a request was malformed: send `error`, drop `consumed` bytes, keep going
//   kFatal     framing is lost (line too long): send `error` and close the connection
// Views in `req` point into the fed bytes (or into the decoder for base64 keys) and are valid
// until the next feed().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/buffer.h"
#include "protocol/memcache/request.h"

namespace cachetier::memcache {

struct DecoderLimits {
  size_t max_line = 64 * 1024;     // a command line longer than this closes the connection
  size_t max_value = 1024 * 1024;  // larger data blocks are refused and swallowed
  bool admin = false;  // decode cacherouter's drain / undrain / route (else they are ERROR)
};

enum class DecodeStatus { kComplete, kNeedMore, kError, kFatal };

struct DecodeResult {
  DecodeStatus status;
  size_t consumed = 0;
  std::string_view error;  // the response line for kError / kFatal
  size_t need = 0;         // kNeedMore: bytes the whole request needs, when known
};

class RequestDecoder {
 public:
  explicit RequestDecoder(DecoderLimits limits = {}) : limits_(limits) {}
  DecodeResult feed(std::string_view in, Request& req);
  const DecoderLimits& limits() const { return limits_; }

 private:
  DecodeResult parse_line(std::string_view in, size_t line_end, std::string_view line,
                          Request& req);
  DecodeResult parse_storage(std::string_view in, size_t after, std::string_view* tok, size_t n,
                             Request& req);
  DecodeResult parse_retrieval(size_t after, std::string_view line, Request& req);
  DecodeResult parse_meta(std::string_view in, size_t after, std::string_view* tok, size_t n,
                          Request& req);
  // Checks and takes the data block of `bytes` that follows the line ending at `after`.
  DecodeResult take_data(std::string_view in, size_t after, uint64_t bytes, Request& req);
  DecodeResult refuse_data(std::string_view in, size_t after, uint64_t bytes,
                           std::string_view error);

  DecoderLimits limits_;
  size_t swallow_ = 0;       // bytes of a refused data block still to drop
  std::string key_scratch_;  // decoded base64 key
};

// ---- response writers (server side) ----

// "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n"
void write_value(ByteBuffer& out, std::string_view key, uint32_t flags, std::string_view data,
                 const uint64_t* cas);
void write_number(ByteBuffer& out, uint64_t n);  // "<n>\r\n"
void write_stat(ByteBuffer& out, std::string_view name, std::string_view value);
void write_stat(ByteBuffer& out, std::string_view name, uint64_t value);

}  // namespace cachetier::memcache
