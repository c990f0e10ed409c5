#include "router/topology.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <random>

#include "router/ketama.h"

namespace cachetier::router {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint64_t Node::get_hits() const {
  uint64_t t = 0;
  for (int w = 0; w < workers_; ++w) t += per_worker_[w].get_hits.load();
  return t;
}

uint64_t Node::get_misses() const {
  uint64_t t = 0;
  for (int w = 0; w < workers_; ++w) t += per_worker_[w].get_misses.load();
  return t;
}

std::string_view state_name(NodeState s) {
  switch (s) {
    case NodeState::kUp:
      return "up";
    case NodeState::kDown:
      return "down";
    case NodeState::kSyncing:
      return "syncing";
  }
  return "unknown";
}

bool Node::on_failure(uint32_t failure_limit, uint32_t retry_ms) {
  uint32_t n = failures_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < failure_limit) return false;
  NodeState expected = NodeState::kUp;
  bool marked = state_.compare_exchange_strong(expected, NodeState::kDown);
  if (!marked) {
    expected = NodeState::kSyncing;
    marked = state_.compare_exchange_strong(expected, NodeState::kDown);
  }
  if (marked) {
    backoff_ms_.store(retry_ms);
    next_probe_ms_.store(now_ms() + retry_ms);
    counters.marked_down.fetch_add(1, std::memory_order_relaxed);
  }
  return marked;
}

void Node::probe_failed(uint32_t retry_max_ms) {
  // Exponential backoff with jitter (0.5x..1.5x), capped.
  uint32_t b = backoff_ms_.load();
  uint32_t next = std::min<uint64_t>(uint64_t{b} * 2, retry_max_ms);
  backoff_ms_.store(next);
  thread_local std::mt19937 rng{std::random_device{}()};
  uint32_t wait = next / 2 + std::uniform_int_distribution<uint32_t>(0, next)(rng);
  next_probe_ms_.store(now_ms() + wait);
}

void Node::note_missed(std::string_view key, uint64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (overflowed_.load()) {
    ++overflow_misses_;
    return;
  }
  if (missed_.size() >= limit) {
    missed_.clear();
    missed_count_.store(0, std::memory_order_release);
    overflowed_.store(true);
    ++overflow_misses_;
    return;
  }
  auto [it, fresh] = missed_.try_emplace(std::string(key), 0);
  it->second = ++generation_;
  if (fresh) missed_count_.fetch_add(1, std::memory_order_release);
}

void Node::force_overflow() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!overflowed_.load()) {
    missed_.clear();
    missed_count_.store(0, std::memory_order_release);
    overflowed_.store(true);
  }
  ++overflow_misses_;
}

uint64_t Node::overflow_misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return overflow_misses_;
}

bool Node::clear_overflow_if(uint64_t misses) {
  std::lock_guard<std::mutex> lock(mu_);
  if (overflow_misses_ != misses) return false;
  overflowed_.store(false);
  return true;
}

bool Node::has_missed(std::string_view key) const {
  if (overflowed_.load(std::memory_order_relaxed)) return true;
  if (missed_count_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard<std::mutex> lock(mu_);
  return missed_.find(std::string(key)) != missed_.end();
}

std::vector<std::pair<std::string, uint64_t>> Node::take_missed(size_t max) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, uint64_t>> out;
  for (auto it = missed_.begin(); it != missed_.end() && out.size() < max; ++it) {
    out.emplace_back(it->first, it->second);
  }
  return out;
}

uint64_t Node::missed_generation(const std::string& key) const {
  if (missed_count_.load(std::memory_order_acquire) == 0) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = missed_.find(key);
  return it == missed_.end() ? 0 : it->second;
}

void Node::unmiss(const std::string& key, uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = missed_.find(key);
  if (it == missed_.end() || it->second != generation) return;
  missed_.erase(it);
  missed_count_.fetch_sub(1, std::memory_order_release);
}

int Topology::moved_from(std::string_view key, size_t shard) const {
  if (migration == nullptr || !migration->active(now_ms())) return -1;
  const Topology& from = *migration->from;
  const size_t old = from.ring.shard_for(key);
  return migration->from_names[old] == shards[shard].name ? -1 : static_cast<int>(old);
}

bool placement_changed(const Topology& topo, const RouterConfig& cfg) {
  const RouterConfig& was = topo.config;
  if (was.hash != cfg.hash || was.vnodes != cfg.vnodes) return true;
  auto placed = [](const RouterConfig& c) {
    std::vector<std::pair<std::string, uint32_t>> v;
    for (const auto& s : c.shards) v.emplace_back(s.name, s.weight);
    std::sort(v.begin(), v.end());
    return v;
  };
  return placed(was) != placed(cfg);
}

