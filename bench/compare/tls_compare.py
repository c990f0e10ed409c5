#!/usr/bin/env python3
"""TLS side by side: cacheserver -Z vs memcached -Z (Debian's 1.6, built with TLS), the same
memtier_benchmark --tls load for both, alternating runs in one process of this script.

    /usr/bin/python3 bench/compare/tls_compare.py --memtier PATH [--seconds 5] [--rounds 2]
        [--skip-router]

1. ops/s and server CPU seconds per million ops: 50 connections (-t 1 -c 50), --ratio 1:10,
   100-byte values over 100,000 prefilled keys, pipeline 1 and 16.
2. The cost of TLS on our own node: the same load, plaintext vs TLS.
3. Memory per idle TLS connection (and per idle plaintext one): RSS after 500 connections
   that finished their handshake and one request, minus before, per connection.
4. The handshake rate: `openssl s_time -new` (full handshakes, one client) for 5 s.
5. cacherouter with TLS on both sides (tls:, backend_tls: to TLS nodes) vs in plaintext.

Certificates are made with the openssl CLI in a temporary directory (tests/integration/certs.py).
Loopback only; every process is started here and stopped by pid.
"""
import argparse
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from certs import Certs  # noqa: E402
from memcached_compare import Proc, cpu_seconds, free_port, programs, rss_kb  # noqa: E402


