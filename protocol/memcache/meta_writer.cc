// Meta replies. See meta_writer.h for what they contain and why flag order matters.
#include "protocol/memcache/meta_writer.h"

#include <algorithm>
#include <string>

#include "protocol/memcache/text.h"

namespace cachetier::memcache {

namespace {

constexpr int64_t kRelativeLimit = 60 * 60 * 24 * 30;  // memcached: larger = absolute time

std::string_view code_text(MetaCode c) {
  switch (c) {
    case MetaCode::kHD:
      return "HD";
    case MetaCode::kNS:
      return "NS";
    case MetaCode::kEX:
      return "EX";
    case MetaCode::kNF:
      return "NF";
    case MetaCode::kEN:
      return "EN";
  }
  return "HD";
}

// " k<key>", then " b" when the key travelled in base64 (re-encoded from the decoded key, as
// memcached does).
void write_key(ByteBuffer& out, const MetaFlags& m, std::string_view key) {
  out.append(" k");
  if (m.has('b')) {
    std::string encoded;
    base64_encode(key, encoded);
    out.append(encoded);
    out.append(" b");
  } else {
    out.append(key);
  }
}

void write_opaque(ByteBuffer& out, const MetaFlags& m) {
  out.append(" O");
  out.append(m.opaque);
}

// Only O and k: what every reply kind echoes.
void write_echo(ByteBuffer& out, const MetaFlags& m, std::string_view key) {
  for (uint8_t i = 0; i < m.count; ++i) {
    if (m.order[i] == 'O') write_opaque(out, m);
    if (m.order[i] == 'k') write_key(out, m, key);
  }
}

void write_ttl(ByteBuffer& out, int64_t left) {
  out.append(" t");
  if (left < 0) {
    out.append("-1");
  } else {
    out.append_u64(static_cast<uint64_t>(left));
  }
}

void end_line(ByteBuffer& out) { out.append("\r\n"); }

// "VA <size>" when the value goes along (v), else "HD".
void open_hit(ByteBuffer& out, bool with_value, size_t size) {
  if (with_value) {
    out.append("VA ");
    out.append_u64(size);
  } else {
    out.append("HD");
  }
}

// Ends the flags line, then the value's block when it goes along.
void close_hit(ByteBuffer& out, bool with_value, std::string_view value) {
  end_line(out);
  if (with_value) {
    out.append(value);
    end_line(out);
  }
}

}  // namespace

int64_t meta_ttl_left(int64_t token, int64_t now) {
  if (token == 0) return -1;
  if (token < 0) return 0;
  if (token <= kRelativeLimit) return token;
  return std::max<int64_t>(token - now, 0);
}

void write_mg_reply(ByteBuffer& out, const MetaFlags& m, std::string_view key, const MetaItem* item,
                    int64_t now) {
  if (item == nullptr) {
    if (m.has('q')) return;
    out.append("EN");
    write_echo(out, m, key);
    end_line(out);
    return;
  }
  const bool with_value = m.has('v');
  out.reserve(item->value.size() + 96);
  open_hit(out, with_value, item->value.size());
  int64_t ttl = item->ttl;
  for (uint8_t i = 0; i < m.count; ++i) {
    switch (m.order[i]) {
      case 'T':
        ttl = meta_ttl_left(m.ttl, now);
        break;
      case 'N':
        if (item->created) ttl = meta_ttl_left(m.vivify_ttl, now);
        break;
      case 's':
        out.append(" s");
        out.append_u64(item->value.size());
        break;
      case 't':
        write_ttl(out, ttl);
        break;
      case 'c':
        out.append(" c");
        out.append_u64(item->cas);
        break;
      case 'f':
        out.append(" f");
        out.append_u64(item->client_flags);
        break;
      case 'l':
        out.append(" l");
        out.append_u64(static_cast<uint64_t>(std::max<int64_t>(item->idle, 0)));
        break;
      case 'h':
        out.append(item->fetched ? " h1" : " h0");
        break;
      case 'O':
        write_opaque(out, m);
        break;
      case 'k':
        write_key(out, m, key);
        break;
      default:
        break;
    }
  }
  if (item->win_sent) out.append(" Z");
  if (item->stale) out.append(" X");
  if (item->win) out.append(" W");
  close_hit(out, with_value, item->value);
}

void write_ms_reply(ByteBuffer& out, const MetaFlags& m, std::string_view key, MetaCode code,
                    uint64_t cas) {
  if (code == MetaCode::kHD && m.has('q')) return;
  out.append(code_text(code));
  for (uint8_t i = 0; i < m.count; ++i) {
    switch (m.order[i]) {
      case 'O':
        write_opaque(out, m);
        break;
      case 'k':
        write_key(out, m, key);
        break;
      case 'c':
        out.append(" c");
        out.append_u64(code == MetaCode::kHD ? cas : 0);
        break;
      default:
        break;
    }
  }
  end_line(out);
}

void write_md_reply(ByteBuffer& out, const MetaFlags& m, std::string_view key, MetaCode code) {
  if (code == MetaCode::kHD && m.has('q')) return;
  out.append(code_text(code));
  write_echo(out, m, key);
  end_line(out);
}

void write_ma_reply(ByteBuffer& out, const MetaFlags& m, std::string_view key, MetaCode code,
                    const MetaItem* item, int64_t now) {
  if (code != MetaCode::kHD || item == nullptr) {
    out.append(code_text(code == MetaCode::kHD ? MetaCode::kNF : code));
    write_echo(out, m, key);
    end_line(out);
    return;
  }
  if (m.has('q') && !item->created) return;
  const bool with_value = m.has('v');
  open_hit(out, with_value, item->value.size());
  int64_t ttl = item->created ? -1 : item->ttl;
  for (uint8_t i = 0; i < m.count; ++i) {
    switch (m.order[i]) {
      case 'c':
        out.append(" c");
        out.append_u64(item->cas);
        break;
      case 't':
        write_ttl(out, ttl);
        break;
      case 'T':
        ttl = meta_ttl_left(m.ttl, now);
        break;
      case 'N':
        if (item->created) ttl = meta_ttl_left(m.vivify_ttl, now);
        break;
      case 'O':
        write_opaque(out, m);
        break;
      case 'k':
        write_key(out, m, key);
        break;
      default:
        break;
    }
  }
  close_hit(out, with_value, item->value);
}

}  // namespace cachetier::memcache
