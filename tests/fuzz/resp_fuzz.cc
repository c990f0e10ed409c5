// libFuzzer target: the RESP codec, both sides. Commands that decode are executed against a
// small real engine through the RESP command layer, so it sees fuzzed commands too.
#include <cstdint>
#include <string>
#include <string_view>

#include "cacheserver/engine/lru_engine.h"
#include "cacheserver/process/resp_process.h"
#include "protocol/resp/reply.h"
#include "protocol/resp/resp.h"

using namespace cachetier;

namespace {
class Peer final : public process::RespPeer {
 public:
  bool auth_required() const override { return false; }
  bool check_auth(std::string_view, std::string_view) override { return false; }
  std::string client_info() const override { return "id=1"; }
  int listen_port() const override { return 6379; }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ManualClock clock(1'700'000'000);
  static engine::LruEngine engine(engine::LruEngineConfig{2 << 20, 4, 64, 64 << 10, 16 << 10},
                                  clock);
  static process::Counters counters;
  process::Context ctx{engine, counters, nullptr, nullptr, 1 << 20, 0};
  ctx.max_item_size = 64 << 10;
  Peer peer;
  process::RespSession session;
  std::string_view in(reinterpret_cast<const char*>(data), size);

  // Server side: every byte is consumed or waits for more; progress is always made.
  resp::Limits limits;
  limits.max_bulk = 64 << 10;
  limits.max_inline = 4096;
  resp::RequestDecoder dec(limits);
  resp::Command cmd;
  ByteBuffer out;
  size_t pos = 0;
  while (pos < in.size()) {
    resp::DecodeResult r = dec.feed(in.substr(pos), cmd);
    if (r.status == resp::DecodeStatus::kNeedMore || r.status == resp::DecodeStatus::kFatal) break;
    if (r.consumed == 0 || r.consumed > in.size() - pos) __builtin_trap();
    pos += r.consumed;
    if (r.status == resp::DecodeStatus::kComplete) {
      if (cmd.argv.empty()) __builtin_trap();
      if (process::handle_resp(cmd, ctx, session, peer, out) != process::Action::kContinue) break;
    }
    // Every reply the layer wrote is whole RESP.
    size_t at = 0;
    while (at < out.size()) {
      resp::Value v;
      resp::ReplyResult rr = resp::decode_reply(out.view().substr(at), v);
      if (rr.status != resp::ReplyResult::kComplete) __builtin_trap();
      at += rr.consumed;
    }
    out.clear();
  }
  clock.advance(1);

  // Client side on the same bytes.
  pos = 0;
  while (pos < in.size()) {
    resp::Value v;
    resp::ReplyResult r = resp::decode_reply(in.substr(pos), v, 16, 64 << 10);
    if (r.status != resp::ReplyResult::kComplete) break;
    if (r.consumed == 0 || r.consumed > in.size() - pos) __builtin_trap();
    pos += r.consumed;
  }
  return 0;
}
