// Reading cache traces (trace_file.h): csv by lines, libCacheSim's oracleGeneral by records.
#include "bench/trace/trace_file.h"

#include <charconv>
#include <cstring>

namespace cachetier::bench::trace {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

template <typename T>
bool number(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool valid_key(std::string_view k) {
  if (k.empty() || k.size() > 250) return false;
  for (unsigned char c : k) {
    if (c <= ' ' || c == ',' || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

const char* op_name(Op op) {
  switch (op) {
    case Op::kGet:
      return "get";
    case Op::kSet:
      return "set";
    case Op::kDelete:
      return "delete";
    case Op::kPhase:
      return "phase";
  }
  return "?";
}

bool parse_csv_line(std::string_view line, Record& r, std::string& error) {
  error.clear();
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty() || line[0] == '#' || line.substr(0, 4) == "time") return false;
  std::string_view f[5];
  size_t n = 0;
  while (n < 5) {
    size_t comma = line.find(',');
    f[n++] = line.substr(0, comma);
    if (comma == std::string_view::npos) {
      line = {};
      break;
    }
    line.remove_prefix(comma + 1);
  }
  if (n != 5 || !line.empty()) {
    error = "expected 5 fields: time_ms,op,key,size,ttl";
    return false;
  }
  if (!number(f[0], r.time_ms)) {
    error = "bad time_ms '" + std::string(f[0]) + "'";
    return false;
  }
  if (f[1] == "get") {
    r.op = Op::kGet;
  } else if (f[1] == "set") {
    r.op = Op::kSet;
  } else if (f[1] == "delete") {
    r.op = Op::kDelete;
  } else if (f[1] == "phase") {
    r.op = Op::kPhase;
  } else {
    error = "bad op '" + std::string(f[1]) + "' (get, set, delete or phase)";
    return false;
  }
  if (!valid_key(f[2])) {
    error = "bad key (1-250 bytes, no comma, space or control character)";
    return false;
  }
  r.key.assign(f[2]);
  if (r.op == Op::kPhase) {
    r.size = r.ttl = 0;
    return true;
  }
  if (!number(f[3], r.size)) {
    error = "bad size '" + std::string(f[3]) + "'";
    return false;
  }
  if (!number(f[4], r.ttl)) {
    error = "bad ttl '" + std::string(f[4]) + "'";
    return false;
  }
  return true;
}

Result<std::unique_ptr<Reader>> Reader::open(const std::string& path, std::string_view format) {
  Format fmt = Format::kCsv;
  if (format == "oracle" ||
      (format.empty() && (ends_with(path, ".oracleGeneral") || ends_with(path, ".bin")))) {
    fmt = Format::kOracle;
  } else if (!format.empty() && format != "csv") {
    return Status(StatusCode::kInvalidArgument,
                  "unknown trace format '" + std::string(format) + "' (csv or oracle)");
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return Status(StatusCode::kNotFound, path + ": " + std::strerror(errno));
  }
  return std::unique_ptr<Reader>(new Reader(f, path, fmt));
}

Reader::~Reader() { std::fclose(f_); }

bool Reader::fail(std::string why) {
  error_ = path_ + ":" + std::to_string(lineno_) + ": " + why;
  return false;
}

bool Reader::next(Record& r) {
  if (!error_.empty()) return false;
  return format_ == Format::kCsv ? next_csv(r) : next_oracle(r);
}

bool Reader::next_csv(Record& r) {
  for (;;) {
    line_.clear();
    int c;
    while ((c = std::getc(f_)) != EOF && c != '\n') line_.push_back(static_cast<char>(c));
    if (c == EOF && line_.empty()) return false;
    ++lineno_;
    std::string why;
    if (parse_csv_line(line_, r, why)) {
      if (r.time_ms < last_time_) return fail("time_ms goes backwards");
      last_time_ = r.time_ms;
      return true;
    }
    if (!why.empty()) return fail(why);
  }
}

bool Reader::next_oracle(Record& r) {
  unsigned char b[24];
  size_t got = std::fread(b, 1, sizeof b, f_);
  if (got == 0) return false;
  ++lineno_;
  if (got != sizeof b) return fail("truncated oracleGeneral record");
  uint32_t t, size;
  uint64_t id;
  std::memcpy(&t, b, 4);
  std::memcpy(&id, b + 4, 8);
  std::memcpy(&size, b + 12, 4);
  r.time_ms = uint64_t{t} * 1000;
  if (r.time_ms < last_time_) r.time_ms = last_time_;  // libCacheSim tolerates jitter
  last_time_ = r.time_ms;
  r.op = Op::kGet;
  char buf[24];
  buf[0] = 'o';
  auto [p, ec] = std::to_chars(buf + 1, buf + sizeof buf, id);
  r.key.assign(buf, p);
  r.size = size;
  r.ttl = 0;
  return true;
}

}  // namespace cachetier::bench::trace
