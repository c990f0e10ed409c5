// LruEngine: semantics with a manual clock, memory accounting, eviction quality.
#include "cacheserver/engine/lru_engine.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <list>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

using namespace cachetier;
using namespace cachetier::engine;

namespace {

constexpr int64_t kStart = 1'700'000'000;

struct Fixture {
  ManualClock clock{kStart};
  LruEngine engine;
  // Small pages so that tests with a few MB of budget see fine-grained accounting.
  explicit Fixture(size_t limit = 8 << 20, size_t buckets = 64, size_t max_item = 16 << 10)
      : engine(LruEngineConfig{limit, 6, buckets, 64 << 10, max_item}, clock) {}

  StoreResult set(std::string_view k, std::string_view v, int64_t exptime = 0,
                  StoreMode mode = StoreMode::kSet, uint32_t flags = 0) {
    StoreRequest r;
    r.mode = mode;
    r.key = k;
    r.value = v;
    r.client_flags = flags;
    r.exptime = resolve_exptime(exptime, clock.now());
    return engine.store(r);
  }
  std::optional<std::string> get(std::string_view k, LookupOptions o = {}) {
    std::optional<std::string> out;
    auto r = engine.lookup(k, o, [&](const ItemView& v) { out = std::string(v.value); });
    CHECK(r.hit == out.has_value());
    return out;
  }
  // A lookup with lease semantics (as mg): stale items hand out wins.
  ItemView view(std::string_view k) {
    ItemView copy;
    LookupOptions o;
    o.leases = true;
    engine.lookup(k, o, [&](const ItemView& v) { copy = v; });
    return copy;
  }
};

}  // namespace

TEST_CASE("set, get, add, replace, append, prepend", "[engine]") {
  Fixture f;
  CHECK(f.set("k", "v1").status == EngineStatus::kOk);
  CHECK(f.get("k") == "v1");
  CHECK(f.set("k", "x", 0, StoreMode::kAdd).status == EngineStatus::kNotStored);
  CHECK(f.set("n", "x", 0, StoreMode::kReplace).status == EngineStatus::kNotStored);
  CHECK(f.set("k", "v2", 0, StoreMode::kReplace).status == EngineStatus::kOk);
  CHECK(f.set("k", "++", 0, StoreMode::kAppend).status == EngineStatus::kOk);
  CHECK(f.set("k", "--", 0, StoreMode::kPrepend).status == EngineStatus::kOk);
  CHECK(f.get("k") == "--v2++");
  CHECK(f.set("missing", "x", 0, StoreMode::kAppend).status == EngineStatus::kNotStored);
  CHECK_FALSE(f.get("missing"));
  // Client flags are 32-bit and survive append.
  f.set("fl", "a", 0, StoreMode::kSet, 0xFFFFFFFFu);
  f.set("fl", "b", 0, StoreMode::kAppend, 1);
  CHECK(f.view("fl").client_flags == 0xFFFFFFFFu);
  CHECK(f.engine.stats().curr_items == 2);
}

TEST_CASE("CAS uniques", "[engine]") {
  Fixture f;
  uint64_t c1 = f.set("k", "a").cas;
  uint64_t c2 = f.set("k", "b").cas;
  CHECK(c1 != c2);
  CHECK(f.view("k").cas == c2);
  StoreRequest r;
  r.key = "k";
  r.value = "c";
  r.compare_cas = c1;
  CHECK(f.engine.store(r).status == EngineStatus::kExists);
  r.compare_cas = c2;
  CHECK(f.engine.store(r).status == EngineStatus::kOk);
  CHECK(f.get("k") == "c");
  r.key = "nope";
  CHECK(f.engine.store(r).status == EngineStatus::kNotFound);
  // A compare against 0 (a client's "cas k 0 0 1 0") matches no item: uniques are never 0.
  r.key = "k";
  r.compare_cas = 0;
  CHECK(f.engine.store(r).status == EngineStatus::kExists);
  r.key = "nope";
  CHECK(f.engine.store(r).status == EngineStatus::kNotFound);
  // Uniques stay distinct across shards.
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(f.set("u" + std::to_string(i), "x").cas);
  CHECK(seen.size() == 1000);
}

