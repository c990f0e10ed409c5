// The RESP front end: connection and server commands (HELLO, CLIENT, INFO, AUTH, COMMAND,
// CONFIG GET, PING, ECHO, SELECT, RESET, QUIT), answered by the router itself.
#include <string>

#include "common/version.h"
#include "router/frontends/resp_internal.h"
#include "router/router.h"
#include "router/worker.h"

namespace cachetier::router::respfe {

void cmd_hello(Ctx& c) {
  resp::HelloArgs h;
  std::string e;
  if (!resp::parse_hello(c.argv, h, e)) return error(c.fill, e);
  if (h.auth && !c.d.resp_authenticate(h.user, h.password)) {
    return error(c.fill, resp::err::kWrongPass);
  }
  if (!c.d.authenticated()) return error(c.fill, resp::kHelloNoAuth);
  if (h.setname) {
    if (!resp::valid_client_name(h.name)) return error(c.fill, resp::kBadClientName);
    c.s.name.assign(h.name);
  }
  if (h.version != 0) c.s.resp3 = h.version == 3;
  reply(c.fill, c.s.resp3,
        [&](resp::Writer& w) { resp::write_hello(w, static_cast<int64_t>(c.s.id)); });
}

void cmd_client(Ctx& c) {
  const std::string_view sub = c.arg(1);
  auto arity = [&](std::string_view n, size_t want) {
    if (c.argc() == want) return true;
    error(c.fill, resp::arity_error("client|" + std::string(n)));
    return false;
  };
  if (iequals(sub, "setname")) {
    if (!arity("setname", 3)) return;
    if (!resp::valid_client_name(c.arg(2))) {
      return error(c.fill, resp::kBadClientName);
    }
    c.s.name.assign(c.arg(2));
    return c.fill("+OK\r\n");
  }
  if (iequals(sub, "getname")) {
    if (!arity("getname", 2)) return;
    return reply(c.fill, c.s.resp3, [&](resp::Writer& w) {
      if (c.s.name.empty()) return w.null();
      w.bulk(c.s.name);
    });
  }
  if (iequals(sub, "id")) {
    if (!arity("id", 2)) return;
    return reply(c.fill, c.s.resp3,
                 [&](resp::Writer& w) { w.integer(static_cast<int64_t>(c.s.id)); });
  }
  if (iequals(sub, "setinfo")) {
    if (!arity("setinfo", 4)) return;
    const bool lib_name = iequals(c.arg(2), "lib-name");
    if (!lib_name && !iequals(c.arg(2), "lib-ver")) {
      return error(c.fill, "ERR Unrecognized option '" + std::string(c.arg(2)) + "'");
    }
    (lib_name ? c.s.lib_name : c.s.lib_ver).assign(c.arg(3));
    return c.fill("+OK\r\n");
  }
  if (iequals(sub, "info")) {
    if (!arity("info", 2)) return;
    const std::string line = "id=" + std::to_string(c.s.id) + " addr=" + c.d.stream().peer() +
                             " laddr=" + c.d.stream().local() + " fd=0 name=" + c.s.name +
                             " age=0 idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 "
                             "qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 "
                             "tot-mem=0 events=r cmd=client|info user=default redir=-1 resp=" +
                             std::string(c.s.resp3 ? "3" : "2") + "\n";
    return reply(c.fill, c.s.resp3, [&](resp::Writer& w) { w.verbatim(line); });
  }
  error(c.fill, resp::unknown_subcommand_error(c.arg(0), sub));
}

void cmd_info(Ctx& c) {
  ByteBuffer stats;
  c.d.worker().router().write_stats(stats);
  std::string text = "# Server\r\nredis_version:" + std::string(kRedisVersion) +
                     "\r\nredis_mode:standalone\r\ncachetier_version:" CACHETIER_VERSION
                     "\r\ncachetier_role:router\r\n\r\n# Cacherouter\r\n";
  std::string_view v = stats.view();
  while (!v.empty()) {
    const size_t eol = v.find("\r\n");
    std::string_view line = v.substr(0, eol);
    v = eol == std::string_view::npos ? std::string_view() : v.substr(eol + 2);
    if (line.substr(0, 5) != "STAT ") continue;
    line.remove_prefix(5);
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos) continue;
    text.append(line.substr(0, sp));
    text.push_back(':');
    text.append(line.substr(sp + 1));
    text.append("\r\n");
  }
  reply(c.fill, c.s.resp3, [&](resp::Writer& w) { w.verbatim(text); });
}

