// Micro-benchmarks of the native protocol codec: encoding and decoding the frames a get, a set
// and a 10-key multi-get exchange, on both sides. Same key and value sizes as codec_bench.cc
// (memcache text), so the two can be read side by side.
#include <benchmark/benchmark.h>

#include <string>

#include "protocol/native/native.h"

using namespace cachetier;
using namespace cachetier::native;

namespace {

constexpr size_t kLimit = 1 << 20;
constexpr std::string_view kName = "memtier-1234567";
const std::string kValue100(100, 'x');

template <typename Fill>
std::string frame(Fill fill) {
  ByteBuffer b;
  FrameWriter w(b);
  fill(w);
  return std::string(b.view());
}

void write_get(FrameWriter& w) {
  w.begin_request(123456, Op::kGet, 1);
  w.field(kKey);
  w.bin(kName);
  w.end();
}
void write_set(FrameWriter& w) {
  w.begin_request(123456, Op::kSet, 4);
  w.field(kKey);
  w.bin(kName);
  w.field(kValue);
  w.bin(kValue100);
  w.field(kFlags);
  w.uint(5);
  w.field(kTtl);
  w.sint(60);
  w.end();
}
void write_value_reply(FrameWriter& w) {
  w.begin_reply(123456, native::Status::kOk, 3);
  w.field(kValue);
  w.bin(kValue100);
  w.field(kFlags);
  w.uint(0);
  w.field(kCas);
  w.uint(123456789);
  w.end();
}
void write_multi_get(FrameWriter& w) {
  w.begin_request(123456, Op::kMultiGet, 1);
  w.field(kKeys);
  w.array(10);
  for (int i = 0; i < 10; ++i) w.bin("memtier-" + std::to_string(1000000 + i));
  w.end();
}
void write_multi_value_reply(FrameWriter& w) {
  w.begin_reply(123456, native::Status::kOk, 1);
  w.field(kValues);
  w.array(10);
  for (int i = 0; i < 10; ++i) {
    w.array(3);
    w.bin(kValue100);
    w.uint(0);
    w.uint(1000 + i);
  }
  w.end();
}

template <typename Fill>
void encode_loop(benchmark::State& state, Fill fill) {
  ByteBuffer out;
  for (auto _ : state) {
    FrameWriter w(out);
    fill(w);
    benchmark::DoNotOptimize(out.data());
    out.clear();
  }
  state.SetItemsProcessed(state.iterations());
}

template <typename Decoder, typename Message>
void decode_loop(benchmark::State& state, const std::string& wire) {
  Decoder dec(kLimit);
  Message msg;
  for (auto _ : state) {
    DecodeResult r = dec.feed(wire, msg);
    if (r.status != DecodeStatus::kComplete) state.SkipWithError("frame did not decode");
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(msg);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(wire.size()));
}

void BM_NativeEncodeGet(benchmark::State& s) { encode_loop(s, write_get); }
void BM_NativeEncodeSet100(benchmark::State& s) { encode_loop(s, write_set); }
void BM_NativeEncodeValue100(benchmark::State& s) { encode_loop(s, write_value_reply); }
void BM_NativeDecodeGet(benchmark::State& s) {
  decode_loop<RequestDecoder, Request>(s, frame(write_get));
}
void BM_NativeDecodeSet100(benchmark::State& s) {
  decode_loop<RequestDecoder, Request>(s, frame(write_set));
}
void BM_NativeDecodeMultiGet10(benchmark::State& s) {
  decode_loop<RequestDecoder, Request>(s, frame(write_multi_get));
}
void BM_NativeClientDecodeValue100(benchmark::State& s) {
  decode_loop<ResponseDecoder, Response>(s, frame(write_value_reply));
}
void BM_NativeClientDecodeMultiValue10(benchmark::State& s) {
  decode_loop<ResponseDecoder, Response>(s, frame(write_multi_value_reply));
}

}  // namespace

BENCHMARK(BM_NativeEncodeGet);
BENCHMARK(BM_NativeEncodeSet100);
BENCHMARK(BM_NativeEncodeValue100);
BENCHMARK(BM_NativeDecodeGet);
BENCHMARK(BM_NativeDecodeSet100);
BENCHMARK(BM_NativeDecodeMultiGet10);
BENCHMARK(BM_NativeClientDecodeValue100);
BENCHMARK(BM_NativeClientDecodeMultiValue10);