TEST_CASE("incr and decr on 64-bit unsigned", "[engine]") {
  Fixture f;
  ArithRequest a;
  a.key = "n";
  CHECK(f.engine.arith(a).status == EngineStatus::kNotFound);
  f.set("n", "18446744073709551615");
  a.delta = 2;
  auto r = f.engine.arith(a);
  CHECK(r.status == EngineStatus::kOk);
  CHECK(r.value == 1);  // wraps
  a.incr = false;
  a.delta = 5;
  CHECK(f.engine.arith(a).value == 0);  // floors at 0
  f.set("n", "100");
  a.delta = 1;
  CHECK(f.engine.arith(a).value == 99);  // shorter: in place, padded as memcached does
  CHECK(f.get("n") == "99 ");
  a.incr = true;
  CHECK(f.engine.arith(a).value == 100);
  CHECK(f.get("n") == "100");
  a.delta = 900;
  CHECK(f.engine.arith(a).value == 1000);  // longer: a new item
  CHECK(f.get("n") == "1000");
  f.set("w", " 7 x");  // strtoull's rules: leading space, then digits up to a space
  a.key = "w";
  a.delta = 1;
  CHECK(f.engine.arith(a).value == 8);
  CHECK(f.get("w") == "8   ");
  f.set("e", "");
  a.key = "e";
  a.compare_cas = 12345;  // an empty value is not numeric, whatever the CAS
  CHECK(f.engine.arith(a).status == EngineStatus::kNonNumeric);
  a.compare_cas.reset();
  a.key = "n";
  a.incr = false;
  f.set("s", "abc");
  a.key = "s";
  CHECK(f.engine.arith(a).status == EngineStatus::kNonNumeric);
  f.set("s", "12 ");  // trailing spaces (an old decr) are accepted
  a.incr = true;
  CHECK(f.engine.arith(a).value == 13);
  f.set("big", "123456789012345678901");  // 21 digits
  a.key = "big";
  CHECK(f.engine.arith(a).status == EngineStatus::kNonNumeric);
  // Vivify on a miss.
  ArithRequest v;
  v.key = "fresh";
  v.vivify = true;
  v.initial = 7;
  CHECK(f.engine.arith(v).value == 7);
  CHECK(f.get("fresh") == "7");
}

TEST_CASE("TTL rules and lazy expiry", "[engine][ttl]") {
  Fixture f;
  CHECK(resolve_exptime(0, kStart) == 0);
  CHECK(resolve_exptime(10, kStart) == kStart + 10);
  CHECK(resolve_exptime(kRelativeTtlLimit, kStart) == kStart + kRelativeTtlLimit);
  CHECK(resolve_exptime(kRelativeTtlLimit + 1, kStart) == kExpiredNow);  // absolute, in the past
  CHECK(resolve_exptime(kStart + 100, kStart) == kStart + 100);
  CHECK(resolve_exptime(-1, kStart) == kExpiredNow);

  f.set("never", "x", 0);
  f.set("short", "x", 10);
  f.set("abs", "x", kStart + 20);
  f.set("neg", "x", -1);
  CHECK_FALSE(f.get("neg"));
  CHECK(f.get("short"));
  f.clock.advance(10);
  auto r = f.engine.lookup("short", {}, [](const ItemView&) {});
  CHECK_FALSE(r.hit);
  CHECK(r.expired);
  CHECK(f.get("abs"));
  f.clock.advance(10);
  CHECK_FALSE(f.get("abs"));
  f.clock.advance(365 * 24 * 3600);
  CHECK(f.get("never"));
}

