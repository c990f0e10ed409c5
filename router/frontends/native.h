// The native front end (docs/protocol.md): a decoded frame becomes calls on the same routes
// as the text front end, and the routes' replies become reply frames with the request's id.
// Routing is the text front end's (frontends/text.h): get/gets by the read policy, multi_get
// split by shard, writes fanned out with versions, cas on the primary, flush broadcast.
// Counters go through the same functions (stats.h), so both protocols count alike.
#pragma once

#include <string_view>

#include "protocol/native/native.h"
#include "router/downstream.h"

namespace cachetier::router {

void handle_native(Downstream& d, const native::Request& req, Fill fill);

// An error frame for request `id`: status and a message.
void native_error(Fill fill, uint64_t id, native::Status status, std::string_view message);

}  // namespace cachetier::router
