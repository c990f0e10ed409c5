// The memcache text front end: classic commands. See text.h for the routing table.
#include "router/frontends/text.h"

#include "common/version.h"
#include "protocol/memcache/server_codec.h"
#include "router/admin.h"
#include "router/router.h"
#include "router/routes/broadcast.h"
#include "router/routes/cas.h"
#include "router/routes/multi.h"
#include "router/routes/read.h"
#include "router/routes/write.h"
#include "router/worker.h"

namespace cachetier::router {

namespace {

namespace mc = memcache;
namespace reply = memcache::reply;
using native::Op;
using native::Status;

Op store_op(mc::Command c) {
  switch (c) {
    case mc::Command::kAdd:
      return Op::kAdd;
    case mc::Command::kReplace:
      return Op::kReplace;
    case mc::Command::kAppend:
      return Op::kAppend;
    case mc::Command::kPrepend:
      return Op::kPrepend;
    case mc::Command::kCas:
      return Op::kCas;
    default:
      return Op::kSet;
  }
}

// A reply that is not a cache outcome: the transport failed, or the node said something a
// text client has no word for.
std::string_view failure_line(const Reply& r, Op op) {
  if (r.transport.is_ok()) {
    switch (r.code) {
      case Status::kNonNumeric:
        return reply::kNonNumeric;
      case Status::kTooLarge:
        return reply::kTooLarge;
      case Status::kNoMemory:
        return reply::kNoMemory;
      case Status::kOlderVersion:
        if (op == Op::kIncr || op == Op::kDecr) {
          return "SERVER_ERROR superseded by a concurrent write\r\n";
        }
        return reply::kNotStored;
      default:
        break;
    }
  }
  return {};
}

// Whether a CAS read must come from the shard's primary: over memcache backends each node has
// its own CAS values; native nodes all hold the write's version as its CAS.
bool cas_from_primary(const Topology& topo) {
  return topo.config.backend_protocol == client::Protocol::kMemcache;
}

void single_get(Downstream& d, const mc::Request& req, Fill fill, bool with_cas) {
  // The common case, kept lean: everything the reply needs is in the slot.
  Slot* slot = fill.slot();
  slot->key.assign(req.keys[0].data(), req.keys[0].size());
  slot->with_cas = with_cas;
  Call c;
  c.op = with_cas ? Op::kGets : Op::kGet;
  c.key = slot->key;
  const Topology& topo = d.topo();
  size_t shard = topo.ring.shard_for(c.key);
  ReadOptions opts;
  opts.primary = with_cas && cas_from_primary(topo);
  // (Only `fill` is captured: the callback stays in std::function's inline buffer.)
  route_read(d.env(), topo, shard, std::move(c), opts, [fill](Reply&& r) {
    Slot* s = fill.slot();
    WorkerStats* stats = s->stats;
    if (r.transport.is_ok() && r.code == Status::kOk) {
      count_read(*stats, true);
      return fill.write([&](ByteBuffer& out) {
        mc::write_value(out, s->key, r.flags, r.value, s->with_cas ? &r.cas : nullptr);
        out.append(reply::kEnd);
      });
    }
    if (r.transport.is_ok() ? r.code == Status::kNotFound : s->miss_when_down) {
      count_read(*stats, false);
      return fill(reply::kEnd);
    }
    fill(server_error_line(r));
  });
}

void multi_get(Downstream& d, const mc::Request& req, Fill fill, bool with_cas) {
  struct Keys {
    std::vector<std::string> keys;
  };
  auto k = std::make_shared<Keys>();
  k->keys.assign(req.keys.begin(), req.keys.end());
  std::vector<std::string_view> views(k->keys.begin(), k->keys.end());
  const Topology& topo = d.topo();
  ReadOptions opts;
  opts.primary = with_cas && cas_from_primary(topo);
  WorkerStats* stats = &d.stats();
  route_multi_get(d.env(), topo, views, opts, [k, fill, stats, with_cas](Reply&& r) {
    if (r.transport.is_ok() && r.code == Status::kTooLarge) {
      return fill("SERVER_ERROR out of memory writing get response\r\n");  // as memcached
    }
    if (!r.transport.is_ok() || r.code != Status::kOk) return fill(server_error_line(r));
    fill.write([&](ByteBuffer& out) {
      for (size_t i = 0; i < k->keys.size(); ++i) {
        const auto& v = r.values[i];
        count_read(*stats, v.has_value());
        if (v) mc::write_value(out, k->keys[i], v->flags, v->value, with_cas ? &v->cas : nullptr);
      }
      out.append(reply::kEnd);
    });
  });
}

// gat/gats: a write (the new TTL goes to every replica), one key at a time, answered together.
void get_and_touch(Downstream& d, const mc::Request& req, Fill fill, bool with_cas) {
  struct Acc {
    std::vector<std::string> keys;
    std::vector<std::optional<Reply>> hits;
    size_t left = 0;
    std::string error;
  };
  auto acc = std::make_shared<Acc>();
  acc->keys.assign(req.keys.begin(), req.keys.end());
  acc->hits.resize(acc->keys.size());
  acc->left = acc->keys.size();
  const Topology& topo = d.topo();
  const bool miss_when_down = topo.config.all_down == AllDown::kMiss;
  WorkerStats* stats = &d.stats();
  for (size_t i = 0; i < acc->keys.size(); ++i) {
    Call c;
    c.op = Op::kGat;
    c.key = acc->keys[i];
    c.ttl = req.exptime;
    size_t shard = topo.ring.shard_for(c.key);
    route_write(
        d.env(), topo, shard, std::move(c),
        [acc, i, with_cas, miss_when_down, fill, stats](Reply&& r) {
          const bool hit = r.transport.is_ok() && r.code == Status::kOk;
          if (hit) {
            acc->hits[i] = std::move(r);
          } else if (!(r.transport.is_ok() ? r.code == Status::kNotFound : miss_when_down) &&
                     acc->error.empty()) {
            acc->error = server_error_line(r);
          }
          count_read(*stats, hit);
          count_touch(*stats, hit);
          if (--acc->left > 0) return;
          if (!acc->error.empty()) return fill(acc->error);
          fill.write([&](ByteBuffer& out) {
            for (size_t k = 0; k < acc->keys.size(); ++k) {
              const auto& h = acc->hits[k];
              if (h) {
                mc::write_value(out, acc->keys[k], h->flags, h->value,
                                with_cas ? &h->cas : nullptr);
              }
            }
            out.append(reply::kEnd);
          });
        });
  }
}

std::string_view store_line(const Reply& r, Op op) {
  switch (r.code) {
    case Status::kOk:
      return reply::kStored;
    case Status::kNotStored:
      return reply::kNotStored;
    case Status::kExists:
      return reply::kExists;
    case Status::kNotFound:
      return reply::kNotFound;
    default:
      return failure_line(r, op);
  }
}

void store(Downstream& d, const mc::Request& req, Fill fill) {
  Call c;
  c.op = store_op(req.command);
  c.key = std::string(req.key());
  c.value = std::string(req.value);
  c.flags = req.client_flags;
  c.ttl = req.exptime;
  c.cas = req.cas_unique;
  const Topology& topo = d.topo();
  size_t shard = topo.ring.shard_for(c.key);
  const bool quiet = req.noreply;
  if (quiet) fill(std::string_view());  // nothing to wait for: the client expects no reply
  WorkerStats* stats = &d.stats();
  const Op op = c.op;
  Done done = [fill, quiet, stats, op](Reply&& r) {
    count_store(*stats, op == Op::kCas, r);
    if (quiet) return;
    if (!r.transport.is_ok()) return fill(server_error_line(r));
    std::string_view line = store_line(r, op);
    fill(line.empty() ? std::string_view(server_error_line(r)) : line);
  };
  const bool compared = c.op == Op::kCas;
  route_change(d.env(), topo, shard, std::move(c), compared, std::move(done));
}

// delete, incr, decr, touch: one key, a write to every replica.
void keyed_write(Downstream& d, const mc::Request& req, Fill fill) {
  Call c;
  c.key = std::string(req.key());
  switch (req.command) {
    case mc::Command::kDelete:
      c.op = Op::kDelete;
      c.ttl = native::kDefaultTombstoneSeconds;
      break;
    case mc::Command::kIncr:
    case mc::Command::kDecr:
      c.op = req.command == mc::Command::kIncr ? Op::kIncr : Op::kDecr;
      c.delta = req.delta;
      break;
    default:
      c.op = Op::kTouch;
      c.ttl = req.exptime;
      break;
  }
  const Op op = c.op;
  const bool quiet = req.noreply;
  if (quiet) fill(std::string_view());
  WorkerStats* stats = &d.stats();
  const Topology& topo = d.topo();
  size_t shard = topo.ring.shard_for(c.key);
  route_write(d.env(), topo, shard, std::move(c), [fill, quiet, stats, op](Reply&& r) {
    switch (op) {
      case Op::kDelete:
        count_delete(*stats, r);
        break;
      case Op::kTouch:
        if (r.transport.is_ok()) count_touch(*stats, r.code == Status::kOk);
        break;
      default:
        count_arith(*stats, op == Op::kIncr, r);
        break;
    }
    if (quiet) return;
    if (!r.transport.is_ok()) return fill(server_error_line(r));
    if (r.code == Status::kNotFound) return fill(reply::kNotFound);
    if (r.code == Status::kOk) {
      if (op == Op::kDelete) return fill(reply::kDeleted);
      if (op == Op::kTouch) return fill(reply::kTouched);
      return fill.write([&](ByteBuffer& out) { mc::write_number(out, r.number); });
    }
    std::string_view line = failure_line(r, op);
    fill(line.empty() ? std::string_view(server_error_line(r)) : line);
  });
}

void admin_command(Downstream& d, AdminOp op, std::string_view arg, Fill fill) {
  if (!d.admin_allowed()) return fill("CLIENT_ERROR admin commands need an admin user\r\n");
  fill.write([&](ByteBuffer& out) { run_admin(d.env(), d.topo(), op, arg, out); });
}

void stats_command(Downstream& d, const mc::Request& req, Fill fill) {
  if (req.stats_arg == "nodes") return admin_command(d, AdminOp::kStatsNodes, {}, fill);
  if (req.stats_arg == "shards") return admin_command(d, AdminOp::kStatsShards, {}, fill);
  if (!req.stats_arg.empty()) {
    // The router's own counters; per-node details (items, slabs, ...) live on the nodes.
    return fill("CLIENT_ERROR stats " + std::string(req.stats_arg) +
                " is not answered by cacherouter: ask the nodes\r\n");
  }
  fill.write([&](ByteBuffer& out) {
    d.worker().router().write_stats(out);
    out.append(reply::kEnd);
  });
}

}  // namespace

std::string server_error_line(const Reply& r) {
  std::string why =
      r.transport.is_ok() ? std::string(native::status_name(r.code)) : r.transport.message();
  return "SERVER_ERROR " + why + "\r\n";
}

void handle_text(Downstream& d, const mc::Request& req, Fill fill) {
  switch (req.command) {
    case mc::Command::kGet:
    case mc::Command::kGets: {
      const bool with_cas = req.command == mc::Command::kGets;
      if (req.keys.size() == 1) return single_get(d, req, fill, with_cas);
      return multi_get(d, req, fill, with_cas);
    }
    case mc::Command::kGat:
    case mc::Command::kGats:
      return get_and_touch(d, req, fill, req.command == mc::Command::kGats);
    case mc::Command::kSet:
    case mc::Command::kAdd:
    case mc::Command::kReplace:
    case mc::Command::kAppend:
    case mc::Command::kPrepend:
    case mc::Command::kCas:
      return store(d, req, fill);
    case mc::Command::kDelete:
    case mc::Command::kIncr:
    case mc::Command::kDecr:
    case mc::Command::kTouch:
      return keyed_write(d, req, fill);
    case mc::Command::kFlushAll: {
      if (!d.topo().config.flush_enabled) return fill(reply::kFlushDisabled);
      Call c;
      c.op = Op::kFlush;
      c.ttl = req.delay;
      const bool quiet = req.noreply;
      d.stats().cmd_flush.add();
      route_broadcast(d.env(), d.topo(), std::move(c), [fill, quiet](Reply&& r) {
        if (quiet) return fill(std::string_view());
        fill(r.transport.is_ok() && r.code == Status::kOk ? std::string(reply::kOk)
                                                          : server_error_line(r));
      });
      return;
    }
    case mc::Command::kVersion:
      return fill("VERSION " CACHETIER_VERSION "-cacherouter\r\n");
    case mc::Command::kVerbosity:
      return fill(req.noreply ? std::string_view() : reply::kOk);
    case mc::Command::kRefreshCerts:
      return fill("SERVER_ERROR refresh_certs: send SIGHUP to cacherouter\r\n");
    case mc::Command::kStats:
      return stats_command(d, req, fill);
    case mc::Command::kQuit:
      fill(std::string_view());
      d.close_after_replies();
      return;
    case mc::Command::kMetaNoop:
      return fill("MN\r\n");
    case mc::Command::kDrain:
      return admin_command(d, AdminOp::kDrain, req.keys[0], fill);
    case mc::Command::kUndrain:
      return admin_command(d, AdminOp::kUndrain, req.keys[0], fill);
    case mc::Command::kRoute:
      return admin_command(d, AdminOp::kRoute, req.keys[0], fill);
    case mc::Command::kMetaGet:
    case mc::Command::kMetaSet:
    case mc::Command::kMetaDelete:
    case mc::Command::kMetaArithmetic:
      return handle_meta(d, req, fill);
  }
  fill(reply::kError);
}

}  // namespace cachetier::router
