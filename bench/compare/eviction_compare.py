#!/usr/bin/env python3
"""Hit ratios at equal memory: cacheserver, memcached and redis-server (allkeys-lru) replaying
the same traces (cachebench --trace), next to the simulator's exact LRU, S3-FIFO and Belady
(trace_sim) for the same byte budget.

    /usr/bin/python3 bench/compare/eviction_compare.py [--cache-mb 32] [--traces DIR]
        [--only zipf-0.99,scan] [--pipeline 16] [--seed 1]

The traces come from bench/trace/gen_traces.py (in a temporary directory unless --traces
names one that has them); size-shift is generated for 64 MB (issue 15's case) and the servers
get 64 MB for it. Each server is a fresh process per trace: cacheserver -m MB -t 1, memcached
-m MB (1.6, slab automover on by default), redis-server --maxmemory MBmb allkeys-lru. A server's
-m is not the same thing everywhere: cacheserver's limit covers items and index, memcached's
covers item memory (its hash table is extra), redis-server's maxmemory its used_memory. RSS
after each replay is printed too. Loopback only; every process is started here and stopped by
pid.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from memcached_compare import ROOT, programs, rss_kb  # noqa: E402
from memtier_agreement import free_port, start, stop  # noqa: E402

GEN = os.path.join(ROOT, "bench", "trace", "gen_traces.py")
SIM = os.path.join(ROOT, "build", "release", "bench", "trace_sim")
# What each trace is judged by: the phases whose hit ratio is reported.
MEASURE = {
    "zipf-0.8": ["measure"], "zipf-0.99": ["measure"], "zipf-1.2": ["measure"],
    "churn": ["measure"], "ttl": ["measure"], "size-shift": ["read"],
    "scan": ["before", "after"],
}
REPLAY = {"size-shift": ["--trace-no-fill"], "ttl": ["--trace-speed", "1"]}
SIM_FLAGS = {"size-shift": ["--no-fill"]}
PER_OBJECT = 48  # cacheserver's header (35 B), chunk rounding and index entry, roughly


def servers(mb):
    cs, mc = programs("cacheserver", "memcached")
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    root = ["-u", "root"] if os.getuid() == 0 else []
    return [
        ("cacheserver", lambda p: [cs, "-p", str(p), "-l", "127.0.0.1", "-t", "1", "-m", str(mb)],
         "memcache_text"),
        ("memcached", lambda p: [mc, "-p", str(p), "-l", "127.0.0.1", "-U", "0", "-t", "1",
                                 "-m", str(mb)] + root, "memcache_text"),
        ("redis-server", lambda p: [redis, "--port", str(p), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--maxmemory", "%dmb" % mb,
                                    "--maxmemory-policy", "allkeys-lru"], "redis"),
    ]


def replay(bench, port, proto, trace, extra, pipeline):
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        argv = [bench, "-s", "127.0.0.1", "-p", str(port), "-P", proto, "--trace", trace,
                "--pipeline", str(pipeline), "--test-time", "900", "--json-out-file", out] + extra
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=1000)
        if r.returncode not in (0, 1):
            raise RuntimeError("cachebench failed: %s" % r.stderr)
        with open(out) as f:
            data = json.load(f)["Trace"]
        return {p["Phase"]: p["Hit Ratio"] for p in data["Phases"]}, data["Totals"]["Errors"]
    finally:
        os.unlink(out)


def simulate(trace, mb, name):
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        argv = [SIM, "--trace", trace, "--budget", "%dm" % mb, "--per-object", str(PER_OBJECT),
                "--policies", "lru,s3fifo,opt", "--json", out] + SIM_FLAGS.get(name, [])
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
        with open(out) as f:
            data = json.load(f)
    finally:
        os.unlink(out)
    res = {}
    for r in data["results"]:
        res[r["policy"]] = {p["phase"]: (p["hits"] / p["gets"] if p["gets"] else 0.0)
                            for p in r["phases"]}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache-mb", type=int, default=32)
    ap.add_argument("--traces", help="a directory with the traces (made there if missing)")
    ap.add_argument("--only", default="", help="comma-separated trace names")
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--servers", default="cacheserver,memcached,redis-server",
                    help="comma-separated: which servers replay (the others' columns print 0)")
    a = ap.parse_args()
    (bench,) = programs("cachebench")
    names = [x for x in a.only.split(",") if x] or list(MEASURE)
    tmp = a.traces or tempfile.mkdtemp(prefix="traces-")
    rows = []
    try:
        for name in names:
            mb = 64 if name == "size-shift" else a.cache_mb
            path = os.path.join(tmp, "%s-%dm-s%d.csv" % (name, mb, a.seed))
            if not os.path.exists(path):
                d = tempfile.mkdtemp(dir=tmp)
                subprocess.run([sys.executable, GEN, "--out", d, "--seed", str(a.seed),
                                "--cache-mb", str(mb), "--only", name], check=True,
                               stdout=subprocess.DEVNULL)
                os.rename(os.path.join(d, name + ".csv"), path)
                os.rmdir(d)
            sim = simulate(path, mb, name)
            got = {}
            for sname, argv, proto in servers(mb):
                if sname not in a.servers.split(","):
                    got[sname] = ({}, 0, 0.0)
                    continue
                port = free_port()
                p = start(argv(port), port)
                try:
                    ratios, errors = replay(bench, port, proto, path, REPLAY.get(name, []),
                                            a.pipeline)
                    got[sname] = (ratios, errors, rss_kb(p.pid) / 1024)
                finally:
                    stop(p)
            for phase in MEASURE[name]:
                row = [name if phase == MEASURE[name][0] else "", phase, mb]
                for sname in ("cacheserver", "memcached", "redis-server"):
                    row.append(got[sname][0].get(phase, 0.0))
                for pol in ("lru", "s3fifo", "opt"):
                    row.append(sim[pol].get(phase, 0.0))
                rows.append(row)
            print("%s: RSS after (MB) %s; errors %s" % (
                name, ", ".join("%s %.1f" % (s, g[2]) for s, g in got.items()),
                ", ".join("%s %d" % (s, g[1]) for s, g in got.items())), flush=True)
    finally:
        if not a.traces:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("| trace | phase | MB | cacheserver | memcached | redis-server | sim LRU | sim S3-FIFO "
          "| sim OPT |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %d | %s |" % (r[0], r[1], r[2], " | ".join("%.4f" % x for x in r[3:])))


if __name__ == "__main__":
    main()
