// The multi-get route. See multi.h.
#include "router/routes/multi.h"

#include "client/ring/key_split.h"

namespace cachetier::router {

namespace {

// A multi-get with a moved key in a migration window: every key is read as a get (the read
// route then reads a moved key from both of its owners), and the answers are merged in order.
void multi_get_each(RouteEnv& env, const Topology& topo, std::span<const std::string_view> keys,
                    ReadOptions opts, Done done) {
  struct Merge {
    std::vector<std::optional<Reply>> got;
    size_t left = 0;
    Done done;
  };
  auto m = std::make_shared<Merge>();
  m->got.resize(keys.size());
  m->left = keys.size();
  m->done = std::move(done);
  const bool miss_when_down = topo.config.all_down == AllDown::kMiss;
  for (size_t i = 0; i < keys.size(); ++i) {
    Call c;
    c.op = native::Op::kGets;  // (gets: the CAS comes back, as in a multi-get's values)
    c.key.assign(keys[i]);
    route_read(env, topo, topo.ring.shard_for(keys[i]), std::move(c), opts,
               [m, i, miss_when_down](Reply&& r) {
                 m->got[i] = std::move(r);
                 if (--m->left > 0) return;
                 Reply out;
                 out.values.reserve(m->got.size());
                 for (auto& g : m->got) {
                   if (!g->transport.is_ok() && !miss_when_down) return m->done(std::move(*g));
                   if (g->transport.is_ok() && g->code != native::Status::kOk &&
                       g->code != native::Status::kNotFound) {
                     return m->done(std::move(*g));
                   }
                   if (!g->transport.is_ok() || g->code != native::Status::kOk) {
                     out.values.emplace_back();
                     continue;
                   }
                   char* p = out.hold(g->value.size());
                   std::copy(g->value.begin(), g->value.end(), p);
                   out.values.push_back(
                       Reply::Value{std::string_view(p, g->value.size()), g->flags, g->cas});
                 }
                 m->done(std::move(out));
               });
  }
}

}  // namespace

void route_multi_get(RouteEnv& env, const Topology& topo, std::span<const std::string_view> keys,
                     ReadOptions opts, Done done) {
  if (topo.migration != nullptr) {
    for (std::string_view k : keys) {
      if (topo.moved_from(k, topo.ring.shard_for(k)) >= 0) {
        return multi_get_each(env, topo, keys, opts, std::move(done));
      }
    }
  }
  client::KeySplit split = client::split_keys(topo.ring, keys);
  struct Merge {
    std::vector<std::pair<uint32_t, uint32_t>> where;
    std::vector<std::vector<std::optional<Reply::Value>>> per_shard;
    size_t left = 0;
    std::vector<std::shared_ptr<char[]>> storage;  // the bytes per_shard's values point into
    std::optional<Reply> error;
    Done done;
  };
  auto m = std::make_shared<Merge>();
  size_t distinct = 0;
  for (const auto& sk : split.shards) distinct += sk.keys.size();
  const bool repeats = distinct != split.where.size();  // a key asked twice: copy its value
  m->where = std::move(split.where);
  m->per_shard.resize(split.shards.size());
  m->left = split.shards.size();
  m->done = std::move(done);
  const bool miss_when_down = topo.config.all_down == AllDown::kMiss;
  if (m->left == 0) {
    Reply empty;
    return m->done(std::move(empty));
  }
  for (size_t si = 0; si < split.shards.size(); ++si) {
    const client::ShardKeys& sk = split.shards[si];
    Call c;
    c.op = native::Op::kMultiGet;
    c.keys.assign(sk.keys.begin(), sk.keys.end());
    const size_t want = sk.keys.size();
    route_read(
        env, topo, sk.shard, std::move(c), opts, [m, si, want, miss_when_down, repeats](Reply&& r) {
          if (r.transport.is_ok() && r.code == native::Status::kOk && r.values.size() == want) {
            m->per_shard[si] = std::move(r.values);
            for (auto& block : r.storage) m->storage.push_back(std::move(block));
          } else {
            m->per_shard[si].resize(want);  // misses
            if (!(!r.transport.is_ok() && miss_when_down) && !m->error) m->error = std::move(r);
          }
          if (--m->left > 0) return;
          if (m->error) return m->done(std::move(*m->error));
          Reply out;
          out.storage = std::move(m->storage);
          out.values.reserve(m->where.size());
          for (auto [shard, index] : m->where) {
            auto& v = m->per_shard[shard][index];
            out.values.push_back(repeats ? v : std::move(v));
          }
          m->done(std::move(out));
        });
  }
}

}  // namespace cachetier::router
