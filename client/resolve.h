// Name resolution for discover: names (the router's shards[].discover and the client's
// ShardOptions::discover): every address a "host:port" name resolves to, each as a replica.
#pragma once

#include <string>
#include <vector>

namespace cachetier::client {

// Every address `name` ("host:port") resolves to, as "a.b.c.d:port" / "[v6]:port", sorted and
// without duplicates (getaddrinfo, blocking: never on a loop thread). False (and `why`) when it
// does not resolve.
bool resolve_all(const std::string& name, std::vector<std::string>& out, std::string& why);

}  // namespace cachetier::client
