#!/usr/bin/env python3
"""Side-by-side in one run: cacherouter in front of 2 cacheserver shards vs nutcracker
(twemproxy, Debian package) in front of 2 memcached, same cachebench load; the router's
overhead against going straight to one node; and failover after kill -9 of a replica.

1. proxies: 2 backends each (-t 1), replication 1; the proxy under test gets the same
   cachebench profile (--ratio 1:9, 50 connections, 100-byte values, 100k keys) at pipeline 1
   and 16, alternating which goes first. Reports ops/s, proxy CPU seconds per 1M ops, ratios.
2. overhead: cachebench straight to one cacheserver vs through cacherouter to that node, ops/s
   and ops per CPU-second of all our processes (router + node vs node alone).
3. multiget: a 100-key get through the router (2 shards) vs straight to one node, in three
   placements of the processes on the cores (see multiget_section).
4. failover: 2 replicas behind the router, a bounded Python load of gets/sets; kill -9 one
   replica; time until the router marks it down (polling its stats) and errors the load saw.
Loopback only; every process is started here and stopped by pid.
"""
import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memcached_compare  # noqa: E402
from memcached_compare import ROOT, Proc, cachebench, cpu_seconds, free_port, programs  # noqa: E402
from loopback import stats  # noqa: E402 (memcached_compare put scripts/ on the path)


def router_yaml(port, shards, threads, **extra):
    lines = ["listen: 127.0.0.1:%d" % port, "threads: %d" % threads]
    lines += ["%s: %s" % kv for kv in extra.items()]
    lines.append("shards:")
    for i, reps in enumerate(shards):
        lines.append("  - name: s%d" % i)
        lines.append("    replicas: [%s]" % ", ".join("127.0.0.1:%d" % p for p in reps))
    return "\n".join(lines) + "\n"


def write_temp(text, suffix):
    f = tempfile.NamedTemporaryFile(mode="w", suffix=suffix, delete=False)
    f.write(text)
    f.close()
    return f.name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--router-threads", type=int, default=1)
    ap.add_argument("--sections", default="proxies,overhead,multiget,failover",
                    help="comma-separated subset of proxies,overhead,multiget,failover")
    ap.add_argument("--memtier", help="memtier_benchmark binary: the load for proxies and "
                    "overhead (../shared/peers/build-memtier.sh builds it); default cachebench")
    ap.add_argument("--ratio", default="1:9", help="sets:gets of the load")
    args = ap.parse_args()

    server, router, bench, memcached, nutcracker = programs(
        "cacheserver", "cacherouter", "cachebench", "memcached", "nutcracker")
    if args.memtier:
        global cachebench  # the same flags and JSON report, memtier's protocol named

        def cachebench(_bench, port, extra, seconds=None, _memtier=args.memtier):
            return memcached_compare.cachebench(_memtier, port,
                                                ["--protocol=memcache_text"] + extra, seconds)
    print("load: %s, ratio %s" % (args.memtier or bench, args.ratio))
    root_user = ["-u", "root"] if os.getuid() == 0 else []
    procs, files = [], []

    def start(name, argv, port):
        p = Proc(name, argv, port)
        procs.append(p)
        return p

    def node(kind):
        port = free_port()
        if kind == "memcached":
            return start(kind, [memcached, "-p", str(port), "-U", "0", "-l", "127.0.0.1", "-t",
                                "1", "-m", "1024", "-c", "4096"] + root_user, port)
        return start(kind, [server, "-p", str(port), "-l", "127.0.0.1", "-t", "1", "-m", "1024",
                            "-c", "4096"], port)

    def start_router(shards, threads, **extra):
        port = free_port()
        cfg = write_temp(router_yaml(port, shards, threads, **extra), ".yaml")
        files.append(cfg)
        return start("cacherouter", [router, "-c", cfg], port)

    def mean(xs):
        return sum(xs) / len(xs)

    out = {}
    sections = set(args.sections.split(","))
    try:
        ours = [node("cacheserver") for _ in range(2)]
        proxies_section(sections, out, ours, node, start, start_router, args, bench, nutcracker,
                        files, mean)
        overhead_section(sections, out, ours, start_router, args, bench, mean)
        for p in ours:
            p.stop()
        multiget_section(sections, out, node, start_router, args)
        failover_section(sections, out, node, start_router)
    finally:
        for p in procs:
            p.stop()
        for f in files:
            if os.path.exists(f):
                os.unlink(f)
    print()
    print("raw: " + json.dumps(out, default=str))


