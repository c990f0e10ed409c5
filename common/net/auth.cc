// memcached-style credentials. See auth.h.
#include "common/net/auth.h"

#include <fstream>
#include <sstream>

#include "common/net/openssl_api.h"  // last: it makes OpenSSL's names macros

namespace cachetier::net {

namespace {
std::array<uint8_t, 32> sha256(std::string_view s) {
  std::array<uint8_t, 32> out{};
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}
}  // namespace

Result<std::vector<AuthFile::Entry>> AuthFile::parse(std::string_view text,
                                                     const std::string& name) {
  // Passwords are kept as SHA-256 digests: OpenSSL, opened now (entries exist only after).
  if (Status st = openssl::load(); !st.is_ok()) return st;
  std::vector<Entry> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    size_t colon = line.find(':');
    const std::string where = name + ":" + std::to_string(line_no) + ": ";
    if (colon == std::string_view::npos) {
      return Status(StatusCode::kInvalidArgument, where + "no ':' between user and password");
    }
    std::string_view user = line.substr(0, colon), pass = line.substr(colon + 1);
    if (user.empty() || pass.empty()) {
      return Status(StatusCode::kInvalidArgument, where + "an empty user or password");
    }
    if (user.find_first_of(" \t") != std::string_view::npos ||
        pass.find_first_of(" \t") != std::string_view::npos) {
      return Status(StatusCode::kInvalidArgument,
                    where + "a space in a user or password (the token is 'user password')");
    }
    out.push_back({sha256(user), sha256(pass)});
  }
  if (out.empty()) return Status(StatusCode::kInvalidArgument, name + ": no user:password line");
  return out;
}

Status AuthFile::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(StatusCode::kInvalidArgument, "auth file " + path + ": cannot be read");
  std::ostringstream text;
  text << f.rdbuf();
  auto parsed = parse(text.str(), "auth file " + path);
  if (!parsed.is_ok()) return parsed.status();
  auto entries = std::make_shared<const std::vector<Entry>>(std::move(parsed.value()));
  std::lock_guard lock(mu_);
  entries_ = std::move(entries);
  path_ = path;
  return Status::ok();
}

Status AuthFile::reload() {
  std::string path;
  {
    std::lock_guard lock(mu_);
    path = path_;
  }
  return load(path);
}

bool AuthFile::check(std::string_view user, std::string_view password) const {
  std::shared_ptr<const std::vector<Entry>> entries;
  {
    std::lock_guard lock(mu_);
    entries = entries_;
  }
  if (!entries) return false;
  const auto u = sha256(user), p = sha256(password);
  int found = 0;
  for (const Entry& e : *entries) {  // every entry, whichever matches
    const int same_user = CRYPTO_memcmp(e.user.data(), u.data(), u.size()) == 0;
    const int same_pass = CRYPTO_memcmp(e.password.data(), p.data(), p.size()) == 0;
    found |= same_user & same_pass;
  }
  return found != 0;
}

size_t AuthFile::users() const {
  std::lock_guard lock(mu_);
  return entries_ ? entries_->size() : 0;
}

}  // namespace cachetier::net
