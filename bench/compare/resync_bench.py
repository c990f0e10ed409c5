"""How fast a returning replica is resynced, and how fast each kind of fault is detected, on
the test bed (tests/testbed: network namespaces, root only).

    sudo /usr/bin/python3 bench/compare/resync_bench.py [--keys 10000,100000,1000000]

Resync: one shard of replicas x and y behind router a (timeout_ms 100, failure_limit 2,
retry_max_ms 200); x is paused, N distinct keys are written through a with cachebench
(pipelined), x is resumed, and the time until the router reports x `up` again (every missed
key copied from y, y's hint list for x drained) is printed with the keys copied per second.
The nodes run with `-I 64m` (--item-size), so a hint list of a million keys fits in one item;
with `--item-size 1m` (the default of cacheserver and memcached) a list past about 50,000 keys
overflows and x is emptied and warmed instead: the "how" column says which happened.

Detection: for each fault (SIGSTOP, kill -9, isolation, link down, a partition between the
router and x), the time from the fault until the router's stats show x out of reads
(`syncing` or `down`), with the router idle and with it reading.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "testbed"))
BUILD = os.path.join(ROOT, "build", "release")
os.environ.setdefault("CACHESERVER_BIN", os.path.join(BUILD, "cacheserver", "cacheserver"))
os.environ.setdefault("CACHEROUTER_BIN", os.path.join(BUILD, "router", "cacherouter"))
CACHEBENCH = os.path.join(BUILD, "bench", "cachebench")

from checker import readers, History  # noqa: E402
from tier import ROUTER_PORT, Tier  # noqa: E402


def state(app):
    return app.stats()["node:x:11211:state"]


def wait_state(app, want, limit_s, step=0.005):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if state(app) in want:
            return time.monotonic() - t0
        time.sleep(step)
    return None


def resync(n_keys, item_size):
    with Tier(nodes=["x", "y"], routers=["a"], node_args=["-I", item_size, "-m", "4096"],
              max_missed_keys=4 * n_keys) as t:
        app = t.client("a", timeout=10)
        t.node("x").pause()
        time.sleep(0.3)
        t0 = time.monotonic()
        out = subprocess.run(
            ["ip", "netns", "exec", t.bed.ns("a"), CACHEBENCH, "-s", "127.0.0.1", "-p",
             str(ROUTER_PORT), "-t", "1", "-c", "8", "--pipeline", "16", "--ratio", "1:0",
             "--key-pattern", "P:P", "-n", "allkeys", "--key-maximum", str(n_keys), "-d", "32",
             "--hide-histogram"], capture_output=True, text=True, timeout=900).stdout
        write_s = time.monotonic() - t0
        st = app.stats()
        missed = int(st["node:x:11211:missed_keys"])
        t.node("x").resume()
        took = wait_state(app, ("up",), 600, step=0.01)
        st = app.stats()
        if took is None:
            raise RuntimeError("x not back in 600 s: %s" % st["node:x:11211:state"])
        repaired = int(st["node:x:11211:repaired"])
        how = "emptied" if int(st["node:x:11211:flushed"]) else "hints"
        if "Totals" not in out:
            raise RuntimeError("cachebench: %s" % out)
        return write_s, missed, took, repaired, how


def detection(fault, busy):
    with Tier(nodes=["x", "y"], routers=["a"]) as t:
        app = t.client("a", timeout=10)
        wait_state(app, ("up",), 10)
        h = History(1000)
        h.write_all(t.client("a"))
        load = readers(h, [t.client("a")]) if busy else None
        if load:
            load.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        {"SIGSTOP": lambda: t.node("x").pause(),
         "kill -9": lambda: t.node("x").kill(),
         "isolated": lambda: t.bed.isolate("x"),
         "link down": lambda: t.bed.link_down("x"),
         "a -/- x": lambda: t.bed.cut("a", "x")}[fault]()
        took = None
        while time.monotonic() - t0 < 10:
            if state(app) in ("syncing", "down"):
                took = time.monotonic() - t0
                break
            time.sleep(0.002)
        if load:
            load.stop()
        if fault == "SIGSTOP":
            t.node("x").resume()
        return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", default="10000,100000,1000000")
    ap.add_argument("--item-size", default="64m", help="the nodes' -I")
    ap.add_argument("--skip-detection", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(CACHEBENCH):
        raise SystemExit("build first (make build): %s is missing" % CACHEBENCH)
    print("| missed keys | -I | written in | router's missed set | x back in sync after | how "
          "| keys copied | copies/s |")
    print("|---|---|---|---|---|---|---|---|")
    for n in [int(k) for k in args.keys.split(",")]:
        write_s, missed, took, repaired, how = resync(n, args.item_size)
        print("| %d | %s | %.1f s | %d | %.2f s | %s | %d | %.0f |" % (
            n, args.item_size, write_s, missed, took, how, repaired,
            repaired / took if took else 0))
        sys.stdout.flush()
    if args.skip_detection:
        return
    print()
    print("| fault | detected, router idle | detected, router reading |")
    print("|---|---|---|")
    for fault in ("SIGSTOP", "kill -9", "isolated", "link down", "a -/- x"):
        idle = detection(fault, False)
        busy = detection(fault, True)
        fmt = lambda x: "not in 10 s" if x is None else "%.0f ms" % (x * 1000)  # noqa: E731
        print("| %s | %s | %s |" % (fault, fmt(idle), fmt(busy)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
