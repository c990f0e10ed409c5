// libFuzzer target: the memcache text codec, both sides. Requests that decode are executed
// against a small real engine, so the process layer and the engine see fuzzed commands too.
#include <cstdint>
#include <string_view>

#include "cacheserver/engine/lru_engine.h"
#include "cacheserver/process/process.h"
#include "protocol/memcache/client_codec.h"
#include "protocol/memcache/server_codec.h"

using namespace cachetier;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ManualClock clock(1'700'000'000);
  static engine::LruEngine engine(engine::LruEngineConfig{2 << 20, 4, 64, 64 << 10, 16 << 10},
                                  clock);
  static process::Counters counters;
  process::Context ctx{engine, counters, nullptr, nullptr, 1 << 20, 0};
  std::string_view in(reinterpret_cast<const char*>(data), size);

  // Server side: every byte is consumed or waits for more; progress is always made.
  memcache::RequestDecoder dec(memcache::DecoderLimits{512, 16 << 10});
  memcache::Request req;
  ByteBuffer out;
  size_t pos = 0;
  while (pos < in.size()) {
    memcache::DecodeResult r = dec.feed(in.substr(pos), req);
    if (r.consumed > in.size() - pos) __builtin_trap();
    if (r.status == memcache::DecodeStatus::kNeedMore ||
        r.status == memcache::DecodeStatus::kFatal) {
      break;
    }
    if (r.consumed == 0) __builtin_trap();  // a complete or erroneous request took no bytes
    pos += r.consumed;
    if (r.status == memcache::DecodeStatus::kComplete) {
      if (process::handle(req, ctx, out) != process::Action::kContinue) break;
    }
    if (out.size() > (1 << 20)) out.clear();
  }
  clock.advance(1);

  // Client side on the same bytes.
  memcache::ResponseDecoder rdec(64 << 10);
  memcache::Response resp;
  pos = 0;
  while (pos < in.size()) {
    memcache::DecodeResult r = rdec.feed(in.substr(pos), resp);
    if (r.status != memcache::DecodeStatus::kComplete) break;
    if (r.consumed == 0 || r.consumed > in.size() - pos) __builtin_trap();
    pos += r.consumed;
  }
  return 0;
}