TEST_CASE("touch and gat update the TTL", "[engine][ttl]") {
  Fixture f;
  f.set("k", "x", 5);
  LookupOptions o;
  o.update_exptime = true;
  o.exptime = resolve_exptime(100, f.clock.now());
  CHECK(f.get("k", o));
  f.clock.advance(50);
  CHECK(f.get("k"));
  f.clock.advance(51);
  CHECK_FALSE(f.get("k"));
}

TEST_CASE("background reclaim frees expired memory without access", "[engine][ttl]") {
  Fixture f;
  for (int i = 0; i < 2000; ++i) f.set("k" + std::to_string(i), std::string(100, 'x'), 5);
  f.set("keep", "x", 0);
  size_t pages = f.engine.stats().memory_used;
  CHECK(f.engine.stats().bytes > 2000 * 100);
  f.clock.advance(6);
  size_t freed = 0;
  for (int i = 0; i < 100 && freed < 2000; ++i) freed += f.engine.reclaim_expired(1 << 16);
  CHECK(freed == 2000);
  auto st = f.engine.stats();
  CHECK(st.curr_items == 1);
  CHECK(st.reclaimed == 2000);
  CHECK(st.expired_unfetched == 2000);
  CHECK(st.bytes == 27 + 4 + 1);  // header + "keep" + "x"
  // The freed chunks are reused: the same load takes no new pages.
  for (int i = 0; i < 2000; ++i) f.set("n" + std::to_string(i), std::string(100, 'y'), 0);
  CHECK(f.engine.stats().memory_used == pages);
}

TEST_CASE("flush_all now and with a delay", "[engine]") {
  Fixture f;
  f.set("a", "1");
  f.set("b", "2");
  f.engine.flush(f.clock.now());
  CHECK_FALSE(f.get("a"));
  CHECK(f.engine.stats().curr_items == 0);
  CHECK(f.engine.stats().bytes == 0);

  f.set("c", "3");
  f.engine.flush(f.clock.now() + 10);
  CHECK(f.get("c"));  // not yet
  f.clock.advance(10);
  CHECK_FALSE(f.get("c"));
  f.set("d", "4");  // stored after the flush took effect
  CHECK(f.get("d"));
}

TEST_CASE("delete, invalidate and win tokens", "[engine][meta]") {
  Fixture f;
  f.set("k", "v");
  DeleteRequest d;
  d.key = "k";
  d.invalidate = true;
  CHECK(f.engine.remove(d).status == EngineStatus::kOk);
  ItemView first = f.view("k");
  CHECK(first.stale);
  CHECK(first.won);
  ItemView second = f.view("k");
  CHECK(second.stale);
  CHECK_FALSE(second.won);
  CHECK(second.win_already_sent);
  DeleteRequest gone;
  gone.key = "k";
  CHECK(f.engine.remove(gone).status == EngineStatus::kOk);
  CHECK(f.engine.remove(gone).status == EngineStatus::kNotFound);

  // Vivify: the first miss wins and creates a placeholder.
  LookupOptions o;
  o.leases = true;
  o.vivify = true;
  o.vivify_exptime = resolve_exptime(30, f.clock.now());
  bool won = false, seen_z = false;
  f.engine.lookup("lease", o, [&](const ItemView& v) { won = v.won; });
  f.engine.lookup("lease", o, [&](const ItemView& v) { seen_z = v.win_already_sent; });
  CHECK(won);
  CHECK(seen_z);

  // Recache: a TTL below the threshold hands out one win.
  f.set("r", "v", 10);
  LookupOptions rc;
  rc.leases = true;
  rc.recache = true;
  rc.recache_before = resolve_exptime(30, f.clock.now());
  bool w1 = false, w2 = true;
  f.engine.lookup("r", rc, [&](const ItemView& v) { w1 = v.won; });
  f.engine.lookup("r", rc, [&](const ItemView& v) { w2 = v.won; });
  CHECK(w1);
  CHECK_FALSE(w2);
}

