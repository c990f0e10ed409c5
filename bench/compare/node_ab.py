"""Two cacheserver binaries side by side under memtier_benchmark: the same flags, the same
load, alternating runs, with each server's CPU per request. For "within 3% of before" checks
(issue 15: the segment engine against the slab engine).

    /usr/bin/python3 bench/compare/node_ab.py --memtier PATH --before OLD_CACHESERVER
        [--after NEW_CACHESERVER] [--seconds 5] [--rounds 3] [--threads 1]

Each server: `-t THREADS -m 1024 -c 4096`, prefilled with 100,000 keys of 100 bytes
(`--ratio 1:0 --key-pattern P:P`), then `-t 1 -c 50 --ratio 1:10 -d 100 --key-maximum 99999
--pipeline P` for P in 1 and 16 (and `--ratio 1:1` at pipeline 16: sets are the engine's
harder half). Printed: the means, their ratio, and the median of each round's after/before
(the two run back to back, so that ratio cancels the shared machine's drift). Loopback only;
both servers are started here and stopped by pid.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memcached_compare  # noqa: E402
from memcached_compare import Proc, cpu_seconds, free_port, programs  # noqa: E402

LOADS = [("1:10", 1), ("1:10", 16), ("1:1", 16)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memtier", required=True)
    ap.add_argument("--before", required=True, help="the cacheserver binary to compare with")
    ap.add_argument("--after", help="default: this build's cacheserver")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    (server,) = programs("cacheserver")
    binaries = {"before": args.before, "after": args.after or server}
    procs = {}
    try:
        for name, binary in binaries.items():
            port = free_port()
            procs[name] = Proc(name, [binary, "-p", str(port), "-l", "127.0.0.1", "-t",
                                      str(args.threads), "-m", "1024", "-c", "4096"], port)
        mt = ["--protocol=memcache_text"]
        for p in procs.values():
            memcached_compare.cachebench(args.memtier, p.port,
                                         mt + ["-t", "1", "-c", "4", "--ratio", "1:0",
                                               "--key-pattern", "P:P", "-n", "25000"])
        ops, cpu = {}, {}
        for ratio, pipeline in LOADS:
            for rnd in range(args.rounds):
                order = ["before", "after"] if rnd % 2 == 0 else ["after", "before"]
                for name in order:
                    c0 = cpu_seconds(procs[name].p.pid)
                    st = memcached_compare.cachebench(
                        args.memtier, procs[name].port,
                        mt + ["-t", "1", "-c", "50", "--ratio", ratio, "--pipeline",
                              str(pipeline)], args.seconds)
                    used = cpu_seconds(procs[name].p.pid) - c0
                    key = (name, ratio, pipeline)
                    ops.setdefault(key, []).append(st["Totals"]["Ops/sec"])
                    cpu.setdefault(key, []).append(used / (st["Totals"]["Ops/sec"] *
                                                           args.seconds) * 1e6)
        print("| ratio | pipeline | before ops/s | after ops/s | after / before | median of "
              "paired rounds | before CPU us/op | after CPU us/op |")
        print("|---|---|---|---|---|---|---|---|")
        for ratio, pipeline in LOADS:
            def mean(name, d):
                xs = d[(name, ratio, pipeline)]
                return sum(xs) / len(xs)
            b, a = mean("before", ops), mean("after", ops)
            # Each round runs the two back to back: their ratio cancels the machine's drift.
            med = statistics.median(x / y for x, y in zip(ops[("after", ratio, pipeline)],
                                                          ops[("before", ratio, pipeline)]))
            print("| %s | %d | %.0f | %.0f | %.3f | %.3f | %.3f | %.3f |" % (
                ratio, pipeline, b, a, a / b, med, mean("before", cpu), mean("after", cpu)))
        print("raw ops/s:", {"%s %s p%d" % k: [round(x) for x in v] for k, v in ops.items()})
    finally:
        for p in procs.values():
            p.stop()


if __name__ == "__main__":
    main()
