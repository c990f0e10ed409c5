"""Migration-aware routing and consistency, with the test bed's checker (tests/testbed/
checker.py) on loopback: two routers that reload a ring change 2 s apart, with writers and
readers on both, give 0 stale reads and 0 errors; so does a migration interrupted by a node
failure; a config without shards is refused and one that renames every shard is accepted with
a warning that names the share of keys that move. Run with /usr/bin/python3."""
import contextlib
import os
import sys
import time

from harness import Router, check, run, servers, stop_all, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "testbed"))
import checker  # noqa: E402


class Loopback:
    """The checker's view of a host: here every client is on this machine."""

    def inside(self, host):
        return contextlib.nullcontext()


def config(shards, names=None, **settings):
    """shards: a list of replica lists (Servers)."""
    lines = ["listen: 127.0.0.1:0", "timeout_ms: 1000", "failure_limit: 1"]
    lines += ["%s: %s" % kv for kv in settings.items()]
    lines.append("shards:")
    for i, replicas in enumerate(shards):
        lines.append("  - name: %s" % (names[i] if names else "s%d" % i))
        lines.append("    replicas: [%s]" % ", ".join("127.0.0.1:%d" % r.port for r in replicas))
    return "\n".join(lines) + "\n"


def report(what, h):
    print("%s:\n%s" % (what, checker.format_report(h.report())))
    t = h.totals()
    check(t["stale"] == 0, "%s: %d stale reads (longest %.1f ms)" % (what, t["stale"],
                                                                    t["longest_ms"]))
    check(t["errors"] == 0 and t["write_errors"] == 0,
          "%s: %d read errors, %d write errors" % (what, t["errors"], t["write_errors"]))
    check(t["reads"] > 500 and t["writes"] > 100, "%s: load ran: %s" % (what, t))
    return t


def test_two_routers_reload_2s_apart():
    bed = Loopback()
    nodes = servers(4)
    try:
        three = config([[n] for n in nodes[:3]])
        four = config([[n] for n in nodes])
        r1, r2 = Router(three), Router(three)
        try:
            h = checker.History(keys=300)
            c1, c2 = checker.Client(bed, "r1", r1.port), checker.Client(bed, "r2", r2.port)
            h.write_all(c1)
            w = checker.writers(h, [checker.Client(bed, "r1", r1.port),
                                    checker.Client(bed, "r2", r2.port)])
            rd = checker.readers(h, [checker.Client(bed, "r1", r1.port),
                                     checker.Client(bed, "r2", r2.port),
                                     checker.Client(bed, "r1", r1.port),
                                     checker.Client(bed, "r2", r2.port)])
            w.start()
            rd.start()
            time.sleep(1.5)
            h.phase("r1 on 4 shards")
            r1.reload(four)
            time.sleep(2.0)
            h.phase("both on 4 shards")
            r2.reload(four)
            time.sleep(2.0)
            w.stop()
            rd.stop()
            for r in (r1, r2):
                st = r.stats()
                check(int(st["migration:active"]) == 1 and int(st["reloads"]) == 1,
                      "each router reloaded once and migrates")
            s1, s2 = r1.stats(), r2.stats()
            print("r1 migration: reads %s, old owner hits %s, invalidations %s; r2: %s, %s, %s"
                  % (s1["migration:reads"], s1["migration:old_owner_hits"],
                     s1["migration:invalidations"], s2["migration:reads"],
                     s2["migration:old_owner_hits"], s2["migration:invalidations"]))
            check(int(s1["migration:old_owner_hits"]) > 0, "r1 read moved keys from old owners")
            report("two routers reloading 2 s apart", h)
            check(h.lost_keys(c1) == [] and h.lost_keys(c2) == [], "no acknowledged key lost")
        finally:
            r1.stop()
            r2.stop()
    finally:
        stop_all(nodes)


def test_migration_interrupted_by_a_node_failure():
    bed = Loopback()
    nodes = servers(8)
    pairs = [nodes[i:i + 2] for i in range(0, 8, 2)]
    try:
        r = Router(config(pairs[:3]))
        try:
            h = checker.History(keys=300)
            c = checker.Client(bed, "app", r.port)
            h.write_all(c)
            w = checker.writers(h, [checker.Client(bed, "app", r.port) for _ in range(2)])
            rd = checker.readers(h, [checker.Client(bed, "app", r.port) for _ in range(3)])
            w.start()
            rd.start()
            time.sleep(1.0)
            h.phase("3 -> 4 shards")
            r.reload(config(pairs))
            time.sleep(0.7)
            h.phase("a new and an old owner's replica killed")
            pairs[3][0].kill9()  # a replica of the new shard
            pairs[0][1].kill9()  # a replica of a shard that gives keys away
            time.sleep(2.0)
            w.stop()
            rd.stop()
            st = r.stats()
            check(int(st["migration:active"]) == 1, "still migrating")
            report("migration with two replicas killed", h)
            check(h.lost_keys(c) == [], "no acknowledged key lost")
        finally:
            r.stop()
    finally:
        stop_all(nodes)


def test_bad_ring_changes():
    nodes = servers(3)
    try:
        r = Router(config([[n] for n in nodes]))
        try:
            c = checker.Client(Loopback(), "app", r.port)
            for i in range(200):
                c.set(b"k%d" % i, b"v%d" % i)
            # No shard at all: refused, the running ring stays.
            r.reload("listen: 127.0.0.1:0\nshards: []\n")
            wait_for(lambda: int(r.stats()["reload_errors"]) == 1, 10, "the reload refused")
            check("non-empty list of shards" in r.stderr(), "the reason is logged: %s" %
                  r.stderr()[-500:])
            check(int(r.stats()["migration:active"]) == 0, "no migration")
            # Every shard renamed: every key moves; accepted with a warning naming the share,
            # and the keys are still found (on their previous owners).
            r.reload(config([[n] for n in nodes], names=["a", "b", "c"]))
            wait_for(lambda: int(r.stats()["reloads"]) == 1, 10, "the rename applied")
            st = r.stats()
            check(int(st["migration:active"]) == 1, "a migration window")
            check(int(st["migration:moved_permille"]) > 900,
                  "most keys move: %s permille" % st["migration:moved_permille"])
            err = r.stderr()
            check("of keys have a new owner" in err and "were shards renamed?" in err,
                  "the warning: %s" % err[-600:])
            missing = [i for i in range(200) if c.get(b"k%d" % i) != b"v%d" % i]
            check(missing == [], "keys still read after the rename: %s" % missing[:10])
        finally:
            r.stop()
    finally:
        stop_all(nodes)


if __name__ == "__main__":
    run([test_two_routers_reload_2s_apart, test_migration_interrupted_by_a_node_failure,
         test_bad_ring_changes])
