"""Migration-aware routing, measured with cachebench: a ring change under continuous load
(Zipf keys, 1:9 sets:gets, every key prefilled) keeps the hit ratio through the router within
1 point of before, during and after the change: 3 shards -> 4, 4 -> 3, and a weight change.
A control run with migration_ms: 0 shows the dip the migration avoids. Run with
/usr/bin/python3; release builds (it needs cachebench)."""
import json
import os
import subprocess
import tempfile
import threading
import time

from harness import Router, check, run, servers, stop_all

BENCH = os.environ.get("CACHEBENCH_BIN", "cachebench")
KEYS = 20000
SECONDS = 9
CHANGE_AT = 3.0  # seconds into the run


def config(nodes, names, weights=None, **settings):
    lines = ["listen: 127.0.0.1:0", "timeout_ms: 1000"]
    lines += ["%s: %s" % kv for kv in settings.items()]
    lines.append("shards:")
    for i, name in enumerate(names):
        lines.append("  - name: %s" % name)
        if weights:
            lines.append("    weight: %d" % weights[i])
        lines.append("    replicas: [127.0.0.1:%d]" % nodes[i].port)
    return "\n".join(lines) + "\n"


def bench(port, *args):
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    try:
        p = subprocess.run([BENCH, "-s", "127.0.0.1", "-p", str(port), "-P", "memcache_text",
                            "--json-out-file", out, "--hide-histogram", *args],
                           capture_output=True, text=True, timeout=300)
        check(p.returncode == 0, "cachebench: %d %s" % (p.returncode, p.stderr))
        with open(out) as f:
            return json.load(f)["ALL STATS"]
    finally:
        os.unlink(out)


def ratio(seconds):
    hits = sum(s["Hits"] for s in seconds)
    looked = hits + sum(s["Misses"] for s in seconds)
    return 100.0 * hits / looked if looked else 0.0


def change_under_load(before_cfg, after_cfg, n_nodes):
    """Prefills every key, loads for SECONDS and applies `after_cfg` at CHANGE_AT. Returns the
    per-second hit ratios, the phases' ratios, errors and the router's stats after."""
    nodes = servers(n_nodes, "-t", "1", "-m", "256")
    try:
        r = Router(before_cfg(nodes))
        try:
            bench(r.port, "-t", "1", "-c", "4", "--pipeline", "8", "--ratio", "1:0",
                  "--key-pattern", "P:P", "--key-minimum", "1", "--key-maximum", str(KEYS),
                  "-n", "allkeys")
            timer = threading.Timer(CHANGE_AT, lambda: r.reload(after_cfg(nodes)))
            timer.start()
            stats = bench(r.port, "-t", "1", "-c", "4", "--ratio", "1:9", "--key-pattern", "Z:Z",
                          "--key-minimum", "1", "--key-maximum", str(KEYS), "--test-time",
                          str(SECONDS))
            timer.join()
            st = r.stats()
        finally:
            r.stop()
    finally:
        stop_all(nodes)
    # (A last, partial second of a few requests says nothing about the ratio.)
    series = [s for s in stats["Time-Serie"] if s["Hits"] + s["Misses"] >= 100]
    per_second = [round(ratio([s]), 2) for s in series]
    change = int(CHANGE_AT)
    phases = {"before": ratio(series[:change]), "during": ratio(series[change:change + 3]),
              "after": ratio(series[change + 3:])}
    return per_second, phases, stats["Errors"], st


def check_held(what, before_cfg, after_cfg, n_nodes):
    per_second, phases, errors, st = change_under_load(before_cfg, after_cfg, n_nodes)
    print("%s: hit %% per second %s; before %.2f, during %.2f, after %.2f; errors %d; "
          "migration: reads %s, old owner hits %s, backfills %s, moved %s permille" % (
              what, per_second, phases["before"], phases["during"], phases["after"], errors,
              st["migration:reads"], st["migration:old_owner_hits"], st["migration:backfills"],
              st["migration:moved_permille"]))
    check(errors == 0, "%s: %d errors" % (what, errors))
    for name in ("during", "after"):
        check(abs(phases[name] - phases["before"]) <= 1.0,
              "%s: hit ratio %s %.2f vs before %.2f" % (what, name, phases[name],
                                                        phases["before"]))
    check(min(per_second) >= phases["before"] - 1.0, "%s: no second dips: %s" % (what,
                                                                                  per_second))
    check(int(st["migration:active"]) == 1, "%s: the window is open" % what)
    check(int(st["migration:old_owner_hits"]) > 0 and int(st["migration:backfills"]) > 0,
          "%s: moved keys were read from their previous owner and copied" % what)
    return phases


