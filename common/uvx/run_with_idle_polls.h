// Runs a libuv loop the way cacheserver's and cacherouter's workers do: after a pass that did
// work, poll up to `idle_polls` more times without blocking (yielding the core before each),
// and only then sleep in epoll_wait. Under load this replaces most sleep/wake-up pairs, which
// cost tens of microseconds each on a busy or virtualized machine, by cheap polls; idle, the
// loop blocks as usual. `activity()` returns a counter the loop's callbacks bump when they do
// work. Returns when the loop has no more handles. (Header-only; users link libuv.)
#pragma once

#include <sched.h>
#include <uv.h>

#include <cstdint>

namespace cachetier::uvx {

template <typename Activity>
void run_with_idle_polls(uv_loop_t* loop, int idle_polls, Activity activity) {
  int polls = 0;
  for (;;) {
    uint64_t before = activity();
    if (uv_run(loop, idle_polls > 0 ? UV_RUN_NOWAIT : UV_RUN_ONCE) == 0) return;
    if (activity() != before) {
      polls = 0;
      continue;
    }
    if (polls++ < idle_polls) {
      sched_yield();
      continue;
    }
    polls = 0;
    if (uv_run(loop, UV_RUN_ONCE) == 0) return;
  }
}

}  // namespace cachetier::uvx
