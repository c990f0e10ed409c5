// Server side of the memcache meta commands (mg, ms, md, ma, mn): the request line's flags,
// checked in the order memcached 1.6 checks them, so that each malformed request gets the same
// error line as from memcached (tests/integration/test_differential.py compares them).
//
// Every meta command accepts the same flag letters (memcached parses them with one table);
// a letter that means nothing to a command is accepted and ignored there.
#include <algorithm>

#include "protocol/memcache/server_codec.h"
#include "protocol/memcache/text.h"

namespace cachetier::memcache {

namespace {

constexpr uint64_t flag_mask(std::string_view letters) {
  uint64_t m = 0;
  for (char c : letters) m |= uint64_t{1} << meta_flag_bit(c);
  return m;
}
// memcached 1.6.18's letters, plus E (explicit new CAS) and x (md: drop the value) of later
// memcached releases.
constexpr uint64_t kMetaFlags = flag_mask("bNTRlOPLkstcfvhuqFCMJDIEx");

// memcached counts the command, the key and (ms) the data length as tokens, plus a final empty
// one; more than 20 is refused.
constexpr size_t kMaxMetaTokens = 20;
constexpr size_t kMaxOpaqueToken = 32;  // 'O' included

DecodeResult error(size_t consumed, std::string_view line) {
  return {DecodeStatus::kError, consumed, line, 0};
}

}  // namespace

DecodeResult RequestDecoder::parse_meta(std::string_view in, size_t after, std::string_view* tok,
                                        size_t n, Request& req) {
  MetaFlags& m = req.meta;
  m = MetaFlags();
  size_t first_flag = 2;
  bool named_errors = true;  // mg and ms name the problem; md and ma say one generic line
  switch (tok[0][1]) {
    case 'n':
      req.command = Command::kMetaNoop;
      return {DecodeStatus::kComplete, after, {}, 0};
    case 'g':
      req.command = Command::kMetaGet;
      break;
    case 's':
      req.command = Command::kMetaSet;
      first_flag = 3;
      break;
    case 'd':
      req.command = Command::kMetaDelete;
      named_errors = false;
      break;
    default:
      req.command = Command::kMetaArithmetic;
      named_errors = false;
      break;
  }
  const bool ms = req.command == Command::kMetaSet;
  if (n < 2) return error(after, reply::kError);
  if (tok[1].size() > kMaxKeyLength) return error(after, reply::kBadFormat);
  if (ms && n == 2) return error(after, reply::kBadFormat);
  if (n + 1 > kMaxMetaTokens) {
    return error(after,
                 req.command == Command::kMetaGet ? reply::kMgFlagsTooLong : reply::kFlagsTooLong);
  }

  uint64_t bytes = 0;
  if (ms) {
    int64_t b;
    if (!parse_i64(tok[2], b) || b < 0) return error(after, reply::kBadFormat);
    bytes = static_cast<uint64_t>(b);
  }
  // From here an ms refusal also drops its data block.
  auto refuse = [&](std::string_view e) {
    return ms ? refuse_data(in, after, bytes, e) : error(after, e);
  };
  auto fail = [&](std::string_view e) {  // a flag that does not parse
    return refuse(named_errors ? e : reply::kInvalidOrDuplicateFlag);
  };

  // The flags, in order. As memcached: a duplicate or unknown letter stops at once; a bad
  // value is remembered (the last one wins) and the scan goes on.
  std::string_view problem;
  bool bad = false;
  uint64_t seen = 0;
  bool binary = false;
  for (size_t i = first_flag; i < n; ++i) {
    std::string_view t = tok[i];
    char f = t[0];
    int bit = meta_flag_bit(f);
    if (static_cast<unsigned char>(f) >= 127 || (bit >= 0 && ((seen >> bit) & 1u))) {
      return fail(reply::kDuplicateFlag);
    }
    if (bit < 0 || ((kMetaFlags >> bit) & 1u) == 0) return fail(reply::kInvalidFlag);
    seen |= uint64_t{1} << bit;
    m.present |= uint64_t{1} << bit;
    if (m.count < sizeof(m.order)) m.order[m.count++] = f;
    std::string_view v = t.substr(1);
    auto value_error = [&](std::string_view e) {
      bad = true;
      if (!e.empty()) problem = e;
    };
    switch (f) {
      case 'b':
        binary = true;
        if (!base64_decode(tok[1], key_scratch_) || key_scratch_.empty()) {
          value_error(reply::kBadKey);
        }
        break;
      case 'N':
        if (!parse_i64(v, m.vivify_ttl)) value_error(reply::kBadToken);
        break;
      case 'T':
        if (!parse_i64(v, m.ttl)) value_error(reply::kBadToken);
        break;
      case 'R':
        if (!parse_i64(v, m.recache_ttl)) value_error(reply::kBadToken);
        break;
      case 'O':
        m.opaque = v;
        break;
      case 'F':
        if (!parse_u32(v, m.client_flags)) value_error({});
        break;
      case 'C':
        if (!parse_u64(v, m.compare_cas)) value_error(reply::kBadToken);
        break;
      case 'E':
        if (!parse_u64(v, m.new_cas)) value_error(reply::kBadToken);
        break;
      case 'M':
        if (t.size() != 2) {
          value_error(reply::kBadMLength);
        } else {
          m.mode = v[0];
        }
        break;
      case 'J':
        if (!parse_u64(v, m.initial)) value_error(reply::kBadInitial);
        break;
      case 'D':
        if (!parse_u64(v, m.delta)) value_error(reply::kBadDeltaValue);
        break;
      default:
        break;
    }
  }
  if (bad) return fail(problem.empty() ? reply::kBadFormat : problem);
  if (m.has('O') && m.opaque.size() + 1 > kMaxOpaqueToken) return refuse(reply::kOpaqueTooLong);
  if (m.mode != 0) {
    if (ms && std::string_view("EAPRS").find(m.mode) == std::string_view::npos) {
      return refuse_data(in, after, bytes, reply::kBadMode);
    }
    if (req.command == Command::kMetaArithmetic &&
        std::string_view("I+D-").find(m.mode) == std::string_view::npos) {
      return error(after, reply::kBadMaMode);
    }
  }

  m.raw_key = tok[1];
  if (binary) {
    req.keys.push_back(key_scratch_);
  } else {
    if (!valid_key(tok[1])) return refuse(reply::kBadFormat);
    req.keys.push_back(tok[1]);
  }
  if (ms) {
    if (bytes > limits_.max_value) return refuse_data(in, after, bytes, reply::kTooLarge);
    return take_data(in, after, bytes, req);
  }
  return {DecodeStatus::kComplete, after, {}, 0};
}

}  // namespace cachetier::memcache