namespace {

// The share of keys whose owner's name differs between `a` and `b`, from 20,000 sample keys.
double moved_share(const Topology& a, const Topology& b) {
  const int n = 20000;
  int moved = 0;
  for (int i = 0; i < n; ++i) {
    std::string k = "migration-sample:" + std::to_string(i);
    moved += a.shards[a.ring.shard_for(k)].name != b.shards[b.ring.shard_for(k)].name;
  }
  return double(moved) / n;
}

// The migration of `next` (built from `cfg`) away from `previous`, if any.
std::shared_ptr<const Migration> migration_for(const RouterConfig& cfg, const Topology& next,
                                               const std::shared_ptr<const Topology>& previous) {
  if (previous == nullptr) return nullptr;
  const int64_t now = now_ms();
  const Migration* under_way = previous->migration != nullptr && previous->migration->active(now)
                                   ? previous->migration.get()
                                   : nullptr;
  if (!placement_changed(*previous, cfg)) {
    if (under_way == nullptr) return nullptr;
    auto m = std::make_shared<Migration>(*under_way);  // same window, same counters
    m->moved_share = moved_share(*m->from, next);
    return m;
  }
  if (cfg.migration_ms == 0) return nullptr;
  // A change during a window starts a new one, from the placement in use: keys that had not
  // been read since the change before are not looked for on their owner before that.
  auto from = std::make_shared<Topology>(*previous);
  from->migration = nullptr;
  auto m = std::make_shared<Migration>();
  m->until_ms = now + cfg.migration_ms;
  for (const Shard& s : from->shards) m->from_names.push_back(s.name);
  m->counters = next.migration_counters;
  m->from = std::move(from);
  m->moved_share = moved_share(*m->from, next);
  return m;
}

}  // namespace

Result<std::shared_ptr<const Topology>> build_topology(
    const RouterConfig& cfg, const std::shared_ptr<const Topology>& previous) {
  auto ring = cfg.hash == HashKind::kKetamaMd5 ? ketama_ring(cfg.shards)
                                               : client::Ring::create(cfg.shards, cfg.vnodes);
  if (!ring.is_ok()) return ring.status();
  std::map<std::string, std::shared_ptr<Node>> old_nodes;
  std::map<std::string, std::shared_ptr<ShardCounters>> old_counters;
  if (previous != nullptr) {
    for (const auto& s : previous->shards) {
      old_counters[s.name] = s.counters;
      for (const auto& n : s.replicas) old_nodes[n->addr()] = n;
    }
  }
  auto topo =
      std::make_shared<Topology>(Topology{cfg, std::move(ring.value()), {}, 0, nullptr, nullptr});
  topo->generation = previous != nullptr ? previous->generation + 1 : 1;
  for (const auto& spec : cfg.shards) {
    Shard s;
    s.name = spec.name;
    auto oc = old_counters.find(spec.name);
    s.counters = oc != old_counters.end() ? oc->second : std::make_shared<ShardCounters>();
    for (const auto& addr : spec.replicas) {
      auto on = old_nodes.find(addr);
      if (on != old_nodes.end()) {
        s.replicas.push_back(on->second);
        continue;
      }
      std::string host;
      int port = 0;
      if (!split_host_port(addr, host, port)) {
        return Status(StatusCode::kInvalidArgument, "bad node address " + addr);
      }
      auto node = std::make_shared<Node>(addr, host, port, cfg.threads);
      if (previous == nullptr) {
        // A router that starts trusts no node it has not verified: each serves reads once the
        // health checker found no hint that it missed a write (docs/consistency.md).
        node->set_state(NodeState::kSyncing);
      } else {
        // A replica added to a running tier starts empty: warm it from its siblings (the
        // hint poll still checks it, as every node in service).
        node->start_warmup(now_ms() + cfg.warmup_ms);
      }
      s.replicas.push_back(std::move(node));
    }
    topo->shards.push_back(std::move(s));
  }
  topo->migration_counters =
      previous != nullptr ? previous->migration_counters : std::make_shared<MigrationCounters>();
  topo->migration = migration_for(cfg, *topo, previous);
  return std::shared_ptr<const Topology>(std::move(topo));
}

VersionClock::VersionClock() {
  std::random_device rd;
  id_ = rd() & 0xff;
}

uint64_t VersionClock::next() {
  uint64_t wall = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  uint64_t candidate = (wall << 20) | id_;
  uint64_t prev = last_.load(std::memory_order_relaxed);
  while (true) {
    // Same or earlier millisecond: bump the counter bits (8..19) above the last version.
    uint64_t v = candidate > prev ? candidate : (((prev >> 8) + 1) << 8) | id_;
    if (last_.compare_exchange_weak(prev, v, std::memory_order_relaxed)) return v;
  }
}

}  // namespace cachetier::router
