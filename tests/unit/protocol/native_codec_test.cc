// Native protocol codec: every op and reply round-trips, fed whole and one byte at a time;
// malformed frames get an error reply when the id is known and are fatal otherwise.
#include <msgpack.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "protocol/native/native.h"
#include "protocol/native/reader.h"

using namespace cachetier;
using namespace cachetier::native;
using namespace std::string_literals;  // literals below carry NUL bytes

namespace {

constexpr size_t kFrameLimit = 1 << 20;

// Feeds `wire` to a fresh Decoder whole, then one byte at a time, and calls check(result,
// message) after each way. Works for both sides (RequestDecoder/Request,
// ResponseDecoder/Response).
template <typename Decoder, typename Message, typename Check>
void decode_both_ways(const std::string& wire, Check check) {
  for (size_t step : {wire.size(), size_t{1}}) {
    Decoder dec(kFrameLimit);
    Message msg;
    std::string buf;
    DecodeResult r{DecodeStatus::kNeedMore, 0, 0, 0, native::Status::kOk, {}};
    for (size_t fed = 0; fed < wire.size();) {
      size_t n = std::min(step, wire.size() - fed);
      buf.append(wire, fed, n);
      fed += n;
      r = dec.feed(buf, msg);
      if (r.status != DecodeStatus::kNeedMore) break;
      if (fed < wire.size()) REQUIRE(r.consumed == 0);
    }
    INFO("step " << step);
    CHECK(r.consumed == wire.size());
    check(r, msg);
  }
}

template <typename Check>
void decode_request_both(const std::string& wire, Check check) {
  decode_both_ways<RequestDecoder, Request>(wire, check);
}

std::string frame_of(const ByteBuffer& b) { return std::string(b.view()); }

std::string raw_frame(const std::string& body) {
  std::string f(1, static_cast<char>(kMagic));
  uint32_t n = static_cast<uint32_t>(body.size());
  f += static_cast<char>(n >> 24);
  f += static_cast<char>(n >> 16);
  f += static_cast<char>(n >> 8);
  f += static_cast<char>(n);
  return f + body;
}

}  // namespace

TEST_CASE("native: hello and single-key ops round-trip", "[native]") {
  ByteBuffer b;
  FrameWriter w(b);
  w.begin_request(1, Op::kHello, 2);
  w.field(kProtoVersion);
  w.uint(kProtocolVersion);
  w.field(kFeatures);
  w.array(2);
  w.str("versions");
  w.str("multi");
  w.end();
  decode_request_both(frame_of(b), [](const DecodeResult& r, const Request& q) {
    REQUIRE(r.status == DecodeStatus::kComplete);
    CHECK(q.id == 1);
    CHECK(q.op == Op::kHello);
    CHECK(q.proto_version == 1);
    CHECK(q.features == std::vector<std::string_view>{"versions", "multi"});
  });

  b.clear();
  w.begin_request(0xFFFFFFFFFFFFull, Op::kSet, 5);
  w.field(kKey);
  w.bin("k\0y"s);
  w.field(kValue);
  w.bin(std::string(3000, 'v'));
  w.field(kFlags);
  w.uint(0xFFFFFFFFu);
  w.field(kTtl);
  w.sint(-1);
  w.field(kVersion);
  w.uint(77);
  w.end();
  decode_request_both(frame_of(b), [](const DecodeResult& r, const Request& q) {
    REQUIRE(r.status == DecodeStatus::kComplete);
    CHECK(q.id == 0xFFFFFFFFFFFFull);
    CHECK(q.op == Op::kSet);
    CHECK(q.key == std::string_view("k\0y", 3));
    CHECK(q.value.size() == 3000);
    CHECK(q.flags == 0xFFFFFFFFu);
    CHECK(q.ttl == -1);
    CHECK(q.has_version);
    CHECK(q.version == 77);
  });

  for (Op op : {Op::kGet, Op::kGets, Op::kDelete, Op::kIncr, Op::kDecr}) {
    b.clear();
    w.begin_request(9, op, 2);
    w.field(kKey);
    w.str("key");
    w.field(kNumber);
    w.uint(5);
    w.end();
    decode_request_both(frame_of(b), [op](const DecodeResult& r, const Request& q) {
      REQUIRE(r.status == DecodeStatus::kComplete);
      CHECK(q.op == op);
      CHECK(q.key == "key");
      CHECK(q.delta == 5);
    });
  }
  b.clear();
  w.begin_request(3, Op::kCas, 3);
  w.field(kKey);
  w.str("k");
  w.field(kValue);
  w.bin("v");
  w.field(kCas);
  w.uint(1234);
  w.end();
  decode_request_both(frame_of(b), [](const DecodeResult& r, const Request& q) {
    REQUIRE(r.status == DecodeStatus::kComplete);
    CHECK(q.cas == 1234);
  });
}