def memtier(path, port, tls, certs, pipeline, seconds, ratio="1:10", extra=()):
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    argv = [path, "-s", "127.0.0.1", "-p", str(port), "-P", "memcache_text", "-t", "1", "-c", "50",
            "--ratio", ratio, "-d", "100", "--key-maximum", "99999", "--pipeline", str(pipeline),
            "--test-time", str(seconds), "--hide-histogram", "--json-out-file", out, *extra]
    if tls:
        argv += ["--tls", "--cacert", certs.path("ca.crt"), "--sni", "localhost"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError("memtier failed: %s" % r.stderr[-500:])
    with open(out) as f:
        tot = json.load(f)["ALL STATS"]["Totals"]
    os.unlink(out)
    return tot


def prefill(bench, port, tls, certs):
    argv = [bench, "-s", "127.0.0.1", "-p", str(port), "-t", "1", "-c", "4", "--ratio", "1:0",
            "--key-pattern", "P:P", "-n", "allkeys", "--key-maximum", "99999", "-d", "100"]
    if tls:
        argv += ["--tls", "--cacert", certs.path("ca.crt"), "--sni", "localhost"]
    subprocess.run(argv, capture_output=True, timeout=120, check=True)


def idle_memory(proc, port, tls, certs, n=500):
    """RSS per connection (bytes) for n idle connections that did one request each."""
    ctx = ssl.create_default_context(cafile=certs.path("ca.crt")) if tls else None
    before = rss_kb(proc.p.pid)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if ctx:
            s = ctx.wrap_socket(s, server_hostname="localhost")
        s.sendall(b"version\r\n")
        s.recv(100)
        socks.append(s)
    time.sleep(0.5)
    after = rss_kb(proc.p.pid)
    for s in socks:
        s.close()
    return (after - before) * 1024 / n


def handshakes_per_s(port, certs, seconds=5):
    r = subprocess.run(["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new", "-time",
                        str(seconds), "-CAfile", certs.path("ca.crt")],
                       capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"(\d+) connections in ([\d.]+)s", r.stdout)
    if not m:
        raise RuntimeError("s_time: %s %s" % (r.stdout[-300:], r.stderr[-300:]))
    return int(m.group(1)) / float(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memtier", required=True)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="server threads")
    ap.add_argument("--skip-router", action="store_true")
    args = ap.parse_args()
    ours, memcached, bench, router = programs("cacheserver", "memcached", "cachebench",
                                              "cacherouter")
    certs = Certs()
    tls_opts = "ssl_chain_cert=%s,ssl_key=%s" % (certs.path("server.crt"), certs.path("server.key"))
    procs = []

    def start(name, tls):
        port = free_port()
        if name == "memcached":
            argv = [memcached, "-p", str(port), "-U", "0", "-l", "127.0.0.1", "-t",
                    str(args.threads), "-m", "1024", "-c", "4096"]
            if os.getuid() == 0:
                argv += ["-u", "root"]
        else:
            argv = [ours, "-p", str(port), "-l", "127.0.0.1", "-t", str(args.threads), "-m",
                    "1024", "-c", "4096"]
        if tls:
            argv += ["-Z", "-o", tls_opts]
        p = Proc(name, argv, port)
        procs.append(p)
        return p

    try:
        servers = {"memcached -Z": start("memcached", True),
                   "cacheserver -Z": start("cacheserver", True),
                   "cacheserver plaintext": start("cacheserver", False)}
        for n, s in servers.items():
            prefill(bench, s.port, "-Z" in n, certs)
        res = {n: {1: [], 16: []} for n in servers}
        for pipeline in (1, 16):
            for rnd in range(args.rounds):
                order = list(servers) if rnd % 2 == 0 else list(reversed(list(servers)))
                for n in order:
                    s = servers[n]
                    c0 = cpu_seconds(s.p.pid)
                    tot = memtier(args.memtier, s.port, "-Z" in n, certs, pipeline, args.seconds)
                    cpu = cpu_seconds(s.p.pid) - c0
                    res[n][pipeline].append((tot["Ops/sec"], cpu / max(1, tot["Count"]) * 1e6))
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        print("| metric | memcached -Z | cacheserver -Z | ratio | target | cacheserver plaintext | TLS / plaintext |")
        print("|---|---|---|---|---|---|---|")
        for p in (1, 16):
            ops = {n: mean([x[0] for x in res[n][p]]) for n in res}
            cpu = {n: mean([x[1] for x in res[n][p]]) for n in res}
            m, c, pl = "memcached -Z", "cacheserver -Z", "cacheserver plaintext"
            print("| ops/s, pipeline %d | %.0f | %.0f | %.2fx | >= %s | %.0f | %.2fx |" % (
                p, ops[m], ops[c], ops[c] / ops[m], "1.2x" if p == 1 else "2x", ops[pl],
                ops[c] / ops[pl]))
            print("| server CPU s per 1M ops, pipeline %d | %.2f | %.2f | %.2fx | <= 0.8x | %.2f | %.2fx |" % (
                p, cpu[m], cpu[c], cpu[c] / cpu[m], cpu[pl], cpu[c] / cpu[pl]))
        sys.stdout.flush()
        mem = {n: idle_memory(s, s.port, "-Z" in n, certs) for n, s in servers.items()}
        print()
        print("| idle connection (500, one request each), bytes of RSS each | memcached -Z | "
              "cacheserver -Z | cacheserver plaintext |")
        print("|---|---|---|---|")
        print("| | %.0f | %.0f | %.0f |" % (mem["memcached -Z"], mem["cacheserver -Z"],
                                          mem["cacheserver plaintext"]))
        hs = {n: handshakes_per_s(servers[n].port, certs) for n in ("memcached -Z", "cacheserver -Z")}
        print()
        print("| full handshakes/s (openssl s_time -new, one client, 5 s) | memcached -Z | cacheserver -Z |")
        print("|---|---|---|")
        print("| | %.0f | %.0f |" % (hs["memcached -Z"], hs["cacheserver -Z"]))
        sys.stdout.flush()
        for s in procs:
            s.stop()
        procs.clear()
        if args.skip_router:
            return
        # The router: TLS on both sides vs plaintext on both, 2 nodes (one shard each).
        rows = {}
        for mode in ("plaintext", "TLS both sides"):
            tls = mode != "plaintext"
            nodes = [start("cacheserver", tls) for _ in range(2)]
            cfg = ["listen: 127.0.0.1:%d" % free_port(), "threads: 1"]
            if tls:
                cfg += ["tls:", "  cert: %s" % certs.path("server.crt"),
                        "  key: %s" % certs.path("server.key"),
                        "backend_tls:", "  ca: %s" % certs.path("ca.crt"),
                        "  server_name: localhost"]
            cfg += ["shards:"] + ["  - name: s%d\n    replicas: [127.0.0.1:%d]" % (i, n.port)
                                  for i, n in enumerate(nodes)]
            path = os.path.join(certs.dir, "router-%d.yaml" % len(rows))
            with open(path, "w") as f:
                f.write("\n".join(cfg) + "\n")
            port = int(cfg[0].rsplit(":", 1)[1])
            r = Proc("cacherouter", [router, "-c", path], port)
            procs.append(r)
            prefill(bench, port, tls, certs)
            rows[mode] = {p: mean([memtier(args.memtier, port, tls, certs, p, args.seconds)["Ops/sec"]
                                   for _ in range(args.rounds)]) for p in (1, 16)}
            for s in procs:
                s.stop()
            procs.clear()
        print()
        print("| router, ops/s | plaintext | TLS both sides | TLS / plaintext |")
        print("|---|---|---|---|")
        for p in (1, 16):
            a, b = rows["plaintext"][p], rows["TLS both sides"][p]
            print("| pipeline %d | %.0f | %.0f | %.2fx |" % (p, a, b, b / a))
        print()
        print("raw: " + json.dumps({n: {str(p): v for p, v in r.items()} for n, r in res.items()}))
    finally:
        for s in procs:
            s.stop()
        certs.close()


if __name__ == "__main__":
    main()
