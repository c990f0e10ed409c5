// Micro-benchmarks of LruEngine: get hits and sets at 1 and 2 threads on 100-byte values over
// 100k keys (the comparison profile of bench/compare). BM_EngineSet overwrites with a value
// of the same length (written in place); BM_EngineSetResize writes 90-110 bytes, so nearly
// every set allocates and leaves garbage, in a 256 MB engine (the 15 MB of items spread over
// all of it) and in a 32 MB one (about the L3 size); BM_EngineSetEvict writes new keys into a full
// 32 MB engine, so every set allocates and the sets pay for the evictions.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cacheserver/engine/lru_engine.h"

using namespace cachetier;
using namespace cachetier::engine;

namespace {

constexpr size_t kKeys = 100000;
SystemClock g_clock;
std::unique_ptr<LruEngine> g_engine;
std::vector<std::string> g_keys;
const std::string g_value(100, 'v');
const std::string g_long(110, 'v');
constexpr size_t kEvictKeys = 4000000;

void setup_sized(const benchmark::State& state, size_t limit) {
  if (state.thread_index() != 0) return;
  g_engine = std::make_unique<LruEngine>(LruEngineConfig{limit, 6, 1024}, g_clock);
  g_keys.clear();
  for (size_t i = 0; i < kKeys; ++i) {
    g_keys.push_back("memtier-" + std::to_string(i));
    StoreRequest s;
    s.key = g_keys.back();
    s.value = g_value;
    g_engine->store(s);
  }
}
void setup(const benchmark::State& state) { setup_sized(state, 256u << 20); }
void setup_small(const benchmark::State& state) { setup_sized(state, 32u << 20); }
// The budget in MB from the benchmark's argument.
void setup_arg(const benchmark::State& state) {
  setup_sized(state, static_cast<size_t>(state.range(0)) << 20);
}
void teardown(const benchmark::State& state) {
  if (state.thread_index() == 0) g_engine.reset();
}

void BM_EngineGetHit(benchmark::State& state) {
  std::mt19937 rng(static_cast<unsigned>(state.thread_index()) + 1);
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string& k = g_keys[rng() % kKeys];
    g_engine->lookup(k, {}, [&](const ItemView& v) { bytes += v.value.size(); });
  }
  benchmark::DoNotOptimize(bytes);
  state.SetItemsProcessed(state.iterations());
}

void BM_EngineSet(benchmark::State& state) {
  std::mt19937 rng(static_cast<unsigned>(state.thread_index()) + 7);
  for (auto _ : state) {
    StoreRequest s;
    s.key = g_keys[rng() % kKeys];
    s.value = g_value;
    benchmark::DoNotOptimize(g_engine->store(s));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_EngineSetResize(benchmark::State& state) {
  std::mt19937 rng(static_cast<unsigned>(state.thread_index()) + 11);
  for (auto _ : state) {
    const uint32_t r = rng();
    StoreRequest s;
    s.key = g_keys[r % kKeys];
    s.value = std::string_view(g_long).substr(0, 90 + (r >> 24) % 21);
    benchmark::DoNotOptimize(g_engine->store(s));
  }
  state.SetItemsProcessed(state.iterations());
  // Every key fits: none should be evicted, and all should be there at the end.
  if (state.thread_index() == 0) {
    const EngineStats st = g_engine->stats();
    state.counters["evictions"] = static_cast<double>(st.evictions);
    state.counters["items"] = static_cast<double>(st.curr_items);
  }
}

void BM_EngineSetEvict(benchmark::State& state) {
  // Keys of the same form as g_keys, from a space far larger than 32 MB holds.
  std::mt19937 rng(static_cast<unsigned>(state.thread_index()) + 13);
  std::string key;
  for (auto _ : state) {
    key = "memtier-";
    key += std::to_string(rng() % kEvictKeys);
    StoreRequest s;
    s.key = key;
    s.value = g_value;
    benchmark::DoNotOptimize(g_engine->store(s));
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_EngineGetHit)->Setup(setup)->Teardown(teardown)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_EngineSet)->Setup(setup)->Teardown(teardown)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_EngineSetResize)
    ->Setup(setup_arg)
    ->Arg(256)
    ->Arg(32)
    ->Teardown(teardown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_EngineSetEvict)
    ->Setup(setup_small)
    ->Teardown(teardown)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
