// Traces and the offline simulator (bench/trace): the csv and oracleGeneral readers, each
// policy on hand-worked sequences, Belady as a ceiling, the budget, TTLs, S3-FIFO's scan
// resistance and its adaptive small queue on a drifting hot set.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/trace/sim.h"
#include "bench/trace/trace_file.h"

using namespace cachetier::bench::trace;

namespace {

// A csv trace in a temporary file, removed with the object.
struct TempTrace {
  explicit TempTrace(const std::string& text, const char* suffix = ".csv") {
    path = std::string("/tmp/trace_sim_test_XXXXXX") + suffix;
    int fd = mkstemps(path.data(), static_cast<int>(std::strlen(suffix)));
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close(fd);
  }
  ~TempTrace() { unlink(path.c_str()); }
  std::string path;
};

Trace load(const std::string& text) {
  TempTrace f(text);
  auto r = Reader::open(f.path, "");
  REQUIRE(r.is_ok());
  auto t = load_trace(*r.value());
  REQUIRE(t.is_ok());
  return t.value();
}

// Gets of one-letter keys, each object costing 10 bytes (1-byte key, 9-byte value).
std::string gets(const std::string& keys) {
  std::string s = "time_ms,op,key,size,ttl\n";
  for (char k : keys) s += std::string("0,get,") + k + ",9,0\n";
  return s;
}

SimResult run(const std::string& text, Policy p, uint64_t budget) {
  SimConfig c;
  c.budget = budget;
  return simulate(load(text), p, c);
}

}  // namespace

TEST_CASE("trace csv: fields, comments, header and errors", "[bench][trace]") {
  Record r;
  std::string e;
  REQUIRE(parse_csv_line("1500,set,user:1,200,30", r, e));
  CHECK(r.time_ms == 1500);
  CHECK(r.op == Op::kSet);
  CHECK(r.key == "user:1");
  CHECK(r.size == 200);
  CHECK(r.ttl == 30);
  REQUIRE(parse_csv_line("0,phase,scan,0,0\r", r, e));
  CHECK(r.op == Op::kPhase);
  CHECK(r.key == "scan");
  CHECK_FALSE(parse_csv_line("# a comment", r, e));
  CHECK(e.empty());
  CHECK_FALSE(parse_csv_line("time_ms,op,key,size,ttl", r, e));
  CHECK(e.empty());
  CHECK_FALSE(parse_csv_line("1,get,k,1", r, e));
  CHECK(e.find("5 fields") != std::string::npos);
  CHECK_FALSE(parse_csv_line("1,get,k,1,0,9", r, e));
  CHECK(e.find("5 fields") != std::string::npos);
  CHECK_FALSE(parse_csv_line("1,put,k,1,0", r, e));
  CHECK(e.find("bad op 'put'") != std::string::npos);
  CHECK_FALSE(parse_csv_line("1,get,a b,1,0", r, e));
  CHECK(e.find("bad key") != std::string::npos);
  CHECK_FALSE(parse_csv_line("x,get,k,1,0", r, e));
  CHECK(e.find("bad time_ms") != std::string::npos);
  CHECK_FALSE(parse_csv_line("1,get,k,-1,0", r, e));
  CHECK(e.find("bad size") != std::string::npos);
  CHECK_FALSE(parse_csv_line("1,get,k,1,z", r, e));
  CHECK(e.find("bad ttl") != std::string::npos);
  CHECK_FALSE(parse_csv_line("1,get," + std::string(251, 'k') + ",1,0", r, e));
  CHECK(e.find("bad key") != std::string::npos);
}

TEST_CASE("trace reader: names the file and line of a bad record", "[bench][trace]") {
  TempTrace f("0,get,a,1,0\n# fine\n5,get,b,1,0\n3,get,c,1,0\n");
  auto rd = Reader::open(f.path, "");
  REQUIRE(rd.is_ok());
  Record r;
  CHECK(rd.value()->next(r));
  CHECK(rd.value()->next(r));
  CHECK_FALSE(rd.value()->next(r));
  CHECK(rd.value()->error() == f.path + ":4: time_ms goes backwards");
  CHECK_FALSE(Reader::open("/nonexistent/trace.csv", "").is_ok());
  CHECK_FALSE(Reader::open(f.path, "xml").is_ok());
}

