#!/usr/bin/env python3
"""One run, one machine: memcached, redis-server and nutcracker (Debian packages) against our
cacheserver and cacherouter, driven by the same cachebench profiles.

Targets (matched settings: 2 worker threads where the program has threads, 1 GB memory):
  memcached -t 2        cacheserver -t 2        redis-server (one thread; RESP2)
  nutcracker -> 2 x memcached -t 1              cacherouter (1 thread) -> 2 x cacheserver -t 1
For each: prefill 100k keys x 100-byte values, RSS after the prefill (the server, or the sum of
the backends behind a proxy), then cachebench at pipeline 1 and 16 (50 connections, one loader
thread, --ratio 1:10, uniform keys), alternating the order per round. Server CPU seconds per
million ops come from /proc/PID/stat (all of a target's processes). Writes a markdown section
to stdout; --write appends it to bench/RESULTS.md. Loopback only; every process is started here
and stopped by pid.
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memcached_compare import ROOT, Proc, cachebench, cpu_seconds, free_port, programs, rss_kb  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="append the table to bench/RESULTS.md")
    args = ap.parse_args()

    server, router, bench, memcached, redis, nutcracker = programs(
        "cacheserver", "cacherouter", "cachebench", "memcached", "redis-server", "nutcracker")
    root_user = ["-u", "root"] if os.getuid() == 0 else []
    procs, files = [], []

    def start(argv, port):
        p = Proc(os.path.basename(argv[0]), argv, port)
        procs.append(p)
        return p

    def mc(threads):
        port = free_port()
        return start([memcached, "-p", str(port), "-U", "0", "-l", "127.0.0.1", "-t",
                      str(threads), "-m", "1024", "-c", "4096"] + root_user, port)

    def cs(threads):
        port = free_port()
        return start([server, "-p", str(port), "-l", "127.0.0.1", "-t", str(threads), "-m",
                      "1024", "-c", "4096"], port)

    def temp(text, suffix):
        f = tempfile.NamedTemporaryFile(mode="w", suffix=suffix, delete=False)
        f.write(text)
        f.close()
        files.append(f.name)
        return f.name

    # name -> (port, protocol, [pids for CPU], [pids for RSS])
    targets = {}
    try:
        m = mc(2)
        targets["memcached 1.6"] = (m.port, "memcache_text", [m], [m])
        r_port = free_port()
        r = start([redis, "--port", str(r_port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--maxmemory", "1gb"], r_port)
        targets["redis-server 7.0"] = (r_port, "redis", [r], [r])
        c = cs(2)
        targets["cacheserver"] = (c.port, "memcache_text", [c], [c])
        tw_backends = [mc(1), mc(1)]
        tw_port, tw_stats = free_port(), free_port()
        conf = temp("alpha:\n  listen: 127.0.0.1:%d\n  hash: fnv1a_64\n  distribution: ketama\n"
                    "  redis: false\n  servers:\n   - 127.0.0.1:%d:1\n   - 127.0.0.1:%d:1\n" % (
                        tw_port, tw_backends[0].port, tw_backends[1].port), ".yml")
        log = temp("", ".log")
        tw = start([nutcracker, "-c", conf, "-s", str(tw_stats), "-a", "127.0.0.1", "-o", log],
                   tw_port)
        targets["nutcracker 0.5 + 2 memcached"] = (tw_port, "memcache_text", [tw] + tw_backends,
                                                    tw_backends)
        rt_backends = [cs(1), cs(1)]
        rt_port = free_port()
        cfg = temp("listen: 127.0.0.1:%d\nthreads: 1\nshards:\n  - name: s0\n    replicas: "
                   "[127.0.0.1:%d]\n  - name: s1\n    replicas: [127.0.0.1:%d]\n" % (
                       rt_port, rt_backends[0].port, rt_backends[1].port), ".yaml")
        rt = start([router, "-c", cfg], rt_port)
        targets["cacherouter + 2 cacheserver"] = (rt_port, "memcache_text", [rt] + rt_backends,
                                                   rt_backends)

        res = {n: {} for n in targets}
        for n, (port, proto, _, rss_procs) in targets.items():
            cachebench(bench, port, ["-P", proto, "-t", "1", "-c", "4", "--ratio", "1:0",
                                     "--key-pattern", "P:P", "--key-minimum", "0",
                                     "-n", "allkeys"])
            time.sleep(0.3)
            res[n]["rss_mb"] = sum(rss_kb(p.p.pid) for p in rss_procs) / 1024
        names = list(targets)
        for pipeline in (1, 16):
            for rnd in range(args.rounds):
                order = names if rnd % 2 == 0 else list(reversed(names))
                for n in order:
                    port, proto, cpu_procs, _ = targets[n]
                    c0 = sum(cpu_seconds(p.p.pid) for p in cpu_procs)
                    st = cachebench(bench, port, ["-P", proto, "-t", "1", "-c", "50", "--ratio",
                                                  "1:10", "--pipeline", str(pipeline)],
                                    args.seconds)
                    cpu = sum(cpu_seconds(p.p.pid) for p in cpu_procs) - c0
                    tot = st["Totals"]
                    e = res[n].setdefault(pipeline, {"ops": [], "cpu": [], "p99": []})
                    e["ops"].append(tot["Ops/sec"])
                    e["cpu"].append(cpu / max(tot["Count"], 1) * 1e6)
                    e["p99"].append(tot["Percentile Latencies"]["p99.00"])
    finally:
        for p in procs:
            p.stop()
        for f in files:
            if os.path.exists(f):
                os.unlink(f)

    def mean(xs):
        return sum(xs) / len(xs)

    lines = []
    lines.append("| target | ops/s p1 | ops/s p16 | CPU s / 1M ops p1 | CPU s / 1M ops p16 "
                 "| p99 ms p1 | p99 ms p16 | RSS after 100k x 100 B, MB |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for n in names:
        r = res[n]
        lines.append("| %s | %.0f | %.0f | %.2f | %.2f | %.3f | %.3f | %.1f |" % (
            n, mean(r[1]["ops"]), mean(r[16]["ops"]), mean(r[1]["cpu"]), mean(r[16]["cpu"]),
            mean(r[1]["p99"]), mean(r[16]["p99"]), r["rss_mb"]))
    lines.append("")
    lines.append("| ratio (ours / peer) | ops/s p1 | ops/s p16 | CPU per op p1 | CPU per op p16 "
                 "| RSS |")
    lines.append("|---|---|---|---|---|---|")
    for ours, peer in (("cacheserver", "memcached 1.6"), ("cacheserver", "redis-server 7.0"),
                       ("cacherouter + 2 cacheserver", "nutcracker 0.5 + 2 memcached")):
        a, b = res[ours], res[peer]
        lines.append("| %s vs %s | %.2fx | %.2fx | %.2fx | %.2fx | %.2fx |" % (
            ours, peer, mean(a[1]["ops"]) / mean(b[1]["ops"]),
            mean(a[16]["ops"]) / mean(b[16]["ops"]), mean(a[1]["cpu"]) / mean(b[1]["cpu"]),
            mean(a[16]["cpu"]) / mean(b[16]["cpu"]), a["rss_mb"] / b["rss_mb"]))
    table = "\n".join(lines)
    print(table)
    print()
    print("raw: " + json.dumps(res))
    if args.write:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        with open(os.path.join(ROOT, "bench", "RESULTS.md"), "a") as f:
            f.write("\n## Side by side: memcached, redis-server, nutcracker, cacheserver, "
                    "cacherouter (issue 5)\n\nCommand: `/usr/bin/python3 bench/compare/"
                    "compare_all.py --seconds %d --rounds %d --write` (%s). One cachebench "
                    "thread, 50 connections, --ratio 1:10, 100-byte values, 100k uniform keys; "
                    "CPU is every process of the target (proxy and its backends); RSS is the "
                    "server, or the sum of the backends behind a proxy.\n\n%s\n" % (
                        args.seconds, args.rounds, stamp, table))


if __name__ == "__main__":
    main()
