// Client-side memcache codec: encoders round-trip through the server decoder, and the response
// decoder handles every reply kind whole and one byte at a time.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "protocol/memcache/client_codec.h"

using namespace cachetier;
using namespace cachetier::memcache;

namespace {

Request decode_request(const ByteBuffer& b, RequestDecoder& dec, size_t& consumed) {
  Request req;
  DecodeResult r = dec.feed(b.view(), req);
  REQUIRE(r.status == DecodeStatus::kComplete);
  consumed = r.consumed;
  return req;
}

struct Unit {
  ResponseKind kind;
  std::string key, value, flags;
  uint64_t cas = 0, number = 0;
  uint32_t client_flags = 0;
};

std::vector<Unit> decode_responses(const std::string& in, size_t step) {
  ResponseDecoder dec;
  std::vector<Unit> out;
  std::string buf;
  size_t fed = 0;
  while (fed < in.size()) {
    size_t n = step == 0 ? in.size() : std::min(step, in.size() - fed);
    buf.append(in, fed, n);
    fed += n;
    for (;;) {
      Response r;
      DecodeResult res = dec.feed(buf, r);
      if (res.status != DecodeStatus::kComplete) {
        REQUIRE(res.status == DecodeStatus::kNeedMore);
        break;
      }
      out.push_back({r.kind, std::string(r.key), std::string(r.value), std::string(r.meta_flags),
                     r.cas, r.number, r.client_flags});
      buf.erase(0, res.consumed);
    }
  }
  REQUIRE(buf.empty());
  return out;
}

}  // namespace

TEST_CASE("encoders round-trip through the server decoder", "[codec][client]") {
  ByteBuffer b;
  std::vector<std::string_view> keys{"a", "b"};
  encode_retrieval(b, Command::kGets, keys);
  encode_retrieval(b, Command::kGat, keys, 60);
  encode_storage(b, Command::kCas, "k", 9, 100, "val\r\nue", 42, true);
  encode_delete(b, "k");
  encode_arith(b, Command::kDecr, "k", 7);
  encode_touch(b, "k", -1);
  encode_meta(b, Command::kMetaSet, "k", "T10 F3", "xyz");
  encode_meta(b, Command::kMetaGet, "k", "v c");
  encode_meta(b, Command::kMetaNoop, "", "");

  RequestDecoder dec;
  size_t used = 0;
  Request r = decode_request(b, dec, used);
  CHECK(r.command == Command::kGets);
  CHECK(r.keys.size() == 2);
  b.consume(used);
  r = decode_request(b, dec, used);
  CHECK(r.command == Command::kGat);
  CHECK(r.exptime == 60);
  b.consume(used);
  r = decode_request(b, dec, used);
  CHECK(r.command == Command::kCas);
  CHECK(r.value == "val\r\nue");
  CHECK(r.cas_unique == 42);
  CHECK(r.client_flags == 9);
  CHECK(r.noreply);
  b.consume(used);
  r = decode_request(b, dec, used);
  CHECK(r.command == Command::kDelete);
  b.consume(used);
  r = decode_request(b, dec, used);
  CHECK(r.command == Command::kDecr);
  CHECK(r.delta == 7);
  b.consume(used);
  r = decode_request(b, dec, used);
  CHECK(r.command == Command::kTouch);
  CHECK(r.exptime == -1);
  b.consume(used);
  r = decode_request(b, dec, used);
  CHECK(r.command == Command::kMetaSet);
  CHECK(r.value == "xyz");
  CHECK(r.meta.ttl == 10);
  b.consume(used);
  r = decode_request(b, dec, used);
  CHECK(r.command == Command::kMetaGet);
  b.consume(used);
  r = decode_request(b, dec, used);
  CHECK(r.command == Command::kMetaNoop);
  b.consume(used);
  CHECK(b.empty());
}

TEST_CASE("response decoder: every reply kind, whole and byte at a time", "[codec][client]") {
  const std::string in =
      "VALUE k 5 3 99\r\nabc\r\nVALUE k2 0 0\r\n\r\nEND\r\nSTORED\r\nNOT_STORED\r\nEXISTS\r\n"
      "NOT_FOUND\r\nDELETED\r\nTOUCHED\r\nOK\r\n12345\r\nSTAT pid 77\r\nVERSION 1.2\r\n"
      "ERROR\r\nCLIENT_ERROR bad\r\nSERVER_ERROR oops\r\nVA 2 c5 f1\r\nhi\r\nHD c1\r\nEN\r\n"
      "NS\r\nEX\r\nNF\r\nMN\r\n";
  for (size_t step : {size_t{0}, size_t{1}, size_t{7}}) {
    auto u = decode_responses(in, step);
    REQUIRE(u.size() == 23);
    CHECK(u[0].kind == ResponseKind::kValue);
    CHECK(u[0].key == "k");
    CHECK(u[0].value == "abc");
    CHECK(u[0].cas == 99);
    CHECK(u[0].client_flags == 5);
    CHECK(u[1].value.empty());
    CHECK(u[2].kind == ResponseKind::kEnd);
    CHECK(u[3].kind == ResponseKind::kStored);
    CHECK(u[4].kind == ResponseKind::kNotStored);
    CHECK(u[5].kind == ResponseKind::kExists);
    CHECK(u[6].kind == ResponseKind::kNotFound);
    CHECK(u[7].kind == ResponseKind::kDeleted);
    CHECK(u[8].kind == ResponseKind::kTouched);
    CHECK(u[9].kind == ResponseKind::kOk);
    CHECK(u[10].kind == ResponseKind::kNumber);
    CHECK(u[10].number == 12345);
    CHECK(u[11].kind == ResponseKind::kStat);
    CHECK(u[11].key == "pid");
    CHECK(u[11].value == "77");
    CHECK(u[12].kind == ResponseKind::kVersion);
    CHECK(u[12].value == "1.2");
    CHECK(u[13].kind == ResponseKind::kError);
    CHECK(u[14].kind == ResponseKind::kClientError);
    CHECK(u[14].value == "bad");
    CHECK(u[15].kind == ResponseKind::kServerError);
    CHECK(u[16].kind == ResponseKind::kMetaVA);
    CHECK(u[16].value == "hi");
    CHECK(u[16].flags == "c5 f1");
    CHECK(u[17].kind == ResponseKind::kMetaHD);
    CHECK(u[17].flags == "c1");
    CHECK(u[18].kind == ResponseKind::kMetaEN);
    CHECK(u[19].kind == ResponseKind::kMetaNS);
    CHECK(u[20].kind == ResponseKind::kMetaEX);
    CHECK(u[21].kind == ResponseKind::kMetaNF);
    CHECK(u[22].kind == ResponseKind::kMetaMN);
  }
}

TEST_CASE("response decoder rejects garbage", "[codec][client][errors]") {
  ResponseDecoder dec;
  Response r;
  CHECK(dec.feed("WHAT\r\n", r).status == DecodeStatus::kFatal);
  CHECK(dec.feed("VALUE k x 3\r\nabc\r\n", r).status == DecodeStatus::kFatal);
  CHECK(dec.feed("VALUE k 0 3\r\nabcXY", r).status == DecodeStatus::kFatal);
  CHECK(dec.feed("VALUE k 0 3\r\nab", r).status == DecodeStatus::kNeedMore);
}