TEST_CASE("trace reader: libCacheSim oracleGeneral records", "[bench][trace]") {
  std::string bin;
  auto rec = [&](uint32_t t, uint64_t id, uint32_t size) {
    char b[24];
    int64_t next = -1;
    std::memcpy(b, &t, 4);
    std::memcpy(b + 4, &id, 8);
    std::memcpy(b + 12, &size, 4);
    std::memcpy(b + 16, &next, 8);
    bin.append(b, sizeof b);
  };
  rec(10, 7, 300);
  rec(12, 123456789012ull, 5);
  TempTrace f(bin + "xyz", ".oracleGeneral");  // and a truncated record
  auto rd = Reader::open(f.path, "");
  REQUIRE(rd.is_ok());
  CHECK(rd.value()->format() == Format::kOracle);
  Record r;
  REQUIRE(rd.value()->next(r));
  CHECK(r.key == "o7");
  CHECK(r.size == 300);
  CHECK(r.time_ms == 10000);
  CHECK(r.op == Op::kGet);
  REQUIRE(rd.value()->next(r));
  CHECK(r.key == "o123456789012");
  CHECK_FALSE(rd.value()->next(r));
  CHECK(rd.value()->error().find("truncated") != std::string::npos);
}

TEST_CASE("sim: LRU, FIFO, CLOCK and SIEVE on hand-worked sequences", "[bench][trace]") {
  // Room for 3 objects. After a b c, a is read; d comes in.
  //   LRU evicts b (least recent): then a hits, b misses.
  //   FIFO evicts a (oldest): a misses.
  //   CLOCK: a's bit is set, so a is reinserted and b goes: a hits.
  //   SIEVE: the hand starts at the tail (a), clears its bit and evicts b: a hits.
  const std::string seq = gets("abcadab");
  // gets: a b c a(hit) d a b
  CHECK(run(seq, Policy::kLru, 30).hits == 2);    // a, a
  CHECK(run(seq, Policy::kFifo, 30).hits == 1);   // a (before d); d evicted a, a then evicts b
  CHECK(run(seq, Policy::kClock, 30).hits == 2);  // a, a
  CHECK(run(seq, Policy::kSieve, 30).hits == 2);
  // LRU's stack property: more room never loses a hit.
  std::mt19937 rng(7);
  std::string keys;
  for (int i = 0; i < 2000; ++i) keys += static_cast<char>('a' + rng() % 20);
  uint64_t prev = 0;
  for (uint64_t b = 10; b <= 200; b += 10) {
    uint64_t h = run(gets(keys), Policy::kLru, b).hits;
    CHECK(h >= prev);
    prev = h;
  }
  CHECK(run(gets(keys), Policy::kLru, 200).hits == 2000 - 20);  // all 20 fit: cold misses only
}

TEST_CASE("sim: Belady on a cyclic sequence and as a ceiling", "[bench][trace]") {
  // a b c a b c with room for 2: LRU hits nothing; Belady keeps a and b (c, read farthest,
  // is not kept) and hits a, b.
  CHECK(run(gets("abcabc"), Policy::kLru, 20).hits == 0);
  CHECK(run(gets("abcabc"), Policy::kOpt, 20).hits == 2);
  // On a skewed random trace, no policy beats Belady.
  std::mt19937 rng(11);
  std::string keys;
  for (int i = 0; i < 5000; ++i) {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    keys += static_cast<char>('a' + static_cast<int>(25 * u * u * u));
  }
  for (uint64_t b : {30, 60, 100}) {
    uint64_t opt = run(gets(keys), Policy::kOpt, b).hits;
    for (Policy p :
         {Policy::kLru, Policy::kFifo, Policy::kClock, Policy::kSieve, Policy::kS3Fifo}) {
      INFO(policy_name(p) << " at " << b);
      CHECK(run(gets(keys), p, b).hits <= opt);
    }
  }
}

TEST_CASE("sim: the budget holds with mixed sizes, sets and deletes", "[bench][trace]") {
  std::mt19937 rng(3);
  std::string s;
  for (int i = 0; i < 20000; ++i) {
    int k = static_cast<int>(rng() % 500);
    int size = 1 + static_cast<int>(rng() % 3000);
    const char* op = (rng() % 10 == 0) ? "set" : (rng() % 50 == 0) ? "delete" : "get";
    s += std::to_string(i) + "," + op + ",k" + std::to_string(k) + "," + std::to_string(size) +
         ",0\n";
  }
  s += "20000,get,huge,900000,0\n";  // larger than the budget: never cached
  for (Policy p : {Policy::kLru, Policy::kFifo, Policy::kClock, Policy::kSieve, Policy::kS3Fifo,
                   Policy::kOpt}) {
    INFO(policy_name(p));
    SimResult r = run(s, p, 100000);
    CHECK(r.peak_bytes <= 100000);
    CHECK(r.peak_bytes > 90000);
    CHECK(r.evictions > 0);
    CHECK(r.hits > 0);
  }
}

