// LruEngine under random operations from several threads: sets of random sizes (jumbo items
// too), gets, deletes, appends, incrs, touches and TTLs on a manual clock. Each thread owns its
// keys and keeps a model of them, so every hit is checked against the last write; after every
// batch the engine's invariants are checked (every allocation linked or released, segment
// references equal to the items in the index, the memory bound).
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cacheserver/engine/lru_engine.h"

using namespace cachetier;
using namespace cachetier::engine;

namespace {

constexpr int64_t kStart = 1'700'000'000;

struct Model {
  std::string value;
  int64_t exptime = 0;  // 0 never
};

// One thread's work: `ops` random operations on its own keys. With `exact` (no memory
// pressure) a key the model holds must hit; otherwise it may have been evicted, but a hit
// must still carry the last value written.
void worker(LruEngine& engine, const ManualClock& clock, int thread, int ops, uint64_t seed,
            bool exact, std::map<int, Model>& model, std::atomic<int>& errors,
            std::string& first_error) {
  std::mt19937_64 rng(seed);
  auto key = [&](int k) { return "t" + std::to_string(thread) + ":" + std::to_string(k); };
  auto fail = [&](const std::string& what) {
    if (errors.fetch_add(1) == 0) first_error = what;
  };
  auto size = [&]() -> size_t {
    const unsigned r = static_cast<unsigned>(rng() % 100);
    if (r < 70) return rng() % 200;
    if (r < 95) return rng() % 4000;
    return 16000 + rng() % 60000;  // jumbo with 64 KiB segments
  };
  for (int i = 0; i < ops; ++i) {
    const int k = static_cast<int>(rng() % 300);
    const std::string kk = key(k);
    const int64_t now = clock.now();
    auto it = model.find(k);
    if (it != model.end() && it->second.exptime != 0 && it->second.exptime <= now) {
      model.erase(it);
      it = model.end();
    }
    const unsigned op = static_cast<unsigned>(rng() % 100);
    if (op < 35) {  // set
      std::string v(size(), static_cast<char>('a' + rng() % 26));
      v.replace(0, std::min<size_t>(v.size(), 8), std::to_string(i).substr(0, v.size()));
      StoreRequest r;
      r.key = kk;
      r.value = v;
      r.exptime = rng() % 4 == 0 ? now + 1 + static_cast<int64_t>(rng() % 5) : 0;
      StoreResult res = engine.store(r);
      if (res.status == EngineStatus::kOk) {
        model[k] = {v, r.exptime};
      } else if (exact || res.status != EngineStatus::kNoMemory) {
        fail("set " + kk + " failed");
      }
    } else if (op < 75) {  // get
      std::optional<std::string> got;
      engine.lookup(kk, {}, [&](const ItemView& v) { got = std::string(v.value); });
      if (got) {
        if (it == model.end()) {
          fail("get " + kk + ": a hit on a key not written or gone");
        } else if (*got != it->second.value) {
          fail("get " + kk + ": not the last value written");
        }
      } else if (exact && it != model.end()) {
        fail("get " + kk + ": lost (" + std::to_string(it->second.value.size()) + " bytes)");
      } else if (it != model.end()) {
        model.erase(it);  // evicted
      }
    } else if (op < 83) {  // delete
      DeleteRequest d;
      d.key = kk;
      const bool hit = engine.remove(d).status == EngineStatus::kOk;
      if (exact && hit != (it != model.end())) fail("delete " + kk + ": wrong hit");
      model.erase(k);
    } else if (op < 91) {  // append
      const std::string piece(rng() % 300, 'p');
      StoreRequest r;
      r.mode = StoreMode::kAppend;
      r.key = kk;
      r.value = piece;
      StoreResult res = engine.store(r);
      if (res.status == EngineStatus::kOk) {
        if (it == model.end()) {
          fail("append " + kk + ": stored on a missing key");
        } else {
          it->second.value += piece;
        }
      } else if (it != model.end()) {
        if (exact && res.status != EngineStatus::kTooLarge) fail("append " + kk + " failed");
        model.erase(it);  // evicted, or too large (then the old value stays: forget it)
        if (res.status == EngineStatus::kTooLarge) {
          DeleteRequest d;
          d.key = kk;
          engine.remove(d);
        }
      }
    } else if (op < 96) {  // incr on a counter key of its own
      const std::string ck = kk + ":n";
      ArithRequest a;
      a.key = ck;
      a.delta = 1 + rng() % 1000;
      a.incr = true;
      a.vivify = true;
      a.initial = 5;
      ArithResult res = engine.arith(a);
      if (res.status != EngineStatus::kOk && (exact || res.status != EngineStatus::kNoMemory)) {
        fail("incr " + ck + " failed");
      }
      std::optional<std::string> got;
      engine.lookup(ck, {}, [&](const ItemView& v) { got = std::string(v.value); });
      if (res.status == EngineStatus::kOk && exact &&
          (!got || got->find(std::to_string(res.value)) != 0)) {
        fail("incr " + ck + ": not what it returned");
      }
    } else {  // touch
      LookupOptions o;
      o.update_exptime = true;
      o.exptime = 0;
      const bool hit = engine.lookup(kk, o, [](const ItemView&) {}).hit;
      if (hit && it != model.end()) it->second.exptime = 0;
      if (exact && hit != (it != model.end())) fail("touch " + kk + ": wrong hit");
    }
  }
}

void run(size_t limit, bool exact, int threads, int batches) {
  ManualClock clock(kStart);
  LruEngine engine(LruEngineConfig{limit, 4, 64, 64 << 10, 256 << 10}, clock);
  std::atomic<int> errors{0};
  std::vector<std::string> first(static_cast<size_t>(threads));
  std::vector<std::map<int, Model>> models(static_cast<size_t>(threads));
  for (int b = 0; b < batches; ++b) {
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back(worker, std::ref(engine), std::cref(clock), t, 3000,
                      uint64_t(b) * 1000 + uint64_t(t), exact,
                      std::ref(models[static_cast<size_t>(t)]), std::ref(errors),
                      std::ref(first[static_cast<size_t>(t)]));
    }
    for (auto& t : ts) t.join();
    std::string why;
    const bool ok = engine.check_invariants(&why);
    INFO("batch " << b << ": " << why);
    REQUIRE(ok);
    REQUIRE(engine.stats().memory_used <= limit);
    for (const auto& f : first) {
      INFO(f);
      REQUIRE(errors.load() == 0);
    }
    clock.advance(1);
    if (b % 3 == 2) engine.reclaim_expired(1 << 20);
  }
  // Everything gone: no segment keeps a reference.
  engine.flush(clock.now());
  std::string why;
  const bool ok = engine.check_invariants(&why);
  INFO(why);
  REQUIRE(ok);
  CHECK(engine.stats().curr_items == 0);
}

}  // namespace

TEST_CASE("stress: no item is lost or mixed up without memory pressure", "[engine][stress]") {
  // Models are per thread and a thread's keys are its own, so this is exact even with four.
  run(64 << 20, true, 4, 12);
}

TEST_CASE("stress: under memory pressure hits are the last write, the bound holds",
          "[engine][stress]") {
  run(2 << 20, false, 4, 12);
}
