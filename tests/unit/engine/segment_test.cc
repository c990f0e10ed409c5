// LruEngine's segments and S3-FIFO eviction with a manual clock: memory moving between item
// sizes, the bound at every step, garbage compacted before anything live is evicted, TTL
// reclaim freeing segments, scan resistance and the ghost table.
#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "cacheserver/engine/lru_engine.h"

using namespace cachetier;
using namespace cachetier::engine;

namespace {

constexpr int64_t kStart = 1'700'000'000;

struct Fixture {
  ManualClock clock{kStart};
  LruEngine engine;
  explicit Fixture(size_t limit = 8 << 20, size_t max_item = 256 << 10)
      : engine(LruEngineConfig{limit, 4, 64, 64 << 10, max_item}, clock) {}
  bool set(const std::string& k, size_t n, int64_t exptime = 0) {
    StoreRequest r;
    r.key = k;
    std::string v(n, static_cast<char>('a' + k.size() % 26));
    r.value = v;
    r.exptime = exptime;
    return engine.store(r).status == EngineStatus::kOk;
  }
  bool has(const std::string& k) {
    return engine.lookup(k, {}, [](const ItemView&) {}).hit;
  }
  bool peek(const std::string& k) {
    LookupOptions o;
    o.bump = false;
    return engine.lookup(k, o, [](const ItemView&) {}).hit;
  }
  void invariants() {
    std::string why;
    const bool ok = engine.check_invariants(&why);
    INFO(why);
    REQUIRE(ok);
  }
};

std::string key(const char* p, int i) { return p + std::to_string(i); }

}  // namespace

TEST_CASE("segments: memory moves to whatever size is written now", "[engine][segments]") {
  const size_t limit = 8 << 20;
  Fixture f(limit);
  // Phases of one size each, every phase writing twice the memory: at the end of a phase,
  // nearly all of its last budget's worth is there, whatever came before.
  struct Phase {
    const char* prefix;
    size_t size;
  } phases[] = {{"a", 4000}, {"b", 100}, {"c", 20000}, {"d", 100}, {"e", 900}};
  for (const Phase& p : phases) {
    const size_t cost = f.engine.item_cost(8, p.size);
    const int fits = static_cast<int>(limit * 3 / 4 / cost);  // what surely fits
    const int n = static_cast<int>(2 * limit / cost);
    for (int i = 0; i < n; ++i) {
      REQUIRE(f.set(key(p.prefix, i), p.size));
      if (i % 1000 == 0) REQUIRE(f.engine.stats().memory_used <= limit);
    }
    int present = 0;
    for (int i = n - fits; i < n; ++i) present += f.peek(key(p.prefix, i)) ? 1 : 0;
    INFO("phase " << p.prefix << ": " << present << " of the last " << fits);
    CHECK(present >= fits * 95 / 100);
    f.invariants();
  }
  CHECK(f.engine.stats().memory_used <= limit);
}

TEST_CASE("segments: garbage is compacted, live items that fit are never evicted",
          "[engine][segments]") {
  // A hint list appended to per write (each append a new copy: garbage) and overwrites of a
  // few thousand keys: far more bytes written than the budget, far fewer live.
  Fixture f(8 << 20);
  for (int i = 0; i < 3000; ++i) REQUIRE(f.set(key("k", i), 100));
  for (int j = 0; j < 20000; ++j) {
    StoreRequest a;
    a.mode = StoreMode::kAppend;
    a.key = "__list";
    const std::string piece = "6:k" + std::to_string(j % 3000);
    a.value = piece;
    a.vivify = true;
    REQUIRE(f.engine.store(a).status == EngineStatus::kOk);
    REQUIRE(f.set(key("k", j % 3000), 100));
  }
  int missing = 0;
  for (int i = 0; i < 3000; ++i) missing += f.peek(key("k", i)) ? 0 : 1;
  CHECK(missing == 0);
  CHECK(f.engine.stats().evictions == 0);
  f.invariants();
}

TEST_CASE("segments: compaction never takes an item in a mapping of its own",
          "[engine][segments]") {
  // Every 64 KiB segment 40% live (about 26 KiB), and one 17 KiB item in a mapping of its own
  // (over a quarter segment), never read: the fewest live bytes, but nothing in it is
  // garbage. Compacting it would mean evicting it.
  Fixture f(1 << 20);
  REQUIRE(f.set("jumbo", 17 << 10));
  const int n = 5000;  // about 720 KB of 144-byte items
  for (int i = 0; i < n; ++i) REQUIRE(f.set(key("k", i), 100));
  for (int i = 0; i < n; ++i) {
    if (i % 5 >= 3) continue;
    DeleteRequest d;
    const std::string k = key("k", i);
    d.key = k;
    REQUIRE(f.engine.remove(d).status == EngineStatus::kOk);
  }
  // New items: memory runs out, and the garbage (60% of the segments) is compacted.
  for (int i = 0; i < 2000; ++i) REQUIRE(f.set(key("new", i), 100));
  CHECK(f.peek("jumbo"));
  int missing = 0;
  for (int i = 0; i < n; ++i) missing += (i % 5 >= 3 && !f.peek(key("k", i))) ? 1 : 0;
  for (int i = 0; i < 2000; ++i) missing += f.peek(key("new", i)) ? 0 : 1;
  CHECK(missing == 0);
  CHECK(f.engine.stats().evictions == 0);
  f.invariants();
}

