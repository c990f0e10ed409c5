// memcached's ASCII authentication request. See auth_codec.h.
#include "protocol/memcache/auth_codec.h"

#include <cstdint>
#include <vector>

namespace cachetier::memcache {

namespace {
// Space-separated tokens, as memcached's tokenize_command (runs of spaces are one separator).
std::vector<std::string_view> tokens(std::string_view s, size_t at_most) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size() && out.size() < at_most) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

bool parse_size(std::string_view s, size_t& out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xFFFFFFFFu) return false;
  out = static_cast<size_t>(v);
  return true;
}
}  // namespace

AuthStep auth_step(std::string_view data) {
  AuthStep st;
  size_t nl = data.find('\n');
  if (nl == std::string_view::npos) {
    if (data.size() > 1024) st.kind = AuthStep::kClose;  // memcached closes too
    return st;
  }
  std::string_view line = data.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  auto tok = tokens(line, 24);
  size_t size = 0;
  if (tok.size() < 5 || tok[0] != "set" || !parse_size(tok[4], size)) {
    st.kind = AuthStep::kReply;
    st.reply = reply::kUnauthenticated;
    st.consumed = nl + 1;
    return st;
  }
  if (size > kMaxAuthToken) {
    st.kind = AuthStep::kClose;
    st.reply = reply::kAuthTooLong;
    st.consumed = data.size();
    return st;
  }
  const size_t block = nl + 1;
  if (data.size() - block < size + 2) return st;  // kNeedMore
  st.consumed = block + size + 2;
  std::string_view token = data.substr(block, size + 2);
  if (token.substr(size) != "\r\n") {
    st.kind = AuthStep::kReply;
    st.reply = reply::kBadTermination;
    return st;
  }
  auto cred = tokens(token.substr(0, size), 3);
  if (cred.size() < 2) {
    st.kind = AuthStep::kReply;
    st.reply = reply::kAuthFormat;
    return st;
  }
  st.kind = AuthStep::kCredentials;
  st.user = cred[0];
  st.password = cred[1];
  return st;
}

}  // namespace cachetier::memcache
