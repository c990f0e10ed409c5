// Server-side memcache codec: every fixture is fed whole and then one byte at a time, and both
// ways must produce the same events.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "protocol/memcache/server_codec.h"

using namespace cachetier::memcache;

namespace {

struct Event {
  DecodeStatus status;
  Command command = Command::kGet;
  std::vector<std::string> keys;
  std::string value;
  std::string error;
  bool noreply = false;
  Request req;  // copy of scalar fields (views inside are not used after feed)
};

// Feeds `input` in chunks of `step` bytes (0 = whole) and collects what the decoder produced.
std::vector<Event> decode(const std::string& input, size_t step, DecoderLimits limits = {}) {
  RequestDecoder dec(limits);
  Request req;
  std::vector<Event> events;
  std::string buf;
  size_t fed = 0;
  while (fed < input.size() || !buf.empty()) {
    if (fed < input.size()) {
      size_t n = step == 0 ? input.size() : std::min(step, input.size() - fed);
      buf.append(input, fed, n);
      fed += n;
    }
    bool progress = true;
    while (!buf.empty() && progress) {
      DecodeResult r = dec.feed(buf, req);
      progress = r.consumed > 0;
      if (r.status == DecodeStatus::kNeedMore) {
        buf.erase(0, r.consumed);
        break;
      }
      Event e;
      e.status = r.status;
      e.error = std::string(r.error);
      if (r.status == DecodeStatus::kComplete) {
        e.command = req.command;
        for (auto k : req.keys) e.keys.emplace_back(k);
        e.value = std::string(req.value);
        e.noreply = req.noreply;
        e.req.client_flags = req.client_flags;
        e.req.exptime = req.exptime;
        e.req.cas_unique = req.cas_unique;
        e.req.delta = req.delta;
        e.req.delay = req.delay;
        e.req.verbosity = req.verbosity;
        e.req.meta = req.meta;
        e.req.meta.opaque = {};
        e.req.meta.raw_key = {};
      }
      events.push_back(std::move(e));
      buf.erase(0, r.consumed);
      if (r.status == DecodeStatus::kFatal) return events;
    }
    if (fed >= input.size() && !progress) break;
  }
  return events;
}

// Decodes whole and byte-at-a-time, checks both agree, returns the events.
std::vector<Event> decode_both(const std::string& input, DecoderLimits limits = {}) {
  auto whole = decode(input, 0, limits);
  auto bytewise = decode(input, 1, limits);
  REQUIRE(whole.size() == bytewise.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    CHECK(whole[i].status == bytewise[i].status);
    CHECK(whole[i].command == bytewise[i].command);
    CHECK(whole[i].keys == bytewise[i].keys);
    CHECK(whole[i].value == bytewise[i].value);
    CHECK(whole[i].error == bytewise[i].error);
  }
  return whole;
}

Event one(const std::string& input, DecoderLimits limits = {}) {
  auto ev = decode_both(input, limits);
  REQUIRE(ev.size() == 1);
  return ev[0];
}

}  // namespace

TEST_CASE("retrieval commands carry every key", "[codec]") {
  auto e = one("get a bb ccc\r\n");
  CHECK(e.status == DecodeStatus::kComplete);
  CHECK(e.command == Command::kGet);
  CHECK(e.keys == std::vector<std::string>{"a", "bb", "ccc"});
  CHECK(one("gets k\r\n").command == Command::kGets);
  auto g = one("gat 100 k1 k2\r\n");
  CHECK(g.command == Command::kGat);
  CHECK(g.req.exptime == 100);
  CHECK(g.keys.size() == 2);
  CHECK(one("gats -1 k\r\n").req.exptime == -1);
  // A bare \n ends a line too.
  CHECK(one("get k\n").keys == std::vector<std::string>{"k"});
}

