// The trace simulator (sim.h): one object table indexed by key id, intrusive FIFO/LRU lists
// over it, and the policies' eviction rules; Belady keeps an ordered set by next read.
#include "bench/trace/sim.h"

#include <deque>
#include <limits>
#include <set>
#include <unordered_map>
#include <utility>

namespace cachetier::bench::trace {

Result<Trace> load_trace(Reader& reader) {
  Trace t;
  std::unordered_map<std::string, uint32_t> ids;
  Record r;
  while (reader.next(r)) {
    Trace::Request q{};
    q.op = r.op;
    q.time_s = static_cast<uint32_t>(r.time_ms / 1000);
    if (r.op == Op::kPhase) {
      q.id = static_cast<uint32_t>(t.phases.size());
      t.phases.push_back(r.key);
    } else {
      auto [it, fresh] = ids.try_emplace(r.key, static_cast<uint32_t>(t.key_len.size()));
      if (fresh) t.key_len.push_back(static_cast<uint8_t>(r.key.size()));
      q.id = it->second;
      q.size = r.size;
      q.ttl = r.ttl;
    }
    t.requests.push_back(q);
  }
  if (!reader.error().empty()) return Status(StatusCode::kInvalidArgument, reader.error());
  return t;
}

const char* policy_name(Policy p) {
  switch (p) {
    case Policy::kLru:
      return "lru";
    case Policy::kFifo:
      return "fifo";
    case Policy::kClock:
      return "clock";
    case Policy::kSieve:
      return "sieve";
    case Policy::kS3Fifo:
      return "s3fifo";
    case Policy::kOpt:
      return "opt";
  }
  return "?";
}

bool parse_policy(std::string_view name, Policy& p) {
  for (Policy q : {Policy::kLru, Policy::kFifo, Policy::kClock, Policy::kSieve, Policy::kS3Fifo,
                   Policy::kOpt}) {
    if (name == policy_name(q)) {
      p = q;
      return true;
    }
  }
  return false;
}

namespace {

constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

enum Queue : uint8_t { kAbsent = 0, kMain = 1, kSmall = 2 };

struct Node {
  uint32_t newer = kNil, older = kNil;
  uint32_t cost = 0;
  uint32_t expiry = 0;  // trace seconds; 0 never
  uint8_t queue = kAbsent;
  uint8_t freq = 0;  // clock/sieve: the reference bit; s3fifo: 0-3
};

struct List {
  uint32_t head = kNil, tail = kNil;  // head: newest
  uint64_t bytes = 0;
};

class Sim {
 public:
  Sim(const Trace& t, Policy p, const SimConfig& c)
      : t_(t),
        policy_(p),
        budget_(c.budget),
        nodes_(t.keys()),
        small_cap_(static_cast<uint64_t>(double(c.budget) * c.small_ratio)),
        move_threshold_(c.move_threshold),
        per_object_(c.per_object),
        fill_(c.fill),
        ghost_cap_(static_cast<uint64_t>(double(c.budget - small_cap_) * c.ghost_ratio)),
        adaptive_(c.adaptive),
        step_(static_cast<uint64_t>(double(c.budget) * c.adapt_step)),
        small_min_(static_cast<uint64_t>(double(c.budget) * c.small_min)),
        small_max_(static_cast<uint64_t>(double(c.budget) * c.small_max)) {
    if (p == Policy::kS3Fifo) {
      ghost_mark_.assign(t.keys(), 0);
      ghost_main_.assign(t.keys(), 0);
    }
    if (p == Policy::kOpt) {
      next_.assign(t.requests.size(), kNever);
      std::vector<uint64_t> last(t.keys(), kNever);
      for (size_t i = t.requests.size(); i-- > 0;) {
        const auto& q = t.requests[i];
        if (q.op == Op::kPhase) continue;
        next_[i] = last[q.id];
        last[q.id] = i;
      }
      opt_key_.assign(t.keys(), kNever);
    }
  }

