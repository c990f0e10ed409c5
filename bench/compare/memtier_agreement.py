"""cachebench next to memtier_benchmark, the load generator it follows (issue 13):

  format   the same flags against one cacheserver: memtier's run information and ALL STATS
           layout (titles, rules, column ends) and, in the JSON, every key memtier writes for
           a feature cachebench has
  rate     a fixed offered rate (--rate-limiting, per connection), 4 connections at pipeline 1
           against a 1-thread cacheserver: both achieve it, and their p50 and p99 agree
  redis    redis-server at pipeline 16 with a prefilled keyspace: ops/s, and client CPU per op

    /usr/bin/python3 bench/compare/memtier_agreement.py --memtier PATH [--rounds 3]

memtier is built by ../shared/peers/build-memtier.sh (not a Debian package). Rounds
alternate the two tools; everything runs on loopback and stops by pid.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "scripts"))
from loopback import free_port, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build", "release")
SERVER = os.path.join(BUILD, "cacheserver", "cacheserver")
BENCH = os.path.join(BUILD, "bench", "cachebench")

# memtier's JSON keys for what cachebench does not do (its own options, HdrHistogram's
# compressed log); everything else memtier writes, cachebench must write too.
NOT_COMMON = re.compile(
    r"^/configuration/(uri|unix socket|address family|client_stats|debug|data_offset|"
    r"random_data|data_size_list|data_size_pattern|data_import|data_verify|verify_only|"
    r"generate_keys|reconnect_interval|connection_timeout|thread_conn_start_.*|multi_key_get|"
    r"authenticate|select-db|no-expiry|wait-ratio|num-slaves|wait-timeout|print-all-runs)$|"
    r"/Histogram log format")


def timed(argv, timeout=300):
    """Runs a tool; returns (stdout, JSON, CPU seconds) with the CPU from wait4."""
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    try:
        p = subprocess.Popen(argv + ["--json-out-file", out], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        stdout = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise RuntimeError("%s exited %d" % (argv[0], p.returncode))
        with open(out) as f:
            return stdout, json.load(f), ru.ru_utime + ru.ru_stime
    finally:
        os.unlink(out)


def start(argv, port):
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        p.kill()
        raise RuntimeError("%s did not start" % argv[0])
    return p


def stop(p):
    p.terminate()
    p.wait(10)


def keys(d, prefix=""):
    out = set()
    if isinstance(d, dict):
        for k, v in d.items():
            path = prefix + "/" + (k if not k.isdigit() else "N")
            out.add(path)
            out |= keys(v, path)
    return out


def ends(line):
    return [m.end() for m in re.finditer(r"\S+", line)]


def format_check(memtier):
    port = free_port()
    srv = start([SERVER, "-p", str(port), "-t", "1"], port)
    try:
        flags = ["-s", "127.0.0.1", "-p", str(port), "-P", "memcache_text", "-t", "1", "-c", "4",
                 "--test-time", "2", "--hide-histogram"]
        mt_out, mt_json, _ = timed([memtier] + flags)
        cb_out, cb_json, _ = timed([BENCH] + flags)
    finally:
        stop(srv)
    problems = []
    mt, cb = mt_out.splitlines(), cb_out.splitlines()
    if mt[:3] != cb[:3]:
        problems.append("run information differs: %r vs %r" % (mt[:3], cb[:3]))
    mi, ci = mt.index("ALL STATS"), cb.index("ALL STATS")
    if mi != ci:
        problems.append("ALL STATS on line %d vs %d" % (mi, ci))
    for k in range(4):  # title, rule, column titles, dashes
        if mt[mi + k] != cb[ci + k]:
            problems.append("line %d: %r vs %r" % (k, mt[mi + k], cb[ci + k]))
    for k in range(4, 8):  # Sets, Gets, Waits, Totals
        if mt[mi + k].split()[0] != cb[ci + k].split()[0] or ends(mt[mi + k]) != ends(cb[ci + k]):
            problems.append("row %r: column ends %s vs %s" % (mt[mi + k].split()[0],
                                                              ends(mt[mi + k]), ends(cb[ci + k])))
    missing = sorted(k for k in keys(mt_json) - keys(cb_json) if not NOT_COMMON.search(k))
    if missing:
        problems.append("JSON keys memtier writes and cachebench does not: %s" % missing)
    print("== format: %s" % ("same layout and JSON keys" if not problems else "DIFFERENT"))
    for p in problems:
        print("   " + p)
    print("   (common JSON keys checked: %d of memtier's %d)" % (
        len([k for k in keys(mt_json) if not NOT_COMMON.search(k)]), len(keys(mt_json))))
    return not problems


def stat(data, kind, key):
    s = data["ALL STATS"][kind]
    return s["Percentile Latencies"][key] if key.startswith("p") else s[key]


def rate_check(memtier, rounds, rate):
    port = free_port()
    srv = start([SERVER, "-p", str(port), "-t", "1"], port)
    rows = []
    try:
        timed([BENCH, "-s", "127.0.0.1", "-p", str(port), "-t", "1", "-c", "4", "--ratio", "1:0",
               "--key-pattern", "P:P", "--key-minimum", "1", "--key-maximum", "10000", "-n",
               "allkeys"])
        flags = ["-s", "127.0.0.1", "-p", str(port), "-P", "memcache_text", "-t", "1", "-c", "4",
                 "--pipeline", "1", "--rate-limiting", str(rate), "--key-minimum", "1",
                 "--key-maximum", "10000", "--test-time", "8", "--hide-histogram"]
        for r in range(rounds):
            for name, tool in (("memtier", memtier), ("cachebench", BENCH)):
                _, data, _ = timed([tool] + flags)
                rows.append((r, name, stat(data, "Totals", "Ops/sec"),
                             stat(data, "Totals", "p50.00"), stat(data, "Totals", "p99.00")))
    finally:
        stop(srv)
    offered = 4 * rate
    print("== rate: 4 connections x %d requests/s (offered %d/s), pipeline 1, 1-thread "
          "cacheserver" % (rate, offered))
    print("   round tool          ops/s  achieved   p50 ms   p99 ms")
    for r, name, ops, p50, p99 in rows:
        print("   %5d %-10s %9.0f %8.1f%% %8.3f %8.3f" % (r, name, ops, 100 * ops / offered, p50,
                                                         p99))
    ok = True
    for r in range(rounds):
        m = [x for x in rows if x[0] == r and x[1] == "memtier"][0]
        c = [x for x in rows if x[0] == r and x[1] == "cachebench"][0]
        d50, d99 = c[3] / m[3] - 1, c[4] / m[4] - 1
        good = abs(d50) <= 0.10 and abs(d99) <= 0.10 and min(m[2], c[2]) >= 0.97 * offered
        ok &= good
        print("   round %d: cachebench/memtier p50 %+.1f%%, p99 %+.1f%% %s" % (
            r, 100 * d50, 100 * d99, "" if good else "(outside 10%, or rate not achieved)"))
    return ok


def redis_check(memtier, rounds, threads=1):
    redis = shutil.which("redis-server")
    port = free_port()
    srv = start([redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no"], port)
    rows = []
    try:
        timed([BENCH, "-s", "127.0.0.1", "-p", str(port), "-P", "redis", "-t", "1", "-c", "4",
               "--pipeline", "16", "--ratio", "1:0", "--key-pattern", "P:P", "--key-minimum", "1",
               "--key-maximum", "100000", "-n", "allkeys"])
        flags = ["-s", "127.0.0.1", "-p", str(port), "-P", "redis", "-t", str(threads), "-c", "50",
                 "--pipeline", "16", "--ratio", "1:10", "--key-minimum", "1", "--key-maximum",
                 "100000", "--test-time", "6", "--hide-histogram"]
        for r in range(rounds):
            for name, tool in (("memtier", memtier), ("cachebench", BENCH)):
                _, data, cpu = timed([tool] + flags)
                ops = stat(data, "Totals", "Ops/sec")
                count = stat(data, "Totals", "Count")
                hits = stat(data, "Gets", "Hits/sec")
                rows.append((r, name, ops, cpu / count * 1e6, hits))
    finally:
        stop(srv)
    print("== redis: redis-server 7.0, %d thread(s) x 50 connections, pipeline 16, 1:10, 100k "
          "keys prefilled" % threads)
    print("   round tool          ops/s   client CPU us/op   hits/s")
    for r, name, ops, cpu, hits in rows:
        print("   %5d %-10s %9.0f %12.3f %12.0f" % (r, name, ops, cpu, hits))
    ratios = []
    for r in range(rounds):
        m = [x for x in rows if x[0] == r and x[1] == "memtier"][0]
        c = [x for x in rows if x[0] == r and x[1] == "cachebench"][0]
        ratios.append(c[2] / m[2])
        print("   round %d: cachebench/memtier ops/s %.2fx, CPU per op %.2fx" % (
            r, c[2] / m[2], c[3] / m[3]))
    return min(ratios) >= 1.2


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memtier", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=int, default=5000, help="requests/s per connection")
    ap.add_argument("--only", choices=["format", "rate", "redis"])
    ap.add_argument("--redis-threads", type=int, default=1,
                    help="client threads for the redis comparison (memtier's default is 4)")
    args = ap.parse_args()
    results = {}
    if args.only in (None, "format"):
        results["format"] = format_check(args.memtier)
    if args.only in (None, "rate"):
        results["rate"] = rate_check(args.memtier, args.rounds, args.rate)
    if args.only in (None, "redis"):
        results["redis"] = redis_check(args.memtier, args.rounds, args.redis_threads)
    print("== %s" % ", ".join("%s %s" % (k, "ok" if v else "NOT MET") for k, v in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
