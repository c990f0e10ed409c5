// Credentials for memcached's ASCII authentication (-Y FILE: `user:password` lines), shared by
// cacheserver and cacherouter. Passwords are kept only as SHA-256 digests and compared in
// constant time; a check walks every entry whatever matches, so the time taken does not say
// whether the user exists. reload() re-reads the file (SIGHUP); on an error the previous
// credentials stay. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cachetier::net {

class AuthFile {
 public:
  // Errors name the file and the line ("auth.txt:3: no ':' between user and password").
  Status load(const std::string& path);
  Status reload();
  bool check(std::string_view user, std::string_view password) const;
  size_t users() const;
  const std::string& path() const { return path_; }

  // Parses file contents (for load() and the fuzz target).
  struct Entry {
    std::array<uint8_t, 32> user, password;  // SHA-256
  };
  static Result<std::vector<Entry>> parse(std::string_view text, const std::string& name);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const std::vector<Entry>> entries_;
  std::string path_;
};

}  // namespace cachetier::net
