// The native front end. See native.h.
#include "router/frontends/native.h"

#include "common/version.h"
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

using native::FrameWriter;
using native::Op;
using native::Status;

// A reply frame whose fields `fields(FrameWriter&)` writes (`n` of them).
template <class F>
void frame(Fill fill, uint64_t id, Status st, uint32_t n, F&& fields) {
  fill.write([&](ByteBuffer& out) {
    FrameWriter w(out);
    w.begin_reply(id, st, n);
    fields(w);
    w.end();
  });
}

void status_only(Fill fill, uint64_t id, Status st) {
  frame(fill, id, st, 0, [](FrameWriter&) {});
}

void transport_error(Fill fill, uint64_t id, const Reply& r) {
  native_error(fill, id, Status::kServerError,
               r.transport.is_ok() ? std::string_view("backend error") : r.transport.message());
}

bool cas_from_primary(const Topology& topo) {
  return topo.config.backend_protocol == client::Protocol::kMemcache;
}

// The fields a native client may send that the routes carry as they are.
void copy_options(const native::Request& req, Call& c) {
  c.options = req.options & (native::kNoBump | native::kInvalidate | native::kDropValue);
  c.new_cas = req.new_cas;
  c.has_vivify = req.has_vivify;
  c.vivify_ttl = req.vivify_ttl;
  c.has_touch_ttl = req.has_touch_ttl;
  c.touch_ttl = req.touch_ttl;
}

void get(Downstream& d, const native::Request& req, Fill fill) {
  Call c;
  c.op = req.op;
  c.key = std::string(req.key);
  c.ttl = req.ttl;
  c.options = req.options & native::kNoBump;
  const uint64_t id = req.id;
  const bool touch = req.op == Op::kGat;
  const Topology& topo = d.topo();
  const bool miss_when_down = topo.config.all_down == AllDown::kMiss;
  WorkerStats* stats = &d.stats();
  Done done = [id, fill, touch, miss_when_down, stats](Reply&& r) {
    const bool hit = r.transport.is_ok() && r.code == Status::kOk;
    if (r.transport.is_ok() || miss_when_down) {
      count_read(*stats, hit);
      if (touch) count_touch(*stats, hit);
    }
    if (hit) {
      return fill.write([&](ByteBuffer& out) {
        FrameWriter w(out);
        native::write_value_reply(w, id, r.value, r.flags, r.cas, r.version, r.ttl);
      });
    }
    if (r.transport.is_ok()) return status_only(fill, id, r.code);
    if (miss_when_down) return status_only(fill, id, Status::kNotFound);
    transport_error(fill, id, r);
  };
  const size_t shard = topo.ring.shard_for(c.key);
  if (touch) return route_write(d.env(), topo, shard, std::move(c), std::move(done));
  ReadOptions opts;
  opts.primary = req.op == Op::kGets && cas_from_primary(topo);
  route_read(d.env(), topo, shard, std::move(c), opts, std::move(done));
}

void change(Downstream& d, const native::Request& req, Fill fill) {
  Call c;
  c.op = req.op;
  c.key = std::string(req.key);
  c.value = std::string(req.value);
  c.flags = req.flags;
  c.ttl = req.ttl;
  c.cas = req.cas;
  c.delta = req.delta;
  c.version = req.has_version ? req.version : 0;
  c.has_initial = req.has_initial;
  c.initial = req.initial;
  copy_options(req, c);
  if (req.op == Op::kDelete && !req.has_ttl) c.ttl = native::kDefaultTombstoneSeconds;
  const bool compared = req.op == Op::kCas || (req.has_cas && req.op != Op::kAdd);
  if (compared && req.op != Op::kCas) c.compare_cas = true;
  const uint64_t id = req.id;
  const Op op = req.op;
  WorkerStats* stats = &d.stats();
  Done done = [fill, id, op, stats](Reply&& r) {
    switch (op) {
      case Op::kDelete:
        count_delete(*stats, r);
        break;
      case Op::kIncr:
      case Op::kDecr:
        count_arith(*stats, op == Op::kIncr, r);
        break;
      case Op::kTouch:
        if (r.transport.is_ok()) count_touch(*stats, r.code == Status::kOk);
        break;
      default:
        count_store(*stats, op == Op::kCas, r);
        break;
    }
    if (!r.transport.is_ok()) return transport_error(fill, id, r);
    if (r.code != Status::kOk) return status_only(fill, id, r.code);
    if (op == Op::kIncr || op == Op::kDecr) {
      return frame(fill, id, Status::kOk, 2, [&](FrameWriter& w) {
        w.field(native::kNumber);
        w.uint(r.number);
        w.field(native::kCas);
        w.uint(r.cas);
      });
    }
    if (r.cas == 0) return status_only(fill, id, Status::kOk);
    frame(fill, id, Status::kOk, 1, [&](FrameWriter& w) {
      w.field(native::kCas);
      w.uint(r.cas);
    });
  };
  const Topology& topo = d.topo();
  const size_t shard = topo.ring.shard_for(c.key);
  route_change(d.env(), topo, shard, std::move(c), compared, std::move(done));
}

void multi_get(Downstream& d, const native::Request& req, Fill fill) {
  const uint64_t id = req.id;
  WorkerStats* stats = &d.stats();
  route_multi_get(d.env(), d.topo(), req.keys, ReadOptions{}, [fill, id, stats](Reply&& r) {
    if (!r.transport.is_ok() || r.code != Status::kOk) return transport_error(fill, id, r);
    frame(fill, id, Status::kOk, 1, [&](FrameWriter& w) {
      w.field(native::kValues);
      w.array(static_cast<uint32_t>(r.values.size()));
      for (const auto& v : r.values) {
        count_read(*stats, v.has_value());
        if (!v) {
          w.nil();
          continue;
        }
        w.array(3);
        w.bin(v->value);
        w.uint(v->flags);
        w.uint(v->cas);
      }
    });
  });
}

