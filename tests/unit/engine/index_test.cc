// LruEngine's open-addressing index with a manual clock: every key findable through deletes,
// re-adds, expiry and growth (tombstones and the empty slots they turn back into), a table
// that the budget does not let grow evicting on a key's probe path while the bound holds, and
// tables that shrink when the keys grow large.
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>

#include "cacheserver/engine/lru_engine.h"

using namespace cachetier;
using namespace cachetier::engine;

namespace {

constexpr int64_t kStart = 1'700'000'000;

bool set(LruEngine& e, const std::string& k, const std::string& v, int64_t exptime = 0) {
  StoreRequest r;
  r.key = k;
  r.value = v;
  r.exptime = exptime;
  return e.store(r).status == EngineStatus::kOk;
}

// The value stored under `k`, or "-" for a miss (values here are never "-").
std::string get(LruEngine& e, const std::string& k) {
  std::string out = "-";
  LookupOptions o;
  o.bump = false;
  e.lookup(k, o, [&](const ItemView& v) { out = std::string(v.value); });
  return out;
}

bool del(LruEngine& e, const std::string& k) {
  DeleteRequest d;
  d.key = k;
  return e.remove(d).status == EngineStatus::kOk;
}

void invariants(const LruEngine& e) {
  std::string why;
  const bool ok = e.check_invariants(&why);
  INFO(why);
  REQUIRE(ok);
}

}  // namespace

TEST_CASE("index: every key stays findable through deletes, re-adds and growth",
          "[engine][index]") {
  ManualClock clock(kStart);
  // Four shards of 16 slots to start with: the tables grow several times, and the deletes
  // leave tombstones inside the runs that later probes must pass over.
  LruEngine e(LruEngineConfig{64 << 20, 2, 16, 64 << 10, 1 << 20}, clock);
  std::mt19937 rng(42);
  std::map<std::string, std::string> model;
  const int kKeys = 3000;
  for (int batch = 0; batch < 40; ++batch) {
    for (int op = 0; op < 1000; ++op) {
      const std::string k = "k" + std::to_string(rng() % kKeys);
      const unsigned r = rng() % 10;
      if (r < 5) {
        const std::string v(1 + rng() % 40, static_cast<char>('a' + rng() % 26));
        REQUIRE(set(e, k, v));
        model[k] = v;
      } else if (r < 8) {
        CHECK(del(e, k) == (model.erase(k) == 1));
      } else {
        const auto m = model.find(k);
        CHECK(get(e, k) == (m == model.end() ? "-" : m->second));
      }
    }
    invariants(e);
  }
  // Every key of the model, and nothing else.
  for (int i = 0; i < kKeys; ++i) {
    const std::string k = "k" + std::to_string(i);
    const auto m = model.find(k);
    CHECK(get(e, k) == (m == model.end() ? "-" : m->second));
  }
  CHECK(e.stats().curr_items == model.size());
  CHECK(e.stats().evictions == 0);
  // Expiry through the background reclaimer empties slots too; the rest stay findable.
  for (int i = 0; i < kKeys; i += 2) REQUIRE(set(e, "t" + std::to_string(i), "x", kStart + 10));
  clock.advance(11);
  for (int i = 0; i < 50; ++i) e.reclaim_expired(1 << 16);
  invariants(e);
  for (int i = 0; i < kKeys; i += 2) CHECK(get(e, "t" + std::to_string(i)) == "-");
  for (const auto& [k, v] : model) CHECK(get(e, k) == v);
  CHECK(e.stats().curr_items == model.size());
  // A flush empties every table.
  e.flush(0);
  invariants(e);
  CHECK(e.stats().curr_items == 0);
  REQUIRE(set(e, "after", "flush"));
  CHECK(get(e, "after") == "flush");
}

TEST_CASE("index: with no memory left to grow it, the table evicts and the bound holds",
          "[engine][index]") {
  ManualClock clock(kStart);
  // 2 MB in two shards: the index's reserve (1/16, 128 KB) is 16,384 slots, so at most
  // 14,336 keys before it must grow, while the segments could hold some 50,000 items of 40
  // bytes. Memory moves from the segments to the index (up to a quarter of the limit, 65,536
  // slots); until it has, new keys evict on their probe path.
  const size_t limit = 2 << 20;
  LruEngine e(LruEngineConfig{limit, 1, 8192, 64 << 10, 1 << 20}, clock);
  const int kWrites = 200000;
  uint64_t most = 0;
  for (int i = 0; i < kWrites; ++i) {
    REQUIRE(set(e, "key" + std::to_string(i), "v"));
    // The key just written is there: it took a slot, never lost one.
    if (i % 1000 == 0) {
      REQUIRE(get(e, "key" + std::to_string(i)) == "v");
      const EngineStats st = e.stats();
      most = std::max(most, st.memory_used);
      REQUIRE(st.memory_used <= limit);
      invariants(e);
    }
  }
  const EngineStats st = e.stats();
  INFO("items " << st.curr_items << ", index bytes " << st.hash_bytes << ", evictions "
                << st.evictions << ", most memory used " << most);
  CHECK(st.memory_used <= limit);
  CHECK(st.hash_bytes == 65536 * 8);  // grown to its quarter of the limit, and no further
  CHECK(st.evictions >= kWrites - st.curr_items);
  CHECK(st.curr_items > 25000);  // beyond what the reserve alone indexes
  CHECK(st.curr_items + st.evictions + st.reclaimed == kWrites);
  invariants(e);
  // The newest keys are the ones kept.
  int recent = 0;
  for (int i = kWrites - 1000; i < kWrites; ++i) recent += get(e, "key" + std::to_string(i)) == "v";
  CHECK(recent >= 990);

  // Then the keys grow large: a few hundred fit, the tables shrink and their memory goes back
  // to the segments.
  const std::string big(2000, 'b');
  for (int i = 0; i < 100000; ++i) {
    REQUIRE(set(e, "big" + std::to_string(i), big));
    if (i % 5000 == 0) {
      REQUIRE(e.stats().memory_used <= limit);
      invariants(e);
    }
  }
  const EngineStats after = e.stats();
  INFO("items " << after.curr_items << ", index bytes " << after.hash_bytes);
  CHECK(after.hash_bytes <= 2 * 8192 * 8);  // from 65,536 slots back to the first 8,192 a shard
  CHECK(after.curr_items > 500);
  CHECK(get(e, "big99999") == big);
  invariants(e);
}
