#!/usr/bin/env python3
"""Writes the synthetic cache traces of the eviction benchmarks, reproducibly from a seed, in
cachebench's csv trace format (bench/trace/README.md): time_ms,op,key,size,ttl.

    bench/trace/gen_traces.py --out /tmp/traces [--seed 1] [--cache-mb 32] [--only NAME,...]

Sizes scale with --cache-mb, the memory the servers get when the traces are replayed (the
key space is 10x what fits in it). Every trace carries phase markers; the hit ratio is read per
phase. The traces (file, what it is, how to replay):

  zipf-0.8.csv, zipf-0.99.csv, zipf-1.2.csv
      gets of Zipf(s) keys over 10x the cache, 200-byte values (a miss fills); phases warmup
      (the first third) and measure.
  churn.csv
      Zipf 0.99 whose hot set drifts: the key of each rank moves by 1/100 of the key space
      every 1/100 of the trace.
  size-shift.csv
      issue 15's user case at 64 MB, scaled: sets of random keys with sizes 10-100,000 B
      (phase mixed), then sequential keys with 50 B values that fit (small), then a get of each
      of those (read). Replay with --trace-no-fill (the gets only read).
  scan.csv
      Zipf 0.99 (warmup, before), a one-time scan of new keys worth 2x the cache (scan), then
      the same Zipf again (after): the hot set's hit ratio before and after the scan.
  ttl.csv
      Zipf 0.99 at 20,000 requests/s for 60 s where 30% of keys live 5 s, 30% 30 s and the
      rest have no TTL. Replay at the trace's pace (--trace-speed 1).

Standard library only (runs with /usr/bin/python3 or python3).
"""
import argparse
import bisect
import itertools
import os
import random
import sys

VALUE = 200
OVERHEAD = 50  # roughly a server's header and index per object, to size the key space


class Zipf:
    def __init__(self, n, s, rng):
        self.n, self.rng = n, rng
        self.cum = list(itertools.accumulate(1.0 / (r ** s) for r in range(1, n + 1)))
        self.total = self.cum[-1]

    def rank(self):
        """1 = the hottest."""
        return bisect.bisect_left(self.cum, self.rng.random() * self.total) + 1


class Writer:
    def __init__(self, path, rate=100000):
        self.f = open(path, "w")
        self.f.write("# cachetier trace v1: time_ms,op,key,size,ttl\n")
        self.buf, self.n, self.rate = [], 0, rate

    def row(self, op, key, size=0, ttl=0):
        self.buf.append("%d,%s,%s,%d,%d\n" % (self.n * 1000 // self.rate, op, key, size, ttl))
        if op != "phase":
            self.n += 1
        if len(self.buf) >= 65536:
            self.f.write("".join(self.buf))
            self.buf = []

    def phase(self, name):
        self.row("phase", name)

    def close(self):
        self.f.write("".join(self.buf))
        self.f.close()
        return self.n


def keyspace(cache_mb):
    return 10 * cache_mb * 1024 * 1024 // (VALUE + OVERHEAD)


def zipf_trace(path, rng, cache_mb, s):
    n = keyspace(cache_mb)
    z = Zipf(n, s, rng)
    w = Writer(path)
    total = 3 * n
    w.phase("warmup")
    for i in range(total):
        if i == total // 3:
            w.phase("measure")
        w.row("get", "k%d" % z.rank(), VALUE)
    return w.close()


def churn_trace(path, rng, cache_mb):
    n = keyspace(cache_mb)
    z = Zipf(n, 0.99, rng)
    w = Writer(path)
    total = 3 * n
    step = total // 100
    w.phase("warmup")
    for i in range(total):
        if i == total // 3:
            w.phase("measure")
        shift = (i // step) * (n // 100)
        w.row("get", "k%d" % ((z.rank() - 1 + shift) % n), VALUE)
    return w.close()


def size_shift_trace(path, rng, cache_mb):
    scale = cache_mb / 64.0
    mixed, small = int(50000 * scale), int(300000 * scale)
    w = Writer(path)
    w.phase("mixed")
    for _ in range(mixed):
        w.row("set", "r%d" % rng.randrange(10 ** 9), rng.randint(10, 100000))
    w.phase("small")
    for i in range(small):
        w.row("set", "s%d" % i, 50)
    w.phase("read")
    for i in range(small):
        w.row("get", "s%d" % i, 50)
    return w.close()


def scan_trace(path, rng, cache_mb):
    n = keyspace(cache_mb)
    z = Zipf(n, 0.99, rng)
    w = Writer(path)
    w.phase("warmup")
    for _ in range(2 * n):
        w.row("get", "k%d" % z.rank(), VALUE)
    w.phase("before")
    for _ in range(n // 2):
        w.row("get", "k%d" % z.rank(), VALUE)
    w.phase("scan")
    for i in range(2 * cache_mb * 1024 * 1024 // (VALUE + OVERHEAD)):
        w.row("get", "scan%d" % i, VALUE)
    w.phase("after")
    for _ in range(n // 2):
        w.row("get", "k%d" % z.rank(), VALUE)
    return w.close()


def ttl_trace(path, rng, cache_mb):
    n = keyspace(cache_mb)
    z = Zipf(n, 0.99, rng)
    rate, seconds = 20000, 60
    w = Writer(path, rate)
    w.phase("warmup")
    for i in range(rate * seconds):
        if i == rate * seconds // 3:
            w.phase("measure")
        k = z.rank()
        c = (k * 2654435761) % 10  # a fixed class per key
        ttl = 5 if c < 3 else 30 if c < 6 else 0
        w.row("get", "k%d" % k, VALUE, ttl)
    return w.close()


TRACES = {
    "zipf-0.8": lambda p, r, m: zipf_trace(p, r, m, 0.8),
    "zipf-0.99": lambda p, r, m: zipf_trace(p, r, m, 0.99),
    "zipf-1.2": lambda p, r, m: zipf_trace(p, r, m, 1.2),
    "churn": churn_trace,
    "size-shift": size_shift_trace,
    "scan": scan_trace,
    "ttl": ttl_trace,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="directory for the .csv files")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache-mb", type=int, default=32,
                    help="the servers' memory the traces are sized for (size-shift: its 64 MB "
                         "case scaled)")
    ap.add_argument("--only", default="", help="comma-separated trace names")
    a = ap.parse_args()
    names = [x for x in a.only.split(",") if x] or list(TRACES)
    for name in names:
        if name not in TRACES:
            sys.exit("gen_traces: unknown trace '%s' (%s)" % (name, ", ".join(TRACES)))
    os.makedirs(a.out, exist_ok=True)
    for name in names:
        # Each trace its own generator from the seed and its name: one trace does not change
        # when another is added or left out.
        rng = random.Random("%d/%s" % (a.seed, name))
        path = os.path.join(a.out, name + ".csv")
        n = TRACES[name](path, rng, a.cache_mb)
        print("%s: %d requests" % (path, n))


if __name__ == "__main__":
    main()