def test_scale_out_3_to_4():
    check_held("scale-out 3 -> 4",
               lambda n: config(n, ["s0", "s1", "s2"]),
               lambda n: config(n, ["s0", "s1", "s2", "s3"]), 4)


def test_scale_in_4_to_3():
    check_held("scale-in 4 -> 3",
               lambda n: config(n, ["s0", "s1", "s2", "s3"]),
               lambda n: config(n, ["s0", "s1", "s2"]), 4)


def test_weight_change():
    check_held("weight s0 1 -> 3",
               lambda n: config(n, ["s0", "s1", "s2"], [1, 1, 1]),
               lambda n: config(n, ["s0", "s1", "s2"], [3, 1, 1]), 3)


def test_without_migration_the_moved_keys_miss():
    """The control: the same scale-out with migration_ms: 0 dips (so the bound above means
    something)."""
    per_second, phases, errors, st = change_under_load(
        lambda n: config(n, ["s0", "s1", "s2"], migration_ms=0),
        lambda n: config(n, ["s0", "s1", "s2", "s3"], migration_ms=0), 4)
    print("scale-out without migration: hit %% per second %s; before %.2f, during %.2f" % (
        per_second, phases["before"], phases["during"]))
    check(int(st["migration:active"]) == 0, "no window with migration_ms: 0")
    check(min(per_second) < phases["before"] - 5.0,
          "the moved keys miss without migration: %s" % per_second)


def test_tier_script_adds_and_removes_a_shard():
    """scripts/tier add-shard / remove-shard on a `tier start`ed tier: the router migrates,
    every key stays readable, `stop` ends every recorded process."""
    import shutil
    from harness import Conn
    import socket
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, CACHETIER_TIER_DIR=tempfile.mkdtemp(prefix="tier-test-"),
               CACHETIER_BUILD=os.path.dirname(os.path.dirname(os.environ.get(
                   "CACHESERVER_BIN", "build/release/cacheserver/cacheserver"))))
    state = os.path.join(env["CACHETIER_TIER_DIR"], "tier.json")

    def tier(*args):
        p = subprocess.run(["/usr/bin/python3", os.path.join(root, "scripts", "tier.py"), *args],
                           env=env, capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, "tier %s: %s %s" % (args, p.stdout, p.stderr))
        return p.stdout

    tier("start")
    try:
        rec = json.load(open(state))
        port = rec["router_port"]

        def conn():
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            return Conn(s)

        c = conn()
        for i in range(300):
            c.send(b"set t%d 0 0 2\r\nv%d\r\n" % (i, i % 10))
            check(c.line() == b"STORED", "stored")

        def all_there():
            for i in range(300):
                c.send(b"get t%d\r\n" % i)
                if c.line() != b"VALUE t%d 0 2" % i:
                    return False
                c.line()
                c.line()
            return True

        out = tier("add-shard")
        check("added shard s3" in out, out)
        time.sleep(0.5)
        check(all_there(), "every key readable after add-shard")
        out = tier("remove-shard")
        check("shard s3 out of the ring" in out, out)
        time.sleep(0.5)
        check(all_there(), "every key readable after remove-shard")
        status = tier("status")
        check("out of the ring (migrating)" in status and "migration:active" in status, status)
        c.close()
    finally:
        pids = list(json.load(open(state))["pids"].values()) if os.path.exists(state) else []
        tier("stop")
        shutil.rmtree(env["CACHETIER_TIER_DIR"], ignore_errors=True)
    check(len(pids) == 9, "9 processes recorded: %s" % pids)
    for pid in pids:
        check(not os.path.exists("/proc/%d" % pid) or
              open("/proc/%d/stat" % pid).read().split()[2] == "Z", "pid %d stopped" % pid)


if __name__ == "__main__":
    run([test_scale_out_3_to_4, test_scale_in_4_to_3, test_weight_change,
         test_without_migration_the_moved_keys_miss, test_tier_script_adds_and_removes_a_shard])
