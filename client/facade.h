// What the two facades (Client, AsyncClient) share: option validation, connection setup on a
// loop, and turning a native Reply into the public Result types. Internal to client/.
#pragma once

#include <uv.h>

#include <atomic>
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

// Validates `options` and builds the ring (errors: no servers, a bad address, an empty shard,
// a discover name that does not resolve; discover names are resolved here, blocking).
Result<std::unique_ptr<Ring>> ring_from_options(const ClientOptions& options);
// The TLS context of `options` (null when tls is off); errors name the file and the reason.
Result<std::shared_ptr<net::TlsContext>> tls_from_options(const ClientOptions& options);

// The connections to one node (pool_size of them), used in turn. pick() is thread-safe; the
// Connections themselves are used on their loop's thread only.
struct NodePool {
  std::vector<Connection*> conns;
  std::atomic<size_t> next{0};
  std::atomic<int64_t> outstanding{0};  // requests sent through this pool, not yet answered
  Connection* pick() { return conns[next.fetch_add(1, std::memory_order_relaxed) % conns.size()]; }
  void close_all() {
    for (Connection* c : conns) c->close();
  }
};
// [shard][replica]
using Pools = std::vector<std::vector<std::unique_ptr<NodePool>>>;

// The replica a read tries first: 0 (primary), the next in turn (round robin), or the one with
// the fewest requests outstanding (ties in turn). `rr` is the caller's round-robin counter.
size_t first_replica(const std::vector<std::unique_ptr<NodePool>>& replicas, ReadPolicy policy,
                     uint64_t rr);

// Creates pool_size Connections per replica of every shard, on `loop` (call on the loop's
// thread).
Pools connect_all(uv_loop_t* loop, const Ring& ring, const ClientOptions& options,
                  const std::shared_ptr<net::TlsContext>& tls);

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
