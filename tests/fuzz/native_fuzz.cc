// libFuzzer target: the native protocol codec, both sides. When the first input byte is odd,
// the rest is wrapped in a valid frame header so that the search reaches the msgpack body
// quickly; requests that decode are executed against a small real engine. msgpack-c is the
// oracle for the hand-written reader: whatever body prescan() accepts, msgpack-c must parse
// whole, and the writer's replies must parse with it too.
#include <msgpack.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "cacheserver/engine/lru_engine.h"
#include "cacheserver/process/native_process.h"
#include "protocol/native/native.h"

using namespace cachetier;

namespace {

// True when msgpack-c parses `body` as exactly one object. Only called on bodies whose declared
// sizes prescan() has checked against the bytes present (msgpack-c allocates by declared size).
bool msgpack_c_accepts(std::string_view body) {
  msgpack_zone zone;
  if (!msgpack_zone_init(&zone, 1024)) __builtin_trap();
  msgpack_object obj;
  size_t off = 0;
  msgpack_unpack_return r = msgpack_unpack(body.data(), body.size(), &off, &zone, &obj);
  msgpack_zone_destroy(&zone);
  return r == MSGPACK_UNPACK_SUCCESS && off == body.size();
}

void check_against_msgpack_c(std::string_view frames) {
  while (frames.size() >= native::kFrameHeader &&
         static_cast<uint8_t>(frames[0]) == native::kMagic) {
    auto u = [&](int i) { return static_cast<uint32_t>(static_cast<uint8_t>(frames[i])); };
    uint32_t len = (u(1) << 24) | (u(2) << 16) | (u(3) << 8) | u(4);
    if (frames.size() - native::kFrameHeader < len) break;
    std::string_view body = frames.substr(native::kFrameHeader, len);
    if (native::prescan(body, 15) && !msgpack_c_accepts(body)) __builtin_trap();
    frames.remove_prefix(native::kFrameHeader + len);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ManualClock clock(1'700'000'000);
  static engine::LruEngine engine(engine::LruEngineConfig{2 << 20, 4, 64, 64 << 10, 16 << 10},
                                  clock);
  static process::Counters counters;
  process::Context ctx{engine, counters, nullptr, nullptr, 1 << 20, 64 << 10};
  std::string wire;
  if (size > 0 && (data[0] & 1)) {
    auto n = static_cast<uint32_t>(size - 1);
    wire.push_back(static_cast<char>(native::kMagic));
    wire.push_back(static_cast<char>(n >> 24));
    wire.push_back(static_cast<char>(n >> 16));
    wire.push_back(static_cast<char>(n >> 8));
    wire.push_back(static_cast<char>(n));
    wire.append(reinterpret_cast<const char*>(data) + 1, size - 1);
  } else {
    wire.assign(reinterpret_cast<const char*>(data), size);
  }
  std::string_view in(wire);
  check_against_msgpack_c(in);

  native::RequestDecoder dec(64 << 10);
  native::Request req;
  ByteBuffer out;
  size_t pos = 0;
  while (pos < in.size()) {
    native::DecodeResult r = dec.feed(in.substr(pos), req);
    if (r.consumed > in.size() - pos) __builtin_trap();
    if (r.status == native::DecodeStatus::kNeedMore || r.status == native::DecodeStatus::kFatal) {
      break;
    }
    if (r.consumed == 0) __builtin_trap();
    pos += r.consumed;
    if (r.status == native::DecodeStatus::kComplete) {
      process::handle_native(req, ctx, out);
    } else {
      process::native_error(r.id, r.error, r.message, out);
    }
    if (out.size() > (1 << 20)) out.clear();
  }
  clock.advance(1);

  // Our own replies must decode on the client side.
  native::ResponseDecoder rdec(64 << 20);
  native::Response resp;
  std::string_view replies = out.view();
  check_against_msgpack_c(replies);
  while (!replies.empty()) {
    native::DecodeResult r = rdec.feed(replies, resp);
    if (r.status != native::DecodeStatus::kComplete) __builtin_trap();
    replies.remove_prefix(r.consumed);
  }
  // And the client side on the raw bytes.
  pos = 0;
  while (pos < in.size()) {
    native::DecodeResult r = rdec.feed(in.substr(pos), resp);
    if (r.status != native::DecodeStatus::kComplete) break;
    if (r.consumed == 0 || r.consumed > in.size() - pos) __builtin_trap();
    pos += r.consumed;
  }
  return 0;
}
