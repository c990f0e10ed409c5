#!/usr/bin/env python3
"""A local cachetier tier on loopback, from deploy/demo/tier.yaml: 3 shards x 2 replicas of
cacheserver behind one cacherouter.

  tier.py demo [--seconds N] [--check]   the `make demo` job: start the tier, prefill it, and
                                          run cachebench through the router with a --scenario
                                          timeline: kill -9 of one node at ~1/4 of the run, its
                                          restart at ~2/5, a 4th shard added at ~5/7 (25 s of
                                          35); print the report with its availability per
                                          phase, tear down
  tier.py start                           start the tier in the background (state in
                                          $CACHETIER_TIER_DIR, default /tmp/cachetier-tier)
  tier.py add-shard                       start two nodes and add them to the running router
                                          as a new shard (SIGHUP; the router migrates the keys
                                          that move)
  tier.py remove-shard                    take the last shard out of the ring (SIGHUP); its
                                          nodes keep running for the migration window, until
                                          `stop`
  tier.py status | stop                   show it / stop it (by pid)

Everything listens on 127.0.0.1 only. The demo stops every process it started, also on Ctrl-C;
`stop` ends exactly the pids that were recorded.
"""
import argparse
import json
import os
import re
import shutil
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


def node_command(port):
    return [SERVER, "-p", str(port), "-l", "127.0.0.1", "-t", "1", "-m", "64"]


class Tier:
    """The tier's config (the shipped one, taken ports replaced) and its processes, recorded
    in STATE/tier.json so that later commands (add-shard, stop, ...) find them."""

    def __init__(self, state_dir=STATE):
        self.dir = state_dir
        self.file = os.path.join(state_dir, "tier.json")
        self.config = os.path.join(state_dir, "router.yaml")
        self.pids = {}       # name -> pid ("router", "node:PORT")
        self.shards = []     # [name, [ports]] in the ring
        self.retired = []    # [name, [ports]] taken out of the ring, still running
        self.header = ""     # the config's settings (everything before shards:)
        self.router_port = 0

    # ---- state ----
    def load(self):
        if not os.path.exists(self.file):
            return False
        with open(self.file) as f:
            s = json.load(f)
        self.pids, self.shards, self.retired = s["pids"], s["shards"], s["retired"]
        self.header, self.router_port = s["header"], s["router_port"]
        return True

    def save(self):
        with open(self.file, "w") as f:
            json.dump({"pids": self.pids, "shards": self.shards, "retired": self.retired,
                       "header": self.header, "router_port": self.router_port}, f)

    def render(self):
        lines = [self.header.rstrip("\n"), "shards:"]
        for name, ports in self.shards:
            lines.append("  - name: %s" % name)
            lines.append("    replicas: [%s]" % ", ".join("127.0.0.1:%d" % p for p in ports))
        return "\n".join(lines) + "\n"

    def write_config(self):
        tmp = self.config + ".new"
        with open(tmp, "w") as f:
            f.write(self.render())
        os.replace(tmp, self.config)

    # ---- processes ----
    def start_node(self, port):
        p = subprocess.Popen(node_command(port), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        self.pids["node:%d" % port] = p.pid
        if not wait_port(port):
            raise RuntimeError("cacheserver on port %d did not start" % port)

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        text = open(CONFIG).read()
        used = {}

        def swap(m):
            port = int(m.group(1))
            if port not in used:
                used[port] = port if port_free(port) else free_port()
            return "127.0.0.1:%d" % used[port]

        text = re.sub(r"127\.0\.0\.1:(\d+)", swap, text)
        self.router_port = int(re.search(r"listen: 127\.0\.0\.1:(\d+)", text).group(1))
        self.header = text[:text.index("\nshards:") + 1]
        for name, reps in re.findall(r"- name: (\S+)\n\s+replicas: \[([^\]]*)\]", text):
            self.shards.append([name, [int(p.split(":")[1]) for p in reps.split(",")]])
        self.save()  # from here on, stop() finds whatever started
        for _, ports in self.shards:
            for port in ports:
                self.start_node(port)
                self.save()
        self.write_config()
        p = subprocess.Popen([ROUTER, "-c", self.config], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.dir, "router.log"), "a"),
                             start_new_session=True)
        self.pids["router"] = p.pid
        self.save()
        if not wait_port(self.router_port):
            raise RuntimeError("cacherouter did not start (see %s/router.log)" % self.dir)

    def reload(self):
        self.write_config()
        os.kill(self.pids["router"], signal.SIGHUP)

    def add_shard(self):
        taken = {p for _, ports in self.shards + self.retired for p in ports}
        n = len(self.shards) + len(self.retired)
        name = "s%d" % n
        ports = []
        while len(ports) < 2:
            p = free_port()
            if p not in taken and p not in ports:
                ports.append(p)
        for p in ports:
            self.start_node(p)
            self.save()
        self.shards.append([name, ports])
        self.save()
        self.reload()
        return name, ports

    def remove_shard(self):
        if len(self.shards) <= 1:
            raise RuntimeError("the last shard cannot be removed")
        shard = self.shards.pop()
        self.retired.append(shard)
        self.save()
        self.reload()
        return shard

    def stop(self):
        for pid in self.pids.values():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in self.pids.values():
            for _ in range(200):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                try:
                    os.waitpid(pid, os.WNOHANG)  # ours (the demo): reap it
                except ChildProcessError:
                    pass
                time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)

    def describe(self):
        lines = ["router  127.0.0.1:%d  (memcache text or native protocol)" % self.router_port]
        for name, ports in self.shards:
            lines.append("shard %s  replicas %s" % (name, ", ".join(
                "127.0.0.1:%d" % p for p in ports)))
        for name, ports in self.retired:
            lines.append("shard %s  out of the ring (migrating)  %s" % (name, ", ".join(
                "127.0.0.1:%d" % p for p in ports)))
        return "\n".join(lines)