TEST_CASE("native: multi-key ops round-trip", "[native]") {
  ByteBuffer b;
  FrameWriter w(b);
  w.begin_request(5, Op::kMultiGet, 1);
  w.field(kKeys);
  w.array(3);
  w.str("a");
  w.str("b");
  w.bin("c");
  w.end();
  decode_request_both(frame_of(b), [](const DecodeResult& r, const Request& q) {
    REQUIRE(r.status == DecodeStatus::kComplete);
    CHECK(q.keys == std::vector<std::string_view>{"a", "b", "c"});
  });
  b.clear();
  w.begin_request(6, Op::kMultiSet, 1);
  w.field(kItems);
  w.array(2);
  w.array(4);
  w.str("k1");
  w.bin("v1");
  w.uint(3);
  w.sint(60);
  w.array(2);
  w.str("k2");
  w.bin("v2");
  w.end();
  decode_request_both(frame_of(b), [](const DecodeResult& r, const Request& q) {
    REQUIRE(r.status == DecodeStatus::kComplete);
    REQUIRE(q.items.size() == 2);
    CHECK(q.items[0].key == "k1");
    CHECK(q.items[0].flags == 3);
    CHECK(q.items[0].ttl == 60);
    CHECK(q.items[1].value == "v2");
  });
}

TEST_CASE("native: pipelined frames decode in order", "[native]") {
  ByteBuffer b;
  FrameWriter w(b);
  for (uint64_t id = 0; id < 100; ++id) {
    w.begin_request(id, Op::kGet, 1);
    w.field(kKey);
    w.str("key" + std::to_string(id));
    w.end();
  }
  RequestDecoder dec(kFrameLimit);
  Request req;
  std::string_view in = b.view();
  for (uint64_t id = 0; id < 100; ++id) {
    DecodeResult r = dec.feed(in, req);
    REQUIRE(r.status == DecodeStatus::kComplete);
    CHECK(req.id == id);
    CHECK(req.key == "key" + std::to_string(id));
    in.remove_prefix(r.consumed);
  }
  CHECK(in.empty());
}

TEST_CASE("native: replies round-trip", "[native]") {
  ByteBuffer b;
  FrameWriter w(b);
  w.begin_reply(42, native::Status::kOk, 4);
  w.field(kValues);
  w.array(2);
  w.array(3);
  w.bin("val");
  w.uint(7);
  w.uint(99);
  w.nil();
  w.field(kStatuses);
  w.array(2);
  w.uint(0);
  w.uint(3);
  w.field(kStats);
  w.map(1);
  w.str("curr_items");
  w.str("12");
  w.field(kMessage);
  w.str("fine");
  w.end();
  decode_both_ways<ResponseDecoder, Response>(
      frame_of(b), [](const DecodeResult& r, const Response& resp) {
        REQUIRE(r.status == DecodeStatus::kComplete);
        CHECK(resp.id == 42);
        REQUIRE(resp.values.size() == 2);
        CHECK(resp.values[0].value == "val");
        CHECK(resp.values[0].flags == 7);
        CHECK(resp.values[0].cas == 99);
        CHECK_FALSE(resp.values[1].present);
        CHECK(resp.statuses ==
              std::vector<native::Status>{native::Status::kOk, native::Status::kNotStored});
        REQUIRE(resp.stats.size() == 1);
        CHECK(resp.stats[0].second == "12");
        CHECK(resp.message == "fine");
      });
}

