// RESP client side. See reply.h.
#include "protocol/resp/reply.h"

#include <string>

#include "protocol/resp/resp.h"

namespace cachetier::resp {

void encode_command(ByteBuffer& out, const std::vector<std::string_view>& argv) {
  out.append("*" + std::to_string(argv.size()) + "\r\n");
  for (std::string_view a : argv) {
    out.append("$" + std::to_string(a.size()) + "\r\n");
    out.append(a);
    out.append("\r\n");
  }
}

namespace {

ReplyResult parse(std::string_view in, size_t at, Value& v, size_t depth, size_t max_depth,
                  uint64_t max_bulk) {
  ReplyResult r;
  if (at >= in.size()) return r;
  const size_t cr = in.find("\r\n", at);
  if (cr == std::string_view::npos) {
    if (in.size() - at > 64 * 1024) r.status = ReplyResult::kError;
    return r;
  }
  const char type = in[at];
  const std::string_view head = in.substr(at + 1, cr - at - 1);
  const size_t after = cr + 2;
  v = Value{};
  v.type = type;
  int64_t n = 0;
  switch (type) {
    case '+':
    case '-':
    case ',':
    case '(':
    case '#':
      v.str.assign(head);
      if (type == '#' && head != "t" && head != "f") break;
      r.status = ReplyResult::kComplete;
      r.consumed = after;
      return r;
    case '_':
      if (!head.empty()) break;
      r.status = ReplyResult::kComplete;
      r.consumed = after;
      return r;
    case ':':
      if (!parse_ll(head, &n)) break;
      v.integer = n;
      r.status = ReplyResult::kComplete;
      r.consumed = after;
      return r;
    case '$':
    case '=':
    case '!': {
      if (!parse_ll(head, &n) || n < -1 || (n >= 0 && static_cast<uint64_t>(n) > max_bulk)) break;
      if (n == -1) {
        v.type = '_';
        r.status = ReplyResult::kComplete;
        r.consumed = after;
        return r;
      }
      const size_t len = static_cast<size_t>(n);
      if (in.size() < after + len + 2) return r;
      if (in.substr(after + len, 2) != "\r\n") break;
      v.str.assign(in.substr(after, len));
      r.status = ReplyResult::kComplete;
      r.consumed = after + len + 2;
      return r;
    }
    case '*':
    case '~':
    case '>':
    case '%': {
      if (!parse_ll(head, &n) || n < -1 || depth >= max_depth) break;
      if (n == -1) {
        v.type = '_';
        r.status = ReplyResult::kComplete;
        r.consumed = after;
        return r;
      }
      const uint64_t count = static_cast<uint64_t>(n) * (type == '%' ? 2 : 1);
      // Each element takes at least 3 bytes: a count beyond what arrived needs more.
      if (count > (in.size() - after) / 3 + 1) {
        if (count > max_bulk) r.status = ReplyResult::kError;
        return r;
      }
      size_t pos = after;
      v.items.resize(static_cast<size_t>(count));
      for (Value& item : v.items) {
        ReplyResult e = parse(in, pos, item, depth + 1, max_depth, max_bulk);
        if (e.status != ReplyResult::kComplete) return e;
        pos = e.consumed;
      }
      r.status = ReplyResult::kComplete;
      r.consumed = pos;
      return r;
    }
    default:
      break;
  }
  r.status = ReplyResult::kError;
  return r;
}

void write(const Value& v, std::string& out) {
  switch (v.type) {
    case '$':
    case '=':
    case '!':
      out += v.type + std::to_string(v.str.size()) + "\r\n" + v.str + "\r\n";
      return;
    case ':':
      out += ":" + std::to_string(v.integer) + "\r\n";
      return;
    case '_':
      out += "_\r\n";
      return;
    case '*':
    case '~':
    case '>':
    case '%':
      out += v.type + std::to_string(v.type == '%' ? v.items.size() / 2 : v.items.size()) + "\r\n";
      for (const Value& i : v.items) write(i, out);
      return;
    default:
      out += v.type + v.str + "\r\n";
      return;
  }
}

}  // namespace

ReplyResult decode_reply(std::string_view in, Value& v, size_t max_depth, uint64_t max_bulk) {
  return parse(in, 0, v, 0, max_depth, max_bulk);
}

std::string to_resp(const Value& v) {
  std::string out;
  write(v, out);
  return out;
}

}  // namespace cachetier::resp