TEST_CASE("lease state as memcached keeps it", "[engine][meta]") {
  Fixture f;
  f.set("k", "v", 100);
  DeleteRequest d;
  d.key = "k";
  d.invalidate = true;
  REQUIRE(f.engine.remove(d).status == EngineStatus::kOk);
  // A plain get reads the stale value and leaves the win for a lease reader.
  ItemView plain;
  f.engine.lookup("k", {}, [&](const ItemView& v) { plain = v; });
  CHECK_FALSE(plain.stale);
  CHECK_FALSE(plain.won);
  CHECK(f.view("k").won);
  // An older-CAS store with invalidate keeps the item's TTL and its handed-out win.
  uint64_t cas = f.view("k").cas;
  StoreRequest s;
  s.key = "k";
  s.value = "older";
  s.compare_cas = cas - 1;
  s.invalidate = true;
  s.exptime = resolve_exptime(5000, f.clock.now());
  REQUIRE(f.engine.store(s).status == EngineStatus::kOk);
  ItemView after = f.view("k");
  CHECK(after.value == "older");
  CHECK(after.stale);
  CHECK(after.win_already_sent);
  CHECK(after.exptime == kStart + 100);

  // Recache is judged before or after the lookup's own TTL change, as asked; the reply
  // carries the TTL from before the change.
  f.set("r", "v", 100);
  LookupOptions o;
  o.leases = true;
  o.recache = true;
  o.recache_before = resolve_exptime(50, f.clock.now());
  o.update_exptime = true;
  o.exptime = resolve_exptime(10, f.clock.now());
  ItemView seen;
  f.engine.lookup("r", o, [&](const ItemView& v) { seen = v; });
  CHECK_FALSE(seen.won);  // judged on the old TTL (100 s)
  CHECK(seen.prior_exptime == kStart + 100);
  CHECK(seen.exptime == kStart + 10);
  f.set("r", "v", 100);
  o.recache_after_touch = true;
  f.engine.lookup("r", o, [&](const ItemView& v) { seen = v; });
  CHECK(seen.won);  // judged on the new one (10 s)

  // A vivified placeholder says it was created, and counts as fetched afterwards.
  LookupOptions viv;
  viv.leases = true;
  viv.vivify = true;
  f.engine.lookup("new", viv, [&](const ItemView& v) { seen = v; });
  CHECK(seen.created);
  CHECK_FALSE(seen.fetched_before);
  CHECK(f.view("new").fetched_before);
}

TEST_CASE("memory limit is a real bound and a read key outlives cold ones", "[engine][memory]") {
  const size_t limit = 4 << 20;
  Fixture f(limit, 16);
  std::string value(1000, 'v');
  for (int i = 0; i < 20000; ++i) {
    REQUIRE(f.set("key" + std::to_string(i), value).status == EngineStatus::kOk);
    if (i % 10 == 0) f.get("key0");  // keep one old key hot
    auto st = f.engine.stats();
    REQUIRE(st.memory_used <= limit);
  }
  auto st = f.engine.stats();
  CHECK(st.evictions > 10000);
  CHECK(st.memory_used > limit * 85 / 100);
  CHECK(st.bytes > limit * 8 / 10);
  CHECK(f.get("key0"));        // hot key survived
  CHECK(f.get("key19999"));    // newest survived
  CHECK_FALSE(f.get("key1"));  // cold old key is gone
  f.engine.flush(f.clock.now());
  CHECK(f.engine.stats().bytes == 0);
  CHECK(f.engine.stats().memory_used <= limit);
}

