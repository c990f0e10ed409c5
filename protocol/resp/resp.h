// RESP (the Redis serialization protocol), server side: RequestDecoder turns bytes into one
// command's arguments without touching a socket, and the write_* functions append replies in
// RESP2 or RESP3 (docs/resp.md).
//
// A request is a multibulk (`*<n>\r\n` then n times `$<len>\r\n<bytes>\r\n`) or an inline
// line split as redis-server splits it (spaces, "double quotes" with \n \r \t \b \a \\ \"
// \xHH escapes, 'single quotes' with \'). Which one is chosen per request by its first byte,
// as redis-server does.
//
// feed() contract: given the unparsed bytes, it returns
//   kComplete  one command is in `cmd`; `consumed` bytes belong to it
//   kEmpty     `consumed` bytes held no command (`*0`, `*-1`, a blank inline line): drop them
//   kNeedMore  no whole command yet; `need` is the total byte count that lets the next feed
//              finish the argument under way, when known (0 = more of any size)
//   kFatal     a protocol error: send `error` (redis-server's "-ERR Protocol error: ...")
//              and close the connection, as redis-server does
// Views in `cmd` point into the fed bytes (or into the decoder, for unquoted inline
// arguments) and are valid until the next feed(). The decoder remembers how far it got in a
// multibulk between kNeedMore calls, as offsets: the caller feeds the same unparsed bytes
// again, grown, from the same start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/buffer.h"

namespace cachetier::resp {

// redis-server's limits, with its defaults.
struct Limits {
  uint64_t max_bulk = 512ull << 20;    // proto-max-bulk-len
  size_t max_inline = 64 * 1024;       // PROTO_INLINE_MAX_SIZE: an inline line, a count line
  int64_t max_multibulk = 2147483647;  // a multibulk count above this is invalid (INT_MAX)
  bool allow_inline = true;
  // Before authentication redis-server accepts at most 10 arguments of at most 16384 bytes.
  bool unauthenticated = false;
};

struct Command {
  std::vector<std::string_view> argv;
  bool inline_form = false;
};

enum class DecodeStatus { kComplete, kEmpty, kNeedMore, kFatal };

struct DecodeResult {
  DecodeStatus status = DecodeStatus::kNeedMore;
  size_t consumed = 0;
  size_t need = 0;
  std::string_view error;  // kFatal: the whole reply line, "\r\n" included
};

class RequestDecoder {
 public:
  explicit RequestDecoder(Limits limits = {}) : limits_(limits) {}
  DecodeResult feed(std::string_view in, Command& cmd);
  Limits& limits() { return limits_; }

 private:
  DecodeResult feed_inline(std::string_view in, Command& cmd);
  DecodeResult fatal(std::string_view line);
  void reset();

  Limits limits_;
  // A multibulk under way: its count, where parsing resumes, and the arguments so far.
  int64_t count_ = -1;
  size_t pos_ = 0;
  std::vector<std::pair<size_t, size_t>> spans_;  // offset, length in the fed bytes
  std::vector<std::string> inline_args_;
  std::string error_;
};

// redis-server's string2ll: an optional '-', digits, no leading zeros (except "0"), no
// spaces, within int64. Used for every integer argument.
bool parse_ll(std::string_view s, int64_t* out);
// redis-server's string2ld (strtold, no leading space, nothing after, not NaN).
bool parse_ld(std::string_view s, long double* out);
// redis-server's ld2string in its "human" mode: %.17Lf with trailing zeros removed.
std::string format_ld(long double v);
// Splits an inline line as redis-server's sdssplitargs does; false on unbalanced quotes.
bool split_inline(std::string_view line, std::vector<std::string>& out);

// "-<e>\r\n" with CR and LF in `e` shown as spaces (Writer::error's line, as a string).
std::string error_line(std::string_view e);

// ---- reply writers ----
// `resp3` picks RESP3's types where they differ (null, map, set, double, verbatim).
struct Writer {
  ByteBuffer& out;
  bool resp3 = false;

  void simple(std::string_view s);  // +s
  // -s (s starts with the error code, "ERR ..."); CR and LF become spaces, as redis-server
  // makes them in errors that quote the request (else the reply would break the stream).
  void error(std::string_view s);
  void integer(int64_t n);               // :n
  void bulk(std::string_view s);         // $len s
  void null();                           // $-1 or _
  void null_array();                     // *-1 or _
  void array(size_t n);                  // *n
  void map(size_t pairs);                // *2n or %n
  void set(size_t n);                    // *n or ~n
  void boolean(bool b);                  // :0/:1 or #f/#t
  void verbatim(std::string_view text);  // $len or =len txt:
  void ok() { out.append("+OK\r\n"); }
};

// Redis's shared error texts (the ones clients match on).
namespace err {
inline constexpr std::string_view kSyntax = "ERR syntax error";
inline constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kNotFloat = "ERR value is not a valid float";
inline constexpr std::string_view kOverflow = "ERR increment or decrement would overflow";
inline constexpr std::string_view kNoAuth = "NOAUTH Authentication required.";
inline constexpr std::string_view kWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";
}  // namespace err

}  // namespace cachetier::resp