TEST_CASE("segments: expired items reclaimed in the background free their segments",
          "[engine][segments][ttl]") {
  Fixture f(8 << 20);
  auto pages = [&] {
    size_t n = 0;
    for (const ClassStats& c : f.engine.class_stats()) n += c.chunk_size != 0 ? c.pages : 0;
    return n;
  };
  for (int i = 0; i < 20000; ++i) REQUIRE(f.set(key("t", i), 150, kStart + 10));
  for (int i = 0; i < 100; ++i) REQUIRE(f.set(key("keep", i), 150));
  const size_t before = pages();
  CHECK(before > 40);
  f.clock.advance(11);
  size_t freed = 0;
  for (int i = 0; i < 100 && freed < 20000; ++i) freed += f.engine.reclaim_expired(1 << 16);
  CHECK(freed == 20000);
  CHECK(pages() <= 3);  // what holds the kept ones, and the open heads
  for (int i = 0; i < 100; ++i) CHECK(f.peek(key("keep", i)));
  f.invariants();
  // The segments are reused, not grown (the index, shrunk with its items gone, grows again).
  // (The open head's segment keeps the expired items' bytes until it is full: one segment.)
  auto data = [&] { return f.engine.stats().memory_used - f.engine.stats().hash_bytes; };
  const size_t used = data();
  for (int i = 0; i < 20000; ++i) REQUIRE(f.set(key("n", i), 150));
  CHECK(data() <= used + f.engine.segment_size());
  f.invariants();
}

TEST_CASE("segments: a one-time scan does not flush the hot set (S3-FIFO)", "[engine][segments]") {
  const size_t limit = 8 << 20;
  Fixture f(limit);
  const size_t cost = f.engine.item_cost(8, 200);
  const int hot = static_cast<int>(limit / 4 / cost);  // a quarter of the cache
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < hot; ++i) {
      if (!f.has(key("h", i))) REQUIRE(f.set(key("h", i), 200));
    }
  }
  const int scan = static_cast<int>(2 * limit / cost);  // twice the cache, each key once
  for (int i = 0; i < scan; ++i) {
    if (!f.has(key("s", i))) REQUIRE(f.set(key("s", i), 200));
  }
  int kept = 0;
  for (int i = 0; i < hot; ++i) kept += f.peek(key("h", i)) ? 1 : 0;
  INFO(kept << " of " << hot << " hot keys after the scan");
  CHECK(kept >= hot * 95 / 100);
  f.invariants();
}

TEST_CASE("segments: a key evicted unread comes back through the ghost table",
          "[engine][segments]") {
  const size_t limit = 8 << 20;
  Fixture f(limit);
  const size_t cost = f.engine.item_cost(8, 200);
  const int n = static_cast<int>(2 * limit / cost);
  // Written once, never read: the first ones are evicted from the small queue (the ghost
  // table keeps a fingerprint per slot, so a key is remembered for about as many evictions
  // as it has slots: g0 is written again right after its eviction).
  int i = 0;
  do {
    REQUIRE(f.set(key("g", i++), 200));
    REQUIRE(i < n);
  } while (f.peek(key("g", 0)));
  CHECK(f.engine.stats().evictions > 0);
  // Written again soon after its eviction: admitted as read once, so the small queue's
  // eviction moves it to main instead of evicting it, while its unread peers go.
  REQUIRE(f.set(key("g", 0), 200));
  for (int i = 0; i < n; ++i) REQUIRE(f.set(key("x", i), 200));
  CHECK(f.peek(key("g", 0)));
  CHECK_FALSE(f.peek(key("x", 0)));
  f.invariants();
}

TEST_CASE("segments: a full cache of items that pad most still evicts", "[engine][segments]") {
  // Every padding to the next 8 bytes, 0-7 (33 bytes in 40 with the 27-byte header is the
  // most). Padding is not garbage a compaction can free: counted as garbage, it made a full
  // engine compact forever and answer every set with out of memory.
  static const char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (size_t vlen = 0; vlen < 8; ++vlen) {
    INFO("5-byte keys, values of " << vlen << " bytes");
    Fixture f(1 << 20);
    const size_t fit = (1 << 20) / f.engine.item_cost(5, vlen);
    for (size_t i = 0; i < 3 * fit; ++i) {
      std::string k(5, '0');
      for (size_t j = 0, n = i; j < 5; ++j, n /= 62) k[j] = kDigits[n % 62];
      REQUIRE(f.set(k, vlen));
    }
    CHECK(f.engine.stats().evictions > 0);
    CHECK(f.engine.stats().memory_used <= f.engine.stats().limit);
    f.invariants();
  }
}