TEST_CASE("a full cache still stores values of a new size", "[engine][memory]") {
  // Regression guard for calcification (the slab engine's failure): all memory is taken by
  // small items, then the workload switches to large ones, and the memory follows it.
  const size_t limit = 4 << 20;
  Fixture f(limit, 16);
  for (int i = 0; i < 40000; ++i) f.set("small" + std::to_string(i), std::string(100, 's'));
  CHECK(f.engine.stats().evictions > 0);
  std::string big(5000, 'B');
  for (int i = 0; i < 2000; ++i) {
    REQUIRE(f.set("big" + std::to_string(i), big).status == EngineStatus::kOk);
  }
  CHECK(f.get("big1999") == big);
  CHECK(f.engine.stats().memory_used <= limit);
  // And back again.
  for (int i = 0; i < 20000; ++i) {
    REQUIRE(f.set("again" + std::to_string(i), std::string(100, 'a')).status == EngineStatus::kOk);
  }
  CHECK(f.get("again19999"));
}

TEST_CASE("a page is not taken from under an item that is still held", "[engine][memory]") {
  // Regression (found by native_fuzz): an expired item an operation has unlinked but not yet
  // released sat on the page a steal took; released afterwards, it put a chunk of the page,
  // now another class's, on its old class's free list, and the next store overwrote a live
  // item. Here: the expired item is on the victim's page 0 when the vivify placeholder (a
  // different class, with no page and no budget) steals a page, and takes the same chunk.
  Fixture f(1 << 20, 16);
  auto key = [](int i) {
    char b[16];
    std::snprintf(b, sizeof b, "k%05d", i);
    return std::string(b);
  };
  auto value = [&](int i) { return key(i) + std::string(194, 'v'); };  // one class for all
  REQUIRE(f.set(key(0), value(0), 1).status == EngineStatus::kOk);
  REQUIRE(f.get(key(0)));  // referenced: the first CLOCK sweep passes it by
  int n = 1;
  while (f.engine.stats().evictions == 0) {
    REQUIRE(f.set(key(n), value(n)).status == EngineStatus::kOk);
    ++n;
    REQUIRE(n < 100000);
  }
  f.clock.advance(5);  // key 0 expires
  LookupOptions vivify;
  vivify.vivify = true;
  vivify.vivify_exptime = f.clock.now() + 30;
  std::optional<std::string> placeholder;
  f.engine.lookup(key(0), vivify, [&](const ItemView& v) { placeholder = std::string(v.value); });
  REQUIRE(placeholder == "");
  // More placeholders (the class the page went to) and more stores (the class it came from).
  for (int i = 99990; i < 99999; ++i) {
    placeholder.reset();
    f.engine.lookup(key(i), vivify, [&](const ItemView& v) { placeholder = std::string(v.value); });
    CHECK(placeholder == "");
  }
  for (int i = n; i < n + 50; ++i) REQUIRE(f.set(key(i), value(i)).status == EngineStatus::kOk);
  for (int i : {0, 99990, 99998}) CHECK(f.get(key(i)) == "");  // the placeholders are intact
  int wrong = 0;
  for (int i = 1; i < n + 50; ++i) {
    auto got = f.get(key(i));
    if (got && *got != value(i)) ++wrong;
  }
  CHECK(wrong == 0);
}