void cmd_auth(Ctx& c) {
  if (c.argc() > 3) return error(c.fill, resp::err::kSyntax);
  if (c.argc() == 2 && !c.d.worker().router().auth_required()) {
    return error(c.fill,
                 "ERR AUTH <password> called without any password configured for the default "
                 "user. Are you sure your configuration is correct?");
  }
  const std::string_view user = c.argc() == 3 ? c.arg(1) : "default";
  const std::string_view pass = c.argc() == 3 ? c.arg(2) : c.arg(1);
  if (!c.d.worker().router().auth_required() && user == "default") return c.fill("+OK\r\n");
  if (!c.d.resp_authenticate(user, pass)) return error(c.fill, resp::err::kWrongPass);
  c.fill("+OK\r\n");
}

void cmd_command(Ctx& c) {
  reply(c.fill, c.s.resp3, [&](resp::Writer& w) {
    if (!resp::write_command_reply(w, c.argv, served())) {
      w.error(resp::unknown_subcommand_error(c.arg(0), c.arg(1)));
    }
  });
}

void cmd_config(Ctx& c) {
  if (!iequals(c.arg(1), "get")) {
    return error(c.fill, resp::unknown_subcommand_error(c.arg(0), c.arg(1)));
  }
  if (c.argc() < 3) return error(c.fill, resp::arity_error("config|get"));
  // A router keeps no data of its own: what load generators ask, answered as a cache would.
  reply(c.fill, c.s.resp3, [&](resp::Writer& w) {
    std::vector<std::pair<std::string_view, std::string_view>> hits;
    for (auto p : {std::pair<std::string_view, std::string_view>{"save", ""},
                   {"appendonly", "no"},
                   {"databases", "1"}}) {
      for (size_t i = 2; i < c.argc(); ++i) {
        if (iequals(c.arg(i), p.first) || c.arg(i) == "*") {
          hits.push_back(p);
          break;
        }
      }
    }
    w.map(hits.size());
    for (auto& [k, v] : hits) {
      w.bulk(k);
      w.bulk(v);
    }
  });
}

void cmd_ping(Ctx& c) {
  if (c.argc() > 2) return error(c.fill, resp::arity_error("ping"));
  if (c.argc() == 1) return c.fill("+PONG\r\n");
  reply(c.fill, c.s.resp3, [&](resp::Writer& w) { w.bulk(c.arg(1)); });
}

void cmd_echo(Ctx& c) {
  reply(c.fill, c.s.resp3, [&](resp::Writer& w) { w.bulk(c.arg(1)); });
}

void cmd_select(Ctx& c) {
  int64_t id = 0;
  if (!resp::parse_ll(c.arg(1), &id)) return error(c.fill, resp::err::kNotInteger);
  if (id < INT32_MIN || id > INT32_MAX) {
    return error(c.fill,
                 "ERR value is out of range, value must between -2147483648 and 2147483647");
  }
  if (id != 0) return error(c.fill, "ERR DB index is out of range");
  c.fill("+OK\r\n");
}

void cmd_reset(Ctx& c) {
  c.s.resp3 = false;
  c.s.name.clear();
  c.d.resp_reset_auth();
  c.fill("+RESET\r\n");
}

void cmd_quit(Ctx& c) {
  c.fill("+OK\r\n");
  c.d.close_after_replies();
}

}  // namespace cachetier::router::respfe