  SimResult run() {
    SimResult res;
    res.phases.push_back({t_.phases.empty() ? "all" : "start", 0, 0});
    PhaseResult* ph = &res.phases.back();
    bool begun = false;  // a request before the first marker: "start" is a phase of its own
    for (size_t i = 0; i < t_.requests.size(); ++i) {
      const auto& q = t_.requests[i];
      if (q.op != Op::kPhase) begun = true;
      switch (q.op) {
        case Op::kPhase:
          if (!begun && res.phases.size() == 1) {
            ph->name = t_.phases[q.id];
          } else {
            res.phases.push_back({t_.phases[q.id], 0, 0});
          }
          ph = &res.phases.back();
          break;
        case Op::kGet:
          ++res.gets;
          ++ph->gets;
          if (get(q, i)) {
            ++res.hits;
            ++ph->hits;
          } else if (fill_) {
            put(q, i);
          }
          break;
        case Op::kSet:
          put(q, i);
          break;
        case Op::kDelete:
          if (nodes_[q.id].queue != kAbsent) erase(q.id);
          break;
      }
      if (used_ > res.peak_bytes) res.peak_bytes = used_;
    }
    res.evictions = evictions_;
    return res;
  }

 private:
  List& list_of(const Node& n) { return n.queue == kSmall ? small_ : main_; }

  void push_head(uint32_t id, Queue q) {
    Node& n = nodes_[id];
    n.queue = q;
    List& l = list_of(n);
    n.older = l.head;
    n.newer = kNil;
    if (l.head != kNil) nodes_[l.head].newer = id;
    l.head = id;
    if (l.tail == kNil) l.tail = id;
    l.bytes += n.cost;
  }

  void unlink(uint32_t id) {
    Node& n = nodes_[id];
    List& l = list_of(n);
    if (hand_ == id) hand_ = n.newer;
    if (n.newer != kNil)
      nodes_[n.newer].older = n.older;
    else
      l.head = n.older;
    if (n.older != kNil)
      nodes_[n.older].newer = n.newer;
    else
      l.tail = n.newer;
    l.bytes -= n.cost;
    n.newer = n.older = kNil;
    n.queue = kAbsent;
  }

  void erase(uint32_t id) {
    used_ -= nodes_[id].cost;
    unlink(id);
    if (policy_ == Policy::kOpt) {
      opt_.erase({opt_key_[id], id});
      opt_key_[id] = kNever;
    }
  }

  // When the object read or written at request i is next read: never if its next request
  // writes or deletes it, or comes after it expires.
  uint64_t next_read(size_t i, uint32_t expiry) const {
    uint64_t j = next_[i];
    if (j == kNever) return kNever;
    const auto& q = t_.requests[j];
    if (q.op != Op::kGet) return kNever;
    if (expiry != 0 && q.time_s >= expiry) return kNever;
    return j;
  }

  void opt_place(uint32_t id, size_t i) {
    opt_.erase({opt_key_[id], id});
    opt_key_[id] = next_read(i, nodes_[id].expiry);
    opt_.insert({opt_key_[id], id});
  }

  bool get(const Trace::Request& q, size_t i) {
    Node& n = nodes_[q.id];
    if (n.queue == kAbsent) return false;
    if (n.expiry != 0 && n.expiry <= q.time_s) {
      erase(q.id);
      return false;
    }
    switch (policy_) {
      case Policy::kLru:
        unlink(q.id);
        push_head(q.id, kMain);
        break;
      case Policy::kFifo:
        break;
      case Policy::kClock:
      case Policy::kSieve:
        n.freq = 1;
        break;
      case Policy::kS3Fifo:
        if (n.freq < 3) ++n.freq;
        break;
      case Policy::kOpt:
        opt_place(q.id, i);
        break;
    }
    return true;
  }

  void put(const Trace::Request& q, size_t i) {
    const uint64_t cost64 = uint64_t{t_.key_len[q.id]} + q.size + per_object_;
    Node& n = nodes_[q.id];
    if (cost64 > budget_) {
      if (n.queue != kAbsent) erase(q.id);
      return;
    }
    const uint32_t cost = static_cast<uint32_t>(cost64);
    const uint32_t expiry = q.ttl == 0 ? 0 : q.time_s + q.ttl;
    if (n.queue != kAbsent) {
      // An overwrite: same place (LRU: the head), new size and expiry.
      List& l = list_of(n);
      l.bytes = l.bytes - n.cost + cost;
      used_ = used_ - n.cost + cost;
      n.cost = cost;
      n.expiry = expiry;
      if (policy_ == Policy::kLru) {
        unlink(q.id);
        push_head(q.id, kMain);
      } else if (policy_ == Policy::kOpt) {
        opt_place(q.id, i);
      }
    } else {
      n.cost = cost;
      n.expiry = expiry;
      n.freq = 0;
      used_ += cost;
      Queue where = kMain;
      if (policy_ == Policy::kS3Fifo) {
        where = kSmall;
        if (ghost_mark_[q.id] != 0) {
          ghost_mark_[q.id] = 0;
          where = kMain;
          if (adaptive_) {
            if (ghost_main_[q.id] != 0) {  // main was too small
              small_cap_ = small_cap_ > small_min_ + step_ ? small_cap_ - step_ : small_min_;
            } else {  // small was
              small_cap_ = std::min(small_max_, small_cap_ + step_);
            }
          }
        }
      }
      push_head(q.id, where);
      if (policy_ == Policy::kOpt) opt_place(q.id, i);
    }
    while (used_ > budget_) evict();
  }

