// RESP server side: the request decoder (redis-server's processMultibulkBuffer and
// processInlineBuffer, with their limits and error texts) and the reply writers.
#include "protocol/resp/resp.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace cachetier::resp {

bool parse_ll(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  size_t i = 0;
  bool negative = false;
  if (s.size() == 1 && s[0] == '0') {
    *out = 0;
    return true;
  }
  if (s[0] == '-') {
    negative = true;
    i = 1;
    if (s.size() == 1) return false;
  }
  if (s[i] < '1' || s[i] > '9') return false;
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  if (negative) {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) return false;
    *out = static_cast<int64_t>(0 - v);
  } else {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(v);
  }
  return true;
}

namespace {
constexpr size_t kMaxLongDoubleChars = 5 * 1024;
}

bool parse_ld(std::string_view s, long double* out) {
  char buf[kMaxLongDoubleChars];
  if (s.empty() || s.size() >= sizeof(buf)) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  errno = 0;
  char* end = nullptr;
  const long double v = std::strtold(buf, &end);
  if (std::isspace(static_cast<unsigned char>(buf[0])) || end != buf + s.size() ||
      (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || std::fpclassify(v) == FP_ZERO)) ||
      std::isnan(v)) {
    return false;
  }
  *out = v;
  return true;
}

std::string format_ld(long double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[kMaxLongDoubleChars];
  int n = std::snprintf(buf, sizeof(buf), "%.17Lf", v);
  if (n <= 0 || static_cast<size_t>(n) + 1 > sizeof(buf)) return "0";
  size_t len = static_cast<size_t>(n);
  if (std::memchr(buf, '.', len) != nullptr) {
    while (buf[len - 1] == '0') --len;
    if (buf[len - 1] == '.') --len;
  }
  if (len == 2 && buf[0] == '-' && buf[1] == '0') return "0";
  return std::string(buf, len);
}

namespace {

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
}
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

}  // namespace

bool split_inline(std::string_view line, std::vector<std::string>& out) {
  out.clear();
  // A NUL ends the line, as it ends redis-server's C string.
  if (size_t z = line.find('\0'); z != std::string_view::npos) line = line.substr(0, z);
  size_t p = 0;
  const size_t n = line.size();
  auto at = [&](size_t i) -> char { return i < n ? line[i] : '\0'; };
  while (true) {
    while (p < n && is_space(line[p])) ++p;
    if (p >= n) return true;
    std::string cur;
    bool inq = false, insq = false, done = false;
    while (!done) {
      const char c = at(p);
      if (inq) {
        if (c == '\\' && at(p + 1) == 'x' && is_hex(at(p + 2)) && is_hex(at(p + 3))) {
          cur.push_back(static_cast<char>(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3))));
          p += 3;
        } else if (c == '\\' && at(p + 1) != '\0') {
          ++p;
          char e = at(p);
          switch (e) {
            case 'n':
              e = '\n';
              break;
            case 'r':
              e = '\r';
              break;
            case 't':
              e = '\t';
              break;
            case 'b':
              e = '\b';
              break;
            case 'a':
              e = '\a';
              break;
            default:
              break;
          }
          cur.push_back(e);
        } else if (c == '"') {
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;  // unterminated quotes
        } else {
          cur.push_back(c);
        }
      } else if (insq) {
        if (c == '\\' && at(p + 1) == '\'') {
          ++p;
          cur.push_back('\'');
        } else if (c == '\'') {
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          cur.push_back(c);
        }
      } else {
        switch (c) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            done = true;
            break;
          case '"':
            inq = true;
            break;
          case '\'':
            insq = true;
            break;
          default:
            cur.push_back(c);
            break;
        }
      }
      if (c != '\0') ++p;
    }
    out.push_back(std::move(cur));
  }
}

void RequestDecoder::reset() {
  count_ = -1;
  pos_ = 0;
  spans_.clear();
}

DecodeResult RequestDecoder::fatal(std::string_view line) {
  reset();
  error_.assign("-ERR Protocol error: ");
  error_.append(line);
  error_.append("\r\n");
  DecodeResult r;
  r.status = DecodeStatus::kFatal;
  r.error = error_;
  return r;
}

DecodeResult RequestDecoder::feed_inline(std::string_view in, Command& cmd) {
  const size_t nl = in.find('\n');
  if (nl == std::string_view::npos) {
    if (in.size() > limits_.max_inline) return fatal("too big inline request");
    return {};
  }
  size_t end = nl;
  if (end > 0 && in[end - 1] == '\r') --end;
  if (!split_inline(in.substr(0, end), inline_args_)) {
    return fatal("unbalanced quotes in request");
  }
  DecodeResult r;
  r.consumed = nl + 1;
  if (inline_args_.empty()) {
    r.status = DecodeStatus::kEmpty;
    return r;
  }
  cmd.argv.clear();
  for (const std::string& a : inline_args_) cmd.argv.emplace_back(a);
  cmd.inline_form = true;
  r.status = DecodeStatus::kComplete;
  return r;
}

