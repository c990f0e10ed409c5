// Micro-benchmarks of LruEngine: get hits and sets at 1 and 2 threads on 100-byte values over
// 100k keys (the comparison profile of bench/compare).
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

void setup(const benchmark::State& state) {
  if (state.thread_index() != 0) return;
  g_engine = std::make_unique<LruEngine>(LruEngineConfig{256u << 20, 6, 1024}, g_clock);
  g_keys.clear();
  for (size_t i = 0; i < kKeys; ++i) {
    g_keys.push_back("memtier-" + std::to_string(i));
    StoreRequest s;
    s.key = g_keys.back();
    s.value = g_value;
    g_engine->store(s);
  }
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

}  // namespace

BENCHMARK(BM_EngineGetHit)->Setup(setup)->Teardown(teardown)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_EngineSet)->Setup(setup)->Teardown(teardown)->Threads(1)->Threads(2)->UseRealTime();
