"""Eviction that follows the workload, against the real cacheserver: issue 15's size shift at
-m 64 (50,000 sets of random sizes from 10 B to 100,000 B, then 300,000 sets of 50 B values
that fit, then a get of each of those): at least 90% of the small keys are still there, and
RSS stays within the -m bound (limit + 10% + 16 MB) throughout. Run with /usr/bin/python3."""
import random

from harness import SANITIZED, Server, check, run

LIMIT_MB = 64
BATCH = 500


def set_all(c, items):
    """Pipelined sets with noreply, a batch at a time, then a round trip to wait for them."""
    for i in range(0, len(items), BATCH):
        c.send(b"".join(b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(v), v)
                        for k, v in items[i:i + BATCH]))
        c.send(b"version\r\n")
        check(c.line().startswith(b"VERSION"), "the server answers after a batch")


def test_size_shift_keeps_the_new_small_keys():
    rng = random.Random(15)
    bound_kb = (LIMIT_MB * 1.1 + 16) * 1024
    with Server("-t", "2", "-m", str(LIMIT_MB)) as srv:
        c = srv.connect(timeout=60)
        worst = 0
        # 1. Mixed sizes: about 2.5 GB written through 64 MB.
        blob = b"m" * 100000
        for part in range(10):
            set_all(c, [(b"r%d" % rng.randrange(10 ** 9), blob[:rng.randint(10, 100000)])
                        for _ in range(5000)])
            worst = max(worst, srv.rss_kb())
        # 2. 300,000 small values, about 31 MB with headers: they fit.
        small = [(b"s%d" % i, b"v" * 50) for i in range(300000)]
        for i in range(0, len(small), 50000):
            set_all(c, small[i:i + 50000])
            worst = max(worst, srv.rss_kb())
        # 3. A get of each.
        hits = 0
        for i in range(0, len(small), 100):
            c.send(b"get " + b" ".join(k for k, _ in small[i:i + 100]) + b"\r\n")
            while True:
                line = c.line()
                if line == b"END":
                    break
                check(line.startswith(b"VALUE s"), "a value line: %r" % line[:60])
                check(c.exact(52) == b"v" * 50 + b"\r\n", "the value")
                hits += 1
        st = srv.stats()
        print("  %d of 300000 small keys present (%.1f%%); evictions %s; worst RSS %.1f MB "
              "(bound %.1f MB)" % (hits, hits / 3000.0, st["evictions"], worst / 1024.0,
                                   bound_kb / 1024.0))
        check(hits >= 270000, "at least 90%% of step 2's keys present: %d" % hits)
        if not SANITIZED:  # sanitizers' shadow memory is not the server's
            check(worst <= bound_kb, "RSS %.1f MB over the bound %.1f MB" % (
                worst / 1024.0, bound_kb / 1024.0))


if __name__ == "__main__":
    run([test_size_shift_keeps_the_new_small_keys])
