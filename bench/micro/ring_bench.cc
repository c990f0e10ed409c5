// Micro-benchmark of a ring lookup (xxh3 of the key + binary search over the points).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "client/ring/ring.h"

using namespace cachetier::client;

static void BM_RingLookup(benchmark::State& state) {
  std::vector<ShardSpec> specs;
  for (int i = 0; i < state.range(0); ++i) specs.push_back({"shard" + std::to_string(i), 1, {}});
  auto ring = Ring::create(specs, 160);
  std::vector<std::string> keys;
  for (int i = 0; i < 4096; ++i) keys.push_back("memtier-" + std::to_string(i * 7919));
  size_t i = 0, sum = 0;
  for (auto _ : state) sum += ring.value().shard_for(keys[i++ & 4095]);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RingLookup)->Arg(3)->Arg(10)->Arg(100);
