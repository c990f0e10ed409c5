// RESP connection and server commands: PING, ECHO, SELECT, INFO, CLIENT, COMMAND, CONFIG GET,
// AUTH, HELLO, RESET, QUIT, with redis-server 7's replies.
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "cacheserver/process/resp_internal.h"
#include "common/version.h"

namespace cachetier::process::respcmd {

namespace {

using resp::kRedisVersion;

void unknown_subcommand(Call& c) { c.error(resp::unknown_subcommand_error(c.arg(0), c.arg(1))); }

// A subcommand's arity check, with its full name ("client|setname").
bool sub_arity(Call& c, std::string_view name, int arity) {
  const int n = static_cast<int>(c.argc()) - 1;
  if ((arity > 0 && n == arity) || (arity < 0 && n >= -arity)) return true;
  c.error(resp::arity_error(std::string(c.fullname) + "|" + std::string(name)));
  return false;
}

std::map<std::string, std::string, std::less<>> server_stats(Call& c) {
  std::map<std::string, std::string, std::less<>> m;
  if (c.ctx.stats == nullptr) return m;
  ByteBuffer buf;
  c.ctx.stats->write_stats("", buf);
  std::string_view text = buf.view();
  while (!text.empty()) {
    const size_t eol = text.find("\r\n");
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 2);
    if (line.substr(0, 5) != "STAT ") continue;
    line.remove_prefix(5);
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    m.emplace(std::string(line.substr(0, sp)), std::string(line.substr(sp + 1)));
  }
  return m;
}

std::string human_bytes(uint64_t n) {
  char buf[32];
  if (n < 1024) {
    std::snprintf(buf, sizeof(buf), "%lluB", static_cast<unsigned long long>(n));
  } else if (n < (1u << 20)) {
    std::snprintf(buf, sizeof(buf), "%.2fK", static_cast<double>(n) / 1024);
  } else if (n < (1ull << 30)) {
    std::snprintf(buf, sizeof(buf), "%.2fM", static_cast<double>(n) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof(buf), "%.2fG", static_cast<double>(n) / (1ull << 30));
  }
  return buf;
}

bool authenticate(Call& c, std::string_view user, std::string_view password) {
  c.ctx.counters.auth_cmds.add();
  if (!c.peer.auth_required()) {
    if (user == "default") return true;
  } else if (c.peer.check_auth(user, password)) {
    c.session.authenticated = true;
    return true;
  }
  c.ctx.counters.auth_errors.add();
  return false;
}

}  // namespace

void cmd_ping(Call& c) {
  if (c.argc() > 2) return c.wrong_arity();
  if (c.argc() == 1) return c.w.simple("PONG");
  c.w.bulk(c.arg(1));
}

void cmd_echo(Call& c) { c.w.bulk(c.arg(1)); }

void cmd_select(Call& c) {
  int64_t id = 0;
  if (!resp::parse_ll(c.arg(1), &id)) return c.error(resp::err::kNotInteger);
  if (id < INT32_MIN || id > INT32_MAX) {
    return c.error("ERR value is out of range, value must between -2147483648 and 2147483647");
  }
  if (id != 0) return c.error("ERR DB index is out of range");
  c.w.ok();
}