TEST_CASE("native: malformed frames", "[native][errors]") {
  RequestDecoder dec(1024);
  Request req;
  // Not our magic: fatal.
  CHECK(dec.feed("get k\r\n", req).status == DecodeStatus::kFatal);
  // Declared length over the limit: fatal before the body arrives (nothing allocated).
  std::string big = raw_frame("");
  big[1] = 0x7f;
  CHECK(dec.feed(big, req).status == DecodeStatus::kFatal);
  // Not msgpack / not [id, op, fields]: fatal (no id to answer).
  CHECK(dec.feed(raw_frame("\xc1"), req).status == DecodeStatus::kFatal);
  CHECK(dec.feed(raw_frame("\x92\x01\x01"), req).status == DecodeStatus::kFatal);
  CHECK(dec.feed(raw_frame("\x93\xa1x\x01\x80"), req).status == DecodeStatus::kFatal);
  // Trailing bytes after the body object: fatal.
  CHECK(dec.feed(raw_frame("\x93\x01\x13\x80\x00"s), req).status == DecodeStatus::kFatal);
  // An array that claims 4 billion elements in a 9-byte body: fatal, no allocation.
  CHECK(dec.feed(raw_frame("\x93\x01\x0e\xdd\xff\xff\xff\xff\x00"s), req).status ==
        DecodeStatus::kFatal);
  // Nesting deeper than allowed.
  CHECK(dec.feed(raw_frame("\x93\x01\x13" + std::string(20, '\x91') + "\x80"), req).status ==
        DecodeStatus::kFatal);

  // Id known: an error reply for that id.
  DecodeResult r = dec.feed(raw_frame("\x93\x07\x63\x80"), req);  // op 99
  CHECK(r.status == DecodeStatus::kError);
  CHECK(r.id == 7);
  CHECK(r.error == native::Status::kUnknownOp);
  r = dec.feed(raw_frame("\x93\x08\x01\x90"), req);  // fields not a map
  CHECK(r.status == DecodeStatus::kError);
  CHECK(r.error == native::Status::kBadRequest);
  r = dec.feed(raw_frame("\x93\x09\x01\x80"), req);  // get without a key
  CHECK(r.status == DecodeStatus::kError);
  CHECK(r.id == 9);
  ByteBuffer b;
  FrameWriter w(b);
  w.begin_request(10, Op::kGet, 1);
  w.field(kKey);
  w.str(std::string(251, 'k'));  // key too long
  w.end();
  r = dec.feed(b.view(), req);
  CHECK(r.status == DecodeStatus::kError);
  CHECK(r.error == native::Status::kBadRequest);
  CHECK(r.consumed == b.size());
  b.clear();
  w.begin_request(11, Op::kSet, 2);
  w.field(kKey);
  w.str("k");
  w.field(kValue);
  w.uint(5);  // value must be bytes
  w.end();
  CHECK(dec.feed(b.view(), req).status == DecodeStatus::kError);
  // After all that, a good frame still decodes.
  b.clear();
  w.begin_request(12, Op::kNoop, 0);
  w.end();
  CHECK(dec.feed(b.view(), req).status == DecodeStatus::kComplete);
}

