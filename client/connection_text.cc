// Connection over memcache text (stock memcached as a backend): calls become classic and meta
// commands, replies (which come in request order) become Replies. See connection.h.
#include <charconv>
#include <cstring>

#include "client/connection.h"
#include "protocol/memcache/text.h"

namespace cachetier::client {

namespace {

// The key of a meta command: as it is, or base64 with the b flag when text cannot carry it.
std::string meta_key(std::string_view key, std::string& flags) {
  if (memcache::valid_key(key)) return std::string(key);
  std::string encoded;
  memcache::base64_encode(key, encoded);
  flags += " b";
  return encoded;
}

void flag(std::string& flags, char f, int64_t v) {
  flags += ' ';
  flags += f;
  flags += std::to_string(v);
}
void flag_u(std::string& flags, char f, uint64_t v) {
  flags += ' ';
  flags += f;
  flags += std::to_string(v);
}

// Return flags of a meta reply into `r`: c f s t h l, and W X Z as lease bits.
void parse_meta_flags(std::string_view text, Reply& r) {
  while (!text.empty()) {
    size_t sp = text.find(' ');
    std::string_view t = text.substr(0, sp);
    text.remove_prefix(sp == std::string_view::npos ? text.size() : sp + 1);
    if (t.empty()) continue;
    int64_t v = 0;
    if (t.size() > 1) std::from_chars(t.data() + 1, t.data() + t.size(), v);
    switch (t[0]) {
      case 'c':
        r.cas = static_cast<uint64_t>(v);
        break;
      case 'f':
        r.flags = static_cast<uint32_t>(v);
        break;
      case 't':
        r.prior_ttl = v;
        r.has_meta = true;
        break;
      case 'h':
        r.fetched = v != 0;
        r.has_meta = true;
        break;
      case 'l':
        r.idle = static_cast<uint64_t>(v);
        r.has_meta = true;
        break;
      case 'W':
        r.lease |= native::kWon;
        break;
      case 'X':
        r.lease |= native::kStale;
        break;
      case 'Z':
        r.lease |= native::kWinSent;
        break;
      default:
        break;
    }
  }
}

// A SERVER_ERROR line as a status: memcached says "object too large for cache" of a value over
// its item size limit.
native::Status server_error_status(std::string_view line) {
  return line.find("too large") != std::string_view::npos ? native::Status::kTooLarge
                                                          : native::Status::kServerError;
}

}  // namespace

bool Connection::encode_text_meta(const Call& c, TextExpect& expect) {
  using native::Op;
  namespace mc = memcache;
  std::string flags;
  switch (c.op) {
    case Op::kGet:
    case Op::kGets:
    case Op::kGat: {
      if ((c.options & (native::kItemMeta | native::kLeases)) == 0 && !c.has_vivify &&
          !c.has_recache && mc::valid_key(c.key)) {
        return false;
      }
      // t first: the TTL before this command's T or N (memcached applies them in order).
      flags = "t v f c s h l";
      std::string key = meta_key(c.key, flags);
      if (c.options & native::kNoBump) flags += " u";
      const bool r_after_t = (c.options & native::kRecacheAfterTouch) != 0;
      if (c.has_recache && !r_after_t) flag(flags, 'R', c.recache_ttl);
      if (c.op == Op::kGat) flag(flags, 'T', c.ttl);
      if (c.has_recache && r_after_t) flag(flags, 'R', c.recache_ttl);
      if (c.has_vivify) flag(flags, 'N', c.vivify_ttl);
      mc::encode_meta(out_, mc::Command::kMetaGet, key, flags);
      break;
    }
    case Op::kDelete: {
      if ((c.options & native::kInvalidate) == 0 && !c.compare_cas && mc::valid_key(c.key)) {
        return false;
      }
      std::string key = meta_key(c.key, flags);
      if (c.options & native::kInvalidate) flags += " I";
      if (c.has_touch_ttl) flag(flags, 'T', c.touch_ttl);
      if (c.compare_cas) flag_u(flags, 'C', c.cas);
      mc::encode_meta(out_, mc::Command::kMetaDelete, key, flags);
      break;
    }
    case Op::kSet:
    case Op::kAdd:
    case Op::kReplace:
    case Op::kAppend:
    case Op::kPrepend:
    case Op::kCas: {
      if (c.classic) return false;  // memcached's ASCII auth takes only a classic set
      // Every store goes as ms (memcached 1.6): its reply carries the new CAS (c).
      flags = "c";
      std::string key = meta_key(c.key, flags);
      flags += c.op == Op::kAppend    ? " MA"
               : c.op == Op::kPrepend ? " MP"
               : c.op == Op::kReplace ? " MR"
               : c.op == Op::kAdd     ? " ME"
                                      : " MS";
      if (c.compare_cas || c.op == Op::kCas) flag_u(flags, 'C', c.cas);
      if (c.options & native::kInvalidate) flags += " I";
      flag(flags, 'T', c.ttl);
      flag(flags, 'F', c.flags);
      if (c.has_vivify) flag(flags, 'N', c.vivify_ttl);
      mc::encode_meta(out_, mc::Command::kMetaSet, key, flags, c.value);
      break;
    }
    case Op::kTouch:
      if (mc::valid_key(c.key)) return false;
      {
        std::string key = meta_key(c.key, flags);
        flag(flags, 'T', c.ttl);
        mc::encode_meta(out_, mc::Command::kMetaGet, key, flags);
      }
      break;
    default:
      return false;
  }
  expect.meta = true;
  return true;
}

Status Connection::encode_text(uint64_t id, const Call& c) {
  using native::Op;
  namespace mc = memcache;
  TextExpect expect{id, c.op, {}, 1, {}};
  if (encode_text_meta(c, expect)) {
    text_queue_.push_back(std::move(expect));
    return Status::ok();
  }
  auto key_ok = [](std::string_view k) { return mc::valid_key(k); };
  if (c.version != 0) {
    return Status(StatusCode::kInvalidArgument, "versions need the native protocol");
  }
  if (c.op != Op::kMultiGet && c.op != Op::kMultiDelete && c.op != Op::kMultiSet &&
      c.op != Op::kNoop && c.op != Op::kFlush && c.op != Op::kStats && c.op != Op::kVersion &&
      c.op != Op::kIncr && c.op != Op::kDecr && !key_ok(c.key)) {
    return Status(StatusCode::kInvalidArgument, "key not valid for memcache text");
  }
  switch (c.op) {
    case Op::kGet:
    case Op::kGets: {
      std::string_view k = c.key;
      mc::encode_retrieval(out_, mc::Command::kGets, std::span<const std::string_view>(&k, 1));
      break;
    }
    case Op::kGat: {
      std::string_view k = c.key;
      mc::encode_retrieval(out_, mc::Command::kGats, std::span<const std::string_view>(&k, 1),
                           c.ttl);
      break;
    }
    case Op::kMultiGet: {
      std::vector<std::string_view> ks;
      for (const auto& k : c.keys) {
        if (!key_ok(k)) return Status(StatusCode::kInvalidArgument, "key not valid for text");
        ks.push_back(k);
      }
      if (ks.empty()) return Status(StatusCode::kInvalidArgument, "no keys");
      mc::encode_retrieval(out_, mc::Command::kGets, ks);
      expect.keys = c.keys;
      break;
    }
    case Op::kSet:
    case Op::kAdd:
    case Op::kReplace:
    case Op::kAppend:
    case Op::kPrepend:
    case Op::kCas: {
      mc::Command cmd = c.op == Op::kSet       ? mc::Command::kSet
                        : c.op == Op::kAdd     ? mc::Command::kAdd
                        : c.op == Op::kReplace ? mc::Command::kReplace
                        : c.op == Op::kAppend  ? mc::Command::kAppend
                        : c.op == Op::kPrepend ? mc::Command::kPrepend
                                               : mc::Command::kCas;
      mc::encode_storage(out_, cmd, c.key, c.flags, c.ttl, c.value, c.cas);
      break;
    }
    case Op::kDelete:
      mc::encode_delete(out_, c.key);
      break;
    case Op::kMultiDelete:
      if (c.keys.empty()) return Status(StatusCode::kInvalidArgument, "no keys");
      for (const auto& k : c.keys) {
        if (!key_ok(k)) return Status(StatusCode::kInvalidArgument, "key not valid for text");
        mc::encode_delete(out_, k);
      }
      expect.replies_left = c.keys.size();
      break;
    case Op::kMultiSet:
      if (c.items.empty()) return Status(StatusCode::kInvalidArgument, "no items");
      for (const auto& [k, v] : c.items) {
        if (!key_ok(k)) return Status(StatusCode::kInvalidArgument, "key not valid for text");
      }
      for (const auto& [k, v] : c.items) {
        mc::encode_storage(out_, mc::Command::kSet, k, c.flags, c.ttl, v);
      }
      expect.replies_left = c.items.size();
      break;
    case Op::kIncr:
    case Op::kDecr: {
      // Meta arithmetic: returns the value and can create a missing counter.
      // (t first: the TTL before a T; with a C, memcached compares.)
      std::string flags = "t c v D" + std::to_string(c.delta);
      if (c.op == Op::kDecr) flags += " MD";
      if (c.has_initial) flags += " N" + std::to_string(c.ttl) + " J" + std::to_string(c.initial);
      if (c.compare_cas && c.cas != 0) flags += " C" + std::to_string(c.cas);
      if (c.has_touch_ttl) flags += " T" + std::to_string(c.touch_ttl);
      std::string key = meta_key(c.key, flags);
      mc::encode_meta(out_, mc::Command::kMetaArithmetic, key, flags);
      break;
    }
    case Op::kTouch:
      mc::encode_touch(out_, c.key, c.ttl);
      break;
    case Op::kFlush:
      out_.append("flush_all ");
      out_.append_i64(c.ttl);
      out_.append("\r\n");
      break;
    case Op::kNoop:
      out_.append("mn\r\n");
      break;
    case Op::kStats:
      out_.append("stats\r\n");
      break;
    case Op::kVersion:
      out_.append("version\r\n");
      break;
    default:
      return Status(StatusCode::kInvalidArgument, "op not available over memcache text");
  }
  text_queue_.push_back(std::move(expect));
  return Status::ok();
}

void Connection::on_read_text() {
  using native::Op;
  namespace mc = memcache;
  mc::Response resp;
  while (state_ == State::kConnected && !in_.empty()) {
    mc::DecodeResult r = text_decoder_.feed(in_.view(), resp);
    if (r.status == mc::DecodeStatus::kNeedMore) break;
    if (r.status != mc::DecodeStatus::kComplete || text_queue_.empty()) {
      on_lost("malformed reply");
      return;
    }
    TextExpect& head = text_queue_.front();
    Reply& out = head.partial;
    bool finished = true;
    if (head.meta) {  // a meta reply (encode_text_meta): one unit, with return flags
      switch (resp.kind) {
        case mc::ResponseKind::kMetaVA:
          out.value.assign(resp.value.data(), resp.value.size());
          [[fallthrough]];
        case mc::ResponseKind::kMetaHD:
          out.code = native::Status::kOk;
          parse_meta_flags(resp.meta_flags, out);
          break;
        case mc::ResponseKind::kMetaEN:
        case mc::ResponseKind::kMetaNF:
          out.code = native::Status::kNotFound;
          break;
        case mc::ResponseKind::kMetaNS:
          out.code = native::Status::kNotStored;
          break;
        case mc::ResponseKind::kMetaEX:
          out.code = native::Status::kExists;
          break;
        case mc::ResponseKind::kServerError:
          out.code = server_error_status(resp.value);
          break;
        default:
          out.code = native::Status::kBadRequest;
          break;
      }
      in_.consume(r.consumed);
      uint64_t id = head.id;
      Reply reply = std::move(head.partial);
      text_queue_.pop_front();
      complete(id, std::move(reply));
      continue;
    }
    switch (resp.kind) {
      case mc::ResponseKind::kValue:
        if (head.op == Op::kMultiGet) {
          if (out.values.empty()) out.values.resize(head.keys.size());
          for (size_t i = 0; i < head.keys.size(); ++i) {
            if (head.keys[i] == resp.key && !out.values[i]) {
              char* at = out.hold(resp.value.size());  // values arrive one by one here
              std::memcpy(at, resp.value.data(), resp.value.size());
              out.values[i] = Reply::Value{std::string_view(at, resp.value.size()),
                                           resp.client_flags, resp.cas};
              break;
            }
          }
        } else {
          out.value.assign(resp.value.data(), resp.value.size());
          out.flags = resp.client_flags;
          out.cas = resp.cas;
          out.code = native::Status::kOk;
          out.number = 1;  // marks a hit until END
        }
        finished = false;
        break;
      case mc::ResponseKind::kEnd:
        if (head.op == Op::kMultiGet) {
          out.values.resize(head.keys.size());
          out.code = native::Status::kOk;
        } else if (head.op == Op::kStats) {
          out.code = native::Status::kOk;
        } else {
          out.code = out.number == 1 ? native::Status::kOk : native::Status::kNotFound;
          out.number = 0;
        }
        break;
      case mc::ResponseKind::kStat:
        finished = false;
        break;
      case mc::ResponseKind::kStored:
      case mc::ResponseKind::kDeleted:
      case mc::ResponseKind::kTouched:
      case mc::ResponseKind::kOk:
      case mc::ResponseKind::kMetaMN:
      case mc::ResponseKind::kVersion:
        out.code = native::Status::kOk;
        if (resp.kind == mc::ResponseKind::kVersion) out.value = std::string(resp.value);
        break;
      case mc::ResponseKind::kNotStored:
        out.code = native::Status::kNotStored;
        break;
      case mc::ResponseKind::kExists:
      case mc::ResponseKind::kMetaEX:  // ma with a C that did not match
        out.code = native::Status::kExists;
        break;
      case mc::ResponseKind::kNotFound:
      case mc::ResponseKind::kMetaNF:
        out.code = native::Status::kNotFound;
        break;
      case mc::ResponseKind::kNumber:
        out.code = native::Status::kOk;
        out.number = resp.number;
        break;
      case mc::ResponseKind::kMetaVA: {  // ma: the number, and its return flags
        uint64_t n = 0;
        for (char ch : resp.value) n = n * 10 + static_cast<uint64_t>(ch - '0');
        out.code = native::Status::kOk;
        out.number = n;
        parse_meta_flags(resp.meta_flags, out);
        break;
      }
      case mc::ResponseKind::kClientError:
        out.code = resp.value.find("non-numeric") != std::string_view::npos
                       ? native::Status::kNonNumeric
                       : native::Status::kBadRequest;
        break;
      case mc::ResponseKind::kServerError:
        out.code = server_error_status(resp.value);
        break;
      default:
        out.code = native::Status::kServerError;
        break;
    }
    in_.consume(r.consumed);
    if (!finished) continue;
    if (head.op == Op::kMultiDelete || head.op == Op::kMultiSet) {
      out.statuses.push_back(out.code);
      if (--head.replies_left > 0) continue;
      out.code = native::Status::kOk;
    }
    uint64_t id = head.id;
    Reply reply = std::move(head.partial);
    text_queue_.pop_front();
    complete(id, std::move(reply));
  }
}

}  // namespace cachetier::client