void cmd_info(Call& c) {
  auto st = server_stats(c);
  auto get = [&](std::string_view k) -> std::string {
    auto it = st.find(k);
    return it == st.end() ? "0" : it->second;
  };
  const engine::EngineStats es = c.ctx.engine.stats();
  const uint64_t uptime = std::stoull(get("uptime"));
  std::map<std::string, std::string> sections;
  sections["server"] = "# Server\r\nredis_version:" + std::string(kRedisVersion) +
                       "\r\nredis_mode:standalone\r\ncachetier_version:" CACHETIER_VERSION
                       "\r\nos:Linux\r\narch_bits:64\r\nprocess_id:" +
                       std::to_string(getpid()) +
                       "\r\ntcp_port:" + std::to_string(c.peer.listen_port()) +
                       "\r\nuptime_in_seconds:" + std::to_string(uptime) +
                       "\r\nuptime_in_days:" + std::to_string(uptime / 86400) + "\r\n";
  sections["clients"] = "# Clients\r\nconnected_clients:" + get("curr_connections") +
                        "\r\nmaxclients:" + get("max_connections") + "\r\n";
  sections["memory"] = "# Memory\r\nused_memory:" + std::to_string(es.memory_used) +
                       "\r\nused_memory_human:" + human_bytes(es.memory_used) +
                       "\r\nmaxmemory:" + std::to_string(es.limit) +
                       "\r\nmaxmemory_human:" + human_bytes(es.limit) +
                       "\r\nmaxmemory_policy:allkeys-lru\r\n";
  sections["stats"] = "# Stats\r\ntotal_connections_received:" + get("total_connections") +
                      "\r\nrejected_connections:" + get("rejected_connections") +
                      "\r\ntotal_net_input_bytes:" + get("bytes_read") +
                      "\r\ntotal_net_output_bytes:" + get("bytes_written") +
                      "\r\nexpired_keys:" + std::to_string(es.reclaimed) +
                      "\r\nevicted_keys:" + std::to_string(es.evictions) +
                      "\r\nkeyspace_hits:" + get("get_hits") +
                      "\r\nkeyspace_misses:" + get("get_misses") + "\r\n";
  sections["keyspace"] = "# Keyspace\r\n";
  if (es.curr_items > 0) {
    sections["keyspace"] +=
        "db0:keys=" + std::to_string(es.curr_items) + ",expires=0,avg_ttl=0\r\n";
  }
  static const char* kOrder[] = {"server", "clients", "memory", "stats", "keyspace"};
  std::vector<std::string> want;
  for (size_t i = 1; i < c.argc(); ++i) {
    std::string s(c.arg(i));
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    want.push_back(s);
  }
  const bool all = want.empty() || std::any_of(want.begin(), want.end(), [](const std::string& s) {
                     return s == "default" || s == "all" || s == "everything";
                   });
  std::string text;
  for (const char* name : kOrder) {
    if (!all && std::find(want.begin(), want.end(), name) == want.end()) continue;
    if (!text.empty()) text += "\r\n";
    text += sections[name];
  }
  c.w.verbatim(text);
}

