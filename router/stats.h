// cacherouter's counters. Each worker thread counts into its own WorkerStats (one writer, no
// locked instruction on the request path); `stats` sums them when asked. Names follow
// memcached where the meaning is the same (cmd_get, get_hits, ...); both front ends count
// through the same functions below, so a command counts the same whichever protocol sent it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "client/connection.h"
#include "common/buffer.h"
#include "common/counter.h"
#include "common/metrics/histogram.h"
#include "router/topology.h"

namespace cachetier::router {

struct WorkerStats {
  Counter opened, closed, rejected;  // client connections (curr = opened - closed)
  Counter cmd_get, get_hits, get_misses;
  Counter cmd_set, cmd_touch, touch_hits, touch_misses, cmd_flush;
  Counter delete_hits, delete_misses, incr_hits, incr_misses, decr_hits, decr_misses;
  Counter cas_hits, cas_misses, cas_badval;
  Counter client_errors;    // requests answered with a protocol error
  Counter clients_paused;   // times a client was stopped for replies it did not read
  Counter clients_dropped;  // clients closed past client_output_hard
  Counter ssl_handshake_errors, ssl_new_sessions;  // client connections, with tls:
  Counter auth_errors;                             // refused client credentials
  // Client requests, read to reply ready, per front end: [0] memcache text, [1] native.
  metrics::LatencyHistogram client_latency[3];  // text, native, resp
};

// ---- accounting, shared by the front ends ----

// A key read (get, gets, gat, gats, mg, native get/gets/gat, each key of a multi-get).
inline void count_read(WorkerStats& s, bool hit) {
  s.cmd_get.add();
  (hit ? s.get_hits : s.get_misses).add();
}
// A touch (touch, and the TTL half of gat, gats and mg T).
inline void count_touch(WorkerStats& s, bool hit) {
  s.cmd_touch.add();
  (hit ? s.touch_hits : s.touch_misses).add();
}
// A store (set, add, replace, append, prepend, cas, ms, each item of a multi-set);
// `compared`: a compare-and-swap (cas, ms with C in set or replace mode).
void count_store(WorkerStats& s, bool compared, const client::Reply& r);
void count_delete(WorkerStats& s, const client::Reply& r);
void count_arith(WorkerStats& s, bool incr, const client::Reply& r);

// Router-wide values that are not per-worker counters.
struct RouterInfo {
  int64_t started_ms = 0;
  int threads = 0;
  uint64_t reloads = 0, reload_errors = 0;
  uint64_t dns_refreshes = 0, dns_changes = 0, dns_failures = 0;  // discover: names
  bool tls = false;
  int64_t tls_loaded_at = 0;  // unix seconds
};

// `field` summed over `workers`.
uint64_t total(const std::vector<const WorkerStats*>& workers, Counter WorkerStats::*field);

// The "STAT node:ADDR:field value" lines of one node (stats and stats nodes).
void write_node_stats(ByteBuffer& out, const std::string& shard, const Node& n);

// "STAT name value" lines (no END) for the sum of `workers`, then per shard and node.
void write_stats(ByteBuffer& out, const std::vector<const WorkerStats*>& workers,
                 const RouterInfo& info, const Topology& topo);

}  // namespace cachetier::router
