// The memcache text front end (classic and meta commands): a decoded request becomes calls on
// the routes; the routes' protocol-neutral replies become memcache text, laid out by
// protocol/memcache (write_value, the meta writer), so that replies through the router match
// a single memcached byte for byte (tests/integration/test_differential.py).
//
// Which route serves what (docs/operations.md, "Routing"):
//   get/gets (one key)       read route: one replica by the read policy, failover
//   get/gets (several keys)  multi-get route: split by shard, merged in request order
//   gat/gats, touch          write route (the new TTL goes to every replica)
//   set/add/replace/append/prepend, delete, incr/decr       write route (versioned)
//   cas                      cas route: compare on the primary, then the siblings
//   flush_all                broadcast
//   mg                       the shard's primary (leases and item meta have one authoritative
//                            copy); with h or l every replica (merged), with N or T a write
//   ms, md, ma               as their classic commands; with C the cas route
#pragma once

#include "protocol/memcache/request.h"
#include "router/downstream.h"

namespace cachetier::router {

void handle_text(Downstream& d, const memcache::Request& req, Fill fill);

// Meta commands (frontends/text_meta.cc).
void handle_meta(Downstream& d, const memcache::Request& req, Fill fill);

// "SERVER_ERROR <why>\r\n" for a call that failed in transport, or got an unexpected status.
std::string server_error_line(const client::Reply& r);

}  // namespace cachetier::router