def proxies_section(sections, out, ours, node, start, start_router, args, bench, nutcracker,
                    files, mean):
    if "proxies" not in sections:
        return
    theirs = [node("memcached") for _ in range(2)]
    r = start_router([[ours[0].port], [ours[1].port]], args.router_threads)
    tw_port, tw_stats = free_port(), free_port()
    tw_conf = write_temp(
        "alpha:\n  listen: 127.0.0.1:%d\n  hash: fnv1a_64\n  distribution: ketama\n"
        "  timeout: 400\n  redis: false\n  servers:\n   - 127.0.0.1:%d:1\n"
        "   - 127.0.0.1:%d:1\n" % (tw_port, theirs[0].port, theirs[1].port), ".yml")
    files.append(tw_conf)
    tw_log = tempfile.NamedTemporaryFile(suffix=".log", delete=False).name
    files.append(tw_log)
    tw = start("nutcracker", [nutcracker, "-c", tw_conf, "-s", str(tw_stats), "-a",
                              "127.0.0.1", "-o", tw_log], tw_port)
    proxies = {"nutcracker": tw, "cacherouter": r}
    backends = {"nutcracker": theirs, "cacherouter": ours[:2]}
    for p in proxies.values():
        cachebench(bench, p.port, ["-t", "1", "-c", "4", "--ratio", "1:0", "--key-pattern", "P:P",
                                   "-n", "25000"])
    res = {n: {} for n in proxies}
    for pipeline in (1, 16):
        for rnd in range(args.rounds):
            order = list(proxies) if rnd % 2 == 0 else list(reversed(list(proxies)))
            for n in order:
                p = proxies[n]
                c0 = cpu_seconds(p.p.pid)
                n0 = sum(cpu_seconds(b.p.pid) for b in backends[n])
                st = cachebench(bench, p.port, ["-t", "1", "-c", "50", "--ratio", args.ratio,
                                                "--pipeline", str(pipeline)], args.seconds)
                cpu = cpu_seconds(p.p.pid) - c0
                ncpu = sum(cpu_seconds(b.p.pid) for b in backends[n]) - n0
                tot = st["Totals"]
                e = res[n].setdefault(pipeline, {"ops": [], "cpu": [], "node_cpu": [], "p99": []})
                e["ops"].append(tot["Ops/sec"])
                e["cpu"].append(cpu / tot["Count"] * 1e6)
                e["node_cpu"].append(ncpu / tot["Count"] * 1e6)
                e["p99"].append(tot["Percentile Latencies"]["p99.00"])
    out["proxies"] = res
    print("| metric | nutcracker 0.5 + memcached | cacherouter (%d thread) + cacheserver "
          "| ratio | target |" % args.router_threads)
    print("|---|---|---|---|---|")
    for pipeline, target in ((1, ">= 1.5x"), (16, ">= 2x")):
        a, b = res["nutcracker"][pipeline], res["cacherouter"][pipeline]
        print("| ops/s, pipeline %d | %.0f | %.0f | %.2fx | %s |" % (
            pipeline, mean(a["ops"]), mean(b["ops"]), mean(b["ops"]) / mean(a["ops"]),
            target))
        print("| proxy CPU s per 1M ops, pipeline %d | %.2f | %.2f | %.2fx | |" % (
            pipeline, mean(a["cpu"]), mean(b["cpu"]), mean(b["cpu"]) / mean(a["cpu"])))
        print("| nodes' CPU s per 1M ops, pipeline %d | %.2f | %.2f | %.2fx | |" % (
            pipeline, mean(a["node_cpu"]), mean(b["node_cpu"]),
            mean(b["node_cpu"]) / mean(a["node_cpu"])))
        print("| p99 ms, pipeline %d | %.3f | %.3f | | |" % (pipeline, mean(a["p99"]),
                                                          mean(b["p99"])))
    for p in [tw, r] + theirs:
        p.stop()


