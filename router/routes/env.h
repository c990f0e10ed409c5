// What the routes work with, one per worker thread: the backends to send on, the version
// clock, the round-robin cursor and spare request contexts. Routes are protocol-neutral: they
// take a client::Call and answer a client::Reply, and never format bytes; the front ends turn
// requests into calls and replies into bytes (router/frontends).
//
// Every route's `done` runs exactly once, on the worker's thread, possibly before the route
// function returns (when no replica can be tried).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "client/connection.h"
#include "common/free_list.h"
#include "router/backends.h"
#include "router/topology.h"

namespace cachetier::router {

using client::Call;
using client::Reply;
using Done = std::function<void(Reply&&)>;

inline constexpr size_t kMaxReplicas = 16;  // per shard (the config check enforces it)

// A read in progress (routes/read.cc): tries replicas in `order` until one answers. Owned by
// the request: returned to the spares once `done` has run. Plain pointers keep the Connection
// callback ([env, ctx]) inside std::function's inline buffer.
struct ReadCtx {
  const Topology* topo = nullptr;
  size_t shard = 0;
  Call call;
  Done done;
  uint8_t order[kMaxReplicas];
  uint8_t n_order = 0, next = 0, current = 0;
  uint8_t cold[kMaxReplicas];  // warming replicas that missed: back-filled on a hit
  uint8_t n_cold = 0;
  std::optional<Reply> miss;  // a replica answered NOT_FOUND
  Reply last;
};

// A fan-out in progress (routes/write.cc): one leg per replica sent to; returned to the spares
// after the last leg's reply.
struct FanoutCtx;
struct FanoutLeg {
  FanoutCtx* ctx;
  uint8_t replica;
};
struct FanoutCtx {
  const Topology* topo = nullptr;
  size_t shard = 0;
  Call call;
  Done done;
  FanoutLeg legs[kMaxReplicas];
  // The answer is the reply of the first replica (in replica order) that answered, else the
  // first failure: only those two are kept.
  std::optional<Reply> first_ok, first_failure;
  uint8_t first_ok_at = kMaxReplicas, first_failure_at = kMaxReplicas;
  size_t left = 0;        // legs not answered yet
  size_t hints_left = 0;  // hint appends not answered yet (router/hints.h)
  uint32_t sent = 0;      // replicas a leg went to
  bool answered = false;
  bool write = true;            // a write (versions, missed keys) or a read of every replica
  bool router_version = false;  // the version is ours (not the client's)
  bool merge_meta = false;      // fold fetched/idle of every hit into the answer
  bool newest = false;          // answer with the newest hit (read_verify)
  uint32_t mergeable = 0;       // replicas whose item meta counts (readable at dispatch)
  bool any_fetched = false;
  uint64_t min_idle = UINT64_MAX;
};

struct RouteEnv {
  RouteEnv(BackendSet& b, VersionClock& v, int worker_index = 0)
      : backends(b), versions(v), worker(worker_index) {}
  RouteEnv(const RouteEnv&) = delete;
  RouteEnv& operator=(const RouteEnv&) = delete;

  BackendSet& backends;
  VersionClock& versions;
  const int worker;  // this worker's index (its slot in each Node's per-worker counts)
  uint64_t rr = 0;   // round-robin cursor of the read policies
  FreeList<ReadCtx> read_ctxs{4096};
  FreeList<FanoutCtx> fanout_ctxs{1024};

  // Keys with a compare-and-swap in flight on this worker, and who waits for it. A cas
  // reaches the primary's siblings only once the primary has answered, so a client's later
  // request on the key (a pipelined get or incr) must not be sent before that moment, or it
  // could read, or change, a sibling ahead of the cas's change. The client connection holds
  // such a request back (downstream.cc) until the cas is through; a flush_all, which concerns
  // every key, waits until no cas is in flight:
  //
  //   route_cas(k): cas_pending[k] = {}  ->  primary answers, siblings' changes queued
  //                 -> every waiter of k is woken (it parses its input again); k is gone
  std::unordered_map<std::string, std::vector<std::function<void()>>> cas_pending;

  // Keys with a RESP read-then-write under way (router/frontends/resp_rmw.cc): it may take
  // several cas routes (a lost race reads again), each of which releases the key's waiters;
  // those find the key still busy here and wait again, until the read-then-write is through.
  std::unordered_set<std::string> rmw_busy;

  bool any_in_flight() const { return !cas_pending.empty() || !rmw_busy.empty(); }
  bool cas_in_flight(std::string_view key) const {
    if (!any_in_flight()) return false;
    const std::string k(key);
    return cas_pending.count(k) > 0 || rmw_busy.count(k) > 0;
  }
  // `wake` runs once the cas on `key` (in flight) is through.
  void wait_for_cas(std::string_view key, std::function<void()> wake) {
    cas_pending[std::string(key)].push_back(std::move(wake));
  }
  // The cas (or RESP read-then-write, router/frontends/resp_rmw.cc) on `key` is through: the
  // requests that waited for it run now, in order (one of them may be a cas again: those
  // after it wait for that one). Nothing if none is in flight.
  void release_cas(const std::string& key) {
    auto it = cas_pending.find(key);
    if (it == cas_pending.end()) return;
    std::vector<std::function<void()>> waiting = std::move(it->second);
    cas_pending.erase(it);
    for (auto& run : waiting) run();
  }
};

}  // namespace cachetier::router
