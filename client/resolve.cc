// Name resolution for discover: names. See resolve.h.
#include "client/resolve.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <set>

#include "client/facade.h"

namespace cachetier::client {

bool resolve_all(const std::string& name, std::vector<std::string>& out, std::string& why) {
  std::string host;
  int port = 0;
  if (!parse_address(name, host, port)) {
    why = "is not host:port";
    return false;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    why = std::string("does not resolve: ") + gai_strerror(rc);
    return false;
  }
  std::set<std::string> seen;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (ai->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, text,
                sizeof(text));
      seen.insert(std::string(text) + ":" + std::to_string(port));
    } else if (ai->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, text,
                sizeof(text));
      seen.insert("[" + std::string(text) + "]:" + std::to_string(port));
    }
  }
  freeaddrinfo(res);
  out.assign(seen.begin(), seen.end());  // sorted: the same set gives the same order
  if (out.empty()) {
    why = "resolves to no address";
    return false;
  }
  return true;
}

}  // namespace cachetier::client
