// <cachetier/client.h>: the public C++ client of a cachetier tier.
//
// cachetier::Client is synchronous and thread-safe. It hashes each key onto a ring of named
// shards (the same ring the router uses), each shard a replica set: reads go to one replica
// and fail over to the next on an error or timeout, within the request's deadline; writes and
// deletes go to every replica. Cache outcomes are values, never exceptions: a miss is an
// empty optional, a failed add is `false`; a Status error means the tier could not answer.
//
//   cachetier::ClientOptions opts;
//   opts.servers = {"127.0.0.1:11211", "127.0.0.1:11212"};   // one shard per server
//   auto client = cachetier::Client::create(opts);
//   if (!client.is_ok()) { ...client.status().message()... }
//   client.value()->set("greeting", "hello", /*ttl_seconds=*/60);
//   auto hit = client.value()->get("greeting");   // Result<std::optional<Item>>
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct uv_loop_s;  // libuv's uv_loop_t

namespace cachetier {

struct ShardOptions {
  std::string name;  // placement hashes names, not addresses
  uint32_t weight = 1;
  std::vector<std::string> replicas;  // "host:port"
  // "host:port" names (a Kubernetes headless Service): every address each resolves to is a
  // replica, after `replicas`, sorted. create() fails if one does not resolve; after that they
  // are re-resolved every ClientOptions::dns_refresh_ms, as cacherouter does (see there).
  std::vector<std::string> discover;
};

// Which replica a read tries first: the first listed, each in turn, or the one with the fewest
// requests outstanding from this client (ties in turn). The others follow on failure.
enum class ReadPolicy { kPrimary, kRoundRobin, kLeastOutstanding };

// kNative: the msgpack protocol (pipelined, versions). kMemcache: text + meta commands, so the
// library also works against stock memcached.
enum class Protocol { kNative, kMemcache };

struct ClientOptions {
  // Either servers (each its own single-replica shard, named by its address) or shards.
  std::vector<std::string> servers;
  std::vector<ShardOptions> shards;
  uint32_t timeout_ms = 250;  // per request, including failover to other replicas
  // ShardOptions::discover names are resolved again this often (0: only at create), in the
  // background. A changed set of addresses is applied to the shard while requests go on: the
  // connections of addresses that stay are kept; a removed address's connections close (a
  // read under way there fails over); an added address is warming for warmup_ms, that is,
  // writes reach it at once and reads try it only after the warm replicas (and after those
  // that started warming before it). A name that stops
  // resolving keeps the addresses it last gave. Placement hashes shard names, so a change
  // moves no key to another shard.
  uint32_t dns_refresh_ms = 5000;
  uint32_t warmup_ms = 60000;
  ReadPolicy read_policy = ReadPolicy::kPrimary;
  Protocol protocol = Protocol::kNative;
  size_t max_in_flight = 16384;  // per node connection
  size_t pool_size = 1;          // connections per node, used in turn
  // TLS to every node (cacheserver -Z, memcached -Z, cacherouter's tls:). The node's
  // certificate is checked against tls_ca_file (empty: the system's CAs) and its name against
  // tls_server_name (empty: the host of each address; an IP address is checked as one), unless
  // tls_verify is false. tls_cert_file/tls_key_file: a client certificate (mutual TLS).
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;  // empty: in tls_cert_file
  std::string tls_server_name;
  bool tls_verify = true;
  // Credentials for servers with -Y (or a router with auth_file), sent first on every
  // connection: in the native HELLO, or as memcached's `set` of "user password" over text.
  std::string auth_user, auth_password;
};

struct Item {
  std::string value;
  uint32_t flags = 0;
  uint64_t cas = 0;
};

class Client {
 public:
  // Validates the options and starts connecting (in the background).
  static Result<std::unique_ptr<Client>> create(const ClientOptions& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result<std::optional<Item>> get(std::string_view key);
  Result<std::optional<Item>> gets(std::string_view key);  // same as get: cas is always filled
  Status set(std::string_view key, std::string_view value, int64_t ttl_seconds = 0,
             uint32_t flags = 0);
  Result<bool> add(std::string_view key, std::string_view value, int64_t ttl_seconds = 0,
                   uint32_t flags = 0);  // false: the key exists
  Result<bool> replace(std::string_view key, std::string_view value, int64_t ttl_seconds = 0,
                       uint32_t flags = 0);  // false: the key does not exist
  // false: the item changed since `cas` was read, or is gone.
  Result<bool> cas(std::string_view key, std::string_view value, uint64_t cas,
                   int64_t ttl_seconds = 0, uint32_t flags = 0);
  Result<bool> del(std::string_view key);  // false: there was nothing to delete
  Result<std::optional<uint64_t>> incr(std::string_view key, uint64_t delta = 1);
  Result<std::optional<uint64_t>> decr(std::string_view key, uint64_t delta = 1);
  Result<bool> touch(std::string_view key, int64_t ttl_seconds);
  // Hits only; keys are split by shard and fetched in parallel, one multi_get per shard (over
  // memcache text, one `gets k1 k2 ...` per shard). An error from any shard fails the call.
  Result<std::map<std::string, Item>> get_multi(const std::vector<std::string>& keys);
  // One multi_set per shard, sent to every replica, all in parallel (over memcache text, one
  // set per item, pipelined). OK when every item was stored.
  Status set_multi(const std::map<std::string, std::string>& items, int64_t ttl_seconds = 0);

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// cachetier::AsyncClient: the same tier access on the caller's libuv loop, with callbacks.
// Create it, call it and destroy it on the loop's thread; callbacks run on that thread, once
// per call. Reads fail over across replicas as with Client (a replica that fails fast, e.g. a
// refused connection, leaves time for the next; one that hangs uses up the deadline). Writes
// go to every replica; the callback runs when all have answered or failed. Destroying the
// client fails what is pending (callbacks run with an error) and closes its connections.
class AsyncClient {
 public:
  using ItemCallback = std::function<void(Result<std::optional<Item>>)>;
  using StatusCallback = std::function<void(Status)>;
  using BoolCallback = std::function<void(Result<bool>)>;
  using CounterCallback = std::function<void(Result<std::optional<uint64_t>>)>;
  using MultiCallback = std::function<void(Result<std::map<std::string, Item>>)>;

  static Result<std::unique_ptr<AsyncClient>> create(uv_loop_s* loop, const ClientOptions& options);
  ~AsyncClient();
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  void get(std::string_view key, ItemCallback done);
  void gets(std::string_view key, ItemCallback done);  // same as get: cas is always filled
  void set(std::string_view key, std::string_view value, int64_t ttl_seconds, uint32_t flags,
           StatusCallback done);
  void add(std::string_view key, std::string_view value, int64_t ttl_seconds, uint32_t flags,
           BoolCallback done);
  void replace(std::string_view key, std::string_view value, int64_t ttl_seconds, uint32_t flags,
               BoolCallback done);
  void del(std::string_view key, BoolCallback done);
  void incr(std::string_view key, uint64_t delta, CounterCallback done);
  void decr(std::string_view key, uint64_t delta, CounterCallback done);
  void touch(std::string_view key, int64_t ttl_seconds, BoolCallback done);
  // false: the item changed since `cas` was read, or is gone.
  void cas(std::string_view key, std::string_view value, uint64_t cas, int64_t ttl_seconds,
           uint32_t flags, BoolCallback done);
  // As Client::get_multi and Client::set_multi; the callback runs once, when every shard has
  // answered or failed.
  void get_multi(const std::vector<std::string>& keys, MultiCallback done);
  void set_multi(const std::map<std::string, std::string>& items, int64_t ttl_seconds,
                 StatusCallback done);

  struct Impl;

 private:
  explicit AsyncClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachetier
