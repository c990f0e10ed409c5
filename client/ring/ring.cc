// Ring construction and lookup. See ring.h.
#include "client/ring/ring.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <set>

namespace cachetier::client {

Status Ring::check(const std::vector<ShardSpec>& shards) {
  if (shards.empty())
    return Status(StatusCode::kInvalidArgument, "a ring needs at least one shard");
  std::set<std::string> names;
  for (const ShardSpec& s : shards) {
    if (s.name.empty()) return Status(StatusCode::kInvalidArgument, "a shard has no name");
    if (!names.insert(s.name).second) {
      return Status(StatusCode::kInvalidArgument, "duplicate shard name '" + s.name + "'");
    }
    if (s.weight == 0) {
      return Status(StatusCode::kInvalidArgument, "shard '" + s.name + "' has weight 0");
    }
  }
  return Status::ok();
}

Result<Ring> Ring::from_points(std::vector<ShardSpec> shards,
                               std::vector<std::pair<uint64_t, uint32_t>> points,
                               KeyHash key_hash) {
  Status st = check(shards);
  if (!st.is_ok()) return st;
  if (points.empty()) return Status(StatusCode::kInvalidArgument, "a ring needs points");
  for (const auto& p : points) {
    if (p.second >= shards.size()) {
      return Status(StatusCode::kInvalidArgument, "a point names no shard");
    }
  }
  Ring ring;
  ring.points_ = std::move(points);
  std::sort(ring.points_.begin(), ring.points_.end());
  ring.index_points();
  ring.shards_ = std::move(shards);
  ring.key_hash_ = key_hash;
  return ring;
}

Result<Ring> Ring::create(std::vector<ShardSpec> shards, uint32_t vnodes) {
  if (vnodes == 0) return Status(StatusCode::kInvalidArgument, "vnodes must be at least 1");
  Status st = check(shards);
  if (!st.is_ok()) return st;
  Ring ring;
  for (uint32_t i = 0; i < shards.size(); ++i) {
    const ShardSpec& s = shards[i];
    uint64_t n = uint64_t{vnodes} * s.weight;
    std::string label;
    for (uint64_t v = 0; v < n; ++v) {
      label = s.name + "#" + std::to_string(v);
      ring.points_.emplace_back(XXH3_64bits(label.data(), label.size()), i);
    }
  }
  // Ties (astronomically rare) are broken by shard index so every builder agrees.
  std::sort(ring.points_.begin(), ring.points_.end());
  ring.index_points();
  ring.shards_ = std::move(shards);
  return ring;
}

uint64_t Ring::hash(std::string_view key) const {
  return key_hash_ != nullptr ? key_hash_(key) : XXH3_64bits(key.data(), key.size());
}

void Ring::index_points() {
  // About one bucket per point (at most 2^16), over the positions' actual range: ketama-md5
  // positions are 32-bit, xxh3's 64-bit.
  int bits = 0;
  while ((size_t{1} << bits) < points_.size() && bits < 16) ++bits;
  const uint64_t top = points_.back().first;
  const int used = 64 - std::countl_zero(top);
  shift_ = used > bits ? used - bits : 0;
  bucket_.assign((top >> shift_) + 1, 0);
  size_t j = 0;
  for (size_t i = 0; i < bucket_.size(); ++i) {
    while (j < points_.size() && (points_[j].first >> shift_) < i) ++j;
    bucket_[i] = static_cast<uint32_t>(j);
  }
}

size_t Ring::shard_at(uint64_t h) const {
  // The first point at or after h, wrapping to the first point past the last.
  const uint64_t b = h >> shift_;
  if (b >= bucket_.size()) return points_.front().second;
  size_t j = bucket_[b];
  while (j < points_.size() && points_[j].first < h) ++j;
  return j < points_.size() ? points_[j].second : points_.front().second;
}

}  // namespace cachetier::client