TEST_CASE("storage commands take their data block", "[codec]") {
  auto e = one("set k 5 100 3\r\nabc\r\n");
  CHECK(e.command == Command::kSet);
  CHECK(e.keys[0] == "k");
  CHECK(e.req.client_flags == 5);
  CHECK(e.req.exptime == 100);
  CHECK(e.value == "abc");
  CHECK_FALSE(e.noreply);
  CHECK(one("add k 0 0 0\r\n\r\n").value.empty());
  CHECK(one("replace k 0 0 1 noreply\r\nx\r\n").noreply);
  CHECK(one("append k 0 0 1\r\nx\r\n").command == Command::kAppend);
  CHECK(one("prepend k 0 0 1\r\nx\r\n").command == Command::kPrepend);
  auto c = one("cas k 0 0 2 77 noreply\r\nhi\r\n");
  CHECK(c.command == Command::kCas);
  CHECK(c.req.cas_unique == 77);
  CHECK(c.noreply);
  // Data may contain \r\n and binary bytes.
  std::string bin("set b 0 0 4\r\n\r\n\0\xff\r\n", 19);
  CHECK(one(bin).value == std::string("\r\n\0\xff", 4));
  CHECK(one("set k 4294967295 0 1\r\nx\r\n").req.client_flags == 4294967295u);
}

TEST_CASE("other classic commands", "[codec]") {
  CHECK(one("delete k\r\n").command == Command::kDelete);
  CHECK(one("delete k 0\r\n").status == DecodeStatus::kComplete);
  CHECK(one("delete k noreply\r\n").noreply);
  CHECK(one("delete k 5\r\n").error == reply::kDeleteUsage);
  auto i = one("incr k 18446744073709551615\r\n");
  CHECK(i.command == Command::kIncr);
  CHECK(i.req.delta == 18446744073709551615ull);
  CHECK(one("decr k 1 noreply\r\n").noreply);
  CHECK(one("incr k -1\r\n").error == reply::kBadDelta);
  CHECK(one("incr k 18446744073709551616\r\n").error == reply::kBadDelta);
  CHECK(one("touch k 10\r\n").req.exptime == 10);
  CHECK(one("flush_all\r\n").req.delay == 0);
  CHECK(one("flush_all 30\r\n").req.delay == 30);
  CHECK(one("flush_all noreply\r\n").noreply);
  CHECK(one("flush_all 10 noreply\r\n").noreply);
  CHECK(one("version\r\n").command == Command::kVersion);
  CHECK(one("version x\r\n").error == reply::kError);
  CHECK(one("verbosity 1\r\n").req.verbosity == 1);
  CHECK(one("verbosity noreply\r\n").noreply);
  CHECK(one("verbosity\r\n").error == reply::kError);
  CHECK(one("stats\r\n").command == Command::kStats);
  CHECK(one("stats settings\r\n").command == Command::kStats);
  CHECK(one("quit\r\n").command == Command::kQuit);
}

TEST_CASE("meta commands and their flags", "[codec][meta]") {
  auto g = one("mg key v c f k O123 T30 N10 R5 q\r\n");
  CHECK(g.command == Command::kMetaGet);
  CHECK(g.keys[0] == "key");
  const MetaFlags& m = g.req.meta;
  CHECK(m.has('v'));
  CHECK(m.has('q'));
  CHECK_FALSE(m.has('s'));
  CHECK(m.ttl == 30);
  CHECK(m.vivify_ttl == 10);
  CHECK(m.recache_ttl == 5);
  CHECK(std::string(m.order, m.count) == "vcfkOTNRq");

  auto s = one("ms key 3 T60 F7 C99 E100 I MA c\r\nabc\r\n");
  CHECK(s.command == Command::kMetaSet);
  CHECK(s.value == "abc");
  CHECK(s.req.meta.client_flags == 7);
  CHECK(s.req.meta.compare_cas == 99);
  CHECK(s.req.meta.new_cas == 100);
  CHECK(s.req.meta.mode == 'A');
  CHECK(s.req.meta.has('I'));

  auto d = one("md key q I T30 x\r\n");
  CHECK(d.command == Command::kMetaDelete);
  CHECK(d.req.meta.has('x'));
  auto a = one("ma key MD D5 N0 J10 v\r\n");
  CHECK(a.command == Command::kMetaArithmetic);
  CHECK(a.req.meta.delta == 5);
  CHECK(a.req.meta.initial == 10);
  CHECK(a.req.meta.mode == 'D');
  CHECK(one("mn\r\n").command == Command::kMetaNoop);
  // Base64 key: decoded for the engine.
  CHECK(one("mg Zm9v b v\r\n").keys[0] == "foo");
  CHECK(one("mg AAEC b v\r\n").keys[0] == std::string("\0\1\2", 3));
}