// multi_set / multi_delete: one routed write per item; statuses in request order.
void multi_change(Downstream& d, const native::Request& req, Fill fill) {
  struct Acc {
    std::vector<Status> statuses;
    size_t left = 0;
  };
  auto acc = std::make_shared<Acc>();
  const bool set = req.op == Op::kMultiSet;
  const size_t n = set ? req.items.size() : req.keys.size();
  acc->statuses.assign(n, Status::kOk);
  acc->left = n;
  const uint64_t id = req.id;
  auto finish = [acc, fill, id]() {
    frame(fill, id, Status::kOk, 1, [&](FrameWriter& w) {
      w.field(native::kStatuses);
      w.array(static_cast<uint32_t>(acc->statuses.size()));
      for (Status s : acc->statuses) w.uint(static_cast<uint8_t>(s));
    });
  };
  if (n == 0) return finish();
  const Topology& topo = d.topo();
  WorkerStats* stats = &d.stats();
  for (size_t i = 0; i < n; ++i) {
    Call c;
    if (set) {
      c.op = Op::kSet;
      c.key = std::string(req.items[i].key);
      c.value = std::string(req.items[i].value);
      c.flags = req.items[i].flags;
      c.ttl = req.items[i].ttl;
    } else {
      c.op = Op::kDelete;
      c.key = std::string(req.keys[i]);
      c.ttl = native::kDefaultTombstoneSeconds;
    }
    const size_t shard = topo.ring.shard_for(c.key);
    route_write(d.env(), topo, shard, std::move(c), [acc, i, finish, set, stats](Reply&& r) {
      if (set) {
        count_store(*stats, false, r);
      } else {
        count_delete(*stats, r);
      }
      acc->statuses[i] = r.transport.is_ok() ? r.code : Status::kServerError;
      if (--acc->left == 0) finish();
    });
  }
}

void stats_reply(Downstream& d, uint64_t id, Fill fill) {
  // The same counters as the text `stats`, as a map.
  ByteBuffer text;
  d.worker().router().write_stats(text);
  frame(fill, id, Status::kOk, 1,
        [&](FrameWriter& w) { native::write_stats_field(w, text.view()); });
}

}  // namespace

void native_error(Fill fill, uint64_t id, Status status, std::string_view message) {
  frame(fill, id, status, 1, [&](FrameWriter& w) {
    w.field(native::kMessage);
    w.str(message);
  });
}

void handle_native(Downstream& d, const native::Request& req, Fill fill) {
  const uint64_t id = req.id;
  switch (req.op) {
    case Op::kHello:
      return frame(fill, id, Status::kOk, 3, [](FrameWriter& w) {
        w.field(native::kProtoVersion);
        w.uint(native::kProtocolVersion);
        w.field(native::kFeatures);
        w.array(1);
        w.str("multi");
        w.field(native::kServer);
        w.str("cacherouter " CACHETIER_VERSION);
      });
    case Op::kNoop:
      return status_only(fill, id, Status::kOk);
    case Op::kVersion:
      return frame(fill, id, Status::kOk, 1, [](FrameWriter& w) {
        w.field(native::kServer);
        w.str("cacherouter " CACHETIER_VERSION);
      });
    case Op::kStats:
      return stats_reply(d, id, fill);
    case Op::kAdmin: {
      AdminOp op;
      std::string_view arg;
      if (!parse_admin(req.value, op, arg)) {
        return native_error(fill, id, Status::kBadRequest,
                            "admin: drain HOST:PORT, undrain HOST:PORT, route KEY, stats nodes, "
                            "stats shards");
      }
      if (!d.admin_allowed()) {
        return native_error(fill, id, Status::kUnauthenticated,
                            "admin commands need an admin user");
      }
      ByteBuffer text;
      run_admin(d.env(), d.topo(), op, arg, text);
      const bool refused = text.view().starts_with("CLIENT_ERROR ");
      if (refused) {
        std::string_view why = text.view().substr(13);
        why = why.substr(0, why.find("\r\n"));
        return native_error(fill, id, Status::kBadRequest, why);
      }
      return frame(fill, id, Status::kOk, 1, [&](FrameWriter& w) {
        w.field(native::kValue);
        w.bin(text.view());
      });
    }
    case Op::kFlush: {
      if (!d.topo().config.flush_enabled) {
        return native_error(fill, id, Status::kBadRequest, "flush_all not allowed");
      }
      Call c;
      c.op = Op::kFlush;
      c.ttl = req.delay;
      d.stats().cmd_flush.add();
      route_broadcast(d.env(), d.topo(), std::move(c), [fill, id](Reply&& r) {
        if (r.transport.is_ok() && r.code == Status::kOk) return status_only(fill, id, Status::kOk);
        transport_error(fill, id, r);
      });
      return;
    }
    case Op::kGet:
    case Op::kGets:
    case Op::kGat:
      return get(d, req, fill);
    case Op::kSet:
    case Op::kAdd:
    case Op::kReplace:
    case Op::kAppend:
    case Op::kPrepend:
    case Op::kCas:
    case Op::kDelete:
    case Op::kIncr:
    case Op::kDecr:
    case Op::kTouch:
      return change(d, req, fill);
    case Op::kMultiGet:
      return multi_get(d, req, fill);
    case Op::kMultiSet:
    case Op::kMultiDelete:
      return multi_change(d, req, fill);
  }
  native_error(fill, id, Status::kUnknownOp, "unknown op");
}

}  // namespace cachetier::router