def overhead_section(sections, out, ours, start_router, args, bench, mean):
    if "overhead" not in sections:
        return
    direct_node = ours[0]
    r1 = start_router([[direct_node.port]], args.router_threads)
    over = {}
    for pipeline in (1, 16):
        for rnd in range(args.rounds):
            for n in (("direct", "router") if rnd % 2 == 0 else ("router", "direct")):
                port = direct_node.port if n == "direct" else r1.port
                pids = [direct_node.p.pid] + ([r1.p.pid] if n == "router" else [])
                c0 = sum(cpu_seconds(x) for x in pids)
                st = cachebench(bench, port, ["-t", "1", "-c", "50", "--ratio", args.ratio,
                                              "--pipeline", str(pipeline)], args.seconds)
                cpu = sum(cpu_seconds(x) for x in pids) - c0
                tot = st["Totals"]
                e = over.setdefault((n, pipeline), {"ops": [], "per_cpu": []})
                e["ops"].append(tot["Ops/sec"])
                e["per_cpu"].append(tot["Count"] / cpu)
    out["overhead"] = {"%s-p%d" % k: v for k, v in over.items()}
    print()
    print("| pipeline | direct ops/s | via router ops/s | ratio | direct ops per CPU-s "
          "| via router ops per CPU-s (router + node) | ratio | target |")
    print("|---|---|---|---|---|---|---|---|")
    for pipeline in (1, 16):
        d, v = over[("direct", pipeline)], over[("router", pipeline)]
        print("| %d | %.0f | %.0f | %.2fx | %.0f | %.0f | %.2fx | >= 0.8x |" % (
            pipeline, mean(d["ops"]), mean(v["ops"]), mean(v["ops"]) / mean(d["ops"]),
            mean(d["per_cpu"]), mean(v["per_cpu"]),
            mean(v["per_cpu"]) / mean(d["per_cpu"])))
    r1.stop()


