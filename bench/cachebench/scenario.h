// cachebench --scenario FILE: a timeline of actions during a run, and the phases between them.
//
//   processes:                      # named processes the events act on
//     node1: {pid: 4242, restart: "cacheserver -p 11212 -t 1"}   # running already
//     node2: {command: "cacheserver -p 11213 -t 1", log: n2.log} # started before the run
//     router: {pid_file: /run/cacherouter.pid}
//   events:                         # `at`: seconds from the start of the run
//     - {at: 5,  kill: node1}                 # SIGKILL (signal: TERM|INT|KILL|HUP)
//     - {at: 8,  stop: node2}                 # SIGSTOP
//     - {at: 9,  cont: node2}                 # SIGCONT
//     - {at: 10, restart: node1}              # killed if alive, its command started again
//     - {at: 12, reload: router, write: /tmp/router.yaml, from: four-shards.yaml}  # SIGHUP
//     - {at: 14, exec: "scripts/tier add-shard", label: "add a shard"}
//
// A process is given by pid (or pid_file) or by command (started by cachebench before the run
// and stopped with SIGTERM after it). restart needs a command (`command`, or `restart` for a
// process given by pid). reload may first write a file: `content` inline or a copy of `from`.
// exec runs a shell command and waits for it (its exit status is reported). Events run in
// `at` order on a thread of their own; each starts a phase, reported with the load's
// requests, errors, hit ratio and latency in that phase (report.h).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace cachetier::bench {

struct ScenarioProcess {
  std::string name;
  pid_t pid = 0;
  std::string command;  // how to (re)start it; empty: given by pid, not restartable
  std::string log;      // its stdout and stderr (default /dev/null)
  bool ours = false;    // started by cachebench: stopped after the run
};

struct ScenarioEvent {
  enum Kind { kKill, kStop, kCont, kRestart, kReload, kExec };
  double at = 0;
  Kind kind = kKill;
  std::string process;         // kill, stop, cont, restart, reload
  int signal = 0;              // kill: SIGKILL unless given
  std::string write, content;  // reload: the file to write first, and what
  std::string command;         // exec
  std::string label;           // the phase's name (default: "kill node1", ...)
};

class Scenario {
 public:
  // Parses the YAML file; false and `err` ("scenario.yaml: events[2]: unknown process 'x'").
  bool load(const std::string& path, std::string& err);
  // Starts the processes given by command; false and `err` if one cannot start.
  bool start_processes(std::string& err);
  // Runs one event now; returns what happened, for the log ("kill -KILL node1 (pid 4242)").
  std::string run(const ScenarioEvent& e);
  // SIGTERM to the processes cachebench started, then waits for them (5 s, then SIGKILL).
  void stop_processes();

  const std::vector<ScenarioEvent>& events() const { return events_; }

 private:
  ScenarioProcess* find(const std::string& name);
  bool spawn(ScenarioProcess& p, std::string& err);
  std::vector<ScenarioProcess> procs_;
  std::vector<ScenarioEvent> events_;
};

// `stats` of a router (host:port), as name -> value; empty when it does not answer in 2 s.
std::vector<std::pair<std::string, std::string>> router_stats(const std::string& host, int port);
// The sum of node:*:failovers in `stats`.
uint64_t failovers_in(const std::vector<std::pair<std::string, std::string>>& stats);

}  // namespace cachetier::bench
