// OpenSSL opened at run time. See openssl_api.h.
#define CACHETIER_OPENSSL_NO_MACROS
#include "common/net/openssl_api.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace cachetier::net::openssl {

Api api;

namespace {

Status open_all() {
  // The soname OpenSSL 3 keeps across its 3.x releases (the headers this was built with).
  void* ssl = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
  if (ssl == nullptr) {
    const char* e = dlerror();
    return Status(StatusCode::kInvalidArgument,
                  std::string("TLS and auth need OpenSSL 3 (libssl.so.3): ") +
                      (e != nullptr ? e : "not found"));
  }
  // libssl's dependency, already loaded with it: its own handle finds libcrypto's functions
  // whichever way the dynamic linker orders the search. Neither handle is ever closed
  // (OpenSSL's exit-time cleanup runs from them).
  void* crypto = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
  std::string missing;
  auto find = [&](const char* name) -> void* {
    void* p = dlsym(ssl, name);
    if (p == nullptr && crypto != nullptr) p = dlsym(crypto, name);
    if (p == nullptr) missing += std::string(missing.empty() ? "" : ", ") + name;
    return p;
  };
#define CACHETIER_OPENSSL_FIND(f) api.p_##f = reinterpret_cast<decltype(api.p_##f)>(find(#f));
  CACHETIER_OPENSSL_FUNCTIONS(CACHETIER_OPENSSL_FIND)
#undef CACHETIER_OPENSSL_FIND
  if (!missing.empty()) {
    return Status(StatusCode::kInvalidArgument, "OpenSSL 3 lacks " + missing);
  }
  return Status::ok();
}

}  // namespace

Status load() {
  static std::once_flag once;
  static Status result = Status::ok();
  std::call_once(once, [] { result = open_all(); });
  return result;
}

}  // namespace cachetier::net::openssl
