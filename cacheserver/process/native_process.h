// Native protocol semantics on top of the Engine: one decoded native::Request in, one reply
// frame out. The memcache counterpart is process.h; both share Context and Counters.
#pragma once

#include "cacheserver/process/process.h"
#include "protocol/native/native.h"

namespace cachetier::process {

// Executes `req` and appends its reply frame to `out`.
Action handle_native(const native::Request& req, Context& ctx, ByteBuffer& out);

// Appends an error reply for request `id` (a request that could not be decoded).
void native_error(uint64_t id, native::Status status, std::string_view message, ByteBuffer& out);

// Largest frame a server accepts by default for a given item size limit.
inline size_t default_max_frame(size_t max_item_size) { return 2 * max_item_size + (64u << 10); }

}  // namespace cachetier::process
