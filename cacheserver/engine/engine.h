// Engine: the storage interface of a cache node. It knows keys, values, client flags, TTLs,
// CAS uniques, staleness and "win" tokens (for stale-while-revalidate), never protocol
// commands: cacheserver/process maps commands onto these calls.
//
// Thread-safety: every method may be called from any thread at any time.
// Item views handed to a visitor are valid only during the visit; the visitor runs while the
// engine holds the item's shard lock, so it must be short and must not call the engine.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/function_ref.h"

namespace cachetier::engine {

// TTLs follow memcached: 0 never expires, 1..30 days is relative, larger is absolute unix time,
// negative is already expired. resolve_exptime turns such a value into absolute unix seconds,
// 0 meaning never and kExpiredNow meaning already expired.
inline constexpr int64_t kRelativeTtlLimit = 60 * 60 * 24 * 30;
inline constexpr int64_t kExpiredNow = -1;
int64_t resolve_exptime(int64_t raw, int64_t now);

struct ItemView {
  std::string_view key;
  std::string_view value;
  uint32_t client_flags = 0;
  uint64_t cas = 0;
  int64_t exptime = 0;        // absolute unix seconds, 0 = never
  int64_t prior_exptime = 0;  // before this lookup changed it (update_exptime)
  int64_t last_access = 0;    // unix seconds of the store or the latest hit (meta `l`)
  bool fetched_before = false;
  bool created = false;  // made by this lookup (vivify)
  uint64_t version = 0;  // 0 = the item was written without a version
  // Lookup outcome for stale-while-revalidate (meta X/W/Z flags).
  bool stale = false;
  bool won = false;
  bool win_already_sent = false;
};

struct LookupOptions {
  bool bump = true;  // count as a use for LRU
  // Lease semantics (memcached's mg): a stale item hands its first reader a win, and so does
  // `recache`. Plain gets read stale items without touching their win state.
  bool leases = false;
  bool update_exptime = false;       // gat / touch / mg T
  int64_t exptime = 0;               // resolved
  bool vivify = false;               // mg N: on a miss create an empty placeholder; caller wins
  int64_t vivify_exptime = 0;        // resolved
  bool recache = false;              // mg R: win if the item expires before recache_before
  int64_t recache_before = 0;        // resolved
  bool recache_after_touch = false;  // compare with the exptime update_exptime just set
  uint64_t new_cas = 0;              // non-zero: the CAS a vivified placeholder takes
};

struct LookupResult {
  bool hit = false;
  bool expired = false;  // the key was there but had expired (memcached's get_expired)
  // Staleness and recache wins are reported to the visitor, in ItemView.
};

using ItemVisitor = FunctionRef<void(const ItemView&)>;

enum class StoreMode : uint8_t { kSet, kAdd, kReplace, kAppend, kPrepend };

enum class EngineStatus : uint8_t {
  kOk,
  kNotFound,
  kNotStored,
  kExists,
  kNonNumeric,
  kTooLarge,
  kNoMemory,
  kOlderVersion,  // a versioned write or delete older than the stored version (or tombstone)
};

struct StoreRequest {
  StoreMode mode = StoreMode::kSet;
  std::string_view key;
  std::string_view value;
  uint32_t client_flags = 0;
  int64_t exptime = 0;                  // resolved
  std::optional<uint64_t> compare_cas;  // set: store only if the item's CAS equals it
  uint64_t new_cas = 0;                 // non-zero: the stored item takes this CAS
  // With compare_cas: an older CAS still stores the value, marked stale, keeping the old
  // item's exptime and whether a win was handed out (memcached's ms I).
  bool invalidate = false;
  bool vivify = false;         // append/prepend on a miss creates the item
  int64_t vivify_exptime = 0;  // resolved
  // Non-zero: the write's version. It is refused (kOlderVersion) when the key holds a higher
  // one, live or as a tombstone; equal versions are accepted (a replay is harmless). Writes
  // without a version always win and clear the stored version.
  uint64_t version = 0;
};

struct StoreResult {
  EngineStatus status = EngineStatus::kOk;
  uint64_t cas = 0;
  uint64_t size = 0;   // value size after the store
  bool stale = false;  // stored as a stale value (invalidate with an older CAS)
};

struct DeleteRequest {
  std::string_view key;
  std::optional<uint64_t> compare_cas;  // set: act only if the item's CAS equals it
  uint64_t new_cas = 0;
  bool invalidate = false;      // mark stale instead of removing
  bool update_exptime = false;  // with invalidate
  int64_t exptime = 0;
  bool drop_value = false;  // keep the item, empty its value
  // Non-zero: a versioned delete. Refused when the key holds a higher version; otherwise the
  // item is replaced by a tombstone carrying `version` until `tombstone_exptime`, so that an
  // older write arriving late does not bring the key back. Tombstones read as misses.
  uint64_t version = 0;
  int64_t tombstone_exptime = 0;  // resolved; required with `version`
};

// incr/decr as memcached does them: the value parses as strtoull does (leading spaces, digits,
// then the end or a space); a result no longer than the value is written in place, padded with
// spaces to the old length ("10" decremented is "9 "), a longer one makes a new item.
struct ArithRequest {
  std::string_view key;
  bool incr = true;
  uint64_t delta = 1;
  std::optional<uint64_t> compare_cas;  // set: act only if the item's CAS equals it
  uint64_t new_cas = 0;
  bool vivify = false;  // on a miss create the item holding `initial`
  int64_t vivify_exptime = 0;
  uint64_t initial = 0;
  bool update_exptime = false;  // an existing item's new exptime (a vivified one has its own)
  int64_t exptime = 0;
};

struct ArithResult {
  EngineStatus status = EngineStatus::kOk;
  uint64_t value = 0;
  uint64_t cas = 0;
  int64_t exptime = 0;
  int64_t prior_exptime = 0;  // of the existing item, before update_exptime
  bool created = false;       // vivified
};

struct EngineStats {
  uint64_t curr_items = 0;
  uint64_t total_items = 0;
  uint64_t bytes = 0;        // item bytes as memcached counts them (header + key + value)
  uint64_t memory_used = 0;  // everything charged to the limit: items, allocator rounding, index
  uint64_t limit = 0;
  uint64_t hash_bytes = 0;
  uint64_t evictions = 0;
  uint64_t evicted_unfetched = 0;
  uint64_t expired_unfetched = 0;
  uint64_t reclaimed = 0;  // expired items freed by the background reclaimer
};

// One size class of the engine's memory (memcached's `stats slabs` rows).
struct ClassStats {
  uint32_t id = 0;          // 1-based, as memcached numbers slab classes
  uint64_t chunk_size = 0;  // 0: the large-item pool (items above the largest class)
  uint64_t chunks_per_page = 0;
  uint64_t pages = 0;
  uint64_t items = 0;      // large pool: items held
  uint64_t evictions = 0;  // live items evicted for memory (CLOCK)
};

class Engine {
 public:
  virtual ~Engine() = default;

  // Looks up key; on a hit calls visit(view) under the item's lock, then returns.
  virtual LookupResult lookup(std::string_view key, const LookupOptions& opts,
                              ItemVisitor visit) = 0;
  virtual StoreResult store(const StoreRequest& req) = 0;
  virtual StoreResult remove(const DeleteRequest& req) = 0;
  virtual ArithResult arith(const ArithRequest& req) = 0;
  // Invalidates every item stored before `at` (unix seconds) once `at` has come.
  virtual void flush(int64_t at) = 0;
  // Frees up to `budget` buckets' worth of expired items; returns how many it freed.
  virtual size_t reclaim_expired(size_t budget) = 0;
  virtual EngineStats stats() const = 0;
  // Per size class, classes that hold or ever held memory (empty for engines without classes).
  virtual std::vector<ClassStats> class_stats() const { return {}; }
  virtual const Clock& clock() const = 0;
};

}  // namespace cachetier::engine