TEST_CASE("meta errors", "[codec][meta][errors]") {
  CHECK(one("mg\r\n").error == reply::kError);
  CHECK(one("mg k zz\r\n").error == reply::kInvalidFlag);
  CHECK(one("mg k !\r\n").error == reply::kInvalidFlag);
  CHECK(one("mg k Tabc\r\n").error == reply::kBadToken);
  CHECK(one("mg Zm9 b\r\n").error == reply::kBadKey);
  CHECK(one("ms k\r\n").error == reply::kBadFormat);
  CHECK(one("ms k abc\r\n").error == reply::kBadFormat);
  CHECK(one("ma k MX\r\n").error == reply::kBadMaMode);
  // A refused ms drops its data block, so the next command parses cleanly.
  auto ev = decode_both("ms k 2 MX\r\nab\r\nmn\r\n");
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].error == reply::kBadMode);
  CHECK(ev[1].command == Command::kMetaNoop);
  auto big = decode_both("ms k 20 T0\r\n01234567890123456789\r\nmn\r\n", {1024, 10});
  REQUIRE(big.size() == 2);
  CHECK(big[0].error == reply::kTooLarge);
  CHECK(big[1].command == Command::kMetaNoop);
}

TEST_CASE("meta errors are memcached 1.6's, checked in its order", "[codec][meta][errors]") {
  CHECK(one("mg k v v\r\n").error == reply::kDuplicateFlag);
  CHECK(one("mg k Tabc Y\r\n").error == reply::kInvalidFlag);  // the last problem is named
  CHECK(one("mg k Tabc\r\n").error == reply::kBadToken);
  CHECK(one("mg k Fabc\r\n").error == reply::kBadFormat);
  CHECK(one("mg k MAB\r\n").error == reply::kBadMLength);
  CHECK(one("ma k Jx\r\n").error == reply::kInvalidOrDuplicateFlag);  // md, ma: one line
  CHECK(one("md k q q\r\n").error == reply::kInvalidOrDuplicateFlag);
  CHECK(one("ma k Md\r\n").error == reply::kBadMaMode);  // lower case is no mode
  CHECK(one("mg k O" + std::string(32, 'x') + "\r\n").error == reply::kOpaqueTooLong);
  CHECK(one("mg k O" + std::string(31, 'x') + "\r\n").status == DecodeStatus::kComplete);
  std::string flags;
  for (char c : std::string("bcfhklqstuvNOR"))
    flags += std::string(" ") + c + (c == 'N' || c == 'R' ? "1" : "");
  CHECK(one("mg k" + flags + " P L T1 C1\r\n").error == reply::kMgFlagsTooLong);
  // Too many flags on ms: refused before its length is read, so (as memcached) the data line
  // that follows is read as a command.
  auto many = decode_both("ms k 2 T1 F1 C1 I k c O1 q s b MS N1 R1 P L l h t f v\r\nab\r\n");
  REQUIRE(many.size() == 2);
  CHECK(many[0].error == reply::kFlagsTooLong);
  CHECK(many[1].error == reply::kError);
  // Every meta command takes every flag letter (an irrelevant one is ignored).
  CHECK(one("mg k C5 I J3 D2\r\n").status == DecodeStatus::kComplete);
  // An ms refused for its flags drops its data block.
  auto ev = decode_both("ms k 2 Y\r\nab\r\nmn\r\n");
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].error == reply::kInvalidFlag);
  CHECK(ev[1].command == Command::kMetaNoop);
}

