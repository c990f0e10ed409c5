// Replies to the meta commands (mg, ms, md, ma), written the way memcached 1.6 writes them:
// the return flags in the order the request listed them, O (opaque) and k (key, then " b" for a
// base64 key) echoed on every reply kind, W/X/Z lease flags last, and the quiet-mode rules of
// each command. The one place that lays these replies out: cacheserver and cacherouter both
// call it, each with what it knows about the item (MetaItem is protocol-neutral).
//
// Flag order matters beyond layout: memcached applies T (new TTL) and N (vivify TTL) where they
// appear, so `mg k t T30` reports the TTL before the touch and `mg k T30 t` the one after.
// MetaItem carries the TTL from before the command; the writer replays the request's flags.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/buffer.h"
#include "protocol/memcache/request.h"

namespace cachetier::memcache {

// What a meta reply can say about an item. Times are whole seconds.
struct MetaItem {
  std::string_view value;     // v, and its size for s
  uint64_t cas = 0;           // c
  uint32_t client_flags = 0;  // f
  int64_t ttl = -1;           // remaining TTL before this command changed it; -1 = never expires
  int64_t idle = 0;           // l: seconds since the item was last accessed
  bool fetched = false;       // h: fetched before this command
  bool created = false;       // this command made the item (mg N, ma N)
  bool win = false;           // W: this client won the right to recache
  bool stale = false;         // X
  bool win_sent = false;      // Z: a win was already handed out
};

enum class MetaCode : uint8_t { kHD, kNS, kEX, kNF, kEN };

// Seconds left for a T or N token (memcached's exptime rules) as seen at `now` (unix seconds);
// -1 = never expires, 0 = already expired.
int64_t meta_ttl_left(int64_t token, int64_t now);

// Each takes the request's flags and its key (decoded, for a base64 key).
// mg: a hit when `item` is set (VA with v, else HD), else EN (nothing under q).
void write_mg_reply(ByteBuffer& out, const MetaFlags& m, std::string_view key, const MetaItem* item,
                    int64_t now);
// ms: HD carries c<cas>; the other codes c0. HD is silent under q.
void write_ms_reply(ByteBuffer& out, const MetaFlags& m, std::string_view key, MetaCode code,
                    uint64_t cas);
// md: HD is silent under q.
void write_md_reply(ByteBuffer& out, const MetaFlags& m, std::string_view key, MetaCode code);
// ma: kHD means success (VA with v); `item->value` holds the number's digits. Under q a
// success on an existing counter is silent (one that N just created is not, as memcached).
void write_ma_reply(ByteBuffer& out, const MetaFlags& m, std::string_view key, MetaCode code,
                    const MetaItem* item, int64_t now);

}  // namespace cachetier::memcache
