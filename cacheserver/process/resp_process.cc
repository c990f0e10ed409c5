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

void Call::wrong_arity() { w.error(resp::arity_error(fullname)); }

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

int64_t exptime_from_ms(int64_t when_ms) { return resp::seconds_from_ms(when_ms); }

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
  static const std::vector<Spec> table = [] {
    std::vector<Spec> t = {
        {"get", cmd_get, Family::kGet},
        {"set", cmd_set, Family::kSet},
        {"setnx", cmd_setnx, Family::kSet},
        {"setex", cmd_setex, Family::kSet},
        {"psetex", cmd_psetex, Family::kSet},
        {"getset", cmd_getset, Family::kSet},
        {"getex", cmd_getex, Family::kGet},
        {"getdel", cmd_getdel, Family::kGet},
        {"mget", cmd_mget, Family::kGet},
        {"mset", cmd_mset, Family::kSet},
        {"msetnx", cmd_msetnx, Family::kSet},
        {"del", cmd_del, Family::kDelete},
        {"unlink", cmd_del, Family::kDelete},
        {"exists", cmd_exists, Family::kGet},
        {"touch", cmd_touch, Family::kTouch},
        {"expire", cmd_expire, Family::kTouch},
        {"pexpire", cmd_pexpire, Family::kTouch},
        {"expireat", cmd_expireat, Family::kTouch},
        {"pexpireat", cmd_pexpireat, Family::kTouch},
        {"ttl", cmd_ttl, Family::kOther},
        {"pttl", cmd_pttl, Family::kOther},
        {"expiretime", cmd_expiretime, Family::kOther},
        {"pexpiretime", cmd_pexpiretime, Family::kOther},
        {"persist", cmd_persist, Family::kTouch},
        {"incr", cmd_incr, Family::kArith},
        {"decr", cmd_decr, Family::kArith},
        {"incrby", cmd_incrby, Family::kArith},
        {"decrby", cmd_decrby, Family::kArith},
        {"incrbyfloat", cmd_incrbyfloat, Family::kArith},
        {"append", cmd_append, Family::kSet},
        {"strlen", cmd_strlen, Family::kGet},
        {"getrange", cmd_getrange, Family::kGet},
        {"setrange", cmd_setrange, Family::kSet},
        {"type", cmd_type, Family::kOther},
        {"dbsize", cmd_dbsize, Family::kOther},
        {"flushdb", cmd_flushall, Family::kOther},
        {"flushall", cmd_flushall, Family::kOther},
        {"ping", cmd_ping, Family::kOther},
        {"echo", cmd_echo, Family::kOther},
        {"select", cmd_select, Family::kOther},
        {"info", cmd_info, Family::kOther},
        {"client", cmd_client, Family::kOther},
        {"command", cmd_command, Family::kOther},
        {"config", cmd_config, Family::kOther},
        {"auth", cmd_auth, Family::kOther},
        {"hello", cmd_hello, Family::kOther},
        {"reset", cmd_reset, Family::kOther},
        {"quit", cmd_quit, Family::kOther},
        {"debug", cmd_debug, Family::kOther},
    };
    for (Spec& s : t) s.info = resp::find_command(s.name);
    return t;
  }();
  return table;
}

}  // namespace respcmd

namespace {

using respcmd::Spec;

const Spec* lookup(std::string_view name) {
  static const auto index = [] {
    std::unordered_map<const resp::CommandInfo*, const Spec*> m;
    for (const Spec& s : respcmd::specs()) m.emplace(s.info, &s);
    return m;
  }();
  const resp::CommandInfo* info = resp::find_command(name);
  if (info == nullptr) return nullptr;
  auto it = index.find(info);
  return it == index.end() ? nullptr : it->second;
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
    call.error(resp::unknown_command_error(cmd.argv));
    return Action::kContinue;
  }
  call.fullname = spec->name;
  if (!resp::arity_ok(spec->info->arity, cmd.argv.size())) {
    call.wrong_arity();
    return Action::kContinue;
  }
  if (!s.authenticated && !spec->info->before_auth) {
    call.error(resp::err::kNoAuth);
    return Action::kContinue;
  }
  spec->run(call);
  return call.close ? Action::kClose : Action::kContinue;
}

}  // namespace cachetier::process