TEST_CASE("native: prescan bounds", "[native][errors]") {
  CHECK(prescan("\x80"));
  CHECK(prescan("\x93\x01\x02\x03"));
  CHECK_FALSE(prescan("\x93\x01\x02"));  // one element missing
  CHECK_FALSE(
      prescan("\xc4\x05"
              "abc"));                                    // bin longer than the body
  CHECK_FALSE(prescan("\xdc\xff\xff"));                   // array16 of 65535 in 3 bytes
  CHECK_FALSE(prescan("\x01\x02"));                       // two objects
  CHECK(prescan("\xdf\x00\x00\x00\x01\x01\x02"s));        // map32 with one pair
  CHECK_FALSE(prescan("\xdf\x00\x00\x00\x02\x01\x02"s));  // map32 claiming two pairs
}

// MsgReader against msgpack-c's packer: every integer width and sign, str and bin of every
// length encoding, array and map headers of every width, nil, and skip over each.
TEST_CASE("native: MsgReader reads what msgpack-c writes", "[native]") {
  ByteBuffer b;
  msgpack_packer pk;
  msgpack_packer_init(&pk, &b, [](void* data, const char* buf, size_t len) {
    static_cast<ByteBuffer*>(data)->append(std::string_view(buf, len));
    return 0;
  });
  const std::vector<uint64_t> unsigned_values = {
      0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX, 1ull << 32, UINT64_MAX};
  for (uint64_t v : unsigned_values) {
    b.clear();
    msgpack_pack_uint64(&pk, v);
    MsgReader r(b.view());
    uint64_t got = 0;
    INFO("unsigned " << v);
    CHECK(r.uint(got));
    CHECK(got == v);
    CHECK(r.at_end());
    MsgReader s(b.view());
    int64_t sgot = 0;
    CHECK(s.sint(sgot) == (v <= uint64_t(INT64_MAX)));
  }
  const std::vector<int64_t> signed_values = {
      -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN, -(1ll << 40), INT64_MIN, 5, INT64_MAX};
  for (int64_t v : signed_values) {
    b.clear();
    msgpack_pack_int64(&pk, v);
    MsgReader r(b.view());
    int64_t got = 0;
    INFO("signed " << v);
    CHECK(r.sint(got));
    CHECK(got == v);
    CHECK(r.at_end());
    MsgReader u(b.view());
    uint64_t ugot = 0;
    CHECK(u.uint(ugot) == (v >= 0));  // a negative number is not a uint
  }
  // msgpack-c writes small non-negative int8 as fixint; force the signed encodings by hand.
  for (const std::string& enc : {"\xd0\x05"s, "\xd1\x00\x05"s, "\xd2\x00\x00\x00\x05"s,
                                 "\xd3\x00\x00\x00\x00\x00\x00\x00\x05"s}) {
    uint64_t got = 0;
    MsgReader r(enc);
    CHECK(r.uint(got));
    CHECK(got == 5);
  }
  for (size_t len : {size_t{0}, size_t{31}, size_t{32}, size_t{255}, size_t{256}, size_t{70000}}) {
    std::string text(len, 'x');
    for (bool bin : {false, true}) {
      b.clear();
      if (bin) {
        msgpack_pack_bin(&pk, len);
        msgpack_pack_bin_body(&pk, text.data(), len);
      } else {
        msgpack_pack_str(&pk, len);
        msgpack_pack_str_body(&pk, text.data(), len);
      }
      INFO("bytes " << len << (bin ? " bin" : " str"));
      std::string_view got;
      MsgReader r(b.view());
      CHECK(r.bytes(got));
      CHECK(got == text);
      CHECK(r.at_end());
      MsgReader s(b.view());
      CHECK(s.skip(1));
      CHECK(s.at_end());
      // One byte short: refused.
      MsgReader t(b.view().substr(0, b.size() - 1));
      CHECK_FALSE(t.bytes(got));
    }
  }
  for (uint32_t n : {0u, 15u, 16u, 65535u, 65536u}) {
    for (bool is_map : {false, true}) {
      b.clear();
      if (is_map) {
        msgpack_pack_map(&pk, n);
      } else {
        msgpack_pack_array(&pk, n);
      }
      for (uint32_t i = 0; i < (is_map ? 2 * n : n); ++i) msgpack_pack_nil(&pk);
      INFO((is_map ? "map " : "array ") << n);
      uint32_t got = 0;
      MsgReader r(b.view());
      CHECK((is_map ? r.map(got) : r.array(got)));
      CHECK(got == n);
      bool all_nil = true;
      for (uint32_t i = 0; i < (is_map ? 2 * n : n); ++i) all_nil = all_nil && r.nil();
      CHECK(all_nil);
      CHECK(r.at_end());
      MsgReader s(b.view());
      CHECK(s.skip(2));
      CHECK(s.at_end());
      // A header whose count does not fit in what is left is refused before anything else.
      if (n > 0) {
        MsgReader t(b.view().substr(0, b.size() - 1));
        CHECK_FALSE((is_map ? t.map(got) : t.array(got)));
      }
    }
  }
  // Wrong types are refused, not misread.
  uint64_t u = 0;
  std::string_view sv;
  uint32_t n = 0;
  CHECK_FALSE(MsgReader("\xa1x").uint(u));
  CHECK_FALSE(MsgReader("\x05").bytes(sv));
  CHECK_FALSE(MsgReader("\x80").array(n));
  CHECK_FALSE(MsgReader("\x90").map(n));
  CHECK_FALSE(MsgReader("\xca\x00\x00\x00\x00"s).uint(u));  // float32
  CHECK_FALSE(MsgReader("").uint(u));
  CHECK_FALSE(MsgReader("\xc1").skip(1));  // never-used byte
}