TEST_CASE("sim: an object read after its TTL misses", "[bench][trace]") {
  const std::string s =
      "0,set,a,9,5\n"
      "1000,get,a,9,5\n"    // hit
      "5000,get,a,9,5\n"    // expired at 5 s: a miss that fills again (until 10 s)
      "9000,get,a,9,5\n"    // hit
      "10000,get,a,9,0\n";  // miss
  for (Policy p : {Policy::kLru, Policy::kS3Fifo, Policy::kOpt}) {
    INFO(policy_name(p));
    SimResult r = run(s, p, 1000);
    CHECK(r.gets == 4);
    CHECK(r.hits == 2);
  }
}

TEST_CASE("sim: S3-FIFO keeps the hot set through a scan, LRU does not", "[bench][trace]") {
  // 50 hot keys read round-robin (they fit in 100 objects' room), then a scan of 300 keys
  // read once, then the hot keys again: phases before / scan / after.
  std::string s = "0,phase,before,0,0\n";
  auto get = [&](const std::string& k) { s += "0,get," + k + ",90,0\n"; };
  for (int round = 0; round < 20; ++round) {
    for (int k = 0; k < 50; ++k) get("h" + std::to_string(k));
  }
  s += "0,phase,scan,0,0\n";
  for (int k = 0; k < 300; ++k) get("s" + std::to_string(k));
  s += "0,phase,after,0,0\n";
  for (int k = 0; k < 50; ++k) get("h" + std::to_string(k));
  const uint64_t budget = 100 * 92;  // 2-byte-ish keys + 90-byte values
  SimResult lru = run(s, Policy::kLru, budget), s3 = run(s, Policy::kS3Fifo, budget);
  REQUIRE(lru.phases.size() == 3);
  REQUIRE(s3.phases.size() == 3);
  CHECK(lru.phases[0].name == "before");
  CHECK(lru.phases[2].name == "after");
  CHECK(lru.phases[2].hit_ratio() == 0.0);
  // A phase of sets only is a phase too.
  SimResult w =
      run("0,phase,fill,0,0\n0,set,a,9,0\n0,phase,read,0,0\n0,get,a,9,0\n", Policy::kLru, 100);
  REQUIRE(w.phases.size() == 2);
  CHECK(w.phases[0].name == "fill");
  CHECK(w.phases[0].gets == 0);
  CHECK(w.phases[1].name == "read");
  CHECK(w.phases[1].hits == 1);
  CHECK(s3.phases[2].hit_ratio() == 1.0);
}

TEST_CASE("sim: an adaptive small queue follows a drifting hot set", "[bench][trace]") {
  // Zipf 0.99 over 20,000 keys whose ranks move by 200 every 600 requests (the churn trace,
  // small): a warming key's second read comes later than a 10% small queue can wait for.
  const int n = 20000, total = 120000;
  std::vector<double> w(n);
  for (int r = 0; r < n; ++r) w[r] = 1.0 / std::pow(r + 1.0, 0.99);
  std::discrete_distribution<int> zipf(w.begin(), w.end());
  std::mt19937 rng(15);
  std::string s = "0,phase,warmup,0,0\n";
  for (int i = 0; i < total; ++i) {
    if (i == total / 3) s += "0,phase,measure,0,0\n";
    const int key = (zipf(rng) + (i / 600) * 200) % n;
    s += "0,get,k" + std::to_string(key) + ",90,0\n";
  }
  const Trace t = load(s);
  SimConfig c;
  c.budget = 2000 * 96;
  const double lru = simulate(t, Policy::kLru, c).phases[1].hit_ratio();
  const double fixed = simulate(t, Policy::kS3Fifo, c).phases[1].hit_ratio();
  c.adaptive = true;
  const double adaptive = simulate(t, Policy::kS3Fifo, c).phases[1].hit_ratio();
  INFO("LRU " << lru << ", S3-FIFO " << fixed << ", adaptive " << adaptive);
  CHECK(adaptive > fixed + 0.01);
}
