#include "router/ketama.h"

#include <nettle/md5.h>

#include <cmath>
#include <string>

namespace cachetier::router {

namespace {

constexpr uint32_t kPointsPerServer = 160;
constexpr uint32_t kPointsPerHash = 4;

void md5(std::string_view in, uint8_t out[MD5_DIGEST_SIZE]) {
  md5_ctx ctx;
  md5_init(&ctx);
  md5_update(&ctx, in.size(), reinterpret_cast<const uint8_t*>(in.data()));
  md5_digest(&ctx, MD5_DIGEST_SIZE, out);
}

// Four little-endian 32-bit words of the digest; word `i`.
uint32_t word(const uint8_t* d, int i) {
  return (uint32_t{d[3 + i * 4]} << 24) | (uint32_t{d[2 + i * 4]} << 16) |
         (uint32_t{d[1 + i * 4]} << 8) | d[i * 4];
}

uint64_t key_hash(std::string_view key) {
  uint8_t d[MD5_DIGEST_SIZE];
  md5(key, d);
  return word(d, 0);
}

}  // namespace

Result<client::Ring> ketama_ring(std::vector<client::ShardSpec> shards) {
  uint64_t total_weight = 0;
  for (const auto& s : shards) total_weight += s.weight;
  std::vector<std::pair<uint64_t, uint32_t>> points;
  const float n = static_cast<float>(shards.size());
  for (uint32_t i = 0; i < shards.size(); ++i) {
    // Single-precision arithmetic, as twemproxy computes it, so the point counts agree.
    float share = static_cast<float>(shards[i].weight) / static_cast<float>(total_weight);
    float hashes = share * kPointsPerServer / kPointsPerHash * n;
    auto per_server = static_cast<uint32_t>(std::floor(static_cast<float>(hashes + 0.0000000001)) *
                                            kPointsPerHash);
    for (uint32_t p = 0; p < per_server / kPointsPerHash; ++p) {
      std::string label = shards[i].name + "-" + std::to_string(p);
      uint8_t d[MD5_DIGEST_SIZE];
      md5(label, d);
      for (int x = 0; x < int(kPointsPerHash); ++x) points.emplace_back(word(d, x), i);
    }
  }
  return client::Ring::from_points(std::move(shards), std::move(points), key_hash);
}

}  // namespace cachetier::router
