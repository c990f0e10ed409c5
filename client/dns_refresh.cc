// DnsRefresh implementation. See dns_refresh.h.
#include "client/dns_refresh.h"

#include "client/resolve.h"

namespace cachetier::client {

struct DnsRefresh::Lookup {
  uv_work_t req{};
  std::shared_ptr<DnsRefresh> owner;
  std::vector<std::string> names;
  std::vector<std::vector<std::string>> found;  // per name; empty: did not resolve
};

std::shared_ptr<DnsRefresh> DnsRefresh::start(uv_loop_t* loop, const ClientOptions& options,
                                              const Ring& ring, Resolved resolved, Apply apply) {
  if (options.dns_refresh_ms == 0) return nullptr;
  auto r = std::make_shared<DnsRefresh>(loop, std::move(apply));
  for (const ShardOptions& s : options.shards) {
    if (s.discover.empty()) continue;
    for (size_t i = 0; i < ring.size(); ++i) {
      if (ring.shard(i).name == s.name) r->shards_.emplace_back(i, s);
    }
  }
  if (r->shards_.empty()) return nullptr;
  r->last_ = std::move(resolved);
  r->self_ = r;
  uv_timer_init(loop, &r->timer_);
  r->timer_.data = r.get();
  uv_timer_start(
      &r->timer_, [](uv_timer_t* t) { static_cast<DnsRefresh*>(t->data)->tick(); },
      options.dns_refresh_ms, options.dns_refresh_ms);
  return r;
}

void DnsRefresh::stop() {
  if (stopped_) return;
  stopped_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
    // The last reference may be this one: release it after the handle is done with.
    std::shared_ptr<DnsRefresh> keep = std::move(static_cast<DnsRefresh*>(h->data)->self_);
  });
}

void DnsRefresh::tick() {
  if (busy_ || stopped_) return;  // a slow resolver: one round at a time
  auto* l = new Lookup;
  l->req.data = l;
  l->owner = shared_from_this();
  for (const auto& [index, s] : shards_) {
    for (const std::string& n : s.discover) l->names.push_back(n);
  }
  l->found.resize(l->names.size());
  busy_ = true;
  int rc = uv_queue_work(
      loop_, &l->req,
      [](uv_work_t* w) {
        auto* lk = static_cast<Lookup*>(w->data);
        for (size_t i = 0; i < lk->names.size(); ++i) {
          std::string why;
          if (!resolve_all(lk->names[i], lk->found[i], why)) lk->found[i].clear();
        }
      },
      [](uv_work_t* w, int) {
        std::unique_ptr<Lookup> lk(static_cast<Lookup*>(w->data));
        lk->owner->busy_ = false;
        if (!lk->owner->stopped_) lk->owner->done(*lk);
      });
  if (rc != 0) {
    busy_ = false;
    delete l;
  }
}

void DnsRefresh::done(Lookup& l) {
  for (size_t i = 0; i < l.names.size(); ++i) {
    if (l.found[i].size() > kMaxReplicas) l.found[i].resize(kMaxReplicas);
    if (!l.found[i].empty()) last_[l.names[i]] = std::move(l.found[i]);
  }
  for (const auto& [index, s] : shards_) {
    std::vector<std::string> next = shard_replicas(s, last_);
    if (next.size() > kMaxReplicas) next.resize(kMaxReplicas);
    apply_(index, next);  // the facade compares with what it has
  }
}

}  // namespace cachetier::client
