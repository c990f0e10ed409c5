"""Service discovery by DNS on the test bed: a shard given as one name (`discover:`) that
resolves to several addresses (several lines in the router host's hosts file, as a headless
Service's DNS name lists its pods). Under continuous load through the router, a replica is
added to the name, then another removed, then the name stops resolving: 0 errors, no miss
(the added replica warms from its siblings), and the router follows each change within a few
refresh periods. Root only (network namespaces). Run with Debian's /usr/bin/python3."""
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checker import Client, ClientError, until  # noqa: E402
from netbed import Bed, wait_tcp  # noqa: E402

SERVER = os.environ.get("CACHESERVER_BIN", "cacheserver")
ROUTER = os.environ.get("CACHEROUTER_BIN", "cacherouter")
NODE_PORT, RPORT = 11211, 22122
KEYS = 500


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class Load:
    """Reads every prefilled key in turn through the router (one write in ten), counting
    errors and misses; bounded by time and count."""

    def __init__(self, bed, seconds):
        self.client = Client(bed, "r", RPORT)
        self.stop_at = time.monotonic() + seconds
        self.ops = self.errors = self.misses = 0
        self.first_error = None
        self.thread = threading.Thread(target=self.run)

    def run(self):
        i = 0
        while time.monotonic() < self.stop_at and self.ops < 2_000_000:
            key = b"k%d" % (i % KEYS)
            try:
                if i % 10 == 0:
                    self.client.set(key, b"v%d" % (i % KEYS))
                elif self.client.get(key) is None:
                    self.misses += 1
                self.ops += 1
            except ClientError as e:
                self.errors += 1
                self.first_error = self.first_error or repr(e)
            i += 1


def main():
    bed = Bed(["r", "a", "b", "c"])
    cfg = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    cfg.write("listen: 0.0.0.0:%d\nthreads: 1\ntimeout_ms: 200\nretry_ms: 50\n"
              "retry_max_ms: 200\nread_policy: round_robin\nwarmup_ms: 60000\n"
              "dns_refresh_ms: 200\nshards:\n  - name: s0\n    discover: cache-s0:%d\n" % (
                  RPORT, NODE_PORT))
    cfg.close()
    try:
        with bed:
            for h in ("a", "b", "c"):
                bed.spawn(h, [SERVER, "-p", str(NODE_PORT), "-l", "0.0.0.0", "-t", "1", "-m",
                              "64"])
            for h in ("a", "b", "c"):
                check(wait_tcp(bed, "r", bed.addr(h), NODE_PORT), "node %s up" % h)
            bed.set_name("r", "cache-s0", ["a", "b"])
            router = bed.spawn("r", [ROUTER, "-c", cfg.name], name="router")
            check(wait_tcp(bed, "r", "127.0.0.1", RPORT), "router up: %s" % router.output())
            admin = Client(bed, "r", RPORT)
            node = {h: "node:%s:%d:" % (bed.addr(h), NODE_PORT) for h in ("a", "b", "c")}

            def nodes():
                return {h for h in node if node[h] + "state" in admin.stats()}

            check(until(lambda: nodes() == {"a", "b"}), "a and b from the name: %s" % nodes())
            for i in range(KEYS):
                check(until(lambda: admin.set(b"k%d" % i, b"v%d" % i) is None), "prefill")

            load = Load(bed, 9.0)
            load.thread.start()
            time.sleep(1.0)
            bed.set_name("r", "cache-s0", ["a", "b", "c"])  # scale out
            t0 = time.monotonic()
            check(until(lambda: nodes() == {"a", "b", "c"}), "c added: %s" % nodes())
            added_after = time.monotonic() - t0
            time.sleep(2.0)
            on_c = Client(bed, "r", NODE_PORT, addr=bed.addr("c"))
            warmed = sum(1 for i in range(KEYS) if on_c.get(b"k%d" % i) is not None)
            bed.set_name("r", "cache-s0", ["b", "c"])  # a removed
            t0 = time.monotonic()
            check(until(lambda: nodes() == {"b", "c"}), "a removed: %s" % nodes())
            removed_after = time.monotonic() - t0
            time.sleep(1.0)
            bed.set_name("r", "cache-s0", [])  # DNS outage: keep the last addresses
            failures = int(admin.stats()["dns_failures"])
            check(until(lambda: int(admin.stats()["dns_failures"]) > failures + 2),
                  "failures counted")
            check(nodes() == {"b", "c"}, "the last addresses kept: %s" % nodes())
            load.thread.join()
            st = admin.stats()
            print("  %d ops: %d errors, %d misses; c added after %.2f s (%d of %d keys on it "
                  "2 s later, %s back-fills), a removed after %.2f s; dns_changes %s, "
                  "dns_failures %s" % (load.ops, load.errors, load.misses, added_after, warmed,
                                       KEYS, st[node["c"] + "backfills"], removed_after,
                                       st["dns_changes"], st["dns_failures"]))
            check(load.ops > 1000, "load ran")
            check(load.errors == 0, "errors: %d (%s)" % (load.errors, load.first_error))
            check(load.misses == 0, "misses: %d (the new replica must warm, not miss)" %
                  load.misses)
            check(int(st[node["c"] + "backfills"]) > 0, "c back-filled from its siblings")
            check(warmed > 0, "c holds keys it never had written to it directly")
            check(int(st["dns_changes"]) == 2, "two changes applied: %s" % st["dns_changes"])
        left = bed.leftovers()
        check(left == [], "left behind: %r" % left)
    finally:
        os.unlink(cfg.name)


if __name__ == "__main__":
    main()
    print("ok")
