// Listening sockets for cacheserver and cacherouter: the address is resolved with getaddrinfo
// (IPv4, IPv6 or a name such as localhost), SO_REUSEADDR is set, and SO_REUSEPORT when asked
// (cacherouter gives each worker its own socket on one port). Plain POSIX; no libuv.
#pragma once

#include <string>

#include "common/status.h"

namespace cachetier::net {

struct ListenOptions {
  bool reuse_port = false;
  int backlog = 1024;
};

// A non-blocking, close-on-exec listening socket on host:port (port 0: the kernel picks one).
// Errors name the address: "cannot listen on 10.0.0.1:11211: Cannot assign requested address".
Result<int> listen_socket(const std::string& host, int port, const ListenOptions& options = {});

// The port a bound socket got.
int bound_port(int fd);

}  // namespace cachetier::net
