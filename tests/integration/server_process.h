// ServerProcess: starts the real cacheserver (CACHESERVER_BIN) on an ephemeral loopback port
// for C++ integration tests, reads the port from its first stdout line, and stops it by pid.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace cachetier::testing {

// fork + exec, with the child killed if the test process dies first (a crashed test must not
// leave servers behind holding ctest's output pipe open, which would hang the run).
// stdout_fd >= 0 becomes the child's stdout; close_fd is closed in the child.
inline pid_t spawn_child(const char* file, std::vector<char*>& argv, int stdout_fd = -1,
                         int close_fd = -1) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;  // parent (or -1)
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);  // the parent is already gone
  if (stdout_fd >= 0) dup2(stdout_fd, 1);
  if (close_fd >= 0) close(close_fd);
  execvp(file, argv.data());
  _exit(127);
}

class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> args = {}) { start(std::move(args)); }
  // On `host` (a loopback address) and `port` (0: ephemeral).
  ServerProcess(std::vector<std::string> args, int port, const std::string& host) {
    start(std::move(args), port, host);
  }
  ~ServerProcess() { stop(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts with "-l HOST -p PORT" (0 = ephemeral) followed by `args`.
  void start(std::vector<std::string> args, int port = 0, const std::string& host = "127.0.0.1") {
    const char* bin = std::getenv("CACHESERVER_BIN");
    if (bin == nullptr) throw std::runtime_error("CACHESERVER_BIN is not set");
    std::vector<std::string> argv = {bin, "-l", host, "-p", std::to_string(port)};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_ = spawn_child(bin, cargv, fds[1], fds[0]);
    if (pid_ < 0) throw std::runtime_error("cannot start cacheserver");
    close(fds[1]);
    std::string line;
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    close(fds[0]);
    auto at = line.find("listening on ");
    auto colon = line.find(':', at == std::string::npos ? 0 : at);
    if (at == std::string::npos || colon == std::string::npos) {
      throw std::runtime_error("cacheserver did not start: " + line);
    }
    port_ = std::stoi(line.substr(colon + 1));
  }

  // SIGTERM and wait; returns the exit status (or -1 if not running).
  int stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // SIGSTOP, returning only once every thread has stopped: kill() returns
  // before the stop takes effect, and a running worker could still answer.
  void pause() {
    ::kill(pid_, SIGSTOP);
    int status = 0;
    while (waitpid(pid_, &status, WUNTRACED) == pid_ && !WIFSTOPPED(status)) {
    }
  }
  void resume() {
    ::kill(pid_, SIGCONT);
    int status = 0;
    while (waitpid(pid_, &status, WCONTINUED) == pid_ && !WIFCONTINUED(status)) {
    }
  }
  void kill9() {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// RouterProcess: cacherouter (CACHEROUTER_BIN) with the given YAML config, on an ephemeral
// loopback port (the config's listen port is overridden with -p 0).
class RouterProcess {
 public:
  explicit RouterProcess(const std::string& yaml) {
    const char* bin = std::getenv("CACHEROUTER_BIN");
#ifdef CACHEROUTER_BUILT_BIN
    if (bin == nullptr) bin = CACHEROUTER_BUILT_BIN;
#endif
    if (bin == nullptr) throw std::runtime_error("CACHEROUTER_BIN is not set");
    char path[] = "/tmp/cacherouter-test-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) throw std::runtime_error("mkstemp");
    if (write(fd, yaml.data(), yaml.size()) != static_cast<ssize_t>(yaml.size())) {
      throw std::runtime_error("write config");
    }
    ::close(fd);
    config_ = path;
    std::vector<std::string> argv = {bin, "-c", config_, "-p", "0"};
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_ = spawn_child(bin, cargv, fds[1], fds[0]);
    close(fds[1]);
    std::string line;
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    close(fds[0]);
    auto colon = line.rfind(':');
    if (line.find("listening on") == std::string::npos || colon == std::string::npos) {
      throw std::runtime_error("cacherouter did not start: " + line);
    }
    port_ = std::stoi(line.substr(colon + 1));
  }
  ~RouterProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    unlink(config_.c_str());
  }
  RouterProcess(const RouterProcess&) = delete;
  RouterProcess& operator=(const RouterProcess&) = delete;
  int port() const { return port_; }

 private:
  std::string config_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// MemcachedProcess: stock memcached (Debian package) on a free loopback port. memcached cannot
// report an ephemeral port, so one is picked by binding port 0 first (a small race that a
// retry covers).
class MemcachedProcess {
 public:
  MemcachedProcess() {
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) try_start();
    if (pid_ <= 0) throw std::runtime_error("cannot start memcached");
  }
  ~MemcachedProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }

 private:
  void try_start() {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::close(s);
    std::vector<std::string> argv = {
        "memcached", "-p", std::to_string(port_), "-U", "0", "-l", "127.0.0.1", "-t", "1"};
    if (getuid() == 0) {
      argv.push_back("-u");
      argv.push_back("root");
    }
    std::vector<char*> cargv;
    for (auto& x : argv) cargv.push_back(x.data());
    cargv.push_back(nullptr);
    pid_ = spawn_child("memcached", cargv);
    if (pid_ < 0) return;
    for (int i = 0; i < 100; ++i) {  // wait until it accepts
      int c = socket(AF_INET, SOCK_STREAM, 0);
      bool up = connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
      ::close(c);
      if (up) return;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) break;  // it died (port taken)
      usleep(20000);
    }
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace cachetier::testing
