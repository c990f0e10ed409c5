// RESP codec: requests decode the same fed whole and one byte at a time, with redis-server's
// protocol errors; replies round-trip through the client-side decoder; the number helpers
// follow redis-server's string2ll / string2ld / ld2string.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "protocol/resp/reply.h"
#include "protocol/resp/resp.h"

using namespace cachetier;
using namespace cachetier::resp;
using namespace std::string_literals;

namespace {

struct Decoded {
  std::vector<std::vector<std::string>> commands;
  std::string error;  // a fatal error's reply
  size_t left = 0;    // bytes not consumed at the end
};

// Feeds `wire` whole (step 0) or `step` bytes at a time, keeping the unconsumed bytes and
// feeding them again with the next ones, as a connection does.
Decoded decode(const std::string& wire, size_t step, Limits limits = {}) {
  RequestDecoder dec(limits);
  Command cmd;
  Decoded d;
  std::string buf;
  size_t fed = 0;
  while (fed < wire.size() || !buf.empty()) {
    const size_t n = step == 0 ? wire.size() - fed : std::min(step, wire.size() - fed);
    buf.append(wire, fed, n);
    fed += n;
    while (!buf.empty()) {
      DecodeResult r = dec.feed(buf, cmd);
      if (r.status == DecodeStatus::kFatal) {
        d.error.assign(r.error);
        return d;
      }
      if (r.status == DecodeStatus::kNeedMore) break;
      REQUIRE(r.consumed > 0);
      if (r.status == DecodeStatus::kComplete) {
        std::vector<std::string> args(cmd.argv.begin(), cmd.argv.end());
        d.commands.push_back(args);
      }
      buf.erase(0, r.consumed);
    }
    if (n == 0) break;
  }
  d.left = buf.size();
  return d;
}

void both_ways(const std::string& wire, const std::vector<std::vector<std::string>>& want,
               const std::string& error = "", size_t left = 0) {
  for (size_t step : {size_t{0}, size_t{1}, size_t{7}}) {
    INFO("step " << step);
    Decoded d = decode(wire, step);
    CHECK(d.commands == want);
    CHECK(d.error == error);
    if (error.empty()) CHECK(d.left == left);
  }
}

}  // namespace

TEST_CASE("resp: multibulk commands decode whole and byte by byte") {
  both_ways("*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n", {{"GET", "foo"}});
  both_ways("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n", {{"SET", "k", "a\r\nb"}});
  both_ways("*1\r\n$0\r\n\r\n", {{""}});
  both_ways("*2\r\n$3\r\nGET\r\n$3\r\nb\0c\r\n"s, {{"GET", "b\0c"s}});
  // Pipelined, with empty multibulks between (no reply, no command).
  both_ways("*1\r\n$4\r\nPING\r\n*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", {{"PING"}, {"PING"}});
  // Incomplete: waits, consuming nothing.
  const std::string partial = "*2\r\n$3\r\nGET\r\n$3\r\nfo";
  both_ways(partial, {}, "", partial.size());
}

TEST_CASE("resp: the need of a large argument is reported") {
  RequestDecoder dec;
  Command cmd;
  const std::string head = "*2\r\n$3\r\nSET\r\n$100000\r\n";
  DecodeResult r = dec.feed(head, cmd);
  CHECK(r.status == DecodeStatus::kNeedMore);
  CHECK(r.need == head.size() + 100000 + 2);
}

TEST_CASE("resp: inline commands split as redis-server splits them") {
  both_ways("PING\r\n", {{"PING"}});
  both_ways("set a b\n", {{"set", "a", "b"}});
  both_ways("  ECHO \"x\\x41\\n\\ty\"  'it\\'s'\r\n", {{"ECHO", "xA\n\ty", "it's"}});
  both_ways("\r\n\r\nPING\r\n", {{"PING"}});
  both_ways("GET a\"b c\"\r\n", {{"GET", "ab c"}});
  both_ways("SET \"a b\r\n", {}, "-ERR Protocol error: unbalanced quotes in request\r\n");
  both_ways("GET \"a\"b\r\n", {}, "-ERR Protocol error: unbalanced quotes in request\r\n");
  both_ways("GET 'a\r\n", {}, "-ERR Protocol error: unbalanced quotes in request\r\n");
}