TEST_CASE("appends to a large item grow it in place with a copy's result", "[engine][memory]") {
  // Large items (over a quarter page here: 16 KiB) that are appended to get room to grow, so
  // a list appended to per write costs O(appended bytes) per append (hint lists).
  Fixture f(8 << 20, 16, 1 << 20);
  const size_t base = f.engine.stats().memory_used;
  std::string want(20000, 'a');
  StoreResult first = f.set("list", want, 0, StoreMode::kSet, 7);
  REQUIRE(first.status == EngineStatus::kOk);
  uint64_t last_cas = first.cas;
  for (int i = 0; i < 3000; ++i) {
    std::string piece = std::to_string(i) + ":" + std::string(static_cast<size_t>(i % 40), 'p');
    StoreResult r = f.set("list", piece, 0, StoreMode::kAppend);
    REQUIRE(r.status == EngineStatus::kOk);
    want += piece;
    REQUIRE(r.size == want.size());
    REQUIRE(r.cas > last_cas);
    last_cas = r.cas;
    if (i % 500 == 0) REQUIRE(f.get("list") == want);
  }
  ItemView v = f.view("list");
  CHECK(v.value.size() == want.size());
  CHECK(v.client_flags == 7);
  CHECK(v.cas == last_cas);
  CHECK(f.get("list") == want);
  auto st = f.engine.stats();
  CHECK(st.bytes >= want.size());
  CHECK(st.memory_used - base <= want.size() * 2);  // the room to grow is bounded and counted
  // Prepend still copies, and the result is the same.
  REQUIRE(f.set("list", "head", 0, StoreMode::kPrepend).status == EngineStatus::kOk);
  CHECK(f.get("list") == "head" + want);
  DeleteRequest del;
  del.key = "list";
  REQUIRE(f.engine.remove(del).status == EngineStatus::kOk);
  CHECK(f.engine.stats().memory_used == base);  // capacity and all given back
  CHECK(f.engine.stats().bytes == 0);

  // The TTL stays, versions still order writes, and a version moves with the value.
  StoreRequest r;
  r.mode = StoreMode::kSet;
  r.key = "vlist";
  std::string big(17000, 'b');
  r.value = big;
  r.version = 5;
  r.exptime = resolve_exptime(100, f.clock.now());
  REQUIRE(f.engine.store(r).status == EngineStatus::kOk);
  r.mode = StoreMode::kAppend;
  r.value = "x";
  r.version = 6;
  REQUIRE(f.engine.store(r).status == EngineStatus::kOk);
  r.value = "y";
  r.version = 0;
  REQUIRE(f.engine.store(r).status == EngineStatus::kOk);
  r.value = "z";
  r.version = 4;
  CHECK(f.engine.store(r).status == EngineStatus::kOlderVersion);
  ItemView vv = f.view("vlist");
  CHECK(vv.version == 6);
  CHECK(vv.value == big + "xy");
  f.clock.advance(101);
  CHECK_FALSE(f.get("vlist"));
  CHECK(f.engine.stats().memory_used >= base);
}

TEST_CASE("an item larger than the whole budget is refused", "[engine][memory]") {
  Fixture f(1 << 20, 16);
  CHECK(f.set("huge", std::string(2 << 20, 'x')).status == EngineStatus::kTooLarge);
  CHECK(f.set("ok", "x").status == EngineStatus::kOk);
}

TEST_CASE("per-item overhead", "[engine][memory]") {
  // Documented in docs/architecture.md: a 27-byte header, rounded up to 8 bytes.
  Fixture f;
  CHECK(f.engine.item_cost(10, 100) == 144);
  CHECK(f.engine.item_cost(1, 0) == 32);
  CHECK(f.engine.item_cost(13, 100) == 144);  // "memtier-12345" + 100 bytes
}

namespace {
// Exact LRU over the same byte costs: the reference for the hit-ratio requirement.
class ExactLru {
 public:
  explicit ExactLru(size_t budget) : budget_(budget) {}
  bool access(const std::string& key, size_t cost) {
    auto it = map_.find(key);
    if (it != map_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return true;
    }
    while (used_ + cost > budget_ && !order_.empty()) {
      used_ -= order_.back().second;
      map_.erase(order_.back().first);
      order_.pop_back();
    }
    order_.emplace_front(key, cost);
    map_[key] = order_.begin();
    used_ += cost;
    return false;
  }

 private:
  size_t budget_, used_ = 0;
  std::list<std::pair<std::string, size_t>> order_;
  std::unordered_map<std::string, std::list<std::pair<std::string, size_t>>::iterator> map_;
};
}  // namespace