def multiget_section(sections, out, node, start_router, args):
    """A 100-key get through the router (2 shards) vs the same get to one node holding all,
    in three placements of the processes on the cores: as the scheduler likes (unpinned), the
    client on one core and the tier (node, or router and nodes) on another, and everything on
    one core (no cross-core wake-ups: the CPU cost on the request's path)."""
    if "multiget" not in sections:
        return
    keys = ["multi:%d" % i for i in range(100)]

    def setup(port):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for k in keys:
            s.sendall(b"set %s 0 0 100\r\n%s\r\n" % (k.encode(), b"v" * 100))
        buf = b""
        while buf.count(b"STORED") < len(keys):
            buf += s.recv(1 << 16)
        return s

    def timed_multiget(sock, rounds):
        req = ("get " + " ".join(keys) + "\r\n").encode()
        t0 = time.perf_counter()
        for _ in range(rounds):
            sock.sendall(req)
            buf = b""
            while not buf.endswith(b"END\r\n"):
                buf += sock.recv(1 << 20)
            if buf.count(b"VALUE") != len(keys):
                raise RuntimeError("multi-get lost keys")
        return (time.perf_counter() - t0) / rounds

    all_cpus = os.sched_getaffinity(0)
    cpus = sorted(all_cpus)
    placements = [("unpinned", None, None, {}), ("unpinned, router idle_polls 50", None, None,
                                                 {"idle_polls": 50})]
    if len(cpus) >= 2:
        placements.append(("client on cpu %d, tier on cpu %d" % (cpus[0], cpus[1]),
                           {cpus[0]}, {cpus[1]}, {}))
    placements.append(("all on cpu %d" % cpus[0], {cpus[0]}, {cpus[0]}, {}))
    print()
    print("| 100-key get (100-byte values), one connection, %d rounds of 500 | direct to one "
          "node (min / median) | via router, 2 shards (min / median) | ratio of medians | "
          "target |" % (args.rounds * 6))
    print("|---|---|---|---|---|")
    for name, client_cpus, tier_cpus, extra in placements:
        try:
            if tier_cpus:
                os.sched_setaffinity(0, tier_cpus)  # the processes started now inherit it
            mnodes = [node("cacheserver") for _ in range(2)]
            rm = start_router([[n.port] for n in mnodes], args.router_threads, **extra)
            if client_cpus:
                os.sched_setaffinity(0, client_cpus)
            direct_sock = setup(mnodes[0].port)
            router_sock = setup(rm.port)
            times = {"direct": [], "router": []}
            for rnd in range(args.rounds * 6):
                for n in (("direct", "router") if rnd % 2 == 0 else ("router", "direct")):
                    sock = direct_sock if n == "direct" else router_sock
                    times[n].append(timed_multiget(sock, 500))
            direct_sock.close()
            router_sock.close()
        finally:
            os.sched_setaffinity(0, all_cpus)
        rm.stop()
        for n in mnodes:
            n.stop()
        out["multiget " + name] = times
        d, r = sorted(times["direct"]), sorted(times["router"])
        dm, rmed = d[len(d) // 2], r[len(r) // 2]
        print("| %s | %.1f / %.1f us | %.1f / %.1f us | %.2fx | < 1.5x |"
              % (name, d[0] * 1e6, dm * 1e6, r[0] * 1e6, rmed * 1e6, rmed / dm))


def failover_section(sections, out, node, start_router):
    """kill -9 of one of two replicas under a bounded Python load through the router."""
    if "failover" not in sections:
        return
    reps = [node("cacheserver") for _ in range(2)]
    rf = start_router([[reps[0].port, reps[1].port]], 2, timeout_ms=250, failure_limit=3,
                      read_policy="round_robin")
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    from pymemcache.client.base import Client as PyClient
    c = PyClient(("127.0.0.1", rf.port), timeout=5)
    for i in range(1000):
        c.set("f%d" % i, b"v", noreply=False)
    errors, ops = [], [0]
    stop_at = time.time() + 6

    def load(seed):
        cl = PyClient(("127.0.0.1", rf.port), timeout=5)
        i = 0
        while time.time() < stop_at and i < 1000000:
            i += 1
            try:
                k = "f%d" % ((i * 7919 + seed) % 1000)
                if i % 10 == 0:
                    cl.set(k, b"v", noreply=False)
                elif cl.get(k) != b"v":
                    errors.append("miss " + k)
                ops[0] += 1
            except Exception as ex:  # noqa: BLE001
                errors.append(repr(ex))

    threads = [threading.Thread(target=load, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    victim = "node:127.0.0.1:%d:" % reps[0].port
    killed = time.time()
    os.kill(reps[0].p.pid, 9)
    reps[0].p.wait()
    down_after = None
    while time.time() < killed + 5:
        st = stats(rf.port)
        if st[victim + "state"] == "down":
            down_after = time.time() - killed
            break
        time.sleep(0.002)
    last = int(stats(rf.port)[victim + "requests"])
    time.sleep(0.5)
    after = int(stats(rf.port)[victim + "requests"]) - last
    for t in threads:
        t.join()
    out["failover"] = {"down_after_s": down_after, "errors": len(errors), "ops": ops[0],
                       "requests_to_dead_node_in_next_500ms": after}
    print()
    print("| failover (kill -9 of 1 of 2 replicas, 4 client threads) | value | target |")
    print("|---|---|---|")
    print("| time until the router marks it down (stops sending it traffic) | %s | |" % (
        "%.1f ms" % (down_after * 1000) if down_after is not None else "not within 5 s"))
    print("| requests sent to the dead node in the next 500 ms | %d | 0 |" % after)
    print("| client-visible errors / misses during the run | %d of %d ops | 0 |" % (
        len(errors), ops[0]))


if __name__ == "__main__":
    main()
