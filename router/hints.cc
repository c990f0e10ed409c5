// Hint lists. See hints.h.
#include "router/hints.h"

#include <unordered_set>

namespace cachetier::router::hints {

using native::Op;

std::string list_key(const Node& target) {
  return std::string(kReservedPrefix) + "hints:" + target.addr();
}

std::string overflow_key(const Node& target) {
  return std::string(kReservedPrefix) + "hints-overflow:" + target.addr();
}

namespace {
void add_entry(std::string& out, std::string_view key) {
  out += std::to_string(key.size());
  out += ':';
  out += key;
}
}  // namespace

client::Call create_call(const Node& target) {
  client::Call c;
  c.op = Op::kAdd;
  c.key = list_key(target);
  c.ttl = kTtlSeconds;
  return c;
}

client::Call append_call(const Node& target, const client::Call& missed, bool vivify) {
  client::Call c;
  c.op = Op::kAppend;
  c.key = list_key(target);
  c.has_vivify = vivify;  // created on the first hint
  c.vivify_ttl = kTtlSeconds;
  c.ttl = kTtlSeconds;
  if (missed.op == Op::kMultiGet || missed.op == Op::kMultiDelete) {
    for (const auto& k : missed.keys) add_entry(c.value, k);
  } else if (missed.op == Op::kMultiSet) {
    for (const auto& [k, v] : missed.items) add_entry(c.value, k);
  } else {
    add_entry(c.value, missed.key);
  }
  return c;
}

client::Call overflow_call(const Node& target) {
  client::Call c;
  c.op = Op::kSet;
  c.key = overflow_key(target);
  c.value.push_back('1');  // (GCC 12's -Wrestrict misfires on = "1")
  c.ttl = kTtlSeconds;
  return c;
}

bool parse(std::string_view list, std::vector<std::string>& keys) {
  std::unordered_set<std::string_view> seen;
  size_t i = 0;
  while (i < list.size()) {
    size_t len = 0, digits = 0;
    while (i < list.size() && list[i] >= '0' && list[i] <= '9' && digits < 8) {
      len = len * 10 + static_cast<size_t>(list[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || i >= list.size() || list[i] != ':' || len == 0) return false;
    ++i;
    if (list.size() - i < len) return false;
    std::string_view key = list.substr(i, len);
    i += len;
    if (seen.insert(key).second) keys.emplace_back(key);
  }
  return true;
}

}  // namespace cachetier::router::hints
