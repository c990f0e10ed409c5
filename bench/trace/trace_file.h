// Cache traces: what `cachebench --trace` replays and the simulator (sim.h) runs. Two formats
// (docs in bench/trace/README.md):
//
//   csv     one request per line, `time_ms,op,key,size,ttl`:
//             time_ms  milliseconds from the trace's start (non-decreasing)
//             op       get | set | delete | phase (a marker: `key` names the phase that
//                      starts here; its size and ttl are ignored)
//             key      1-250 bytes, no comma, space or control character
//             size     value bytes (a get's size is what a miss fills in)
//             ttl      seconds, 0 for none
//           Lines starting with '#' and a header line starting with `time` are skipped.
//   oracle  libCacheSim's oracleGeneral binary: packed 24-byte little-endian records
//           {uint32 time_s, uint64 obj_id, uint32 obj_size, int64 next_access_vtime}; every
//           record is a get, its key `o<obj_id>`. Chosen by a `.oracleGeneral` or `.bin`
//           suffix (or format "oracle"); zstd-compressed files must be decompressed first.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cachetier::bench::trace {

enum class Op : uint8_t { kGet, kSet, kDelete, kPhase };

struct Record {
  uint64_t time_ms = 0;
  Op op = Op::kGet;
  std::string key;
  uint32_t size = 0;
  uint32_t ttl = 0;
};

enum class Format { kCsv, kOracle };

class Reader {
 public:
  // `format` "csv", "oracle" or "" (by the file's suffix: csv unless .oracleGeneral/.bin).
  static Result<std::unique_ptr<Reader>> open(const std::string& path, std::string_view format);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // The next record; false at the end or on a bad line (then error() is non-empty and names
  // the file and line).
  bool next(Record& r);
  const std::string& error() const { return error_; }
  Format format() const { return format_; }

 private:
  Reader(std::FILE* f, std::string path, Format format)
      : f_(f), path_(std::move(path)), format_(format) {}
  bool next_csv(Record& r);
  bool next_oracle(Record& r);
  bool fail(std::string why);

  std::FILE* f_;
  std::string path_;
  Format format_;
  std::string line_;
  uint64_t lineno_ = 0;
  uint64_t last_time_ = 0;
  std::string error_;
};

// Parses one csv line (no newline). Empty `error` on success; a comment or header: false with
// empty error.
bool parse_csv_line(std::string_view line, Record& r, std::string& error);

const char* op_name(Op op);

}  // namespace cachetier::bench::trace
