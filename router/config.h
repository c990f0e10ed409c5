// cacherouter's configuration: the YAML file of docs/operations.md, parsed with yaml-cpp and
// checked whole before anything starts. Errors name the file, the line and the field.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cachetier/client.h"
#include "client/connection.h"
#include "client/resolve.h"
#include "client/ring/ring.h"
#include "common/net/tls.h"
#include "common/status.h"

namespace cachetier::router {

enum class HashKind { kXxh3, kKetamaMd5 };
using cachetier::ReadPolicy;  // the client library's: the policies mean the same in both
enum class WritePolicy { kAllSync, kAllAsync };
enum class AllDown { kMiss, kError };

struct RouterConfig {
  std::string listen_host = "127.0.0.1";
  int listen_port = 22121;
  int threads = 2;
  HashKind hash = HashKind::kXxh3;
  uint32_t vnodes = client::Ring::kDefaultVnodes;
  uint32_t timeout_ms = 250;   // per backend request
  uint32_t failure_limit = 3;  // consecutive failures before a node is marked down
  uint32_t retry_ms = 500;     // first probe of a down node; doubles up to retry_max_ms
  uint32_t retry_max_ms = 5000;
  uint32_t warmup_ms = 60000;  // after a node returns, its misses are retried on a sibling
  // After a change of placement (a shard added or removed, a weight): for this long a key whose
  // owner changed is read from its new and its previous owner (routes/migrate.h). 0: off.
  uint32_t migration_ms = 300000;
  ReadPolicy read_policy = ReadPolicy::kRoundRobin;
  WritePolicy write_policy = WritePolicy::kAllSync;
  client::Protocol backend_protocol = client::Protocol::kNative;
  AllDown all_down = AllDown::kMiss;
  uint32_t idle_polls = 4;             // extra loop polls before a worker blocks (as cacheserver)
  uint32_t max_connections = 4096;     // client connections
  uint64_t max_value = 1 << 20;        // largest value accepted from clients
  uint64_t max_missed_keys = 1 << 20;  // per node; beyond it the node is emptied and warmed
  // Liveness and resync (docs/consistency.md); 0 in the file = derived from timeout_ms.
  uint32_t probe_ms = 0;        // a node not heard from this long gets a probe (timeout_ms / 5)
  uint32_t suspect_ms = 0;      // a probe unanswered this long: reads avoid the node (2/5)
  uint32_t settle_ms = 0;       // after a node returns: every router that can reach it writes to
                                // it again before it is trusted (1.5 retry_max_ms + 2 timeout_ms:
                                // the longest probe backoff, with its jitter, and a round trip)
  uint32_t hint_poll_ms = 100;  // how often the hint lists of nodes in service are read
  // Single-key gets read every readable replica and answer with the newest version: no stale
  // read even in a partial partition, at the cost of a read per replica (native only).
  bool read_verify = false;
  // Per client connection (downstream.h): not read while this many requests are unanswered,
  // or while this many reply bytes wait for it to read them; closed past the hard bound.
  uint32_t client_max_in_flight = 64;
  uint64_t client_output_soft = 4u << 20;
  uint64_t client_output_hard = 64u << 20;
  // TLS (docs/security.md). tls: the router's listener (cert, key; ca and verify_clients for
  // client certificates). backend_tls: its connections to the nodes (ca, verify, server_name;
  // cert and key for mutual TLS). On or off for the life of the process; the files are read
  // again on SIGHUP.
  bool tls = false;
  net::TlsOptions tls_options;
  uint32_t tls_handshake_timeout_ms = 10000;
  bool backend_tls = false;
  net::TlsOptions backend_tls_options;
  // auth_file: clients authenticate (memcached's ASCII auth, or HELLO credentials); read again
  // on SIGHUP. backend_auth: the router's own credentials for nodes with -Y.
  std::string auth_file;
  std::string backend_user, backend_password;
  // admin_users: with auth_file, the users allowed admin commands (drain, undrain, route, stats
  // nodes / shards; router/admin.h). Empty: every authenticated user.
  std::vector<std::string> admin_users;
  bool flush_enabled = true;  // disable_flush_all: true refuses flush_all (as memcached -F)
  // metrics_listen: Prometheus's GET /metrics on this host:port (port 0 = ephemeral); empty:
  // off. Fixed for the life of the process, like listen.
  std::string metrics_host;
  int metrics_port = -1;
  std::vector<client::ShardSpec> shards;
  // shards[i].discover: names ("host:port") whose every address is a replica of shard i (a
  // Kubernetes headless Service), re-resolved every dns_refresh_ms (0: only at start and on
  // reload); a change is applied as a reload (router/discovery.h). Parallel to `shards`.
  std::vector<std::vector<std::string>> discover;
  uint32_t dns_refresh_ms = 5000;
};

// The health checker's period: 20 ms, finer for short timeouts (a tenth of timeout_ms).
inline uint32_t health_tick_ms(const RouterConfig& c) {
  return c.timeout_ms >= 200 ? 20 : std::max<uint32_t>(1, c.timeout_ms / 10);
}

// Parses and validates. Errors: "router.yaml:12: shards[1].replicas[0]: not host:port".
Result<RouterConfig> load_config(const std::string& path);
Result<RouterConfig> parse_config(const std::string& text, const std::string& name);

// Every replica's host resolves (getaddrinfo, blocking: for --check-config and start-up, never
// on a loop thread). The error names each one that does not: "shards[0].replicas[1]:
// 'x:11211' does not resolve: Name or service not known".
Status check_names_resolve(const RouterConfig& cfg);

// The TLS contexts of `cfg` (tls: and backend_tls:), built from their files into `listen` and
// `backend` (left alone where TLS is off). The error names the block and the file.
Status load_tls(const RouterConfig& cfg, net::TlsReloadable& listen, net::TlsReloadable& backend);

// "host:port" -> host, port. False when malformed.
bool split_host_port(const std::string& addr, std::string& host, int& port);

}  // namespace cachetier::router
