// memcached's ASCII authentication (-Y), as memcached 1.6 parses it, for a connection that
// has not authenticated yet: the only request it takes is
//   set <any key> <flags> <exptime> <bytes>\r\n<user> <password>\r\n
// Anything else is answered `CLIENT_ERROR unauthenticated` and dropped. auth_step() looks at
// the unparsed bytes and says what to do; the caller checks the credentials and answers
// STORED (authenticated) or `CLIENT_ERROR authentication failure`.
#pragma once

#include <cstddef>
#include <string_view>

#include "protocol/memcache/request.h"

namespace cachetier::memcache {

// The largest credentials data block accepted (memcached has none; a larger one is answered
// kAuthTooLong and the connection closed, so an unauthenticated client cannot make the server
// buffer much).
inline constexpr size_t kMaxAuthToken = 4096;

struct AuthStep {
  enum Kind {
    kNeedMore,     // no whole request yet: keep the bytes
    kReply,        // send `reply`, drop `consumed` bytes, stay unauthenticated
    kCredentials,  // check user/password (views into the bytes), then drop `consumed`
    kClose,        // send `reply` (may be empty) and close: a line past 1024 bytes, or too long
  } kind = kNeedMore;
  size_t consumed = 0;
  std::string_view reply, user, password;
};

AuthStep auth_step(std::string_view data);

}  // namespace cachetier::memcache
