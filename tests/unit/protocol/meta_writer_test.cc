// The meta reply writer: flags in request order, O and k (then b) echoed on every reply kind,
// T and N applied where they stand, W/X/Z last, and each command's quiet-mode rule. Requests
// are decoded by the real decoder, so flags arrive as a client would send them.
#include "protocol/memcache/meta_writer.h"

#include <catch2/catch.hpp>
#include <string>

#include "protocol/memcache/server_codec.h"

using namespace cachetier;
using namespace cachetier::memcache;

namespace {

constexpr int64_t kNow = 1'700'000'000;

// Decodes `line` (one meta request) and writes the reply `write(out, flags, key)` makes.
template <class F>
std::string reply_to(const std::string& line, F&& write) {
  RequestDecoder dec;
  Request req;
  DecodeResult r = dec.feed(line, req);
  REQUIRE(r.status == DecodeStatus::kComplete);
  ByteBuffer out;
  write(out, req.meta, req.key());
  return std::string(out.view());
}

MetaItem item(std::string_view value) {
  MetaItem it;
  it.value = value;
  it.cas = 99;
  it.client_flags = 5;
  it.ttl = 100;
  it.idle = 3;
  it.fetched = true;
  return it;
}

}  // namespace

TEST_CASE("meta writer: mg flags in request order, key then b", "[codec][meta]") {
  MetaItem it = item("hello");
  auto mg = [&](const std::string& line, const MetaItem* i) {
    return reply_to(line, [&](ByteBuffer& out, const MetaFlags& m, std::string_view k) {
      write_mg_reply(out, m, k, i, kNow);
    });
  };
  CHECK(mg("mg key k v f s\r\n", &it) == "VA 5 kkey f5 s5\r\nhello\r\n");
  CHECK(mg("mg key s c t h l O12\r\n", &it) == "HD s5 c99 t100 h1 l3 O12\r\n");
  // b: the key goes back in base64 with " b" after it, wherever b stood.
  CHECK(mg("mg Zm9v b k\r\n", &it) == "HD kZm9v b\r\n");
  CHECK(mg("mg Zm9v k b\r\n", &it) == "HD kZm9v b\r\n");
  // A miss echoes O and k only; under q it says nothing.
  CHECK(mg("mg key v O1 k s\r\n", nullptr) == "EN O1 kkey\r\n");
  CHECK(mg("mg key v q\r\n", nullptr).empty());
  CHECK(mg("mg key v q\r\n", &it) == "VA 5\r\nhello\r\n");  // a hit is not quiet
}

TEST_CASE("meta writer: T and N take effect where they stand", "[codec][meta]") {
  MetaItem it = item("");
  auto mg = [&](const std::string& line) {
    return reply_to(line, [&](ByteBuffer& out, const MetaFlags& m, std::string_view k) {
      write_mg_reply(out, m, k, &it, kNow);
    });
  };
  CHECK(mg("mg k t T30\r\n") == "HD t100\r\n");  // the TTL before the touch
  CHECK(mg("mg k T30 t\r\n") == "HD t30\r\n");
  CHECK(mg("mg k T0 t\r\n") == "HD t-1\r\n");
  CHECK(mg("mg k T-1 t\r\n") == "HD t0\r\n");  // expired by this very command
  it.created = true;
  it.ttl = -1;
  it.win = true;
  CHECK(mg("mg k t N50\r\n") == "HD t-1 W\r\n");  // created immortal, then N applies
  CHECK(mg("mg k N50 t\r\n") == "HD t50 W\r\n");
  it.created = false;
  it.win = false;
  it.win_sent = true;
  it.stale = true;
  CHECK(mg("mg k s\r\n") == "HD s0 Z X\r\n");  // Z, then X, then W
}

TEST_CASE("meta writer: ms, md and ma replies", "[codec][meta]") {
  auto ms = [](const std::string& line, MetaCode code, uint64_t cas) {
    return reply_to(line, [&](ByteBuffer& out, const MetaFlags& m, std::string_view k) {
      write_ms_reply(out, m, k, code, cas);
    });
  };
  CHECK(ms("ms k 1 c k O9 s\r\nx\r\n", MetaCode::kHD, 7) == "HD c7 kk O9\r\n");  // no s
  CHECK(ms("ms k 1 c k\r\nx\r\n", MetaCode::kNS, 7) == "NS c0 kk\r\n");          // c0 unless stored
  CHECK(ms("ms k 1 q\r\nx\r\n", MetaCode::kHD, 7).empty());
  CHECK(ms("ms k 1 q\r\nx\r\n", MetaCode::kEX, 7) == "EX\r\n");
  auto md = [](const std::string& line, MetaCode code) {
    return reply_to(line, [&](ByteBuffer& out, const MetaFlags& m, std::string_view k) {
      write_md_reply(out, m, k, code);
    });
  };
  CHECK(md("md k k O3\r\n", MetaCode::kNF) == "NF kk O3\r\n");
  CHECK(md("md k q\r\n", MetaCode::kHD).empty());
  auto ma = [](const std::string& line, MetaCode code, const MetaItem* it) {
    return reply_to(line, [&](ByteBuffer& out, const MetaFlags& m, std::string_view k) {
      write_ma_reply(out, m, k, code, it, kNow);
    });
  };
  MetaItem n = item("42");
  CHECK(ma("ma k v c t\r\n", MetaCode::kHD, &n) == "VA 2 c99 t100\r\n42\r\n");
  CHECK(ma("ma k q v\r\n", MetaCode::kHD, &n).empty());  // an existing counter: quiet
  n.created = true;
  CHECK(ma("ma k q v t N30\r\n", MetaCode::kHD, &n) == "VA 2 t-1\r\n42\r\n");  // created: not
  CHECK(ma("ma k O5 k c\r\n", MetaCode::kEX, nullptr) == "EX O5 kk\r\n");
}