  void evict_id(uint32_t id) {
    ++evictions_;
    erase(id);
  }

  void evict() {
    switch (policy_) {
      case Policy::kLru:
      case Policy::kFifo:
        return evict_id(main_.tail);
      case Policy::kClock:
        for (;;) {
          uint32_t id = main_.tail;
          if (nodes_[id].freq == 0) return evict_id(id);
          nodes_[id].freq = 0;
          unlink(id);
          push_head(id, kMain);
        }
      case Policy::kSieve: {
        uint32_t p = hand_ != kNil ? hand_ : main_.tail;
        while (nodes_[p].freq != 0) {
          nodes_[p].freq = 0;
          p = nodes_[p].newer != kNil ? nodes_[p].newer : main_.tail;
        }
        hand_ = nodes_[p].newer;
        return evict_id(p);
      }
      case Policy::kS3Fifo:
        return evict_s3fifo();
      case Policy::kOpt: {
        auto last = std::prev(opt_.end());
        return evict_id(last->second);
      }
    }
  }

  void evict_s3fifo() {
    for (;;) {
      if (small_.tail != kNil && (small_.bytes > small_cap_ || main_.tail == kNil)) {
        uint32_t id = small_.tail;
        Node& n = nodes_[id];
        if (n.freq >= move_threshold_) {
          unlink(id);
          n.freq = 0;
          push_head(id, kMain);
          continue;
        }
        const uint32_t cost = n.cost;
        evict_id(id);
        remember(id, cost, false);
        return;
      }
      uint32_t id = main_.tail;
      Node& n = nodes_[id];
      if (n.freq > 0) {
        --n.freq;
        unlink(id);
        push_head(id, kMain);
        continue;
      }
      const uint32_t cost = n.cost;
      evict_id(id);
      if (adaptive_) remember(id, cost, true);
      return;
    }
  }

  // Each queue's ghost is a FIFO of its own, of ghost_cap_ bytes.
  void remember(uint32_t id, uint32_t cost, bool from_main) {
    std::deque<Ghost>& q = from_main ? main_ghost_ : ghost_;
    uint64_t& bytes = from_main ? main_ghost_bytes_ : ghost_bytes_;
    ghost_mark_[id] = ++ghost_gen_;
    ghost_main_[id] = from_main ? 1 : 0;
    q.push_back({id, ghost_gen_, cost});
    bytes += cost;
    while (bytes > ghost_cap_ && !q.empty()) {
      const Ghost& g = q.front();
      if (ghost_mark_[g.id] == g.gen) ghost_mark_[g.id] = 0;
      bytes -= g.cost;
      q.pop_front();
    }
  }

  struct Ghost {
    uint32_t id, gen, cost;
  };

  const Trace& t_;
  const Policy policy_;
  const uint64_t budget_;
  std::vector<Node> nodes_;
  List main_, small_;
  uint64_t used_ = 0, evictions_ = 0;
  uint32_t hand_ = kNil;
  uint64_t small_cap_;
  const unsigned move_threshold_;
  std::vector<uint32_t> ghost_mark_;
  std::vector<uint8_t> ghost_main_;  // the mark is of a key evicted from main (adaptive)
  std::deque<Ghost> ghost_, main_ghost_;
  uint64_t ghost_bytes_ = 0, main_ghost_bytes_ = 0;
  uint32_t ghost_gen_ = 0;
  std::vector<uint64_t> next_;
  std::vector<uint64_t> opt_key_;
  std::set<std::pair<uint64_t, uint32_t>> opt_;
  const uint32_t per_object_;
  const bool fill_;
  const uint64_t ghost_cap_;
  const bool adaptive_;
  const uint64_t step_, small_min_, small_max_;
};

}  // namespace

SimResult simulate(const Trace& trace, Policy policy, const SimConfig& config) {
  return Sim(trace, policy, config).run();
}

}  // namespace cachetier::bench::trace
