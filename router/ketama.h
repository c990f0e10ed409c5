// ketama-md5 placement, compatible with twemproxy's `distribution: ketama` + `hash: md5` (and
// libmemcached's weighted ketama): 160 points per server scaled by weight share, four 32-bit
// points from each md5("NAME-i"), keys placed by the first four bytes of md5(key). Shard names
// play the part of twemproxy's server names, so a tier migrating from nutcracker keeps its
// placement by naming each shard as its server was named there.
#pragma once

#include "client/ring/ring.h"

namespace cachetier::router {

Result<client::Ring> ketama_ring(std::vector<client::ShardSpec> shards);

}  // namespace cachetier::router