TEST_CASE("Zipf(0.99) hit ratio above exact LRU's", "[engine][lru]") {
  const size_t keys = 100000;
  const size_t value_len = 100;
  ManualClock clock(kStart);
  // About a tenth of the key space fits.
  LruEngine engine(LruEngineConfig{keys / 10 * 152 * 17 / 16, 6, 16, 64 << 10, 1024}, clock);
  const size_t cost = engine.item_cost(10, value_len);  // "k" + 9 digits

  // Zipf sampler by inverse CDF over precomputed weights; one fixed request sequence.
  std::vector<double> cdf(keys);
  double sum = 0;
  for (size_t i = 0; i < keys; ++i) cdf[i] = (sum += 1.0 / std::pow(double(i + 1), 0.99));
  for (double& c : cdf) c /= sum;
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<double> u(0, 1);
  const size_t requests = 1000000, warmup = 200000;
  std::vector<uint32_t> seq(requests);
  for (auto& r : seq) {
    r = static_cast<uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
  }
  // Keys are scattered so that popular ranks do not line up with shards.
  auto name = [](size_t rank) {
    char b[16];
    std::snprintf(b, sizeof(b), "k%09zu", (rank * 2654435761u) % 1000000000u);
    return std::string(b);
  };

  std::string value(value_len, 'x');
  size_t engine_hits = 0;
  for (size_t i = 0; i < requests; ++i) {
    std::string k = name(seq[i]);
    bool hit = engine.lookup(k, {}, [](const ItemView&) {}).hit;
    if (!hit) {
      StoreRequest s;
      s.key = k;
      s.value = value;
      engine.store(s);
    }
    if (i >= warmup) engine_hits += hit;
  }
  // The same byte budget for the reference: what the engine had for items (its pages).
  auto st = engine.stats();
  ExactLru exact(st.memory_used - st.hash_bytes);
  size_t exact_hits = 0;
  for (size_t i = 0; i < requests; ++i) {
    bool hit = exact.access(name(seq[i]), cost);
    if (i >= warmup) exact_hits += hit;
  }
  double measured = double(engine_hits) / double(requests - warmup);
  double reference = double(exact_hits) / double(requests - warmup);
  INFO("engine hit ratio " << measured << ", exact LRU " << reference << ", items "
                           << st.curr_items);
  CHECK(reference > 0.3);
  // S3-FIFO beats exact LRU on Zipf (the simulator gives about 3 points here).
  WARN("engine hit ratio " << measured << ", exact LRU " << reference);
  CHECK(measured >= reference + 0.01);
  CHECK(measured <= reference + 0.10);
}

