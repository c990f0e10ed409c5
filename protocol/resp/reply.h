// RESP client side: encode a command as a multibulk, and decode one reply (RESP2 or RESP3,
// aggregates included) into a Value tree. Used by tests, the fuzz target and tools; the
// load generator's hot path has its own two-type decoder (bench/cachebench/proto.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/buffer.h"

namespace cachetier::resp {

// "*<n>\r\n$<len>\r\n<arg>\r\n..."
void encode_command(ByteBuffer& out, const std::vector<std::string_view>& argv);

struct Value {
  // The RESP type byte: + - : $ * _ , # ( = % ~ > (a null bulk or array is kNull too).
  char type = '_';
  std::string str;           // simple, error, bulk, verbatim (with its "txt:"), number text
  int64_t integer = 0;       // ':'
  std::vector<Value> items;  // '*', '~', '>', and '%' as key, value, key, value ...
  bool is_null() const { return type == '_'; }
};

struct ReplyResult {
  enum Status { kNeedMore, kComplete, kError } status = kNeedMore;
  size_t consumed = 0;
};

// Parses one whole reply from the start of `in`. kError: not RESP (or nested deeper than
// `max_depth`, or longer than `max_bulk`).
ReplyResult decode_reply(std::string_view in, Value& v, size_t max_depth = 64,
                         uint64_t max_bulk = 512ull << 20);

// The reply written back as RESP (for comparing and printing).
std::string to_resp(const Value& v);

}  // namespace cachetier::resp
