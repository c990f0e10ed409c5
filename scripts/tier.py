#!/usr/bin/env python3
"""A local cachetier tier on loopback, from deploy/demo/tier.yaml: 3 shards x 2 replicas of
cacheserver behind one cacherouter.

  tier.py demo [--seconds N] [--check]   the `make demo` job: start the tier, prefill it, run
                                          cachebench through the router, kill -9 one node at
                                          1/3 of the run and restart it at 2/3, print the
                                          report and an availability summary, tear down
  tier.py start                           start the tier in the background (state in
                                          $CACHETIER_TIER_DIR, default /tmp/cachetier-tier)
  tier.py status | stop                   show it / stop it (by pid)

Everything listens on 127.0.0.1 only. The demo stops every process it started, also on Ctrl-C;
`stop` ends exactly the pids `start` recorded.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from loopback import free_port, port_free, wait_port
from loopback import stats as router_stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("CACHETIER_BUILD", os.path.join(ROOT, "build", "release"))
SERVER = os.path.join(BUILD, "cacheserver", "cacheserver")
ROUTER = os.path.join(BUILD, "router", "cacherouter")
BENCH = os.path.join(BUILD, "bench", "cachebench")
CONFIG = os.path.join(ROOT, "deploy", "demo", "tier.yaml")
STATE = os.environ.get("CACHETIER_TIER_DIR", "/tmp/cachetier-tier")
PIDFILE = os.path.join(STATE, "pids.json")  # what `start` records for `status` and `stop`


def plan():
    """The shipped config with taken ports replaced: (yaml text, router port, shards)."""
    text = open(CONFIG).read()
    used = {}

    def swap(m):
        port = int(m.group(1))
        if port not in used:
            used[port] = port if port_free(port) else free_port()
        return "127.0.0.1:%d" % used[port]

    text = re.sub(r"127\.0\.0\.1:(\d+)", swap, text)
    router_port = int(re.search(r"listen: 127\.0\.0\.1:(\d+)", text).group(1))
    shards = []
    for names, reps in re.findall(r"- name: (\S+)\n\s+replicas: \[([^\]]*)\]", text):
        shards.append((names, [int(p.split(":")[1]) for p in reps.split(",")]))
    return text, router_port, shards


class Tier:
    def __init__(self, quiet=False):
        self.procs = {}  # name -> Popen
        self.text, self.router_port, self.shards = plan()
        self.config = None
        self.quiet = quiet

    def start_node(self, port):
        p = subprocess.Popen([SERVER, "-p", str(port), "-l", "127.0.0.1", "-t", "1", "-m", "64"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs["node:%d" % port] = p
        if not wait_port(port):
            raise RuntimeError("cacheserver on port %d did not start" % port)
        return p

    def start(self):
        for _, ports in self.shards:
            for port in ports:
                self.start_node(port)
        f = tempfile.NamedTemporaryFile(mode="w", suffix=".yaml", prefix="tier-", delete=False)
        f.write(self.text)
        f.close()
        self.config = f.name
        self.procs["router"] = subprocess.Popen([ROUTER, "-c", self.config],
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
        if not wait_port(self.router_port):
            raise RuntimeError("cacherouter did not start")

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.config and os.path.exists(self.config):
            os.unlink(self.config)

    def describe(self):
        lines = ["router  127.0.0.1:%d  (memcache text or native protocol)" % self.router_port]
        for name, ports in self.shards:
            lines.append("shard %s  replicas %s" % (name, ", ".join(
                "127.0.0.1:%d" % p for p in ports)))
        return "\n".join(lines)


def total(st, suffix):
    return sum(int(v) for k, v in st.items() if k.startswith("node:") and k.endswith(suffix))


def demo(seconds, check):
    for b in (SERVER, ROUTER, BENCH):
        if not os.path.exists(b):
            sys.exit("missing %s: run `make build` first" % b)
    tier = Tier()
    load = None

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        tier.start()
        print("== a local tier: 3 shards x 2 replicas of cacheserver behind cacherouter")
        print(tier.describe())
        keys = 10000
        pre = subprocess.run([BENCH, "-s", "127.0.0.1", "-p", str(tier.router_port), "-t", "1",
                              "-c", "4", "--ratio", "1:0", "--key-pattern", "P:P",
                              "--key-minimum", "1",
                              "--key-maximum", str(keys), "-n", str(keys // 4), "-d", "100"],
                             capture_output=True, text=True, timeout=120)
        if pre.returncode != 0:
            raise RuntimeError("prefill failed: " + pre.stdout + pre.stderr)
        print("== prefilled %d keys through the router" % keys)
        victim_shard, victim_ports = tier.shards[1]
        victim = victim_ports[0]
        json_out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        html_out = os.environ.get("DEMO_REPORT", os.path.join(BUILD, "demo-report.html"))
        print("== cachebench through the router for %d s (10 connections, 1:9 sets:gets); "
              "kill -9 of node 127.0.0.1:%d (shard %s) at %d s, restart at %d s"
              % (seconds, victim, victim_shard, seconds // 3, 2 * seconds // 3))
        sys.stdout.flush()
        load = subprocess.Popen([BENCH, "-s", "127.0.0.1", "-p", str(tier.router_port), "-t",
                                 "1", "-c", "10", "--ratio", "1:9", "--key-minimum", "1", "--key-maximum",
                                 str(keys), "-d", "100", "--test-time", str(seconds),
                                 "--json-out-file", json_out, "--report", html_out],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        phases = {}
        t0 = time.time()
        snap = router_stats(tier.router_port)
        phase_start = {"before": snap}
        killed = restarted = False
        while load.poll() is None:
            elapsed = time.time() - t0
            if not killed and elapsed >= seconds / 3:
                phase_start["during"] = router_stats(tier.router_port)
                tier.procs["node:%d" % victim].kill()
                tier.procs["node:%d" % victim].wait()
                killed = True
                print("   %5.1fs  kill -9 127.0.0.1:%d" % (elapsed, victim))
            elif killed and not restarted and elapsed >= 2 * seconds / 3:
                phase_start["after"] = router_stats(tier.router_port)
                tier.start_node(victim)
                restarted = True
                print("   %5.1fs  restarted 127.0.0.1:%d (empty)" % (time.time() - t0, victim))
            time.sleep(0.05)
        end = router_stats(tier.router_port)
        out, err = load.communicate()
        print(out.rstrip())
        if err.strip():
            print(err.rstrip())
        with open(json_out) as f:
            result = json.load(f)["ALL STATS"]
        os.unlink(json_out)
        bounds = [("before", phase_start.get("before"), phase_start.get("during", end)),
                  ("during", phase_start.get("during"), phase_start.get("after", end)),
                  ("after", phase_start.get("after"), end)]
        print()
        print("== availability")
        errors = result.get("Errors", 0)
        print("requests                %d" % result["Totals"]["Count"])
        print("client-visible errors   %d" % errors)
        print("failovers (router)      %d" % (total(end, ":failovers") - total(snap, ":failovers")))
        print("node marked down        %d time(s); keys repaired %d, back-filled %d" % (
            total(end, ":marked_down") - total(snap, ":marked_down"),
            total(end, ":repaired") - total(snap, ":repaired"),
            total(end, ":backfills") - total(snap, ":backfills")))
        for name, a, b in bounds:
            if a is None or b is None:
                continue
            hits = int(b["get_hits"]) - int(a["get_hits"])
            misses = int(b["get_misses"]) - int(a["get_misses"])
            ratio = hits / (hits + misses) if hits + misses else 0.0
            phases[name] = ratio
            print("hit ratio %-14s %.4f  (%d gets)" % (name, ratio, hits + misses))
        print("node 127.0.0.1:%d state  %s" % (victim, end.get("node:127.0.0.1:%d:state" % victim)))
        print("router-side errors      %d" % (
            sum(int(v) for k, v in end.items() if k.startswith("shard:") and k.endswith(":errors"))
            - sum(int(v) for k, v in snap.items() if k.startswith("shard:") and
                  k.endswith(":errors"))))
        print("HTML report (per-second charts): %s" % html_out)
        if check:
            if errors != 0:
                sys.exit("demo check failed: %d client-visible errors" % errors)
            if load.returncode != 0:
                sys.exit("demo check failed: cachebench exit %d: %s" % (load.returncode, err))
            print("demo check: ok (0 client-visible errors)")
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the tier")
        raise SystemExit(130)
    finally:
        if load is not None and load.poll() is None:
            load.terminate()
            load.wait()
        tier.stop()


def start():
    os.makedirs(STATE, exist_ok=True)
    if os.path.exists(PIDFILE):
        sys.exit("a tier is already recorded in %s: `tier.py stop` first" % PIDFILE)
    tier = Tier()
    try:
        tier.start()
    except Exception:
        tier.stop()
        raise
    # Keep the config: the router re-reads it on SIGHUP.
    state = {"pids": {n: p.pid for n, p in tier.procs.items()}, "config": tier.config,
             "router_port": tier.router_port, "description": tier.describe()}
    with open(PIDFILE, "w") as f:
        json.dump(state, f)
    print(tier.describe())
    print("stop it with: scripts/tier stop")


def recorded():
    """The tier `start` recorded (pids, ports, config file), or None."""
    if not os.path.exists(PIDFILE):
        print("no tier running (nothing recorded in %s)" % STATE)
        return None
    with open(PIDFILE) as f:
        return json.load(f)


def stop():
    state = recorded()
    if state is None:
        return
    for name, pid in state["pids"].items():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for name, pid in state["pids"].items():
        for _ in range(100):
            try:
                os.kill(pid, 0)
                time.sleep(0.05)
            except ProcessLookupError:
                break
    if os.path.exists(state["config"]):
        os.unlink(state["config"])
    os.unlink(PIDFILE)
    print("stopped %d processes" % len(state["pids"]))


def status():
    state = recorded()
    if state is None:
        return
    print(state["description"])
    st = router_stats(state["router_port"])
    for k in sorted(st):
        if k.endswith(":state"):
            print("%-40s %s" % (k, st[k]))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["demo", "start", "stop", "status"])
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("DEMO_SECONDS", "30")))
    ap.add_argument("--check", action="store_true",
                    help="demo: exit non-zero unless the load saw zero errors")
    args = ap.parse_args()
    if args.command == "demo":
        demo(max(args.seconds, 6), args.check)
    elif args.command == "start":
        start()
    elif args.command == "stop":
        stop()
    else:
        status()


if __name__ == "__main__":
    main()