def timeline(tier, seconds, state_dir):
    """The demo's --scenario: a node killed and restarted, then a shard added."""
    victim = tier.shards[1][1][0]
    kill_at, back_at, grow_at = round(seconds * 0.23, 1), round(seconds * 0.43, 1), round(
        seconds * 0.71, 1)
    grow = "CACHETIER_TIER_DIR=%s CACHETIER_BUILD=%s /usr/bin/python3 %s add-shard" % (
        state_dir, BUILD, os.path.abspath(__file__))
    text = "\n".join([
        "processes:",
        "  victim: {pid: %d, restart: \"%s\"}" % (tier.pids["node:%d" % victim],
                                                 " ".join(node_command(victim))),
        "events:",
        "  - {at: %s, kill: victim, label: \"kill -9 127.0.0.1:%d\"}" % (kill_at, victim),
        "  - {at: %s, restart: victim, label: \"127.0.0.1:%d back, empty\"}" % (back_at, victim),
        "  - {at: %s, exec: \"%s\", label: \"a 4th shard added\"}" % (grow_at, grow)]) + "\n"
    return text, victim, (kill_at, back_at, grow_at)


def demo(seconds, check):
    for b in (SERVER, ROUTER, BENCH):
        if not os.path.exists(b):
            sys.exit("missing %s: run `make build` first" % b)
    state_dir = tempfile.mkdtemp(prefix="cachetier-demo-")
    tier = Tier(state_dir)
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
                              "--key-minimum", "1", "--key-maximum", str(keys), "-n", "allkeys",
                              "-d", "100"], capture_output=True, text=True, timeout=120)
        if pre.returncode != 0:
            raise RuntimeError("prefill failed: " + pre.stdout + pre.stderr)
        print("== prefilled %d keys through the router" % keys)
        scenario, victim, (kill_at, back_at, grow_at) = timeline(tier, seconds, state_dir)
        scenario_file = os.path.join(state_dir, "scenario.yaml")
        with open(scenario_file, "w") as f:
            f.write(scenario)
        json_out = os.path.join(state_dir, "run.json")
        html_out = os.environ.get("DEMO_REPORT", os.path.join(BUILD, "demo-report.html"))
        print("== cachebench through the router for %d s (10 connections, 1:9 sets:gets), on "
              "a --scenario timeline: kill -9 of 127.0.0.1:%d at %s s, its restart at %s s, a "
              "4th shard added at %s s" % (seconds, victim, kill_at, back_at, grow_at))
        sys.stdout.flush()
        load = subprocess.Popen([BENCH, "-s", "127.0.0.1", "-p", str(tier.router_port), "-t",
                                 "1", "-c", "10", "--ratio", "1:9", "--key-minimum", "1",
                                 "--key-maximum", str(keys), "-d", "100", "--test-time",
                                 str(seconds), "--scenario", scenario_file, "--router-stats",
                                 "127.0.0.1:%d" % tier.router_port, "--json-out-file", json_out,
                                 "--report", html_out],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = load.communicate(timeout=seconds + 120)
        print(out.rstrip())
        if err.strip():
            print(err.rstrip())
        with open(json_out) as f:
            result = json.load(f)
        tier.load()  # add-shard recorded its nodes
        end = router_stats(tier.router_port)
        print()
        print("== the tier after the run")
        print(tier.describe())
        print("migration after the 4th shard: active %s, moved keys read %s times, %s answered "
              "by their previous owner and copied to the new one" % (
                  end.get("migration:active"), end.get("migration:reads"),
                  end.get("migration:old_owner_hits")))
        print("HTML report (charts with the events marked): %s" % html_out)
        if check:
            phases = result["Phases"]
            errors = result["ALL STATS"]["Errors"]
            if errors != 0 or load.returncode != 0:
                sys.exit("demo check failed: %d client-visible errors (exit %d)"
                         % (errors, load.returncode))
            if len(phases) != 4 or len(tier.shards) != 4:
                sys.exit("demo check failed: phases %s, shards %s" % (
                    [p["Phase"] for p in phases], tier.shards))
            before, grown = phases[2]["Hit Ratio"], phases[3]["Hit Ratio"]
            if grown is None or before is None or grown < before - 0.01:
                sys.exit("demo check failed: hit ratio %s after the 4th shard, %s before"
                         % (grown, before))
            print("demo check: ok (0 client-visible errors; hit ratio %.4f before the 4th "
                  "shard, %.4f after)" % (before, grown))
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the tier")
        raise SystemExit(130)
    finally:
        if load is not None and load.poll() is None:
            load.terminate()
            load.wait()
        tier.load()
        tier.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["demo", "start", "stop", "status", "add-shard",
                                        "remove-shard"])
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("DEMO_SECONDS", "35")))
    ap.add_argument("--check", action="store_true",
                    help="demo: exit non-zero unless the load saw zero errors and the hit "
                         "ratio held through the scale-out")
    args = ap.parse_args()
    if args.command == "demo":
        return demo(max(args.seconds, 6), args.check)
    tier = Tier()
    if args.command == "start":
        if tier.load():
            sys.exit("a tier is already recorded in %s: `tier stop` first" % tier.file)
        try:
            tier.start()
        except Exception:
            tier.stop()
            raise
        print(tier.describe())
        print("stop it with: scripts/tier stop")
        return
    if not tier.load():
        sys.exit("no tier running (nothing recorded in %s)" % tier.dir)
    if args.command == "stop":
        n = len(tier.pids)
        tier.stop()
        print("stopped %d processes" % n)
    elif args.command == "add-shard":
        name, ports = tier.add_shard()
        print("added shard %s: %s (the router migrates the keys that move to it)" % (
            name, ", ".join("127.0.0.1:%d" % p for p in ports)))
    elif args.command == "remove-shard":
        name, ports = tier.remove_shard()
        print("shard %s out of the ring; its nodes keep serving moved keys until `tier stop`"
              % name)
    else:
        print(tier.describe())
        st = router_stats(tier.router_port)
        for k in sorted(st):
            if k.endswith(":state") or k.startswith("migration:"):
                print("%-40s %s" % (k, st[k]))


if __name__ == "__main__":
    main()