void cmd_client(Call& c) {
  const std::string_view sub = c.arg(1);
  if (iequals(sub, "setname")) {
    if (!sub_arity(c, "setname", 2)) return;
    if (!resp::valid_client_name(c.arg(2))) {
      return c.error(resp::kBadClientName);
    }
    c.session.name.assign(c.arg(2));
    return c.w.ok();
  }
  if (iequals(sub, "getname")) {
    if (!sub_arity(c, "getname", 1)) return;
    if (c.session.name.empty()) return c.w.null();
    return c.w.bulk(c.session.name);
  }
  if (iequals(sub, "id")) {
    if (!sub_arity(c, "id", 1)) return;
    return c.w.integer(static_cast<int64_t>(c.session.id));
  }
  if (iequals(sub, "setinfo")) {
    if (!sub_arity(c, "setinfo", 3)) return;
    const std::string_view attr = c.arg(2), val = c.arg(3);
    const bool lib_name = iequals(attr, "lib-name"), lib_ver = iequals(attr, "lib-ver");
    if (!lib_name && !lib_ver) {
      return c.error("ERR Unrecognized option '" + std::string(attr) + "'");
    }
    if (!resp::valid_client_name(val)) {
      return c.error("ERR " + std::string(lib_name ? "lib-name" : "lib-ver") +
                     " cannot contain spaces, newlines or special characters.");
    }
    (lib_name ? c.session.lib_name : c.session.lib_ver).assign(val);
    return c.w.ok();
  }
  if (iequals(sub, "info")) {
    if (!sub_arity(c, "info", 1)) return;
    return c.w.verbatim(c.peer.client_info() + "\n");
  }
  if (iequals(sub, "help")) {
    c.w.array(6);
    c.w.simple("CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    c.w.simple("GETNAME");
    c.w.simple("ID");
    c.w.simple("INFO");
    c.w.simple("SETINFO <LIB-NAME|LIB-VER> <value>");
    c.w.simple("SETNAME <name>");
    return;
  }
  unknown_subcommand(c);
}

void cmd_command(Call& c) {
  static const std::vector<const resp::CommandInfo*> served = [] {
    std::vector<const resp::CommandInfo*> v;
    for (const Spec& s : specs()) v.push_back(s.info);
    return v;
  }();
  if (!resp::write_command_reply(c.w, c.argv, served)) unknown_subcommand(c);
}

void cmd_config(Call& c) {
  if (!iequals(c.arg(1), "get")) return unknown_subcommand(c);
  if (!sub_arity(c, "get", -2)) return;
  const engine::EngineStats es = c.ctx.engine.stats();
  const std::vector<std::pair<std::string, std::string>> params = {
      {"appendonly", "no"},
      {"databases", "1"},
      {"maxmemory", std::to_string(es.limit)},
      {"maxmemory-policy", "allkeys-lru"},
      {"port", std::to_string(c.peer.listen_port())},
      {"proto-max-bulk-len", std::to_string(512ull << 20)},
      {"save", ""},
      {"timeout", "0"},
  };
  std::vector<const std::pair<std::string, std::string>*> hits;
  for (const auto& p : params) {
    for (size_t i = 2; i < c.argc(); ++i) {
      std::string pattern(c.arg(i));
      for (char& ch : pattern) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (fnmatch(pattern.c_str(), p.first.c_str(), 0) == 0) {
        hits.push_back(&p);
        break;
      }
    }
  }
  c.w.map(hits.size());
  for (const auto* p : hits) {
    c.w.bulk(p->first);
    c.w.bulk(p->second);
  }
}

void cmd_auth(Call& c) {
  if (c.argc() > 3) return c.error(resp::err::kSyntax);
  if (c.argc() == 2 && !c.peer.auth_required()) {
    return c.error(
        "ERR AUTH <password> called without any password configured for the default user. Are "
        "you sure your configuration is correct?");
  }
  const std::string_view user = c.argc() == 3 ? c.arg(1) : "default";
  const std::string_view pass = c.argc() == 3 ? c.arg(2) : c.arg(1);
  if (!authenticate(c, user, pass)) return c.error(resp::err::kWrongPass);
  c.w.ok();
}

void cmd_hello(Call& c) {
  resp::HelloArgs h;
  std::string error;
  if (!resp::parse_hello(c.argv, h, error)) return c.error(error);
  if (h.auth && !authenticate(c, h.user, h.password)) return c.error(resp::err::kWrongPass);
  if (!c.session.authenticated) return c.error(resp::kHelloNoAuth);
  if (h.setname) {
    if (!resp::valid_client_name(h.name)) return c.error(resp::kBadClientName);
    c.session.name.assign(h.name);
  }
  if (h.version != 0) {
    c.session.resp3 = h.version == 3;
    c.w.resp3 = c.session.resp3;
  }
  resp::write_hello(c.w, static_cast<int64_t>(c.session.id));
}

void cmd_reset(Call& c) {
  c.session.resp3 = false;
  c.session.name.clear();
  c.session.authenticated = !c.peer.auth_required();
  c.w.simple("RESET");
}

void cmd_quit(Call& c) {
  c.w.ok();
  c.close = true;
}

void cmd_debug(Call& c) {
  if (c.ctx.debug_clock == nullptr) {
    return c.error(
        "ERR DEBUG command not allowed: cacheserver --debug-clock enables DEBUG "
        "ADVANCE-CLOCK for tests, and nothing else");
  }
  if (!iequals(c.arg(1), "advance-clock")) return unknown_subcommand(c);
  if (!sub_arity(c, "advance-clock", 2)) return;
  int64_t s = 0;
  if (!c.integer(2, &s)) return;
  if (s < 0) return c.error("ERR the clock only moves forward");
  c.ctx.debug_clock->advance(s);
  c.w.ok();
}

}  // namespace cachetier::process::respcmd