TEST_CASE("classic errors keep the connection usable", "[codec][errors]") {
  CHECK(one("bogus\r\n").error == reply::kError);
  CHECK(one("\r\n").error == reply::kError);
  CHECK(one("get\r\n").error == reply::kError);
  CHECK(one("set\r\n").error == reply::kError);
  CHECK(one("set a b c d\r\n").error == reply::kBadFormat);
  CHECK(one("set k 0 0 -1\r\n").error == reply::kBadFormat);
  CHECK(one("touch k abc\r\n").error == reply::kBadExptime);
  CHECK(one("flush_all abc\r\n").error == reply::kBadFormat);
  std::string long_key(251, 'a');
  CHECK(one("get " + long_key + "\r\n").error == reply::kBadFormat);
  CHECK(one("get " + std::string(250, 'a') + "\r\n").status == DecodeStatus::kComplete);
  CHECK(one("get a\x01"
            "b\r\n")
            .error == reply::kBadFormat);
  // A bad key on a storage command drops the data block too.
  auto ev = decode_both("set " + long_key + " 0 0 3\r\nabc\r\nget k\r\n");
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].error == reply::kBadFormat);
  CHECK(ev[1].command == Command::kGet);
  // Bad data chunk: the block is consumed, parsing resumes after it.
  auto bad = decode_both("set k 0 0 3\r\nabcde\r\nget k\r\n");
  REQUIRE(bad.size() == 3);
  CHECK(bad[0].error == reply::kBadChunk);
  CHECK(bad[1].error == reply::kError);  // the leftover "\r\n" is an empty line
  CHECK(bad[2].command == Command::kGet);
}

TEST_CASE("too large values are refused and swallowed", "[codec][limits]") {
  DecoderLimits lim{1024, 16};
  std::string value(100, 'v');
  auto ev = decode_both("set k 0 0 100\r\n" + value + "\r\nget k\r\n", lim);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].status == DecodeStatus::kError);
  CHECK(ev[0].error == reply::kTooLarge);
  CHECK(ev[1].command == Command::kGet);
  // Exactly at the limit is fine.
  CHECK(one("set k 0 0 16\r\n" + std::string(16, 'x') + "\r\n", lim).status ==
        DecodeStatus::kComplete);
}

TEST_CASE("a line longer than the limit is fatal", "[codec][limits]") {
  DecoderLimits lim{64, 1024};
  auto ev = decode("get " + std::string(100, 'k'), 0, lim);
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].status == DecodeStatus::kFatal);
  CHECK(ev[0].error == reply::kLineTooLong);
  // Byte at a time reaches the same verdict.
  auto ev1 = decode("get " + std::string(100, 'k'), 1, lim);
  REQUIRE(ev1.size() == 1);
  CHECK(ev1[0].status == DecodeStatus::kFatal);
  // A line within the limit is not.
  CHECK(one("get " + std::string(50, 'k') + "\r\n", lim).status == DecodeStatus::kComplete);
}

TEST_CASE("need-more reports the size of a pending value", "[codec]") {
  RequestDecoder dec;
  Request req;
  std::string partial = "set k 0 0 1000\r\nabc";
  DecodeResult r = dec.feed(partial, req);
  CHECK(r.status == DecodeStatus::kNeedMore);
  CHECK(r.consumed == 0);
  CHECK(r.need == 16 + 1000 + 2);
}

TEST_CASE("pipelined requests decode in order", "[codec]") {
  std::string in;
  for (int i = 0; i < 100; ++i) {
    in += "set k" + std::to_string(i) + " 0 0 2\r\nv" + std::to_string(i % 10) + "\r\n";
    in += "get k" + std::to_string(i) + "\r\n";
  }
  auto ev = decode_both(in);
  REQUIRE(ev.size() == 200);
  for (int i = 0; i < 100; ++i) {
    CHECK(ev[2 * i].command == Command::kSet);
    CHECK(ev[2 * i + 1].keys[0] == "k" + std::to_string(i));
  }
}

TEST_CASE("memcache request: clear() resets every field and keeps the keys' capacity") {
  cachetier::memcache::Request r;
  r.command = cachetier::memcache::Command::kCas;
  r.keys = {"a", "b", "c"};
  size_t cap = r.keys.capacity();
  r.client_flags = 5;
  r.exptime = 7;
  r.cas_unique = 9;
  r.delta = 11;
  r.noreply = true;
  r.value = "v";
  r.meta.present = 1;
  r.clear();
  CHECK(r.command == cachetier::memcache::Command::kGet);
  CHECK(r.keys.empty());
  CHECK(r.keys.capacity() == cap);
  CHECK(r.client_flags == 0);
  CHECK(r.exptime == 0);
  CHECK(r.cas_unique == 0);
  CHECK(r.delta == 0);
  CHECK_FALSE(r.noreply);
  CHECK(r.value.empty());
  CHECK(r.meta.present == 0);
}
