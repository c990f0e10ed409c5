// DnsRefresh: follows the discover names of ClientOptions::shards on a libuv loop. Every
// dns_refresh_ms it resolves them on libuv's thread pool (getaddrinfo blocks) and, for each
// shard whose replica list changed, calls `apply` on the loop. A name that stops resolving
// keeps the addresses it last gave. Internal to client/.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cachetier/client.h"
#include "client/facade.h"
#include "client/ring/ring.h"

namespace cachetier::client {

class DnsRefresh : public std::enable_shared_from_this<DnsRefresh> {
 public:
  // shard: its index in the ring; replicas: the new list (listed ones, then discovered).
  using Apply = std::function<void(size_t shard, const std::vector<std::string>& replicas)>;

  // On the loop's thread. Null when no shard has discover names or dns_refresh_ms is 0.
  // `resolved`: what the names gave at create (ring_from_options).
  static std::shared_ptr<DnsRefresh> start(uv_loop_t* loop, const ClientOptions& options,
                                           const Ring& ring, Resolved resolved, Apply apply);
  // On the loop's thread: `apply` is not called again; the timer closes, and a lookup under
  // way finishes on the pool and is dropped.
  void stop();

  DnsRefresh(uv_loop_t* loop, Apply apply) : loop_(loop), apply_(std::move(apply)) {}

 private:
  struct Lookup;  // one round on the thread pool
  void tick();
  void done(Lookup& l);

  uv_loop_t* loop_;
  Apply apply_;
  std::vector<std::pair<size_t, ShardOptions>> shards_;  // (ring index, options) with discover
  Resolved last_;
  uv_timer_t timer_{};
  std::shared_ptr<DnsRefresh> self_;  // kept until the timer has closed
  bool busy_ = false, stopped_ = false;
};

}  // namespace cachetier::client
