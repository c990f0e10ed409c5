#!/usr/bin/env python3
"""User-space instructions per request in cacherouter, under callgrind.

One cacheserver (-t 1) behind a 1-thread router (`idle_polls: 0`, so the count does not depend
on timing); the router runs under `valgrind --tool=callgrind`; cachebench sends N requests per
client (10 clients, pipeline 16, --ratio 1:9, 100-byte values, 10,000 keys). The difference of
the totals of a run with --requests and one with --base requests per client, divided by the
requests between them, is the router's instructions per request (start-up and connection set-up
cancel out). Kernel work is not counted.

Usage: router_instructions.py [--build build/release] [--router PATH] [--requests 11000]
                              [--base 1000] [--protocol memcache_text|redis]
Loopback only; every process is started here and stopped by pid.
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from instructions_per_request import callgrind, callgrind_total, start_server, stop  # noqa: E402
from memcached_compare import ROOT, free_port, wait_port  # noqa: E402

CLIENTS = 10


def run(build, router, per_client, tmp, protocol="memcache_text"):
    out = os.path.join(tmp, "cg.router.%d" % per_client)
    node_port, router_port = free_port(), free_port()
    node = start_server(build, node_port, False, None)
    cfg = os.path.join(tmp, "router.yaml")
    with open(cfg, "w") as f:
        f.write("listen: 127.0.0.1:%d\nthreads: 1\nidle_polls: 0\nshards:\n"
                "  - name: s0\n    replicas: [127.0.0.1:%d]\n" % (router_port, node_port))
    proxy = subprocess.Popen(callgrind([router, "-c", cfg], out), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        if not wait_port(router_port, timeout=60):
            raise RuntimeError("cacherouter never opened port %d" % router_port)
        r = subprocess.run([os.path.join(build, "bench/cachebench"), "-s", "127.0.0.1", "-p",
                            str(router_port), "-P", protocol, "-t", "1", "-c", str(CLIENTS),
                            "--pipeline", "16",
                            "--ratio", "1:9", "-d", "100", "--key-maximum", "9999", "-n",
                            str(per_client), "--hide-histogram"],
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError("cachebench failed: %s %s" % (r.stdout, r.stderr))
    finally:
        stop(proxy)
        stop(node)
    return callgrind_total(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    ap.add_argument("--router", help="cacherouter binary (default: the build's)")
    ap.add_argument("--requests", type=int, default=11000, help="requests per client")
    ap.add_argument("--base", type=int, default=1000, help="requests per client, base run")
    ap.add_argument("--protocol", default="memcache_text",
                    help="cachebench -P: memcache_text (default), redis (the RESP front end)")
    args = ap.parse_args()
    router = args.router or os.path.join(args.build, "router/cacherouter")
    with tempfile.TemporaryDirectory() as tmp:
        base = run(args.build, router, args.base, tmp, args.protocol)
        full = run(args.build, router, args.requests, tmp, args.protocol)
    n = (args.requests - args.base) * CLIENTS
    print("router instructions per request: %.0f (%d - %d over %d requests)" %
          ((full - base) / n, full, base, n))


if __name__ == "__main__":
    main()
