// Micro-benchmarks of the memcache text codec: decoding requests per command and encoding
// the responses and requests the server and clients write most.
#include <benchmark/benchmark.h>

#include <string>

#include "protocol/memcache/client_codec.h"
#include "protocol/memcache/server_codec.h"

using namespace cachetier;
using namespace cachetier::memcache;

namespace {

void decode_loop(benchmark::State& state, const std::string& wire) {
  RequestDecoder dec;
  Request req;
  for (auto _ : state) {
    DecodeResult r = dec.feed(wire, req);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(req.keys.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(wire.size()));
}

void BM_DecodeGet(benchmark::State& s) { decode_loop(s, "get memtier-1234567\r\n"); }
void BM_DecodeGetMulti10(benchmark::State& s) {
  std::string w = "get";
  for (int i = 0; i < 10; ++i) w += " memtier-" + std::to_string(1000000 + i);
  decode_loop(s, w + "\r\n");
}
void BM_DecodeSet100(benchmark::State& s) {
  decode_loop(s, "set memtier-1234567 0 0 100\r\n" + std::string(100, 'x') + "\r\n");
}
void BM_DecodeIncr(benchmark::State& s) { decode_loop(s, "incr counter 1\r\n"); }
void BM_DecodeMetaGet(benchmark::State& s) { decode_loop(s, "mg memtier-1234567 v f c t k\r\n"); }
void BM_DecodeMetaSet100(benchmark::State& s) {
  decode_loop(s, "ms memtier-1234567 100 T60 F5 c\r\n" + std::string(100, 'x') + "\r\n");
}

void BM_EncodeValue100(benchmark::State& state) {
  ByteBuffer out;
  std::string value(100, 'x');
  uint64_t cas = 123456789;
  for (auto _ : state) {
    write_value(out, "memtier-1234567", 0, value, &cas);
    out.append(reply::kEnd);
    benchmark::DoNotOptimize(out.data());
    out.clear();
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ClientEncodeSet100(benchmark::State& state) {
  ByteBuffer out;
  std::string value(100, 'x');
  for (auto _ : state) {
    encode_storage(out, Command::kSet, "memtier-1234567", 0, 0, value);
    benchmark::DoNotOptimize(out.data());
    out.clear();
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ClientDecodeValue100(benchmark::State& state) {
  std::string wire = "VALUE memtier-1234567 0 100\r\n" + std::string(100, 'x') + "\r\n";
  ResponseDecoder dec;
  Response r;
  for (auto _ : state) {
    auto res = dec.feed(wire, r);
    benchmark::DoNotOptimize(res);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_DecodeGet);
BENCHMARK(BM_DecodeGetMulti10);
BENCHMARK(BM_DecodeSet100);
BENCHMARK(BM_DecodeIncr);
BENCHMARK(BM_DecodeMetaGet);
BENCHMARK(BM_DecodeMetaSet100);
BENCHMARK(BM_EncodeValue100);
BENCHMARK(BM_ClientEncodeSet100);
BENCHMARK(BM_ClientDecodeValue100);
