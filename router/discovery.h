// Service discovery by DNS: a shard's `discover:` names (a Kubernetes headless Service,
// `cache-s0.cache.ns.svc.cluster.local:11211`) expand to one replica per address they resolve
// to. The router expands them at start and on every reload, and again every dns_refresh_ms on
// a thread of its own (getaddrinfo blocks; never a worker's loop); a changed set is applied
// as a reload: nodes are kept by address (state, missed keys), an added address starts as a
// cold replica that warms from its siblings, a removed one leaves the shard.
//
// A name that fails to resolve keeps the addresses it had (a DNS outage does not empty a
// shard); the failure is counted. Addresses are sorted, so the same set keeps the same order
// (the first replica is the shard's primary for cas and mg).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "router/config.h"

namespace cachetier::router {

class Discovery {
 public:
  static bool wanted(const RouterConfig& c);

  // `file` (as parsed) with each shard's discovered addresses after its listed replicas
  // (duplicates dropped, at most 16 replicas in all). `errors` gets one line per name that did
  // not resolve; `failures` counts them. Not thread-safe (one caller at a time).
  RouterConfig expand(const RouterConfig& file, std::vector<std::string>& errors);

  // The replica lists of two configs are the same, shard by shard.
  static bool same_replicas(const RouterConfig& a, const RouterConfig& b);

  uint64_t failures = 0;

 private:
  std::map<std::string, std::vector<std::string>> last_;  // name -> addresses, last success
};

}  // namespace cachetier::router