TEST_CASE("resp: protocol errors and limits as redis-server's") {
  both_ways("*abc\r\n", {}, "-ERR Protocol error: invalid multibulk length\r\n");
  both_ways("*2147483648\r\n", {}, "-ERR Protocol error: invalid multibulk length\r\n");
  both_ways("*01\r\n", {}, "-ERR Protocol error: invalid multibulk length\r\n");
  both_ways("*1\r\n+PING\r\n", {}, "-ERR Protocol error: expected '$', got '+'\r\n");
  both_ways("*1\r\n$-1\r\n", {}, "-ERR Protocol error: invalid bulk length\r\n");
  both_ways("*1\r\n$536870913\r\n", {}, "-ERR Protocol error: invalid bulk length\r\n");
  both_ways("*" + std::string(70000, '1'), {},
            "-ERR Protocol error: too big mbulk count string\r\n");
  both_ways("*1\r\n$" + std::string(70000, '9'), {},
            "-ERR Protocol error: too big bulk count string\r\n");
  both_ways(std::string(70000, 'a'), {}, "-ERR Protocol error: too big inline request\r\n");
  // A smaller proto-max-bulk-len is enforced.
  Limits small;
  small.max_bulk = 10;
  CHECK(decode("*1\r\n$11\r\n", 0, small).error == "-ERR Protocol error: invalid bulk length\r\n");
  CHECK(decode("*1\r\n$10\r\n0123456789\r\n", 0, small).commands.size() == 1);
  // Before authentication: at most 10 arguments of at most 16384 bytes.
  Limits unauth;
  unauth.unauthenticated = true;
  CHECK(decode("*11\r\n", 0, unauth).error ==
        "-ERR Protocol error: unauthenticated multibulk length\r\n");
  CHECK(decode("*1\r\n$16385\r\n", 0, unauth).error ==
        "-ERR Protocol error: unauthenticated bulk length\r\n");
  // Inline off (a RESP-only peer that must not see inline text).
  Limits no_inline;
  no_inline.allow_inline = false;
  CHECK(!decode("PING\r\n", 0, no_inline).error.empty());
}

TEST_CASE("resp: string2ll, string2ld and ld2string as redis-server's") {
  int64_t v = 0;
  CHECK(parse_ll("0", &v));
  CHECK(parse_ll("-9223372036854775808", &v));
  CHECK(v == INT64_MIN);
  CHECK(parse_ll("9223372036854775807", &v));
  CHECK_FALSE(parse_ll("9223372036854775808", &v));
  for (const char* bad : {"", "-", "-0", "007", "+1", " 1", "1 ", "1.0", "0x10"}) {
    CHECK_FALSE(parse_ll(bad, &v));
  }
  long double d = 0;
  CHECK(parse_ld("1e5", &d));
  CHECK(parse_ld("inf", &d));
  for (const char* bad : {"", " 1", "1 ", "nan", "abc", "1e99999"}) CHECK_FALSE(parse_ld(bad, &d));
  CHECK_FALSE(parse_ld("1\0"s, &d));
  CHECK(format_ld(1.5L) == "1.5");
  CHECK(format_ld(10.0L) == "10");
  CHECK(format_ld(-0.0L) == "0");
  CHECK(format_ld(0.1L + 0.2L) == "0.3");
  CHECK(format_ld(1.0L / 3) == "0.33333333333333333");  // 17 digits after the point
}

TEST_CASE("resp: replies in RESP2 and RESP3 round-trip through the client decoder") {
  for (bool resp3 : {false, true}) {
    ByteBuffer out;
    Writer w{out, resp3};
    w.array(7);
    w.simple("OK");
    w.error("ERR x");
    w.integer(-42);
    w.bulk("a\r\nb");
    w.null();
    w.map(1);
    w.bulk("k");
    w.boolean(true);
    w.verbatim("text");
    const std::string wire(out.view());
    for (size_t cut = 0; cut < wire.size(); ++cut) {
      Value v;
      CHECK(decode_reply(wire.substr(0, cut), v).status == ReplyResult::kNeedMore);
    }
    Value v;
    ReplyResult r = decode_reply(wire, v);
    REQUIRE(r.status == ReplyResult::kComplete);
    CHECK(r.consumed == wire.size());
    REQUIRE(v.items.size() == 7);
    CHECK(v.items[0].str == "OK");
    CHECK(v.items[1].type == '-');
    CHECK(v.items[2].integer == -42);
    CHECK(v.items[3].str == "a\r\nb");
    CHECK(v.items[4].is_null());
    CHECK(v.items[5].type == (resp3 ? '%' : '*'));
    CHECK(v.items[6].str == (resp3 ? "txt:text" : "text"));
    CHECK(to_resp(v).size() > 0);
  }
  // An error quoting the request never breaks the stream (fuzz: HELLO 3 with an option "I5\r\n").
  ByteBuffer err;
  Writer{err, false}.error("ERR Syntax error in HELLO option 'I5\r\n'");
  CHECK(err.view() == "-ERR Syntax error in HELLO option 'I5  '\r\n");
  CHECK(error_line("ERR a\nb") == "-ERR a b\r\n");
  ByteBuffer cmd;
  encode_command(cmd, {"SET", "k", "v"});
  CHECK(cmd.view() == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
  Value v;
  CHECK(decode_reply("?what\r\n", v).status == ReplyResult::kError);
}
