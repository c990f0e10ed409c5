// The RESP commands cachetier knows, as redis-server describes them: name, arity, flags, key
// positions and group (for arity checks, COMMAND and redis-cli's hints), and the error texts
// redis-server builds from a request (unknown command, unknown subcommand, wrong arity).
// Shared by cacheserver (cacheserver/process/resp_*.cc) and cacherouter (router/frontends/
// resp.cc); each maps the names it serves onto its own handlers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "protocol/resp/resp.h"

namespace cachetier::resp {

struct CommandInfo {
  std::string_view name;   // lower case
  int arity;               // redis-server's: n exact, -n at least n
  std::string_view flags;  // "write", "readonly", or "" (connection and server commands)
  int first_key, last_key, step;
  std::string_view group;    // "string", "generic", "connection", "server"
  bool before_auth = false;  // allowed before AUTH (AUTH, HELLO, QUIT, RESET)
};

const std::vector<CommandInfo>& commands();
// By name, any case; null if unknown.
const CommandInfo* find_command(std::string_view name);
bool iequals(std::string_view a, std::string_view b);
// True if argc fits the arity.
bool arity_ok(int arity, size_t argc);

// "ERR unknown command 'x', with args beginning with: 'a' 'b' " as redis-server builds it
// (128 bytes of the name, arguments while under 128 bytes, CR and LF shown as spaces).
std::string unknown_command_error(const std::vector<std::string_view>& argv);
// "ERR unknown subcommand 'x'. Try CLIENT HELP."
std::string unknown_subcommand_error(std::string_view container, std::string_view sub);
// "ERR wrong number of arguments for 'get' command" ("client|setname" for a subcommand).
std::string arity_error(std::string_view fullname);

// COMMAND INFO's entry and COMMAND DOCS's map for one command.
void write_command_info(Writer& w, const CommandInfo& c);
void write_command_doc(Writer& w, const CommandInfo& c);
// COMMAND [COUNT | INFO [name...] | DOCS [name...]] over `served` (the commands a server
// answers); false if the subcommand is unknown (the caller answers the error).
bool write_command_reply(Writer& w, const std::vector<std::string_view>& argv,
                         const std::vector<const CommandInfo*>& served);

}  // namespace cachetier::resp

namespace cachetier::resp {

// SET's and GETEX's options, as redis-server parses them.
struct SetOptions {
  bool nx = false, xx = false, get = false, keepttl = false, persist = false;
  enum Unit { kNone, kEx, kPx, kExat, kPxat } unit = kNone;
  std::string_view expire;  // the argument after EX/PX/EXAT/PXAT
};
// From argv[first] on; `getex`: GETEX's set (PERSIST, and no NX/XX/GET/KEEPTTL). False: the
// reply is "ERR syntax error".
bool parse_set_options(const std::vector<std::string_view>& argv, size_t first, bool getex,
                       SetOptions& o);
// The absolute expiry in ms of o.expire (redis-server's getExpireMillisecondsOrReply), or 0
// with `error` set ("value is not an integer", "invalid expire time in '<fullname>' command").
int64_t expire_at_ms(const SetOptions& o, int64_t now_ms, std::string_view fullname,
                     std::string& error);
// Whole seconds for an expiry in ms, rounded up (an item never expires early); -1 for <= 0.
int64_t seconds_from_ms(int64_t when_ms);

}  // namespace cachetier::resp

namespace cachetier::resp {

// The Redis version cachetier answers as (the commands and replies it follows).
inline constexpr std::string_view kRedisVersion = "7.0.15";

// CLIENT SETNAME's rule: printable ASCII, no space.
bool valid_client_name(std::string_view name);
inline constexpr std::string_view kBadClientName =
    "ERR Client names cannot contain spaces, newlines or special characters.";
inline constexpr std::string_view kHelloNoAuth =
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the "
    "RESP protocol version at the same time";

// HELLO [protover [AUTH user pass] [SETNAME name]] as redis-server parses it; false with
// `error` set (the version's errors and "Syntax error in HELLO option").
struct HelloArgs {
  int64_t version = 0;  // 0: not given
  bool auth = false, setname = false;
  std::string_view user, password, name;
};
bool parse_hello(const std::vector<std::string_view>& argv, HelloArgs& h, std::string& error);
// HELLO's map (server, version, proto from w.resp3, id, mode, role, modules).
void write_hello(Writer& w, int64_t client_id);

// EXPIRE's NX|XX|GT|LT from argv[first] on, as redis-server checks them; false with `error`.
enum ExpireFlag : unsigned { kExpireNx = 1, kExpireXx = 2, kExpireGt = 4, kExpireLt = 8 };
bool parse_expire_flags(const std::vector<std::string_view>& argv, size_t first, unsigned& flags,
                        std::string& error);
// Whether an expiry of `next` (unix seconds) may replace `current` (0 = none) under `flags`,
// compared at the second as the nodes keep them.
bool expire_allowed(unsigned flags, int64_t current, int64_t next);

}  // namespace cachetier::resp
