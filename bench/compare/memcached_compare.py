#!/usr/bin/env python3
"""Side-by-side: cacheserver vs memcached (Debian package), one run, same machine, same load.

For each server: a fresh process (-t THREADS, -m MEMORY), prefill 100,000 keys x 100-byte values
with cachebench, record RSS, then alternate timed runs of the same cachebench profile
(--ratio 1:9, 50 connections, 100-byte values, uniform keys) at pipeline 1 and 16. Reports ops/s
and server CPU seconds per million ops (utime+stime from /proc/PID/stat), and the ratios.
Loopback only; every process is started here and stopped by pid.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from loopback import free_port, wait_port  # noqa: E402,F401 (the other scripts import them here)


def programs(*names):
    """Paths of the named programs: ours from the release build, the peers (memcached,
    redis-server, nutcracker) from the Debian packages. Exits naming the first one missing."""
    build = os.path.join(ROOT, "build", "release")
    ours = {"cacheserver": os.path.join(build, "cacheserver", "cacheserver"),
            "cacherouter": os.path.join(build, "router", "cacherouter"),
            "cachebench": os.path.join(build, "bench", "cachebench")}
    peers = {"memcached": "/usr/bin/memcached", "redis-server": "/usr/bin/redis-server",
             "nutcracker": "/usr/sbin/nutcracker"}
    paths = [ours[n] if n in ours else shutil.which(n) or peers[n] for n in names]
    for p in paths:
        if not os.path.exists(p):
            sys.exit("missing %s (make build; make deps installs the peers)" % p)
    return paths


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Proc:
    def __init__(self, name, argv, port):
        self.name, self.port = name, port
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(port):
            raise RuntimeError("%s never opened port %d" % (name, port))

    def stop(self):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()


def cachebench(bench, port, extra, seconds=None):
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    argv = [bench, "-s", "127.0.0.1", "-p", str(port), "-d", "100", "--key-maximum", "99999",
            "--json-out-file", out] + extra
    if seconds:
        argv += ["--test-time", str(seconds)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=(seconds or 60) + 30)
    if r.returncode != 0:
        raise RuntimeError("cachebench failed: %s %s" % (r.stdout, r.stderr))
    with open(out) as f:
        data = json.load(f)
    os.unlink(out)
    return data["ALL STATS"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory", type=int, default=1024, help="MB")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bench-threads", type=int, default=1)
    args = ap.parse_args()

    ours, bench, memcached = programs("cacheserver", "cachebench", "memcached")

    def start(name):
        port = free_port()
        if name == "memcached":
            argv = [memcached, "-p", str(port), "-U", "0", "-l", "127.0.0.1", "-t",
                    str(args.threads), "-m", str(args.memory), "-c", "4096"]
            if os.getuid() == 0:
                argv += ["-u", "root"]
        else:
            argv = [ours, "-p", str(port), "-l", "127.0.0.1", "-t", str(args.threads), "-m",
                    str(args.memory), "-c", "4096"]
        return Proc(name, argv, port)

    servers = {n: start(n) for n in ("memcached", "cacheserver")}
    results = {n: {} for n in servers}
    try:
        for n, s in servers.items():
            base = rss_kb(s.p.pid)
            cachebench(bench, s.port, ["-t", "1", "-c", "1", "--ratio", "1:0", "--key-pattern", "S:S",
                                       "-n", "100000"])
            time.sleep(0.5)
            results[n]["rss_base_kb"] = base
            results[n]["rss_kb"] = rss_kb(s.p.pid)
        for pipeline in (1, 16):
            for rnd in range(args.rounds):
                order = list(servers) if rnd % 2 == 0 else list(reversed(list(servers)))
                for n in order:
                    s = servers[n]
                    c0 = cpu_seconds(s.p.pid)
                    st = cachebench(bench, s.port, ["-t", str(args.bench_threads), "-c",
                                                    str(50 // args.bench_threads), "--ratio", "1:9",
                                                    "--pipeline", str(pipeline)], args.seconds)
                    cpu = cpu_seconds(s.p.pid) - c0
                    tot = st["Totals"]
                    ops = tot["Count"]
                    r = results[n].setdefault("p%d" % pipeline, {"ops_s": [], "cpu_per_mop": [],
                                                                 "p99_ms": []})
                    r["ops_s"].append(tot["Ops/sec"])
                    r["cpu_per_mop"].append(cpu / ops * 1e6)
                    r["p99_ms"].append(tot["Percentile Latencies"]["p99.00"])
    finally:
        for s in servers.values():
            s.stop()

    def mean(xs):
        return sum(xs) / len(xs)

    m, c = results["memcached"], results["cacheserver"]
    print("| metric | memcached 1.6 | cacheserver | ratio (ours / memcached) | target |")
    print("|---|---|---|---|---|")
    for p in (1, 16):
        mo, co = mean(m["p%d" % p]["ops_s"]), mean(c["p%d" % p]["ops_s"])
        print("| ops/s, pipeline %d | %.0f | %.0f | %.2fx | >= 1.0x |" % (p, mo, co, co / mo))
        mc_, cc = mean(m["p%d" % p]["cpu_per_mop"]), mean(c["p%d" % p]["cpu_per_mop"])
        print("| server CPU s per 1M ops, pipeline %d | %.2f | %.2f | %.2fx | <= 0.8x |" % (p, mc_, cc, cc / mc_))
        print("| p99 latency ms, pipeline %d | %.3f | %.3f | %.2fx | |" % (
            p, mean(m["p%d" % p]["p99_ms"]), mean(c["p%d" % p]["p99_ms"]),
            mean(c["p%d" % p]["p99_ms"]) / mean(m["p%d" % p]["p99_ms"])))
    print("| RSS after 100k x 100 B items, MB | %.1f | %.1f | %.2fx | <= 0.8x |" % (
        m["rss_kb"] / 1024, c["rss_kb"] / 1024, c["rss_kb"] / m["rss_kb"]))
    print("| RSS at start, MB | %.1f | %.1f | | |" % (m["rss_base_kb"] / 1024, c["rss_base_kb"] / 1024))
    print()
    print("raw: " + json.dumps(results))


if __name__ == "__main__":
    main()
