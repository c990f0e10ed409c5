#!/usr/bin/env python3
"""User-space instructions per get, native protocol vs memcache text, under callgrind.

Timing on these shared 2-core machines drifts; instruction counts do not. For each protocol and
depth this runs client_bench (one client::Connection, DEPTH gets in flight, 100-byte values over
10,000 keys) twice against a fresh `cacheserver -t 1 --idle-polls 0`: once with 0 gets (connect
and the 10,000 warm-up sets only) and once with REQUESTS gets. One side runs under
`valgrind --tool=callgrind` at a time (the server, then the client), and the difference of the
two totals divided by REQUESTS is that side's instructions per get. Kernel work (the syscalls)
is not counted by callgrind; it is the same for both protocols (one read and one write per
batch on each side).

Usage: instructions_per_request.py [--build build/release] [--requests 50000] [--depths 1,16,64]
Loopback only; every process is started here and stopped by pid.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memcached_compare import ROOT, free_port, wait_port  # noqa: E402


def callgrind_total(path):
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    raise RuntimeError("no total in " + path)


def callgrind(argv, out):
    return ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv


def start_server(build, port, under_callgrind, out):
    argv = [os.path.join(build, "cacheserver/cacheserver"), "-p", str(port), "-t", "1",
            "--idle-polls", "0"]
    if under_callgrind:
        argv = callgrind(argv, out)
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port, timeout=60):
        p.kill()
        raise RuntimeError("cacheserver never opened port %d" % port)
    return p


def stop(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(120)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def run(build, proto, depth, requests, side, tmp):
    """Instructions of `side` ("server" or "client") for one client_bench run."""
    out = os.path.join(tmp, "cg.%s.%s.%d.%d" % (side, proto, depth, requests))
    port = free_port()
    server = start_server(build, port, side == "server", out)
    try:
        argv = [os.path.join(build, "bench/client_bench"), "-p", str(port), "--protocol", proto,
                "--depths", str(depth), "--requests", str(requests)]
        if side == "client":
            argv = callgrind(argv, out)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError("client_bench failed: %s %s" % (r.stdout, r.stderr))
    finally:
        stop(server)
    return callgrind_total(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    ap.add_argument("--requests", type=int, default=50000)
    ap.add_argument("--depths", default="1,16,64")
    args = ap.parse_args()
    depths = [int(d) for d in args.depths.split(",")]
    print("| depth | side | native instr/get | text instr/get | native / text |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for depth in depths:
            for side in ("server", "client"):
                per = {}
                for proto in ("native", "text"):
                    base = run(args.build, proto, depth, 0, side, tmp)
                    full = run(args.build, proto, depth, args.requests, side, tmp)
                    per[proto] = (full - base) / args.requests
                print("| %d | %s | %.0f | %.0f | %.2fx |" % (depth, side, per["native"], per["text"],
                                                           per["native"] / per["text"]), flush=True)


if __name__ == "__main__":
    main()
