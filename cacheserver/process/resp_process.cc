// RESP dispatch: the command table, redis-server's order of checks (unknown command, arity,
// authentication) and its error texts. The commands are in resp_strings.cc, resp_keys.cc and
// resp_server.cc.
#include "cacheserver/process/resp_process.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <unordered_map>

#include "cacheserver/process/resp_internal.h"

namespace cachetier::process {

namespace respcmd {

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

void Call::wrong_arity() {
  std::string e = "ERR wrong number of arguments for '";
  e.append(fullname);
  e.append("' command");
  w.error(e);
}

bool Call::integer(size_t i, int64_t* v) {
  if (resp::parse_ll(argv[i], v)) return true;
  w.error(resp::err::kNotInteger);
  return false;
}

int64_t Call::now_s() const { return ctx.engine.clock().now(); }

int64_t Call::now_ms() const {
  // The engine's clock counts seconds (and may be offset from the system's, --debug-clock);
  // the milliseconds within the second come from the system clock. Read across a second's
  // boundary, the second's start is used.
  timespec before{}, after{};
  clock_gettime(CLOCK_REALTIME, &before);
  const int64_t s = now_s();
  clock_gettime(CLOCK_REALTIME, &after);
  if (before.tv_sec != after.tv_sec) return s * 1000;
  return s * 1000 + before.tv_nsec / 1000000;
}

int64_t exptime_from_ms(int64_t when_ms) {
  if (when_ms <= 0) return engine::kExpiredNow;
  return when_ms / 1000 + (when_ms % 1000 != 0 ? 1 : 0);
}

std::optional<Snapshot> read_item(Context& ctx, std::string_view key, bool bump) {
  std::optional<Snapshot> snap;
  engine::LookupOptions opts;
  opts.bump = bump;
  ctx.engine.lookup(key, opts, [&](const engine::ItemView& v) {
    snap.emplace();
    snap->value.assign(v.value);
    snap->cas = v.cas;
    snap->exptime = v.exptime;
    snap->flags = v.client_flags;
  });
  return snap;
}

const std::vector<Spec>& specs() {
  static const std::vector<Spec> table = {
      {"get", 2, cmd_get, Family::kGet},
      {"set", -3, cmd_set, Family::kSet},
      {"setnx", 3, cmd_setnx, Family::kSet},
      {"setex", 4, cmd_setex, Family::kSet},
      {"psetex", 4, cmd_psetex, Family::kSet},
      {"getset", 3, cmd_getset, Family::kSet},
      {"getex", -2, cmd_getex, Family::kGet},
      {"getdel", 2, cmd_getdel, Family::kGet},
      {"mget", -2, cmd_mget, Family::kGet},
      {"mset", -3, cmd_mset, Family::kSet},
      {"msetnx", -3, cmd_msetnx, Family::kSet},
      {"del", -2, cmd_del, Family::kDelete},
      {"unlink", -2, cmd_del, Family::kDelete},
      {"exists", -2, cmd_exists, Family::kGet},
      {"touch", -2, cmd_touch, Family::kTouch},
      {"expire", -3, cmd_expire, Family::kTouch},
      {"pexpire", -3, cmd_pexpire, Family::kTouch},
      {"expireat", -3, cmd_expireat, Family::kTouch},
      {"pexpireat", -3, cmd_pexpireat, Family::kTouch},
      {"ttl", 2, cmd_ttl, Family::kOther},
      {"pttl", 2, cmd_pttl, Family::kOther},
      {"expiretime", 2, cmd_expiretime, Family::kOther},
      {"pexpiretime", 2, cmd_pexpiretime, Family::kOther},
      {"persist", 2, cmd_persist, Family::kTouch},
      {"incr", 2, cmd_incr, Family::kArith},
      {"decr", 2, cmd_decr, Family::kArith},
      {"incrby", 3, cmd_incrby, Family::kArith},
      {"decrby", 3, cmd_decrby, Family::kArith},
      {"incrbyfloat", 3, cmd_incrbyfloat, Family::kArith},
      {"append", 3, cmd_append, Family::kSet},
      {"strlen", 2, cmd_strlen, Family::kGet},
      {"getrange", 4, cmd_getrange, Family::kGet},
      {"setrange", 4, cmd_setrange, Family::kSet},
      {"type", 2, cmd_type, Family::kOther},
      {"dbsize", 1, cmd_dbsize, Family::kOther},
      {"flushdb", -1, cmd_flushall, Family::kOther},
      {"flushall", -1, cmd_flushall, Family::kOther},
      {"ping", -1, cmd_ping, Family::kOther},
      {"echo", 2, cmd_echo, Family::kOther},
      {"select", 2, cmd_select, Family::kOther},
      {"info", -1, cmd_info, Family::kOther},
      {"client", -2, cmd_client, Family::kOther},
      {"command", -1, cmd_command, Family::kOther},
      {"config", -2, cmd_config, Family::kOther},
      {"auth", -2, cmd_auth, Family::kOther, true},
      {"hello", -1, cmd_hello, Family::kOther, true},
      {"reset", 1, cmd_reset, Family::kOther, true},
      {"quit", -1, cmd_quit, Family::kOther, true},
      {"debug", -2, cmd_debug, Family::kOther},
  };
  return table;
}

}  // namespace respcmd

namespace {

using respcmd::Spec;

const Spec* lookup(std::string_view name) {
  static const auto index = [] {
    std::unordered_map<std::string_view, const Spec*> m;
    for (const Spec& s : respcmd::specs()) m.emplace(s.name, &s);
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

// "%.128s" of a C string: up to a NUL and at most n bytes.
std::string_view c_prefix(std::string_view s, size_t n) {
  if (size_t z = s.find('\0'); z != std::string_view::npos) s = s.substr(0, z);
  return s.substr(0, std::min(n, s.size()));
}

// redis-server replaces CR and LF in an error it builds from the request with spaces.
void error_from_request(resp::Writer& w, std::string e) {
  std::replace(e.begin(), e.end(), '\r', ' ');
  std::replace(e.begin(), e.end(), '\n', ' ');
  w.error(e);
}

void unknown_command(resp::Writer& w, const std::vector<std::string_view>& argv) {
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
  error_from_request(w, std::move(e));
}

}  // namespace

Family family_of_resp(std::string_view name) {
  const Spec* s = lookup(name);
  return s == nullptr ? Family::kOther : s->family;
}

Action handle_resp(const resp::Command& cmd, Context& ctx, RespSession& s, RespPeer& peer,
                   ByteBuffer& out) {
  respcmd::Call call{cmd.argv, ctx, s, peer, resp::Writer{out, s.resp3}, {}};
  const Spec* spec = lookup(cmd.argv[0]);
  if (spec == nullptr) {
    unknown_command(call.w, cmd.argv);
    return Action::kContinue;
  }
  call.fullname = spec->name;
  const int n = static_cast<int>(cmd.argv.size());
  if ((spec->arity > 0 && n != spec->arity) || (spec->arity < 0 && n < -spec->arity)) {
    call.wrong_arity();
    return Action::kContinue;
  }
  if (!s.authenticated && !spec->before_auth) {
    call.error(resp::err::kNoAuth);
    return Action::kContinue;
  }
  spec->run(call);
  return call.close ? Action::kClose : Action::kContinue;
}

}  // namespace cachetier::process
