// The memcache text front end: meta commands (mg, ms, md, ma). Each becomes a call with the
// meta options of the native protocol (docs/protocol.md, "Meta options"), so the node applies
// memcached's semantics, and its reply is written by protocol/memcache's meta writer, the same
// one cacheserver uses.
//
// mg goes to the shard's primary, so that a lease (a W handed out by N, R or a stale item)
// means one thing: one client wins. An mg that asks h or l reads every replica (reads spread
// over replicas set "fetched" and the access time on whichever served them) and answers with
// the primary's item, fetched if any replica had it fetched, and the shortest idle time; an mg
// with N or T changes the item, so it goes to every replica as a write, answered the same way.
#include <charconv>
#include <ctime>

#include "protocol/memcache/meta_writer.h"
#include "router/frontends/text.h"
#include "router/routes/cas.h"
#include "router/routes/read.h"
#include "router/routes/write.h"

namespace cachetier::router {

namespace {

namespace mc = memcache;
namespace reply = memcache::reply;
using mc::MetaCode;
using native::Op;
using native::Status;

int position(const mc::MetaFlags& m, char f) {
  for (int i = 0; i < m.count; ++i) {
    if (m.order[i] == f) return i;
  }
  return -1;
}

// The TTL token of an item the command creates: memcached applies T and N where they stand,
// so the later one wins.
int64_t created_ttl(const mc::MetaFlags& m) {
  return position(m, 'T') > position(m, 'N') ? m.ttl : m.vivify_ttl;
}

// Keeps what the reply needs in the slot: the request's views die when this call returns.
Slot* keep_request(Fill fill, const mc::Request& req) {
  Slot* s = fill.slot();
  s->key.assign(req.key().data(), req.key().size());
  s->meta = std::make_unique<MetaKeep>();
  s->meta->meta = req.meta;
  s->meta->opaque.assign(req.meta.opaque.data(), req.meta.opaque.size());
  s->meta->meta.opaque = s->meta->opaque;
  s->meta->meta.raw_key = {};
  return s;
}

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

mc::MetaItem meta_item(const Reply& r) {
  mc::MetaItem mi;
  mi.value = r.value;
  mi.cas = r.cas;
  mi.client_flags = r.flags;
  mi.ttl = r.prior_ttl;
  mi.idle = static_cast<int64_t>(r.idle);
  mi.fetched = r.fetched;
  mi.created = (r.lease & native::kCreated) != 0;
  mi.win = (r.lease & native::kWon) != 0;
  mi.stale = (r.lease & native::kStale) != 0;
  mi.win_sent = (r.lease & native::kWinSent) != 0;
  return mi;
}

// Writes a meta reply into the slot's place (views in the slot stay valid while it writes).
template <class F>
void reply_with(Fill fill, F&& write) {
  Slot* s = fill.slot();
  fill.write([&](ByteBuffer& out) { write(out, s->meta->meta, std::string_view(s->key)); });
}

void meta_get(Downstream& d, const mc::Request& req, Fill fill) {
  Slot* slot = keep_request(fill, req);
  const mc::MetaFlags& m = slot->meta->meta;
  Call c;
  c.key = slot->key;
  const bool touch = m.has('T');
  c.op = touch ? Op::kGat : Op::kGet;
  if (touch) c.ttl = m.ttl;
  c.options = native::kLeases | native::kItemMeta;
  if (m.has('u')) c.options |= native::kNoBump;
  if (m.has('N')) {
    c.has_vivify = true;
    c.vivify_ttl = created_ttl(m);
  }
  if (m.has('R')) {
    c.has_recache = true;
    c.recache_ttl = m.recache_ttl;
    if (touch && position(m, 'T') < position(m, 'R')) c.options |= native::kRecacheAfterTouch;
  }
  if (m.has('E')) c.new_cas = m.new_cas;
  const Topology& topo = d.topo();
  const size_t shard = topo.ring.shard_for(c.key);
  const bool miss_when_down = topo.config.all_down == AllDown::kMiss;
  WorkerStats* stats = &d.stats();
  Done done = [fill, stats, touch, miss_when_down](Reply&& r) {
    const bool hit = r.transport.is_ok() && r.code == Status::kOk;
    const bool miss = r.transport.is_ok() ? r.code == Status::kNotFound : miss_when_down;
    if (hit || miss) {
      (touch ? count_touch : count_read)(*stats, hit);
      mc::MetaItem mi = meta_item(r);
      const int64_t now = unix_now();
      return reply_with(fill, [&](ByteBuffer& out, const mc::MetaFlags& f, std::string_view k) {
        mc::write_mg_reply(out, f, k, hit ? &mi : nullptr, now);
      });
    }
    fill(server_error_line(r));
  };
  FanoutOptions merged;
  merged.merge_meta = true;
  if (m.has('N') || touch) {
    route_write(d.env(), topo, shard, std::move(c), std::move(done), merged);
  } else if (m.has('h') || m.has('l')) {
    route_read_all(d.env(), topo, shard, std::move(c), std::move(done), merged);
  } else {
    ReadOptions primary;
    primary.primary = true;
    route_read(d.env(), topo, shard, std::move(c), primary, std::move(done));
  }
}

MetaCode code_of(Status s) {
  switch (s) {
    case Status::kOk:
      return MetaCode::kHD;
    case Status::kExists:
      return MetaCode::kEX;
    case Status::kNotFound:
      return MetaCode::kNF;
    default:
      return MetaCode::kNS;  // NOT_STORED, OLDER_VERSION (superseded)
  }
}

// A reply no meta code covers: an error line.
std::string_view error_line(const Reply& r) {
  if (r.transport.is_ok()) {
    if (r.code == Status::kTooLarge) return reply::kTooLarge;
    if (r.code == Status::kNoMemory) return reply::kNoMemory;
    if (r.code == Status::kNonNumeric) return reply::kNonNumeric;
  }
  return {};
}

void meta_set(Downstream& d, const mc::Request& req, Fill fill) {
  Slot* slot = keep_request(fill, req);
  const mc::MetaFlags& m = slot->meta->meta;
  Call c;
  c.key = slot->key;
  c.value = std::string(req.value);
  switch (m.mode) {
    case 'E':
      c.op = Op::kAdd;
      break;
    case 'A':
      c.op = Op::kAppend;
      break;
    case 'P':
      c.op = Op::kPrepend;
      break;
    case 'R':
      c.op = Op::kReplace;
      break;
    default:
      c.op = Op::kSet;
      break;
  }
  // memcached's CAS rules for ms: set or replace with C is a compare-and-swap (C0 matches
  // nothing); append and prepend compare unless C0; add ignores C.
  bool cas_mode = false, compared = false;
  if (m.has('C')) {
    if (c.op == Op::kSet || c.op == Op::kReplace) {
      cas_mode = compared = true;
      c.op = Op::kCas;
      c.cas = m.compare_cas;
      if (m.has('I') && m.compare_cas != 0) c.options |= native::kInvalidate;
    } else if ((c.op == Op::kAppend || c.op == Op::kPrepend) && m.compare_cas != 0) {
      compared = true;
      c.compare_cas = true;
      c.cas = m.compare_cas;
    }
  }
  c.ttl = m.has('T') ? m.ttl : 0;
  c.flags = m.client_flags;
  if (m.has('E')) c.new_cas = m.new_cas;
  if (m.has('N') && (c.op == Op::kAppend || c.op == Op::kPrepend)) {
    c.has_vivify = true;
    c.vivify_ttl = m.vivify_ttl;
  }
  const Topology& topo = d.topo();
  const size_t shard = topo.ring.shard_for(c.key);
  WorkerStats* stats = &d.stats();
  Done done = [fill, stats, cas_mode](Reply&& r) {
    count_store(*stats, cas_mode, r);
    if (!r.transport.is_ok()) return fill(server_error_line(r));
    std::string_view line = error_line(r);
    if (!line.empty()) return fill(line);
    const MetaCode code = code_of(r.code);
    const uint64_t cas = r.cas;
    reply_with(fill, [&](ByteBuffer& out, const mc::MetaFlags& f, std::string_view k) {
      mc::write_ms_reply(out, f, k, code, cas);
    });
  };
  route_change(d.env(), topo, shard, std::move(c), compared, std::move(done));
}

void meta_delete(Downstream& d, const mc::Request& req, Fill fill) {
  Slot* slot = keep_request(fill, req);
  const mc::MetaFlags& m = slot->meta->meta;
  Call c;
  c.op = Op::kDelete;
  c.key = slot->key;
  const bool invalidate = m.has('I');
  if (invalidate) {
    c.options |= native::kInvalidate;
    if (m.has('T')) {
      c.has_touch_ttl = true;
      c.touch_ttl = m.ttl;
    }
  }
  if (m.has('x')) c.options |= native::kDropValue;
  if (!invalidate && !m.has('x')) c.ttl = native::kDefaultTombstoneSeconds;
  if (m.has('E')) c.new_cas = m.new_cas;
  const bool compared = m.has('C');
  if (compared) {
    c.compare_cas = true;
    c.cas = m.compare_cas;
  }
  const Topology& topo = d.topo();
  const size_t shard = topo.ring.shard_for(c.key);
  WorkerStats* stats = &d.stats();
  Done done = [fill, stats, invalidate](Reply&& r) {
    if (!invalidate || !r.transport.is_ok() || r.code != Status::kOk) count_delete(*stats, r);
    if (!r.transport.is_ok()) return fill(server_error_line(r));
    std::string_view line = error_line(r);
    if (!line.empty()) return fill(line);
    const MetaCode code = r.code == Status::kOlderVersion ? MetaCode::kHD : code_of(r.code);
    reply_with(fill, [&](ByteBuffer& out, const mc::MetaFlags& f, std::string_view k) {
      mc::write_md_reply(out, f, k, code);
    });
  };
  route_change(d.env(), topo, shard, std::move(c), compared, std::move(done));
}

void meta_arith(Downstream& d, const mc::Request& req, Fill fill) {
  Slot* slot = keep_request(fill, req);
  const mc::MetaFlags& m = slot->meta->meta;
  Call c;
  const bool incr = !(m.mode == 'D' || m.mode == '-');
  c.op = incr ? Op::kIncr : Op::kDecr;
  c.key = slot->key;
  c.delta = m.delta;
  c.options = native::kItemMeta;
  if (m.has('N')) {
    c.has_initial = true;
    c.initial = m.initial;
    c.ttl = created_ttl(m);
  }
  if (m.has('T')) {
    c.has_touch_ttl = true;
    c.touch_ttl = m.ttl;
  }
  if (m.has('E')) c.new_cas = m.new_cas;
  const bool compared = m.has('C') && m.compare_cas != 0;  // C0: no compare (memcached)
  if (compared) {
    c.compare_cas = true;
    c.cas = m.compare_cas;
  }
  const Topology& topo = d.topo();
  const size_t shard = topo.ring.shard_for(c.key);
  WorkerStats* stats = &d.stats();
  Done done = [fill, stats, incr](Reply&& r) {
    count_arith(*stats, incr, r);
    if (!r.transport.is_ok()) return fill(server_error_line(r));
    if (r.code == Status::kOlderVersion) {
      return fill("SERVER_ERROR superseded by a concurrent write\r\n");
    }
    if (r.code == Status::kNoMemory) return fill("SERVER_ERROR out of memory\r\n");
    std::string_view line = error_line(r);
    if (!line.empty()) return fill(line);
    const MetaCode code = code_of(r.code);
    char digits[24];
    mc::MetaItem mi;
    if (code == MetaCode::kHD) {
      auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), r.number);
      mi.value = std::string_view(digits, static_cast<size_t>(end - digits));
      mi.cas = r.cas;
      mi.ttl = r.prior_ttl;
      mi.created = (r.lease & native::kCreated) != 0;
    }
    const int64_t now = unix_now();
    reply_with(fill, [&](ByteBuffer& out, const mc::MetaFlags& f, std::string_view k) {
      mc::write_ma_reply(out, f, k, code, code == MetaCode::kHD ? &mi : nullptr, now);
    });
  };
  route_change(d.env(), topo, shard, std::move(c), compared, std::move(done));
}

}  // namespace

void handle_meta(Downstream& d, const mc::Request& req, Fill fill) {
  switch (req.command) {
    case mc::Command::kMetaGet:
      return meta_get(d, req, fill);
    case mc::Command::kMetaSet:
      return meta_set(d, req, fill);
    case mc::Command::kMetaDelete:
      return meta_delete(d, req, fill);
    default:
      return meta_arith(d, req, fill);
  }
}

}  // namespace cachetier::router
