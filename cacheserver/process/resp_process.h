// RESP commands on the Engine: the string and key subset of Redis a cache needs, with
// redis-server 7's replies and error texts (docs/resp.md). handle_resp() executes one decoded
// command and appends its reply; no I/O. One store: a key written over memcache text reads
// over RESP and the other way round (client flags are 0 for RESP writes and not shown).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cacheserver/process/process.h"
#include "protocol/resp/resp.h"

namespace cachetier::process {

// What the connection knows and the commands ask for (AUTH, CLIENT, INFO's clients).
class RespPeer {
 public:
  virtual ~RespPeer() = default;
  virtual bool auth_required() const = 0;
  virtual bool check_auth(std::string_view user, std::string_view password) = 0;
  // CLIENT INFO's line: "id=.. addr=.. laddr=.. fd=.. name=.. age=.. ...".
  virtual std::string client_info() const = 0;
  virtual int listen_port() const = 0;
};

// Per connection.
struct RespSession {
  bool resp3 = false;
  bool authenticated = true;
  uint64_t id = 0;
  std::string name;
  std::string lib_name, lib_ver;
};

// Latency family of a RESP command (by name, any case).
Family family_of_resp(std::string_view name);

// kClose after QUIT (the +OK is in `out`).
Action handle_resp(const resp::Command& cmd, Context& ctx, RespSession& s, RespPeer& peer,
                   ByteBuffer& out);

}  // namespace cachetier::process
