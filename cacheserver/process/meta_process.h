// The meta commands (mg, ms, md, ma) of the memcache text protocol, executed against the
// Engine. Called by process::handle; see meta_process.cc for memcached's rules they follow.
#pragma once

#include "cacheserver/process/process.h"

namespace cachetier::process {

Action meta_get(const memcache::Request& req, Context& ctx, ByteBuffer& out);
Action meta_set(const memcache::Request& req, Context& ctx, ByteBuffer& out);
Action meta_delete(const memcache::Request& req, Context& ctx, ByteBuffer& out);
Action meta_arith(const memcache::Request& req, Context& ctx, ByteBuffer& out);

}  // namespace cachetier::process
