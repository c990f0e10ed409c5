// cachebench --trace FILE: replays a cache trace (bench/trace/trace_file.h) over one
// connection, in the trace's order, with up to --pipeline requests in flight. A get that
// misses is followed by a set of the record's size and ttl (look-aside fill; --trace-no-fill
// turns it off), sent before any later record. Open loop at the trace's pace times
// --trace-speed, or as fast as the server answers (speed 0, the default). Reports gets, hits
// and the hit ratio per phase of the trace, and in --json-out-file as "Trace".
#pragma once

#include "bench/cachebench/report.h"

namespace cachetier::bench {

// Returns the exit code: 0, 1 if a request failed or the connection dropped, 2 for a bad
// trace or option.
int run_trace(const Options& o);

}  // namespace cachetier::bench