DecodeResult RequestDecoder::feed(std::string_view in, Command& cmd) {
  if (in.empty()) return {};
  if (count_ < 0) {
    if (in[0] != '*') {
      if (!limits_.allow_inline) return fatal("expected '*', got an inline command");
      return feed_inline(in, cmd);
    }
    const size_t cr = in.find('\r');
    if (cr == std::string_view::npos) {
      if (in.size() > limits_.max_inline) return fatal("too big mbulk count string");
      return {};
    }
    if (cr + 2 > in.size()) return {};  // the '\n' too
    int64_t n = 0;
    if (!parse_ll(in.substr(1, cr - 1), &n) || n > limits_.max_multibulk) {
      return fatal("invalid multibulk length");
    }
    if (n > 10 && limits_.unauthenticated) return fatal("unauthenticated multibulk length");
    if (n <= 0) {
      DecodeResult r;
      r.status = DecodeStatus::kEmpty;
      r.consumed = cr + 2;
      return r;
    }
    count_ = n;
    pos_ = cr + 2;
    spans_.clear();
    spans_.reserve(static_cast<size_t>(std::min<int64_t>(n, 1024)));
  }
  while (static_cast<int64_t>(spans_.size()) < count_) {
    const std::string_view rest = in.substr(pos_);
    const size_t cr = rest.find('\r');
    if (cr == std::string_view::npos) {
      if (rest.size() > limits_.max_inline) return fatal("too big bulk count string");
      return {};
    }
    if (cr + 2 > rest.size()) return {};
    if (rest[0] != '$') {
      std::string what = "expected '$', got '";
      what.push_back(rest[0]);
      what.push_back('\'');
      return fatal(what);
    }
    int64_t len = 0;
    if (!parse_ll(rest.substr(1, cr - 1), &len) || len < 0 ||
        static_cast<uint64_t>(len) > limits_.max_bulk) {
      return fatal("invalid bulk length");
    }
    if (len > 16384 && limits_.unauthenticated) return fatal("unauthenticated bulk length");
    const size_t start = pos_ + cr + 2;
    const size_t ulen = static_cast<size_t>(len);
    if (in.size() < start + ulen + 2) {
      DecodeResult r;
      r.need = start + ulen + 2;
      return r;  // the count line is parsed again next time: cheap, and no state to undo
    }
    spans_.emplace_back(start, ulen);
    pos_ = start + ulen + 2;
  }
  cmd.argv.clear();
  cmd.argv.reserve(spans_.size());
  for (auto [off, len] : spans_) cmd.argv.push_back(in.substr(off, len));
  cmd.inline_form = false;
  DecodeResult r;
  r.status = DecodeStatus::kComplete;
  r.consumed = pos_;
  count_ = -1;
  pos_ = 0;
  spans_.clear();
  return r;
}

// ---- writers ----

namespace {
void line(ByteBuffer& out, char type, int64_t n) {
  char buf[24];
  buf[0] = type;
  auto [p, ec] = std::to_chars(buf + 1, buf + sizeof(buf) - 2, n);
  *p++ = '\r';
  *p++ = '\n';
  out.append(std::string_view(buf, static_cast<size_t>(p - buf)));
}
}  // namespace

void Writer::simple(std::string_view s) {
  out.append("+");
  out.append(s);
  out.append("\r\n");
}

std::string error_line(std::string_view e) {
  std::string line = "-";
  line.append(e);
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '\r' || line[i] == '\n') line[i] = ' ';
  }
  line.append("\r\n");
  return line;
}

void Writer::error(std::string_view s) { out.append(error_line(s)); }

void Writer::integer(int64_t n) { line(out, ':', n); }

void Writer::bulk(std::string_view s) {
  line(out, '$', static_cast<int64_t>(s.size()));
  out.append(s);
  out.append("\r\n");
}

void Writer::null() { out.append(resp3 ? "_\r\n" : "$-1\r\n"); }
void Writer::null_array() { out.append(resp3 ? "_\r\n" : "*-1\r\n"); }
void Writer::array(size_t n) { line(out, '*', static_cast<int64_t>(n)); }
void Writer::map(size_t pairs) {
  line(out, resp3 ? '%' : '*', static_cast<int64_t>(resp3 ? pairs : 2 * pairs));
}
void Writer::set(size_t n) { line(out, resp3 ? '~' : '*', static_cast<int64_t>(n)); }
void Writer::boolean(bool b) {
  if (resp3) {
    out.append(b ? "#t\r\n" : "#f\r\n");
  } else {
    out.append(b ? ":1\r\n" : ":0\r\n");
  }
}
void Writer::verbatim(std::string_view text) {
  if (!resp3) {
    bulk(text);
    return;
  }
  line(out, '=', static_cast<int64_t>(text.size() + 4));
  out.append("txt:");
  out.append(text);
  out.append("\r\n");
}

}  // namespace cachetier::resp
