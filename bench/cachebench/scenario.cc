// The --scenario timeline. See scenario.h.
#include "bench/cachebench/scenario.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace cachetier::bench {

namespace {

int signal_named(const std::string& s) {
  if (s == "KILL" || s == "SIGKILL" || s == "9") return SIGKILL;
  if (s == "TERM" || s == "SIGTERM" || s == "15") return SIGTERM;
  if (s == "INT" || s == "SIGINT" || s == "2") return SIGINT;
  if (s == "HUP" || s == "SIGHUP" || s == "1") return SIGHUP;
  return 0;
}

const char* signal_text(int sig) {
  switch (sig) {
    case SIGKILL:
      return "KILL";
    case SIGTERM:
      return "TERM";
    case SIGINT:
      return "INT";
    case SIGHUP:
      return "HUP";
  }
  return "?";
}

bool alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

// Waits for a child of ours to end (up to `ms`); true when it did.
bool reap(pid_t pid, int ms) {
  for (int i = 0; i < ms / 10; ++i) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace

bool Scenario::load(const std::string& path, std::string& err) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    err = path + ": " + e.what();
    return false;
  }
  auto bad = [&](const std::string& where, const std::string& why) {
    err = path + ": " + where + ": " + why;
    return false;
  };
  if (!root.IsMap()) return bad("(top level)", "expected processes: and events:");
  for (const auto& kv : root) {
    const std::string k = kv.first.as<std::string>();
    if (k != "processes" && k != "events") return bad(k, "unknown key (processes, events)");
  }
  try {
    if (root["processes"]) {
      if (!root["processes"].IsMap()) return bad("processes", "expected a mapping of names");
      for (const auto& kv : root["processes"]) {
        ScenarioProcess p;
        p.name = kv.first.as<std::string>();
        const YAML::Node& n = kv.second;
        const std::string where = "processes." + p.name;
        if (!n.IsMap()) return bad(where, "expected pid:, pid_file: or command:");
        for (const auto& f : n) {
          const std::string fk = f.first.as<std::string>();
          if (fk != "pid" && fk != "pid_file" && fk != "command" && fk != "restart" &&
              fk != "log") {
            return bad(where + "." + fk, "unknown key (pid, pid_file, command, restart, log)");
          }
        }
        if (n["pid"]) p.pid = n["pid"].as<pid_t>();
        if (n["pid_file"]) {
          std::ifstream f(n["pid_file"].as<std::string>());
          if (!(f >> p.pid)) return bad(where + ".pid_file", "no pid in it");
        }
        if (n["command"]) p.command = n["command"].as<std::string>();
        if (n["restart"]) p.command = n["restart"].as<std::string>();
        if (n["log"]) p.log = n["log"].as<std::string>();
        p.ours = p.pid == 0;
        if (p.pid == 0 && p.command.empty()) return bad(where, "needs pid, pid_file or command");
        if (p.pid < 0) return bad(where + ".pid", "not a pid");
        procs_.push_back(std::move(p));
      }
    }
    if (!root["events"] || !root["events"].IsSequence()) {
      return bad("events", "expected a list of events");
    }
    size_t i = 0;
    for (const auto& n : root["events"]) {
      const std::string where = "events[" + std::to_string(i++) + "]";
      if (!n.IsMap() || !n["at"]) return bad(where, "expected a mapping with at:");
      ScenarioEvent e;
      e.at = n["at"].as<double>();
      if (e.at < 0) return bad(where + ".at", "negative");
      int kinds = 0;
      static const std::pair<const char*, ScenarioEvent::Kind> kKinds[] = {
          {"kill", ScenarioEvent::kKill},     {"stop", ScenarioEvent::kStop},
          {"cont", ScenarioEvent::kCont},     {"restart", ScenarioEvent::kRestart},
          {"reload", ScenarioEvent::kReload}, {"exec", ScenarioEvent::kExec}};
      for (const auto& [name, kind] : kKinds) {
        if (!n[name]) continue;
        ++kinds;
        e.kind = kind;
        (kind == ScenarioEvent::kExec ? e.command : e.process) = n[name].as<std::string>();
        e.label = std::string(name) + " " + n[name].as<std::string>();
      }
      if (kinds != 1)
        return bad(where, "needs exactly one of kill, stop, cont, restart, reload, exec");
      for (const auto& f : n) {
        const std::string fk = f.first.as<std::string>();
        static const char* const kFields[] = {"at",      "kill",    "stop", "cont",
                                              "restart", "reload",  "exec", "signal",
                                              "write",   "content", "from", "label"};
        if (std::find(std::begin(kFields), std::end(kFields), fk) == std::end(kFields)) {
          return bad(where + "." + fk, "unknown key");
        }
      }
      if (n["label"]) e.label = n["label"].as<std::string>();
      e.signal = e.kind == ScenarioEvent::kKill ? SIGKILL : 0;
      if (n["signal"]) {
        if (e.kind != ScenarioEvent::kKill) return bad(where + ".signal", "only for kill");
        e.signal = signal_named(n["signal"].as<std::string>());
        if (e.signal == 0) return bad(where + ".signal", "one of KILL, TERM, INT, HUP");
      }
      if (n["write"] || n["content"] || n["from"]) {
        if (e.kind != ScenarioEvent::kReload) return bad(where, "write: is for reload");
        if (!n["write"] || (!!n["content"] == !!n["from"])) {
          return bad(where, "write: PATH with one of content: or from:");
        }
        e.write = n["write"].as<std::string>();
        if (n["content"]) {
          e.content = n["content"].as<std::string>();
        } else {
          std::ifstream f(n["from"].as<std::string>());
          if (!f) return bad(where + ".from", "cannot read " + n["from"].as<std::string>());
          std::stringstream ss;
          ss << f.rdbuf();
          e.content = ss.str();
        }
      }
      if (e.kind != ScenarioEvent::kExec) {
        ScenarioProcess* p = find(e.process);
        if (p == nullptr) return bad(where, "unknown process '" + e.process + "'");
        if (e.kind == ScenarioEvent::kRestart && p->command.empty()) {
          return bad(where, "process '" + e.process + "' has no command to restart (restart:)");
        }
      }
      events_.push_back(std::move(e));
    }
  } catch (const YAML::Exception& e) {
    err = path + ": " + e.what();
    return false;
  }
  std::stable_sort(events_.begin(), events_.end(),
                   [](const ScenarioEvent& a, const ScenarioEvent& b) { return a.at < b.at; });
  return true;
}

