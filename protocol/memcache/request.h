// The memcache text protocol (classic and meta commands) as data: the Request a server-side
// decoder produces and a client-side encoder consumes. Views point into the caller's input
// buffer (or the decoder's key scratch for base64 keys) and are valid until the next feed().
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace cachetier::memcache {

inline constexpr size_t kMaxKeyLength = 250;

enum class Command : uint8_t {
  kGet,
  kGets,
  kGat,
  kGats,
  kSet,
  kAdd,
  kReplace,
  kAppend,
  kPrepend,
  kCas,
  kDelete,
  kIncr,
  kDecr,
  kTouch,
  kFlushAll,
  kVersion,
  kVerbosity,
  kRefreshCerts,  // memcached's: reload the TLS certificate and key
  kStats,
  kQuit,
  kMetaGet,
  kMetaSet,
  kMetaDelete,
  kMetaArithmetic,
  kMetaNoop,
  // cacherouter's admin commands (decoded only with DecoderLimits::admin): keys[0] is the
  // node address (drain, undrain) or the key (route).
  kDrain,
  kUndrain,
  kRoute,
};

// Maps a meta flag letter to a bit: a..z -> 0..25, A..Z -> 26..51, anything else -> -1.
constexpr int meta_flag_bit(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return 26 + (c - 'A');
  return -1;
}

// Flags of one meta command, in the order the client sent them (responses echo that order).
struct MetaFlags {
  uint64_t present = 0;
  char order[64] = {};  // flag letters as sent; return flags are written in this order
  uint8_t count = 0;
  std::string_view opaque;    // O(token)
  std::string_view raw_key;   // the key token as sent (base64 text when 'b' is present)
  uint64_t compare_cas = 0;   // C(token)
  uint64_t new_cas = 0;       // E(token)
  uint32_t client_flags = 0;  // F(token)
  int64_t vivify_ttl = 0;     // N(token)
  int64_t recache_ttl = 0;    // R(token)
  int64_t ttl = 0;            // T(token)
  uint64_t delta = 1;         // D(token)
  uint64_t initial = 0;       // J(token)
  char mode = 0;              // M(token), first character

  bool has(char f) const { return (present >> meta_flag_bit(f)) & 1u; }
};

struct Request {
  Command command = Command::kGet;
  std::vector<std::string_view> keys;  // retrieval commands: every key; others: keys[0]
  uint32_t client_flags = 0;
  int64_t exptime = 0;      // as sent: 0 never, <= 30 days relative, else absolute, < 0 expired
  uint64_t cas_unique = 0;  // cas
  uint64_t delta = 0;       // incr/decr
  int64_t delay = 0;        // flush_all
  uint32_t verbosity = 0;
  std::string_view value;      // storage data block (without the trailing \r\n)
  std::string_view stats_arg;  // stats <arg>
  bool noreply = false;
  MetaFlags meta;

  std::string_view key() const { return keys.empty() ? std::string_view() : keys[0]; }

  // Every field back to its default; the keys vector keeps its capacity (a Request reused for
  // each command of a connection then allocates nothing).
  void clear() {
    auto k = std::move(keys);
    k.clear();
    *this = Request{};
    keys = std::move(k);
  }
};

// Meta return codes and classic response lines, shared by both sides of the codec.
namespace reply {
inline constexpr std::string_view kStored = "STORED\r\n";
inline constexpr std::string_view kNotStored = "NOT_STORED\r\n";
inline constexpr std::string_view kExists = "EXISTS\r\n";
inline constexpr std::string_view kNotFound = "NOT_FOUND\r\n";
inline constexpr std::string_view kDeleted = "DELETED\r\n";
inline constexpr std::string_view kTouched = "TOUCHED\r\n";
inline constexpr std::string_view kEnd = "END\r\n";
inline constexpr std::string_view kOk = "OK\r\n";
inline constexpr std::string_view kError = "ERROR\r\n";
inline constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format\r\n";
inline constexpr std::string_view kBadChunk = "CLIENT_ERROR bad data chunk\r\n";
inline constexpr std::string_view kLineTooLong = "CLIENT_ERROR line too long\r\n";
inline constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache\r\n";
inline constexpr std::string_view kNonNumeric =
    "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
inline constexpr std::string_view kBadDelta = "CLIENT_ERROR invalid numeric delta argument\r\n";
inline constexpr std::string_view kInvalidFlag = "CLIENT_ERROR invalid flag\r\n";
inline constexpr std::string_view kBadToken = "CLIENT_ERROR bad token in command line format\r\n";
inline constexpr std::string_view kBadKey = "CLIENT_ERROR error decoding key\r\n";
inline constexpr std::string_view kBadMode = "CLIENT_ERROR invalid mode for ms M token\r\n";
inline constexpr std::string_view kBadMaMode = "CLIENT_ERROR invalid mode for ma M token\r\n";
inline constexpr std::string_view kNoMemory = "SERVER_ERROR out of memory storing object\r\n";
inline constexpr std::string_view kBadExptime = "CLIENT_ERROR invalid exptime argument\r\n";
inline constexpr std::string_view kDeleteUsage =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
inline constexpr std::string_view kDuplicateFlag = "CLIENT_ERROR duplicate flag\r\n";
inline constexpr std::string_view kInvalidOrDuplicateFlag =
    "CLIENT_ERROR invalid or duplicate flag\r\n";
inline constexpr std::string_view kBadMLength = "CLIENT_ERROR incorrect length for M token\r\n";
inline constexpr std::string_view kBadInitial = "CLIENT_ERROR invalid numeric initial value\r\n";
inline constexpr std::string_view kBadDeltaValue = "CLIENT_ERROR invalid numeric delta value\r\n";
inline constexpr std::string_view kOpaqueTooLong = "CLIENT_ERROR opaque token too long\r\n";
inline constexpr std::string_view kMgFlagsTooLong = "CLIENT_ERROR options flags are too long\r\n";
inline constexpr std::string_view kFlagsTooLong = "CLIENT_ERROR options flags too long\r\n";
// memcached's ASCII authentication (-Y; auth_codec.h).
inline constexpr std::string_view kUnauthenticated = "CLIENT_ERROR unauthenticated\r\n";
inline constexpr std::string_view kAuthFailure = "CLIENT_ERROR authentication failure\r\n";
inline constexpr std::string_view kAuthFormat = "CLIENT_ERROR bad authentication token format\r\n";
inline constexpr std::string_view kBadTermination = "CLIENT_ERROR bad command line termination\r\n";
inline constexpr std::string_view kAuthTooLong = "CLIENT_ERROR auth token too long\r\n";
// memcached -F (cacheserver -F, cacherouter disable_flush_all).
inline constexpr std::string_view kFlushDisabled = "CLIENT_ERROR flush_all not allowed\r\n";
inline constexpr std::string_view kTooManyConnections =
    "SERVER_ERROR Too many open connections\r\n";
}  // namespace reply

}  // namespace cachetier::memcache
