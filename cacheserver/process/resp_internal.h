// Shared by the RESP command files: the call being answered and the command table's handlers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cacheserver/process/resp_process.h"
#include "protocol/resp/commands.h"

namespace cachetier::process::respcmd {

struct Call {
  const std::vector<std::string_view>& argv;
  Context& ctx;
  RespSession& session;
  RespPeer& peer;
  resp::Writer w;
  std::string_view fullname;  // "get", "client|setname": for arity and expire-time errors
  bool close = false;         // QUIT

  size_t argc() const { return argv.size(); }
  std::string_view arg(size_t i) const { return argv[i]; }
  void error(std::string_view e) { w.error(e); }
  void wrong_arity();
  // Parses argv[i] as redis-server's string2ll; replies "value is not an integer" if not.
  bool integer(size_t i, int64_t* v);
  // The engine's clock: seconds (the engine's) and milliseconds (for PX and PTTL).
  int64_t now_s() const;
  int64_t now_ms() const;
};

using resp::iequals;

// A copy of a key's item (for read-modify-write commands).
struct Snapshot {
  std::string value;
  uint64_t cas = 0;
  int64_t exptime = 0;  // absolute unix seconds, 0 = never
  uint32_t flags = 0;
};
std::optional<Snapshot> read_item(Context& ctx, std::string_view key, bool bump = true);

// Absolute unix seconds for a Redis expiry in ms (rounded up: an item never expires early).
int64_t exptime_from_ms(int64_t when_ms);

// String commands (resp_strings.cc).
void cmd_get(Call&);
void cmd_set(Call&);
void cmd_setnx(Call&);
void cmd_setex(Call&);
void cmd_psetex(Call&);
void cmd_getset(Call&);
void cmd_getex(Call&);
void cmd_getdel(Call&);
void cmd_mget(Call&);
void cmd_mset(Call&);
void cmd_msetnx(Call&);
void cmd_incr(Call&);
void cmd_decr(Call&);
void cmd_incrby(Call&);
void cmd_decrby(Call&);
void cmd_incrbyfloat(Call&);
void cmd_append(Call&);
void cmd_strlen(Call&);
void cmd_getrange(Call&);
void cmd_setrange(Call&);
// Key commands (resp_keys.cc).
void cmd_del(Call&);
void cmd_exists(Call&);
void cmd_touch(Call&);
void cmd_expire(Call&);
void cmd_pexpire(Call&);
void cmd_expireat(Call&);
void cmd_pexpireat(Call&);
void cmd_ttl(Call&);
void cmd_pttl(Call&);
void cmd_expiretime(Call&);
void cmd_pexpiretime(Call&);
void cmd_persist(Call&);
void cmd_type(Call&);
void cmd_dbsize(Call&);
void cmd_flushall(Call&);
// Connection and server commands (resp_server.cc).
void cmd_ping(Call&);
void cmd_echo(Call&);
void cmd_select(Call&);
void cmd_info(Call&);
void cmd_client(Call&);
void cmd_command(Call&);
void cmd_config(Call&);
void cmd_auth(Call&);
void cmd_hello(Call&);
void cmd_reset(Call&);
void cmd_quit(Call&);
void cmd_debug(Call&);

// A command this node serves: its handler and latency family (its arity, flags and keys are
// in protocol/resp/commands.h).
struct Spec {
  std::string_view name;  // lower case, as in resp::commands()
  void (*run)(Call&);
  Family family;
  const resp::CommandInfo* info = nullptr;  // filled in by specs()
};
// The table (resp_process.cc), for dispatch and COMMAND.
const std::vector<Spec>& specs();

}  // namespace cachetier::process::respcmd