// FrameWriter against msgpack-c's packer: byte for byte the same encodings.
TEST_CASE("native: FrameWriter writes what msgpack-c's packer writes", "[native]") {
  ByteBuffer ours, theirs;
  msgpack_packer pk;
  msgpack_packer_init(&pk, &theirs, [](void* data, const char* buf, size_t len) {
    static_cast<ByteBuffer*>(data)->append(std::string_view(buf, len));
    return 0;
  });
  // The frame header and [id, code, {: compare the bodies after the 5-byte header.
  FrameWriter w(ours);
  w.begin_reply(0, native::Status::kOk, 0);
  msgpack_pack_array(&pk, 3);
  msgpack_pack_uint64(&pk, 0);
  msgpack_pack_uint8(&pk, 0);
  msgpack_pack_map(&pk, 0);
  for (uint64_t v : {0ull, 127ull, 128ull, 255ull, 256ull, 65535ull, 65536ull, 4294967295ull,
                     4294967296ull, 18446744073709551615ull}) {
    w.uint(v);
    msgpack_pack_uint64(&pk, v);
  }
  for (int64_t v : {int64_t{0}, int64_t{5}, int64_t{-1}, int64_t{-32}, int64_t{-33}, int64_t{-128},
                    int64_t{-129}, int64_t{-32768}, int64_t{-32769}, int64_t{INT32_MIN},
                    int64_t{INT32_MIN} - 1, INT64_MIN, int64_t{300}, INT64_MAX}) {
    w.sint(v);
    msgpack_pack_int64(&pk, v);
  }
  for (size_t len : {size_t{0}, size_t{31}, size_t{32}, size_t{255}, size_t{256}, size_t{65535},
                     size_t{65536}}) {
    std::string s(len, 's');
    w.str(s);
    msgpack_pack_str(&pk, len);
    msgpack_pack_str_body(&pk, s.data(), len);
    w.bin(s);
    msgpack_pack_bin(&pk, len);
    msgpack_pack_bin_body(&pk, s.data(), len);
  }
  for (uint32_t n : {0u, 15u, 16u, 65535u, 65536u}) {
    w.array(n);
    msgpack_pack_array(&pk, n);
    w.map(n);
    msgpack_pack_map(&pk, n);
  }
  w.nil();
  msgpack_pack_nil(&pk);
  CHECK(ours.view().substr(kFrameHeader) == theirs.view());
}
