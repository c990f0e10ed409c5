#!/usr/bin/env bash
# make demo: start a cacheserver on an ephemeral loopback port, write and read keys with a real
# memcached client (pymemcache), print its stats, stop it by pid. Nothing is left running.
set -euo pipefail
bin=${1:-build/release/cacheserver/cacheserver}
out=$(mktemp)
"$bin" -p 0 -l 127.0.0.1 -m 64 -t 2 >"$out" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$out"' EXIT INT TERM
for _ in $(seq 50); do grep -q listening "$out" && break; sleep 0.1; done
port=$(grep -o 'listening on [^ ]*' "$out" | sed 's/.*://')
cat "$out"
/usr/bin/python3 - "$port" <<'PY'
import sys, time
from pymemcache.client.base import Client
port = int(sys.argv[1])
c = Client(("127.0.0.1", port))
t = time.time()
for i in range(10000):
    c.set("demo:%d" % i, ("value-%d" % i).encode() * 4)
hits = sum(1 for v in c.get_many(["demo:%d" % i for i in range(0, 10000, 7)]).values() if v)
print("wrote 10000 keys, read back %d of %d sampled keys in %.2fs" % (hits, len(range(0, 10000, 7)), time.time() - t))
c.set("counter", b"41")
print("incr counter ->", c.incr("counter", 1))
print("stats:")
for k, v in sorted(c.stats().items()):
    k = k.decode() if isinstance(k, bytes) else k
    if k in ("curr_items", "total_items", "get_hits", "get_misses", "cmd_get", "cmd_set", "bytes",
             "limit_maxbytes", "memory_used", "curr_connections", "threads", "evictions", "version"):
        print("  %-18s %s" % (k, v.decode() if isinstance(v, bytes) else v))
PY
