"""RESP side by side (issue 14), memtier_benchmark -P redis as the load for every server, in one
run on one machine:

  node    cacheserver -t 1 vs redis-server 7 (Debian): 50 connections, 1:10 sets:gets, 100 B
          values, 100k keys prefilled; ops/s at pipeline 1 and 16, server CPU per op, and RSS
          after the 100k items
  router  cacherouter -t 1 over 2 cacheserver -t 1 vs nutcracker (redis: true) over 2
          redis-server: ops/s at pipeline 1 and 16

    /usr/bin/python3 bench/compare/resp_compare.py --memtier PATH [--rounds 3] [--only node|router]

memtier is built by ../shared/peers/build-memtier.sh (not a Debian package). Rounds alternate
the servers; everything runs on loopback and stops by pid.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
from loopback import free_port  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memcached_compare import cpu_seconds, rss_kb  # noqa: E402
from memtier_agreement import start, stop  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build", "release")
SERVER = os.path.join(BUILD, "cacheserver", "cacheserver")
ROUTER = os.path.join(BUILD, "router", "cacherouter")


def memtier(tool, port, extra, seconds=None):
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    argv = [tool, "-s", "127.0.0.1", "-p", str(port), "-P", "redis", "--hide-histogram",
            "--json-out-file", out] + extra
    if seconds:
        argv += ["--test-time", str(seconds)]
    try:
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       timeout=600)
        with open(out) as f:
            return json.load(f)
    finally:
        os.unlink(out)


def totals(data):
    t = data["ALL STATS"]["Totals"]
    return t["Ops/sec"], t["Count"]


PREFILL = ["-t", "1", "-c", "4", "--pipeline", "16", "--ratio", "1:0", "--key-pattern", "P:P",
           "--key-minimum", "1", "--key-maximum", "100000", "-n", "allkeys", "-d", "100"]


def load(pipeline):
    return ["-t", "1", "-c", "50", "--pipeline", str(pipeline), "--ratio", "1:10", "-d", "100",
            "--key-minimum", "1", "--key-maximum", "100000", "--distinct-client-seed"]


def node(tool, rounds, seconds):
    redis = shutil.which("redis-server")
    servers = {}
    rp, cp = free_port(), free_port()
    servers["redis-server"] = (start([redis, "--port", str(rp), "--bind", "127.0.0.1", "--save",
                                      "", "--appendonly", "no"], rp), rp)
    servers["cacheserver"] = (start([SERVER, "-p", str(cp), "-l", "127.0.0.1", "-t", "1"], cp),
                              cp)
    rows = []
    try:
        rss = {}
        for name, (p, port) in servers.items():
            base = rss_kb(p.pid)
            memtier(tool, port, PREFILL)
            rss[name] = (base, rss_kb(p.pid))
        for pipeline in (1, 16):
            for r in range(rounds):
                for name, (p, port) in servers.items():
                    c0 = cpu_seconds(p.pid)
                    data = memtier(tool, port, load(pipeline), seconds)
                    cpu = cpu_seconds(p.pid) - c0
                    ops, count = totals(data)
                    rows.append((pipeline, r, name, ops, cpu / count * 1e6))
    finally:
        for p, _ in servers.values():
            stop(p)
    print("== node: memtier -P redis -t 1 -c 50 --ratio 1:10 -d 100, 100k keys prefilled, "
          "%d s per run" % seconds)
    for name, (base, after) in rss.items():
        print("   %-13s RSS before %6.1f MB, after 100k items %6.1f MB" % (
            name, base / 1024, after / 1024))
    print("   RSS ratio cacheserver/redis-server: %.2fx" % (
        rss["cacheserver"][1] / rss["redis-server"][1]))
    print("   pipeline round server          ops/s   server CPU us/op")
    for pl, r, name, ops, cpu in rows:
        print("   %8d %5d %-13s %10.0f %10.3f" % (pl, r, name, ops, cpu))
    for pl in (1, 16):
        for r in range(rounds):
            c = [x for x in rows if x[:3] == (pl, r, "cacheserver")][0]
            s = [x for x in rows if x[:3] == (pl, r, "redis-server")][0]
            print("   pipeline %2d round %d: ops/s %.2fx, CPU per op %.2fx" % (
                pl, r, c[3] / s[3], c[4] / s[4]))


def router(tool, rounds, seconds, idle_polls=None):
    redis = shutil.which("redis-server")
    nut = shutil.which("nutcracker")
    procs = []
    try:
        rports = [free_port(), free_port()]
        for p in rports:
            procs.append(start([redis, "--port", str(p), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], p))
        cports = [free_port(), free_port()]
        for p in cports:
            extra = [] if idle_polls is None else ["--idle-polls", str(idle_polls)]
            procs.append(start([SERVER, "-p", str(p), "-l", "127.0.0.1", "-t", "1"] + extra, p))
        np, rp = free_port(), free_port()
        nconf = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
        nconf.write("pool:\n  listen: 127.0.0.1:%d\n  hash: fnv1a_64\n  distribution: ketama\n"
                    "  redis: true\n  servers:\n   - 127.0.0.1:%d:1\n   - 127.0.0.1:%d:1\n"
                    % (np, rports[0], rports[1]))
        nconf.close()
        procs.append(start([nut, "-c", nconf.name], np))
        rconf = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        rconf.write("listen: 127.0.0.1:%d\nthreads: 1\n%sshards:\n  - name: s0\n    replicas: "
                    "[127.0.0.1:%d]\n  - name: s1\n    replicas: [127.0.0.1:%d]\n"
                    % (rp, "" if idle_polls is None else "idle_polls: %d\n" % idle_polls,
                       cports[0], cports[1]))
        rconf.close()
        procs.append(start([ROUTER, "-c", rconf.name], rp))
        targets = {"nutcracker": np, "cacherouter": rp}
        for port in targets.values():
            memtier(tool, port, PREFILL)
        rows = []
        for pipeline in (1, 16):
            for r in range(rounds):
                for name, port in targets.items():
                    ops, _ = totals(memtier(tool, port, load(pipeline), seconds))
                    rows.append((pipeline, r, name, ops))
    finally:
        for p in procs:
            stop(p)
    print("== router: memtier -P redis -t 1 -c 50 --ratio 1:10 -d 100 over 2 nodes each")
    print("   pipeline round proxy          ops/s")
    for pl, r, name, ops in rows:
        print("   %8d %5d %-13s %10.0f" % (pl, r, name, ops))
    for pl in (1, 16):
        for r in range(rounds):
            c = [x for x in rows if x[:3] == (pl, r, "cacherouter")][0]
            n = [x for x in rows if x[:3] == (pl, r, "nutcracker")][0]
            print("   pipeline %2d round %d: cacherouter/nutcracker ops/s %.2fx" % (
                pl, r, c[3] / n[3]))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memtier", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--only", choices=["node", "router"])
    ap.add_argument("--idle-polls", type=int,
                    help="router: the nodes' --idle-polls and the router's idle_polls")
    args = ap.parse_args()
    if args.only in (None, "node"):
        node(args.memtier, args.rounds, args.seconds)
    if args.only in (None, "router"):
        router(args.memtier, args.rounds, args.seconds, args.idle_polls)


if __name__ == "__main__":
    main()