TEST_CASE("versions: the higher version wins, tombstones stop late older writes",
          "[engine][versions]") {
  Fixture f;
  auto vset = [&](std::string_view k, std::string_view v, uint64_t version) {
    StoreRequest r;
    r.key = k;
    r.value = v;
    r.version = version;
    return f.engine.store(r).status;
  };
  auto vdel = [&](std::string_view k, uint64_t version, int64_t ttl = 30) {
    DeleteRequest d;
    d.key = k;
    d.version = version;
    d.tombstone_exptime = resolve_exptime(ttl, f.clock.now());
    return f.engine.remove(d).status;
  };
  CHECK(vset("k", "v5", 5) == EngineStatus::kOk);
  CHECK(vset("k", "v3", 3) == EngineStatus::kOlderVersion);
  CHECK(f.get("k") == "v5");
  CHECK(f.view("k").version == 5);
  CHECK(vset("k", "v5b", 5) == EngineStatus::kOk);  // a replay of the same version
  CHECK(vset("k", "v7", 7) == EngineStatus::kOk);
  CHECK(f.get("k") == "v7");

  // A versioned delete leaves a tombstone: reads miss, older writes are refused.
  CHECK(vdel("k", 6) == EngineStatus::kOlderVersion);  // the key holds 7
  CHECK(vdel("k", 8) == EngineStatus::kOk);
  CHECK_FALSE(f.get("k"));
  CHECK(vset("k", "late", 7) == EngineStatus::kOlderVersion);
  CHECK_FALSE(f.get("k"));
  // add treats a tombstone as absent (when not older).
  StoreRequest add;
  add.mode = StoreMode::kAdd;
  add.key = "k";
  add.value = "added";
  add.version = 9;
  CHECK(f.engine.store(add).status == EngineStatus::kOk);
  CHECK(f.get("k") == "added");

  // A tombstone for a key that was never there still guards it.
  CHECK(vdel("never", 4) == EngineStatus::kNotFound);
  CHECK(vset("never", "old", 3) == EngineStatus::kOlderVersion);
  // ... until it expires.
  f.clock.advance(31);
  CHECK(vset("never", "old", 3) == EngineStatus::kOk);
  CHECK(f.get("never") == "old");

  // Unversioned writes (memcache clients) always win and clear the version.
  CHECK(f.set("k", "plain").status == EngineStatus::kOk);
  CHECK(f.view("k").version == 0);
  CHECK(vset("k", "v1", 1) == EngineStatus::kOk);

  // Tombstones are invisible to other operations.
  vdel("t", 1);
  ArithRequest a;
  a.key = "t";
  CHECK(f.engine.arith(a).status == EngineStatus::kNotFound);
  LookupOptions touch;
  touch.update_exptime = true;
  CHECK_FALSE(f.engine.lookup("t", touch, [](const ItemView&) {}).hit);
  DeleteRequest plain;
  plain.key = "t";
  CHECK(f.engine.remove(plain).status == EngineStatus::kNotFound);
  CHECK(f.set("t", "x", 0, StoreMode::kReplace).status == EngineStatus::kNotStored);
}

TEST_CASE("a set of a value as long as the old one is written in place", "[engine][memory]") {
  Fixture f(8 << 20);
  for (int i = 0; i < 1000; ++i)
    REQUIRE(f.set("k" + std::to_string(i), "a" + std::string(99, 'x')).status == EngineStatus::kOk);
  const EngineStats before = f.engine.stats();
  std::vector<uint64_t> last_cas(1000, 0);     // (per shard counters: unique, per key rising)
  for (int round = 0; round < 200; ++round) {  // 200,000 overwrites: 30 MB through 8 MB
    for (int i = 0; i < 1000; ++i) {
      const std::string v = std::to_string(round % 10) + std::string(99, 'y');
      StoreResult r = f.set("k" + std::to_string(i), v, 0, StoreMode::kSet, 7);
      REQUIRE(r.status == EngineStatus::kOk);
      REQUIRE(r.cas > last_cas[i]);
      last_cas[i] = r.cas;
    }
  }
  const EngineStats after = f.engine.stats();
  CHECK(after.memory_used == before.memory_used);  // no garbage, nothing new backed
  CHECK(after.evictions == 0);
  CHECK(after.curr_items == 1000);
  CHECK(after.total_items == before.total_items + 200000);
  // What a new item would be: the new value, flags and TTL, not fetched, no lease state.
  ItemView v = f.view("k5");
  CHECK(v.value == "9" + std::string(99, 'y'));
  CHECK(v.client_flags == 7);
  CHECK(v.exptime == 0);
  CHECK_FALSE(v.fetched_before);
  CHECK(f.set("k5", "9" + std::string(99, 'z'), 100).status == EngineStatus::kOk);
  CHECK(f.view("k5").exptime == kStart + 100);
  f.clock.advance(101);
  CHECK_FALSE(f.get("k5"));  // expired: and a set over it takes the general path
  CHECK(f.set("k5", "9" + std::string(99, 'w')).status == EngineStatus::kOk);
  CHECK(f.get("k5") == "9" + std::string(99, 'w'));
  // Another length: a new item (and the old one's bytes become garbage).
  CHECK(f.set("k6", "short").status == EngineStatus::kOk);
  CHECK(f.get("k6") == "short");
  std::string why;
  CHECK(f.engine.check_invariants(&why));
  INFO(why);
}
