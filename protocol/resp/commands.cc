// The RESP command table and redis-server's request-built error texts. See commands.h.
#include "protocol/resp/commands.h"

#include <algorithm>
#include <cctype>
#include <unordered_map>

namespace cachetier::resp {

const std::vector<CommandInfo>& commands() {
  static const std::vector<CommandInfo> table = {
      {"get", 2, "readonly", 1, 1, 1, "string"},
      {"set", -3, "write", 1, 1, 1, "string"},
      {"setnx", 3, "write", 1, 1, 1, "string"},
      {"setex", 4, "write", 1, 1, 1, "string"},
      {"psetex", 4, "write", 1, 1, 1, "string"},
      {"getset", 3, "write", 1, 1, 1, "string"},
      {"getex", -2, "write", 1, 1, 1, "string"},
      {"getdel", 2, "write", 1, 1, 1, "string"},
      {"mget", -2, "readonly", 1, -1, 1, "string"},
      {"mset", -3, "write", 1, -1, 2, "string"},
      {"msetnx", -3, "write", 1, -1, 2, "string"},
      {"del", -2, "write", 1, -1, 1, "generic"},
      {"unlink", -2, "write", 1, -1, 1, "generic"},
      {"exists", -2, "readonly", 1, -1, 1, "generic"},
      {"touch", -2, "readonly", 1, -1, 1, "generic"},
      {"expire", -3, "write", 1, 1, 1, "generic"},
      {"pexpire", -3, "write", 1, 1, 1, "generic"},
      {"expireat", -3, "write", 1, 1, 1, "generic"},
      {"pexpireat", -3, "write", 1, 1, 1, "generic"},
      {"ttl", 2, "readonly", 1, 1, 1, "generic"},
      {"pttl", 2, "readonly", 1, 1, 1, "generic"},
      {"expiretime", 2, "readonly", 1, 1, 1, "generic"},
      {"pexpiretime", 2, "readonly", 1, 1, 1, "generic"},
      {"persist", 2, "write", 1, 1, 1, "generic"},
      {"incr", 2, "write", 1, 1, 1, "string"},
      {"decr", 2, "write", 1, 1, 1, "string"},
      {"incrby", 3, "write", 1, 1, 1, "string"},
      {"decrby", 3, "write", 1, 1, 1, "string"},
      {"incrbyfloat", 3, "write", 1, 1, 1, "string"},
      {"append", 3, "write", 1, 1, 1, "string"},
      {"strlen", 2, "readonly", 1, 1, 1, "string"},
      {"getrange", 4, "readonly", 1, 1, 1, "string"},
      {"setrange", 4, "write", 1, 1, 1, "string"},
      {"type", 2, "readonly", 1, 1, 1, "generic"},
      {"dbsize", 1, "readonly", 0, 0, 0, "server"},
      {"flushdb", -1, "write", 0, 0, 0, "server"},
      {"flushall", -1, "write", 0, 0, 0, "server"},
      {"ping", -1, "", 0, 0, 0, "connection"},
      {"echo", 2, "", 0, 0, 0, "connection"},
      {"select", 2, "", 0, 0, 0, "connection"},
      {"info", -1, "", 0, 0, 0, "server"},
      {"client", -2, "", 0, 0, 0, "connection"},
      {"command", -1, "", 0, 0, 0, "server"},
      {"config", -2, "", 0, 0, 0, "server"},
      {"auth", -2, "", 0, 0, 0, "connection", true},
      {"hello", -1, "", 0, 0, 0, "connection", true},
      {"reset", 1, "", 0, 0, 0, "connection", true},
      {"quit", -1, "", 0, 0, 0, "connection", true},
      {"debug", -2, "", 0, 0, 0, "server"},
  };
  return table;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

const CommandInfo* find_command(std::string_view name) {
  static const auto index = [] {
    std::unordered_map<std::string_view, const CommandInfo*> m;
    for (const CommandInfo& c : commands()) m.emplace(c.name, &c);
    return m;
  }();
  char lower[24];
  if (name.size() > sizeof(lower)) return nullptr;
  for (size_t i = 0; i < name.size(); ++i) {
    lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  }
  auto it = index.find(std::string_view(lower, name.size()));
  return it == index.end() ? nullptr : it->second;
}

bool arity_ok(int arity, size_t argc) {
  const int n = static_cast<int>(argc);
  return arity > 0 ? n == arity : n >= -arity;
}

namespace {

// "%.128s" of a C string: up to a NUL and at most n bytes.
std::string_view c_prefix(std::string_view s, size_t n) {
  if (size_t z = s.find('\0'); z != std::string_view::npos) s = s.substr(0, z);
  return s.substr(0, std::min(n, s.size()));
}

std::string without_newlines(std::string e) {
  std::replace(e.begin(), e.end(), '\r', ' ');
  std::replace(e.begin(), e.end(), '\n', ' ');
  return e;
}

}  // namespace

std::string unknown_command_error(const std::vector<std::string_view>& argv) {
  std::string args;
  for (size_t i = 1; i < argv.size() && args.size() < 128; ++i) {
    const size_t room = 128 - args.size();
    args.push_back('\'');
    args.append(c_prefix(argv[i], room));
    args.append("' ");
  }
  std::string e = "ERR unknown command '";
  e.append(c_prefix(argv[0], 128));
  e.append("', with args beginning with: ");
  e.append(args);
  return without_newlines(std::move(e));
}

std::string unknown_subcommand_error(std::string_view container, std::string_view sub) {
  std::string upper(container);
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  std::string e = "ERR unknown subcommand '";
  e.append(c_prefix(sub, 128));
  e.append("'. Try " + upper + " HELP.");
  return without_newlines(std::move(e));
}

std::string arity_error(std::string_view fullname) {
  return "ERR wrong number of arguments for '" + std::string(fullname) + "' command";
}

void write_command_info(Writer& w, const CommandInfo& c) {
  w.array(10);
  w.bulk(c.name);
  w.integer(c.arity);
  w.set(c.flags.empty() ? 0 : 1);
  if (!c.flags.empty()) w.simple(c.flags);
  w.integer(c.first_key);
  w.integer(c.last_key);
  w.integer(c.step);
  w.set(1);
  w.simple("@" + std::string(c.group));
  w.array(0);  // tips
  w.array(0);  // key specs
  w.array(0);  // subcommands
}

void write_command_doc(Writer& w, const CommandInfo& c) {
  w.map(3);
  w.bulk("summary");
  w.bulk("Redis's " + std::string(c.name) + " command, as cachetier serves it");
  w.bulk("since");
  w.bulk("1.0.0");
  w.bulk("group");
  w.bulk(c.group);
}

bool write_command_reply(Writer& w, const std::vector<std::string_view>& argv,
                         const std::vector<const CommandInfo*>& served) {
  auto find = [&](std::string_view name) -> const CommandInfo* {
    for (const CommandInfo* c : served) {
      if (iequals(c->name, name)) return c;
    }
    return nullptr;
  };
  if (argv.size() == 1 || (argv.size() == 2 && iequals(argv[1], "info"))) {
    w.array(served.size());
    for (const CommandInfo* c : served) write_command_info(w, *c);
    return true;
  }
  const std::string_view sub = argv[1];
  if (iequals(sub, "count")) {
    if (argv.size() != 2) {
      w.error(arity_error("command|count"));
      return true;
    }
    w.integer(static_cast<int64_t>(served.size()));
    return true;
  }
  if (iequals(sub, "info")) {
    w.array(argv.size() - 2);
    for (size_t i = 2; i < argv.size(); ++i) {
      const CommandInfo* c = find(argv[i]);
      if (c == nullptr) {
        w.null_array();
      } else {
        write_command_info(w, *c);
      }
    }
    return true;
  }
  if (iequals(sub, "docs")) {
    std::vector<const CommandInfo*> list;
    if (argv.size() == 2) {
      list = served;
    } else {
      for (size_t i = 2; i < argv.size(); ++i) {
        if (const CommandInfo* c = find(argv[i])) list.push_back(c);
      }
    }
    w.map(list.size());
    for (const CommandInfo* c : list) {
      w.bulk(c->name);
      write_command_doc(w, *c);
    }
    return true;
  }
  return false;
}

}  // namespace cachetier::resp

namespace cachetier::resp {

bool parse_set_options(const std::vector<std::string_view>& argv, size_t first, bool getex,
                       SetOptions& o) {
  using U = SetOptions::Unit;
  auto timed = [&] { return o.unit != U::kNone; };
  for (size_t j = first; j < argv.size(); ++j) {
    const std::string_view a = argv[j];
    const bool has_next = j + 1 < argv.size();
    auto take = [&](U u, std::initializer_list<U> excluded) {
      if (o.keepttl || o.persist || !has_next) return false;
      for (U x : excluded) {
        if (o.unit == x) return false;
      }
      o.unit = u;
      o.expire = argv[++j];
      return true;
    };
    if (!getex && iequals(a, "nx") && !o.xx) {
      o.nx = true;
    } else if (!getex && iequals(a, "xx") && !o.nx) {
      o.xx = true;
    } else if (!getex && iequals(a, "get")) {
      o.get = true;
    } else if (!getex && iequals(a, "keepttl") && !timed()) {
      o.keepttl = true;
    } else if (getex && iequals(a, "persist") && !timed()) {
      o.persist = true;
    } else if (iequals(a, "ex") && take(U::kEx, {U::kExat, U::kPx, U::kPxat})) {
    } else if (iequals(a, "px") && take(U::kPx, {U::kEx, U::kExat, U::kPxat})) {
    } else if (iequals(a, "exat") && take(U::kExat, {U::kEx, U::kPx, U::kPxat})) {
    } else if (iequals(a, "pxat") && take(U::kPxat, {U::kEx, U::kExat, U::kPx})) {
    } else {
      return false;
    }
  }
  return true;
}

int64_t expire_at_ms(const SetOptions& o, int64_t now_ms, std::string_view fullname,
                     std::string& error) {
  using U = SetOptions::Unit;
  int64_t v = 0;
  if (!parse_ll(o.expire, &v)) {
    error = "ERR value is not an integer or out of range";
    return 0;
  }
  const bool seconds = o.unit == U::kEx || o.unit == U::kExat;
  const bool relative = o.unit == U::kEx || o.unit == U::kPx;
  const int64_t max = INT64_MAX;
  if (v <= 0 || (seconds && v > max / 1000) ||
      (relative && (seconds ? v * 1000 : v) > max - now_ms)) {
    error = "ERR invalid expire time in '" + std::string(fullname) + "' command";
    return 0;
  }
  if (seconds) v *= 1000;
  if (relative) v += now_ms;
  return v;
}

int64_t seconds_from_ms(int64_t when_ms) {
  if (when_ms <= 0) return -1;
  return when_ms / 1000 + (when_ms % 1000 != 0 ? 1 : 0);
}

}  // namespace cachetier::resp

namespace cachetier::resp {

bool valid_client_name(std::string_view name) {
  for (char ch : name) {
    if (ch < '!' || ch > '~') return false;
  }
  return true;
}

bool parse_hello(const std::vector<std::string_view>& argv, HelloArgs& h, std::string& error) {
  size_t next = 1;
  if (argv.size() >= 2) {
    if (!parse_ll(argv[1], &h.version)) {
      error = "ERR Protocol version is not an integer or out of range";
      return false;
    }
    ++next;
    if (h.version < 2 || h.version > 3) {
      error = "NOPROTO unsupported protocol version";
      return false;
    }
  }
  for (size_t j = next; j < argv.size(); ++j) {
    const size_t more = argv.size() - 1 - j;
    if (iequals(argv[j], "auth") && more >= 2) {
      h.auth = true;
      h.user = argv[j + 1];
      h.password = argv[j + 2];
      j += 2;
    } else if (iequals(argv[j], "setname") && more >= 1) {
      h.setname = true;
      h.name = argv[j + 1];
      ++j;
    } else {
      error = "ERR Syntax error in HELLO option '" +
              std::string(argv[j].substr(0, argv[j].find('\0'))) + "'";
      return false;
    }
  }
  return true;
}

void write_hello(Writer& w, int64_t client_id) {
  w.map(7);
  w.bulk("server");
  w.bulk("redis");
  w.bulk("version");
  w.bulk(kRedisVersion);
  w.bulk("proto");
  w.integer(w.resp3 ? 3 : 2);
  w.bulk("id");
  w.integer(client_id);
  w.bulk("mode");
  w.bulk("standalone");
  w.bulk("role");
  w.bulk("master");
  w.bulk("modules");
  w.array(0);
}

bool parse_expire_flags(const std::vector<std::string_view>& argv, size_t first, unsigned& flags,
                        std::string& error) {
  flags = 0;
  for (size_t j = first; j < argv.size(); ++j) {
    const std::string_view o = argv[j];
    if (iequals(o, "nx")) {
      flags |= kExpireNx;
    } else if (iequals(o, "xx")) {
      flags |= kExpireXx;
    } else if (iequals(o, "gt")) {
      flags |= kExpireGt;
    } else if (iequals(o, "lt")) {
      flags |= kExpireLt;
    } else {
      error = "ERR Unsupported option " + std::string(o.substr(0, o.find('\0')));
      return false;
    }
  }
  if ((flags & kExpireNx) && (flags & (kExpireXx | kExpireGt | kExpireLt))) {
    error = "ERR NX and XX, GT or LT options at the same time are not compatible";
    return false;
  }
  if ((flags & kExpireGt) && (flags & kExpireLt)) {
    error = "ERR GT and LT options at the same time are not compatible";
    return false;
  }
  return true;
}

bool expire_allowed(unsigned flags, int64_t current, int64_t next) {
  if ((flags & kExpireNx) && current != 0) return false;
  if ((flags & kExpireXx) && current == 0) return false;
  if ((flags & kExpireGt) && (current == 0 || next <= current)) return false;
  if ((flags & kExpireLt) && current != 0 && next >= current) return false;
  return true;
}

}  // namespace cachetier::resp
