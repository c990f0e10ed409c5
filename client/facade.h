// What the two facades (Client, AsyncClient) share: option validation, connection setup on a
// loop, and turning a native Reply into the public Result types. Internal to client/.
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "cachetier/client.h"
#include "client/connection.h"
#include "client/ring/ring.h"

namespace cachetier::client {

// "host:port" (IPv6 as [addr]:port) -> host, port; false when malformed.
bool parse_address(const std::string& s, std::string& host, int& port);

// What each discover name resolved to: name -> addresses.
using Resolved = std::map<std::string, std::vector<std::string>>;

// Validates `options` and builds the ring (errors: no servers, a bad address, an empty shard,
// a discover name that does not resolve; discover names are resolved here, blocking, and what
// they gave is left in `resolved` when it is not null).
Result<std::unique_ptr<Ring>> ring_from_options(const ClientOptions& options,
                                                Resolved* resolved = nullptr);
// A shard's replicas: the listed ones, then every address of its discover names (from
// `resolved`), without duplicates.
std::vector<std::string> shard_replicas(const ShardOptions& shard, const Resolved& resolved);
// The TLS context of `options` (null when tls is off); errors name the file and the reason.
Result<std::shared_ptr<net::TlsContext>> tls_from_options(const ClientOptions& options);

using Clock = std::chrono::steady_clock;

// The connections to one node (pool_size of them), used in turn. pick() is thread-safe; the
// Connections themselves, and `closed`, are used on their loop's thread only. A pool is shared
// by the topology that lists it and by the requests under way on it: one that left its shard
// (a DNS change) is closed, and a request posted to it before that fails instead of sending.
struct NodePool {
  std::string address;
  std::vector<Connection*> conns;
  std::atomic<size_t> next{0};
  std::atomic<int64_t> outstanding{0};  // requests sent through this pool, not yet answered
  // Added by a DNS change: until warm_at it is warming, and reads try it after the warm
  // replicas (writes reach it at once). Set before the pool is published.
  Clock::time_point warm_at{};
  bool closed = false;
  Connection* pick() { return conns[next.fetch_add(1, std::memory_order_relaxed) % conns.size()]; }
  void close_all() {
    if (closed) return;
    closed = true;
    for (Connection* c : conns) c->close();
  }
};
using Replicas = std::vector<std::shared_ptr<NodePool>>;
// [shard][replica]
using Pools = std::vector<Replicas>;

// The order in which a read tries `replicas` (at most 64; the indexes go to `order`, the count
// is returned): the warm replicas by the read policy (as listed, in turn, or by fewest
// requests outstanding with ties in turn; `rr` is the caller's round-robin counter), then
// those still warming at `now`, the one added first (the warmest) first.
size_t read_order(const Replicas& replicas, ReadPolicy policy, uint64_t rr, Clock::time_point now,
                  uint8_t* order);
constexpr size_t kMaxReplicas = 64;

// One node's pool_size Connections, on `loop` (call on the loop's thread).
std::shared_ptr<NodePool> connect_node(uv_loop_t* loop, const std::string& address,
                                       const ClientOptions& options,
                                       const std::shared_ptr<net::TlsContext>& tls);
// A pool per replica of every shard (on the loop's thread).
Pools connect_all(uv_loop_t* loop, const Ring& ring, const ClientOptions& options,
                  const std::shared_ptr<net::TlsContext>& tls);
// Whether `replicas` are the pools of `addresses`, in that order.
bool same_addresses(const Replicas& replicas, const std::vector<std::string>& addresses);
// A shard's pools for the replica list `next`: the pools of `old` with the same address are
// kept (connections, counters and warmth), the others are new and warming until `warm_at`;
// the pools of `old` left out are closed. On the loop's thread.
Replicas repool(uv_loop_t* loop, const Replicas& old, const std::vector<std::string>& next,
                const ClientOptions& options, const std::shared_ptr<net::TlsContext>& tls,
                Clock::time_point warm_at);

// A Status for a request the tier could not answer as expected.
Status tier_error(const Reply& r);
Result<std::optional<Item>> item_result(Reply&& r);
// OK -> true; `no` (NOT_STORED, NOT_FOUND, ...) -> false; anything else is an error.
Result<bool> bool_result(const Reply& r, native::Status no);
Result<std::optional<uint64_t>> counter_result(const Reply& r);

Call store_call(native::Op op, std::string_view key, std::string_view value, int64_t ttl,
                uint32_t flags);
Call key_call(native::Op op, std::string_view key);

// Multi-key calls, one per shard: the shard -> call map, in shard order.
std::map<size_t, Call> multi_get_calls(const Ring& ring, const std::vector<std::string>& keys);
std::map<size_t, Call> multi_set_calls(const Ring& ring,
                                       const std::map<std::string, std::string>& items,
                                       int64_t ttl);
// Adds the hits of one shard's multi_get reply to `out`.
Status add_hits(Reply&& r, const Call& call, std::map<std::string, Item>& out);
// OK when every item of one shard's multi_set was stored.
Status multi_set_status(const Reply& r, const Call& call);

}  // namespace cachetier::client
