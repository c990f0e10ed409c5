// Client side of the memcache text codec. See client_codec.h.
#include "protocol/memcache/client_codec.h"

#include <cstring>

#include "protocol/memcache/text.h"

namespace cachetier::memcache {

namespace {
std::string_view command_name(Command c) {
  switch (c) {
    case Command::kGet:
      return "get";
    case Command::kGets:
      return "gets";
    case Command::kGat:
      return "gat";
    case Command::kGats:
      return "gats";
    case Command::kSet:
      return "set";
    case Command::kAdd:
      return "add";
    case Command::kReplace:
      return "replace";
    case Command::kAppend:
      return "append";
    case Command::kPrepend:
      return "prepend";
    case Command::kCas:
      return "cas";
    case Command::kDelete:
      return "delete";
    case Command::kIncr:
      return "incr";
    case Command::kDecr:
      return "decr";
    case Command::kTouch:
      return "touch";
    case Command::kFlushAll:
      return "flush_all";
    case Command::kVersion:
      return "version";
    case Command::kVerbosity:
      return "verbosity";
    case Command::kRefreshCerts:
      return "refresh_certs";
    case Command::kStats:
      return "stats";
    case Command::kQuit:
      return "quit";
    case Command::kMetaGet:
      return "mg";
    case Command::kMetaSet:
      return "ms";
    case Command::kMetaDelete:
      return "md";
    case Command::kMetaArithmetic:
      return "ma";
    case Command::kMetaNoop:
      return "mn";
    case Command::kDrain:
      return "drain";
    case Command::kUndrain:
      return "undrain";
    case Command::kRoute:
      return "route";
  }
  return "?";
}

DecodeResult fatal() { return {DecodeStatus::kFatal, 0, reply::kBadFormat, 0}; }
DecodeResult done(size_t n) { return {DecodeStatus::kComplete, n, {}, 0}; }
}  // namespace

void encode_retrieval(ByteBuffer& out, Command cmd, std::span<const std::string_view> keys,
                      int64_t exptime) {
  out.append(command_name(cmd));
  if (cmd == Command::kGat || cmd == Command::kGats) {
    out.append(' ');
    out.append_i64(exptime);
  }
  for (std::string_view k : keys) {
    out.append(' ');
    out.append(k);
  }
  out.append("\r\n");
}

void encode_storage(ByteBuffer& out, Command cmd, std::string_view key, uint32_t flags,
                    int64_t exptime, std::string_view value, uint64_t cas, bool noreply) {
  out.reserve(key.size() + value.size() + 64);
  out.append(command_name(cmd));
  out.append(' ');
  out.append(key);
  out.append(' ');
  out.append_u64(flags);
  out.append(' ');
  out.append_i64(exptime);
  out.append(' ');
  out.append_u64(value.size());
  if (cmd == Command::kCas) {
    out.append(' ');
    out.append_u64(cas);
  }
  if (noreply) out.append(" noreply");
  out.append("\r\n");
  out.append(value);
  out.append("\r\n");
}

void encode_delete(ByteBuffer& out, std::string_view key, bool noreply) {
  out.append("delete ");
  out.append(key);
  out.append(noreply ? " noreply\r\n" : "\r\n");
}

void encode_arith(ByteBuffer& out, Command cmd, std::string_view key, uint64_t delta,
                  bool noreply) {
  out.append(command_name(cmd));
  out.append(' ');
  out.append(key);
  out.append(' ');
  out.append_u64(delta);
  out.append(noreply ? " noreply\r\n" : "\r\n");
}

void encode_touch(ByteBuffer& out, std::string_view key, int64_t exptime, bool noreply) {
  out.append("touch ");
  out.append(key);
  out.append(' ');
  out.append_i64(exptime);
  out.append(noreply ? " noreply\r\n" : "\r\n");
}

void encode_meta(ByteBuffer& out, Command cmd, std::string_view key, std::string_view flags,
                 std::string_view value) {
  out.append(command_name(cmd));
  if (cmd != Command::kMetaNoop) {
    out.append(' ');
    out.append(key);
  }
  if (cmd == Command::kMetaSet) {
    out.append(' ');
    out.append_u64(value.size());
  }
  if (!flags.empty()) {
    out.append(' ');
    out.append(flags);
  }
  out.append("\r\n");
  if (cmd == Command::kMetaSet) {
    out.append(value);
    out.append("\r\n");
  }
}

DecodeResult ResponseDecoder::feed(std::string_view in, Response& r) {
  const char* nl = static_cast<const char*>(std::memchr(in.data(), '\n', in.size()));
  if (nl == nullptr) {
    if (in.size() > 64 * 1024) return fatal();
    return {DecodeStatus::kNeedMore, 0, {}, 0};
  }
  size_t after = static_cast<size_t>(nl - in.data()) + 1;
  std::string_view line = in.substr(0, after - 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  r = Response();
  r.line = line;

  // Takes a data block of `bytes` after the line; returns false while it is incomplete.
  auto data_block = [&](uint64_t bytes, DecodeResult& out) {
    if (bytes > max_value_) {
      out = fatal();
      return true;
    }
    size_t total = after + bytes + 2;
    if (in.size() < total) {
      out = {DecodeStatus::kNeedMore, 0, {}, total};
      return true;
    }
    if (in[after + bytes] != '\r' || in[after + bytes + 1] != '\n') {
      out = fatal();
      return true;
    }
    r.value = in.substr(after, bytes);
    out = done(total);
    return true;
  };

  std::string_view tok[6];
  size_t n = tokenize(line, tok, 6);
  if (n == 0) return fatal();
  std::string_view w = tok[0];
  DecodeResult res;
  if (w == "VALUE") {
    uint64_t bytes;
    if (n < 4 || !parse_u32(tok[2], r.client_flags) || !parse_u64(tok[3], bytes)) return fatal();
    r.kind = ResponseKind::kValue;
    r.key = tok[1];
    if (n >= 5) {
      if (!parse_u64(tok[4], r.cas)) return fatal();
      r.has_cas = true;
    }
    data_block(bytes, res);
    return res;
  }
  if (w == "VA") {
    uint64_t bytes;
    if (n < 2 || !parse_u64(tok[1], bytes)) return fatal();
    r.kind = ResponseKind::kMetaVA;
    size_t flags_at = line.find(' ', 3);
    if (flags_at != std::string_view::npos) r.meta_flags = line.substr(flags_at + 1);
    data_block(bytes, res);
    return res;
  }
  struct Simple {
    std::string_view word;
    ResponseKind kind;
  };
  static constexpr Simple kSimple[] = {
      {"END", ResponseKind::kEnd},
      {"STORED", ResponseKind::kStored},
      {"NOT_STORED", ResponseKind::kNotStored},
      {"EXISTS", ResponseKind::kExists},
      {"NOT_FOUND", ResponseKind::kNotFound},
      {"DELETED", ResponseKind::kDeleted},
      {"TOUCHED", ResponseKind::kTouched},
      {"OK", ResponseKind::kOk},
      {"ERROR", ResponseKind::kError},
      {"CLIENT_ERROR", ResponseKind::kClientError},
      {"SERVER_ERROR", ResponseKind::kServerError},
      {"VERSION", ResponseKind::kVersion},
      {"STAT", ResponseKind::kStat},
      {"HD", ResponseKind::kMetaHD},
      {"EN", ResponseKind::kMetaEN},
      {"NS", ResponseKind::kMetaNS},
      {"EX", ResponseKind::kMetaEX},
      {"NF", ResponseKind::kMetaNF},
      {"MN", ResponseKind::kMetaMN},
  };
  for (const Simple& s : kSimple) {
    if (w != s.word) continue;
    r.kind = s.kind;
    std::string_view rest = line.size() > w.size() ? line.substr(w.size() + 1) : std::string_view();
    switch (s.kind) {
      case ResponseKind::kStat: {
        size_t sp = rest.find(' ');
        r.key = rest.substr(0, sp);
        r.value = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
        break;
      }
      case ResponseKind::kMetaHD:
      case ResponseKind::kMetaEN:
      case ResponseKind::kMetaNS:
      case ResponseKind::kMetaEX:
      case ResponseKind::kMetaNF:
      case ResponseKind::kMetaMN:
        r.meta_flags = rest;
        break;
      default:
        r.value = rest;
        break;
    }
    return done(after);
  }
  if (parse_u64(line, r.number)) {
    r.kind = ResponseKind::kNumber;
    return done(after);
  }
  return fatal();
}

}  // namespace cachetier::memcache