ScenarioProcess* Scenario::find(const std::string& name) {
  for (auto& p : procs_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

bool Scenario::spawn(ScenarioProcess& p, std::string& err) {
  const std::string log = p.log.empty() ? "/dev/null" : p.log;
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    err = "fork: " + std::string(strerror(errno));
    return false;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // a crashed cachebench leaves nothing running
    if (getppid() != parent) _exit(127);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::string cmd = "exec " + p.command;
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  p.pid = pid;
  p.ours = true;
  return true;
}

bool Scenario::start_processes(std::string& err) {
  for (auto& p : procs_) {
    if (p.pid == 0 && !spawn(p, err)) return false;
  }
  return true;
}

std::string Scenario::run(const ScenarioEvent& e) {
  if (e.kind == ScenarioEvent::kExec) {
    int rc = std::system(e.command.c_str());
    int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return "exec `" + e.command + "`: exit " + std::to_string(code);
  }
  ScenarioProcess& p = *find(e.process);
  const std::string who = p.name + " (pid " + std::to_string(p.pid) + ")";
  auto send = [&](int sig, const char* what) {
    if (::kill(p.pid, sig) != 0) return std::string(what) + " " + who + ": " + strerror(errno);
    return std::string(what) + " " + who;
  };
  switch (e.kind) {
    case ScenarioEvent::kKill: {
      std::string r = send(e.signal, (std::string("kill -") + signal_text(e.signal)).c_str());
      if (p.ours && (e.signal == SIGKILL || e.signal == SIGTERM || e.signal == SIGINT)) {
        reap(p.pid, 5000);
      }
      return r;
    }
    case ScenarioEvent::kStop:
      return send(SIGSTOP, "stop");
    case ScenarioEvent::kCont:
      return send(SIGCONT, "cont");
    case ScenarioEvent::kRestart: {
      if (alive(p.pid)) {
        ::kill(p.pid, SIGKILL);
        if (p.ours) reap(p.pid, 5000);
      }
      std::string err;
      if (!spawn(p, err)) return "restart " + p.name + ": " + err;
      return "restart " + p.name + " (pid " + std::to_string(p.pid) + ")";
    }
    case ScenarioEvent::kReload: {
      std::string prefix;
      if (!e.write.empty()) {
        std::ofstream f(e.write, std::ios::trunc);
        f << e.content;
        if (!f) return "reload " + who + ": cannot write " + e.write;
        prefix = "wrote " + e.write + ", ";
      }
      return prefix + send(SIGHUP, "reload (HUP)");
    }
    case ScenarioEvent::kExec:
      break;
  }
  return "";
}

void Scenario::stop_processes() {
  for (auto& p : procs_) {
    if (p.ours && alive(p.pid)) {
      ::kill(p.pid, SIGCONT);  // (a stopped process cannot act on TERM)
      ::kill(p.pid, SIGTERM);
    }
  }
  for (auto& p : procs_) {
    if (!p.ours || p.pid <= 0) continue;
    if (!reap(p.pid, 5000)) {
      ::kill(p.pid, SIGKILL);
      reap(p.pid, 1000);
    }
  }
}

std::vector<std::pair<std::string, std::string>> router_stats(const std::string& host, int port) {
  std::vector<std::pair<std::string, std::string>> out;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return out;
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1 ||
      connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      send(fd, "stats\r\n", 7, MSG_NOSIGNAL) != 7) {
    ::close(fd);
    return out;
  }
  std::string buf;
  char chunk[16384];
  while (buf.find("END\r\n") == std::string::npos && buf.size() < (8u << 20)) {
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  std::istringstream lines(buf);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("STAT ", 0) != 0) continue;
    auto sp = line.find(' ', 5);
    if (sp == std::string::npos) continue;
    out.emplace_back(line.substr(5, sp - 5), line.substr(sp + 1));
  }
  return out;
}

uint64_t failovers_in(const std::vector<std::pair<std::string, std::string>>& stats) {
  uint64_t t = 0;
  for (const auto& [k, v] : stats) {
    if (k.rfind("node:", 0) == 0 && k.size() > 10 && k.ends_with(":failovers")) {
      t += std::strtoull(v.c_str(), nullptr, 10);
    }
  }
  return t;
}

}  // namespace cachetier::bench
