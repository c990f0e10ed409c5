// Server side of the memcache text codec. See server_codec.h for the feed() contract.
#include "protocol/memcache/server_codec.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "protocol/memcache/text.h"

namespace cachetier::memcache {

namespace {

constexpr size_t kMaxTokens = 24;

DecodeResult complete(size_t consumed) { return {DecodeStatus::kComplete, consumed, {}, 0}; }
DecodeResult error(size_t consumed, std::string_view line) {
  return {DecodeStatus::kError, consumed, line, 0};
}

bool is_noreply(std::string_view t) { return t == "noreply"; }

}  // namespace

DecodeResult RequestDecoder::feed(std::string_view in, Request& req) {
  size_t start = 0;
  if (swallow_ > 0) {
    size_t n = std::min(swallow_, in.size());
    swallow_ -= n;
    if (swallow_ > 0) return {DecodeStatus::kNeedMore, n, {}, n + swallow_};
    start = n;
  }
  std::string_view rest = in.substr(start);
  size_t scan = std::min(rest.size(), limits_.max_line + 2);
  const char* nl = static_cast<const char*>(std::memchr(rest.data(), '\n', scan));
  if (nl == nullptr) {
    if (rest.size() > limits_.max_line + 1) {
      return {DecodeStatus::kFatal, in.size(), reply::kLineTooLong, 0};
    }
    return {DecodeStatus::kNeedMore, start, {}, 0};
  }
  size_t line_len = static_cast<size_t>(nl - rest.data());
  std::string_view line = rest.substr(0, line_len);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  DecodeResult r = parse_line(rest, line_len + 1, line, req);
  r.consumed += start;
  if (r.need) r.need += start;
  return r;
}

DecodeResult RequestDecoder::parse_line(std::string_view in, size_t after, std::string_view line,
                                        Request& req) {
  // Only what every command reads; a field a command does not set is not read for it.
  req.noreply = false;
  req.keys.clear();
  req.value = {};

  std::string_view tok[kMaxTokens];
  // Retrieval commands may carry many keys: look at the command word before splitting.
  size_t sp = line.find(' ');
  std::string_view cmd = line.substr(0, sp);
  if (cmd == "get" || cmd == "gets" || cmd == "gat" || cmd == "gats") {
    return parse_retrieval(after, line, req);
  }
  size_t n = tokenize(line, tok, kMaxTokens);
  if (n == 0) return error(after, reply::kError);
  cmd = tok[0];

  if (cmd == "mg" || cmd == "ms" || cmd == "md" || cmd == "ma" || cmd == "mn") {
    return parse_meta(in, after, tok, n, req);
  }
  if (cmd == "set" || cmd == "add" || cmd == "replace" || cmd == "append" || cmd == "prepend" ||
      cmd == "cas") {
    return parse_storage(in, after, tok, n, req);
  }
  if (cmd == "delete") {
    if (n < 2 || n > 4) return error(after, reply::kError);
    req.command = Command::kDelete;
    if (!valid_key(tok[1])) return error(after, reply::kBadFormat);
    req.keys.push_back(tok[1]);
    // Legacy "delete <key> 0" is accepted; any other hold time is not.
    for (size_t i = 2; i < n; ++i) {
      if (is_noreply(tok[i]) && i == n - 1) {
        req.noreply = true;
      } else if (!(i == 2 && tok[i] == "0")) {
        return error(after, reply::kDeleteUsage);
      }
    }
    return complete(after);
  }
  if (cmd == "incr" || cmd == "decr") {
    if (n < 3 || n > 4) return error(after, reply::kError);
    req.command = cmd == "incr" ? Command::kIncr : Command::kDecr;
    if (!valid_key(tok[1])) return error(after, reply::kBadFormat);
    req.keys.push_back(tok[1]);
    if (!parse_u64(tok[2], req.delta)) return error(after, reply::kBadDelta);
    req.noreply = n == 4 && is_noreply(tok[3]);
    return complete(after);
  }
  if (cmd == "touch") {
    if (n < 3 || n > 4) return error(after, reply::kError);
    req.command = Command::kTouch;
    if (!valid_key(tok[1])) return error(after, reply::kBadFormat);
    if (!parse_i64(tok[2], req.exptime)) return error(after, reply::kBadExptime);
    req.keys.push_back(tok[1]);
    req.noreply = n == 4 && is_noreply(tok[3]);
    return complete(after);
  }
  if (cmd == "flush_all") {
    if (n > 3) return error(after, reply::kError);
    req.command = Command::kFlushAll;
    req.delay = 0;
    for (size_t i = 1; i < n; ++i) {
      if (is_noreply(tok[i])) {
        req.noreply = true;
      } else if (i != 1 || !parse_i64(tok[i], req.delay) || req.delay < 0) {
        return error(after, reply::kBadFormat);
      }
    }
    return complete(after);
  }
  if (cmd == "version") {
    if (n != 1) return error(after, reply::kError);
    req.command = Command::kVersion;
    return complete(after);
  }
  if (cmd == "refresh_certs") {
    if (n != 1) return error(after, reply::kError);
    req.command = Command::kRefreshCerts;
    return complete(after);
  }
  if (cmd == "verbosity") {
    if (n < 2 || n > 3) return error(after, reply::kError);
    req.command = Command::kVerbosity;
    // As memcached: "verbosity noreply" is accepted (level 0, no reply).
    req.noreply = is_noreply(tok[n - 1]);
    if (!parse_u32(tok[1], req.verbosity)) {
      if (!is_noreply(tok[1])) return error(after, reply::kBadFormat);
      req.verbosity = 0;
    }
    return complete(after);
  }
  if (cmd == "stats") {
    req.command = Command::kStats;
    req.stats_arg = n > 1 ? tok[1] : std::string_view();
    return complete(after);
  }
  if (limits_.admin && (cmd == "drain" || cmd == "undrain" || cmd == "route")) {
    if (n != 2) return error(after, reply::kError);
    req.command = cmd == "drain"     ? Command::kDrain
                  : cmd == "undrain" ? Command::kUndrain
                                     : Command::kRoute;
    if (req.command == Command::kRoute && !valid_key(tok[1])) {
      return error(after, reply::kBadFormat);
    }
    req.keys.push_back(tok[1]);
    return complete(after);
  }
  if (cmd == "quit") {
    if (n != 1) return error(after, reply::kError);
    req.command = Command::kQuit;
    return complete(after);
  }
  return error(after, reply::kError);
}

DecodeResult RequestDecoder::parse_retrieval(size_t after, std::string_view line, Request& req) {
  size_t sp = line.find(' ');
  std::string_view cmd = line.substr(0, sp);
  std::string_view rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  bool touch = cmd[1] == 'a';
  req.command = cmd == "get"    ? Command::kGet
                : cmd == "gets" ? Command::kGets
                : cmd == "gat"  ? Command::kGat
                                : Command::kGats;
  size_t i = 0;
  auto next = [&]() -> std::string_view {
    while (i < rest.size() && rest[i] == ' ') ++i;
    size_t s = i;
    while (i < rest.size() && rest[i] != ' ') ++i;
    return rest.substr(s, i - s);
  };
  if (touch) {
    std::string_view t = next();
    if (t.empty()) return error(after, reply::kError);
    if (!parse_i64(t, req.exptime)) return error(after, reply::kBadFormat);
  }
  for (std::string_view k = next(); !k.empty(); k = next()) {
    if (!valid_key(k)) return error(after, reply::kBadFormat);
    req.keys.push_back(k);
  }
  if (req.keys.empty()) return error(after, reply::kError);
  return complete(after);
}

DecodeResult RequestDecoder::parse_storage(std::string_view in, size_t after, std::string_view* tok,
                                           size_t n, Request& req) {
  std::string_view cmd = tok[0];
  req.command = cmd == "set"       ? Command::kSet
                : cmd == "add"     ? Command::kAdd
                : cmd == "replace" ? Command::kReplace
                : cmd == "append"  ? Command::kAppend
                : cmd == "prepend" ? Command::kPrepend
                                   : Command::kCas;
  size_t need = req.command == Command::kCas ? 6 : 5;
  if (n < need || n > need + 1) return error(after, reply::kError);
  int64_t bytes;
  if (!parse_i64(tok[4], bytes) || bytes < 0) return error(after, reply::kBadFormat);
  auto ubytes = static_cast<uint64_t>(bytes);
  // From here the data block length is known, so any refusal also drops the block.
  if (!valid_key(tok[1]) || !parse_u32(tok[2], req.client_flags) ||
      !parse_i64(tok[3], req.exptime) ||
      (req.command == Command::kCas && !parse_u64(tok[5], req.cas_unique))) {
    return refuse_data(in, after, ubytes, reply::kBadFormat);
  }
  if (ubytes > limits_.max_value) return refuse_data(in, after, ubytes, reply::kTooLarge);
  req.keys.push_back(tok[1]);
  req.noreply = n == need + 1 && is_noreply(tok[need]);
  return take_data(in, after, ubytes, req);
}

DecodeResult RequestDecoder::take_data(std::string_view in, size_t after, uint64_t bytes,
                                       Request& req) {
  size_t total = after + bytes + 2;
  if (in.size() < total) return {DecodeStatus::kNeedMore, 0, {}, total};
  if (in[after + bytes] != '\r' || in[after + bytes + 1] != '\n') {
    return error(total, reply::kBadChunk);
  }
  req.value = in.substr(after, bytes);
  return complete(total);
}

DecodeResult RequestDecoder::refuse_data(std::string_view in, size_t after, uint64_t bytes,
                                         std::string_view err) {
  uint64_t block = bytes + 2;
  uint64_t avail = in.size() - after;
  if (block <= avail) return error(after + block, err);
  swallow_ = block - avail;
  return error(in.size(), err);
}

void write_value(ByteBuffer& out, std::string_view key, uint32_t flags, std::string_view data,
                 const uint64_t* cas) {
  // One reservation, then straight writes: this line is written for every hit (appending piece
  // by piece cost ~260 instructions per get under callgrind; bench/RESULTS.md).
  // "VALUE " + key + 3 separators + 3 numbers of at most 20 digits + "\r\n" + data + "\r\n".
  char* const start = out.reserve(key.size() + data.size() + 6 + 3 + 60 + 4);
  char* p = start;
  auto put = [&p](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  auto num = [&p](uint64_t v) { p = std::to_chars(p, p + 20, v).ptr; };
  put("VALUE ");
  put(key);
  *p++ = ' ';
  num(flags);
  *p++ = ' ';
  num(data.size());
  if (cas != nullptr) {
    *p++ = ' ';
    num(*cas);
  }
  put("\r\n");
  if (!data.empty()) put(data);
  put("\r\n");
  out.commit(static_cast<size_t>(p - start));
}

void write_number(ByteBuffer& out, uint64_t n) {
  out.append_u64(n);
  out.append("\r\n");
}

void write_stat(ByteBuffer& out, std::string_view name, std::string_view value) {
  out.append("STAT ");
  out.append(name);
  out.append(' ');
  out.append(value);
  out.append("\r\n");
}

void write_stat(ByteBuffer& out, std::string_view name, uint64_t value) {
  out.append("STAT ");
  out.append(name);
  out.append(' ');
  out.append_u64(value);
  out.append("\r\n");
}

}  // namespace cachetier::memcache
