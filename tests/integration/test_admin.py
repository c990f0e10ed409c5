"""cacherouter's admin commands (router/admin.h) with real processes: drain / undrain keep a node
in the writes and out of the reads, route answers a key's shard and replicas in read order,
stats nodes / stats shards, the same through the native protocol, refusals (unknown node, the
last readable replica, a non-admin user), and the maintenance cycle of docs/kubernetes.md:
drain, restart the node empty, undrain, with the hit ratio held. Run with /usr/bin/python3."""
import os
import random
import time
import subprocess
import tempfile

from pymemcache.client.base import Client as PyClient

from harness import (ROUTER_BIN, SANITIZED, Router, Server, check, read_stats, router_config,
                     run, servers, stop_all, wait_for)
from native_client import NativeClient

SLOW = 3 if SANITIZED else 1


def py(port):
    return PyClient(("127.0.0.1", port), timeout=5 * SLOW, connect_timeout=5, no_delay=True)


def command(conn, line):
    """One admin line; the reply lines up to END, or the single line of OK / an error."""
    conn.send(line.encode() + b"\r\n")
    first = conn.line().decode()
    if not first.startswith("STAT "):
        return first
    lines = [first]
    while True:
        ln = conn.line().decode()
        if ln == "END":
            return lines
        lines.append(ln)


def stat_map(lines):
    out = {}
    for ln in lines:
        _, k, v = ln.split(" ", 2)
        out[k] = v
    return out


def test_drain_stops_reads_keeps_writes():
    nodes = servers(2)
    try:
        with Router(router_config([nodes], read_policy="round_robin")) as r:
            c = r.connect()
            addr = "127.0.0.1:%d" % nodes[1].port
            check(command(c, "drain " + addr) == "OK", "drain")
            sn = stat_map(command(c, "stats nodes"))
            check(sn["node:%s:drained" % addr] == "1" and sn["node:%s:readable" % addr] == "0",
                  "drained in stats nodes: %s" % sn)
            before = nodes[1].stats()
            cl = py(r.port)
            for i in range(300):
                cl.set("d%d" % i, b"v%d" % i, noreply=False)
            for i in range(300):
                check(cl.get("d%d" % i) == b"v%d" % i, "read through the router")
            after = nodes[1].stats()
            sn2 = stat_map(command(c, "stats nodes"))
            for k in ("get_hits", "get_misses"):
                check(sn2["node:%s:%s" % (addr, k)] == sn["node:%s:%s" % (addr, k)],
                      "the router read the drained node: %s" % k)
            # (the node's own count has only the router's hint polls, not 300 / 2 client reads)
            check(int(after["cmd_get"]) - int(before["cmd_get"]) < 30,
                  "the drained node got %d reads" % (int(after["cmd_get"]) -
                                                     int(before["cmd_get"])))
            check(int(after["cmd_set"]) - int(before["cmd_set"]) >= 300,
                  "the drained node still takes every write")
            # In sync: every value is on it.
            d = nodes[1].connect()
            for i in range(0, 300, 37):
                check(d.get(b"d%d" % i) == b"v%d" % i, "drained node has the write")
            check(command(c, "undrain " + addr) == "OK", "undrain")
            for i in range(300):
                cl.get("d%d" % i)
            check(int(nodes[1].stats()["cmd_get"]) > int(after["cmd_get"]),
                  "reads again after undrain")
            # Refusals: unknown node, the last readable replica, bad syntax; nothing changes.
            check(command(c, "drain 127.0.0.1:1").startswith("CLIENT_ERROR no node"), "unknown")
            check(command(c, "drain " + addr) == "OK", "drain one")
            other = "127.0.0.1:%d" % nodes[0].port
            reply = command(c, "drain " + other)
            check(reply.startswith("CLIENT_ERROR draining %s would leave shard s0" % other),
                  reply)
            check(command(c, "drain") == "ERROR", "drain without an address")
            check(command(c, "undrain " + addr) == "OK", "undrain")
            check(command(c, "undrain " + addr) == "OK", "undrain twice is fine")
            # cacheserver does not know these (as memcached).
            d.send(b"drain 1.2.3.4:5\r\n")
            check(d.line() == b"ERROR", "cacheserver answers ERROR")
    finally:
        stop_all(nodes)


def test_route_and_stats_shards():
    nodes = servers(3)
    try:
        cfg = router_config([[nodes[0], nodes[1]], [nodes[2]]], read_policy="primary")
        with Router(cfg) as r:
            c = r.connect()
            # A key of shard s0 (by the router's own answer), its replicas in primary order.
            for i in range(200):
                key = "k%d" % i
                route = stat_map(command(c, "route " + key))
                if route["shard"] == "s0":
                    break
            check(route["key"] == key, "route names the key")
            a0, a1 = ("127.0.0.1:%d" % n.port for n in nodes[:2])
            check(route["replica:0"] == a0 + " up" and route["replica:1"] == a1 + " up",
                  "read order: %s" % route)
            check(command(c, "drain " + a0) == "OK", "drain")
            route = stat_map(command(c, "route " + key))
            check(route["replica:0"] == a1 + " up", "drained one last: %s" % route)
            check(route["replica:1"] == a0 + " up,drained (no reads)", "%s" % route)
            # The key goes where route said: set through the router, the s0 nodes have it.
            py(r.port).set(key, b"x", noreply=False)
            check(nodes[0].connect().get(key.encode()) == b"x", "on s0's first replica")
            check(nodes[2].connect().get(key.encode()) is None, "not on s1")
            sh = stat_map(command(c, "stats shards"))
            check(sh["shard:s0:replicas"] == "2" and sh["shard:s0:readable"] == "1", "%s" % sh)
            check(sh["shard:s1:replicas"] == "1" and sh["shard:s1:readable"] == "1", "%s" % sh)
            check(command(c, "route " + "x" * 300) == "CLIENT_ERROR bad command line format",
                  "a key too long")
            # Through the native protocol: the same text in the reply's value.
            n = NativeClient(r.port)
            st, rep = n.call("admin", value=b"route " + key.encode())
            check(st == "OK" and b"STAT shard s0" in rep["value"], "native route: %s %s" % (
                st, rep))
            st, rep = n.call("admin", value=b"undrain " + a0.encode())
            check(st == "OK" and rep["value"] == b"OK\r\n", "native undrain: %s" % rep)
            st, rep = n.call("admin", value=b"drain 127.0.0.1:1")
            check(st == "BAD_REQUEST" and b"no node" in rep["message"], "native refusal")
            st, rep = n.call("admin", value=b"frobnicate")
            check(st == "BAD_REQUEST", "unknown admin command")
            st, rep = n.call("admin", value=b"stats nodes")
            check(st == "OK" and (b"node:%s:readable 1" % a0.encode()) in rep["value"],
                  "undrained: %s" % rep)
            # A node answers the native admin op UNKNOWN_OP.
            st, _ = NativeClient(nodes[0].port).call("admin", value=b"stats nodes")
            check(st == "UNKNOWN_OP", "cacheserver: %s" % st)
    finally:
        stop_all(nodes)


def test_admin_needs_an_admin_user():
    nodes = servers(2)
    users = tempfile.NamedTemporaryFile(mode="w", suffix=".auth", delete=False)
    users.write("ops:opspass\napp:apppass\n")
    users.close()
    try:
        cfg = router_config([nodes], auth_file=users.name, admin_users="[ops]")
        with Router(cfg) as r:
            addr = "127.0.0.1:%d" % nodes[1].port
            c = r.connect()
            c.send(b"drain %s\r\n" % addr.encode())
            check(c.line() == b"CLIENT_ERROR unauthenticated", "before auth")
            c.send(b"set a 0 0 11\r\napp apppass\r\n")
            check(c.line() == b"STORED", "app logs in")
            check(command(c, "drain " + addr) == "CLIENT_ERROR admin commands need an admin user",
                  "app is no admin")
            check(command(c, "stats nodes").startswith("CLIENT_ERROR admin"), "stats nodes too")
            check(read_stats(c)["curr_connections"] != "", "plain stats still work for app")
            o = r.connect()
            o.send(b"set a 0 0 11\r\nops opspass\r\n")
            check(o.line() == b"STORED", "ops logs in")
            check(command(o, "drain " + addr) == "OK", "ops drains")
            n = NativeClient(r.port)
            st, _ = n.call("hello", proto_version=1, user=b"app", password=b"apppass")
            check(st == "OK", "native login")
            st, rep = n.call("admin", value=b"undrain " + addr.encode())
            check(st == "UNAUTHENTICATED", "native app is no admin: %s" % st)
            n = NativeClient(r.port)
            n.call("hello", proto_version=1, user=b"ops", password=b"opspass")
            st, rep = n.call("admin", value=b"undrain " + addr.encode())
            check(st == "OK", "native ops undrains: %s %s" % (st, rep))
        # admin_users without auth_file is a config error.
        path = tempfile.NamedTemporaryFile(mode="w", suffix=".yaml", delete=False)
        path.write(router_config([nodes], admin_users="[ops]"))
        path.close()
        p = subprocess.run([ROUTER_BIN, "-c", path.name, "--check-config"], capture_output=True,
                           text=True, timeout=30)
        os.unlink(path.name)
        check(p.returncode != 0 and "admin_users: needs auth_file" in p.stderr, p.stderr)
    finally:
        os.unlink(users.name)
        stop_all(nodes)


def test_maintenance_cycle_keeps_the_hit_ratio():
    """drain, restart the node (empty), undrain: reads never miss because of it."""
    nodes = servers(2)
    try:
        cfg = router_config([nodes], read_policy="round_robin", warmup_ms=60000)
        with Router(cfg) as r:
            c = py(r.port)
            admin = r.connect()
            keys = ["m%d" % i for i in range(1000)]
            c.set_many({k: b"v" for k in keys}, noreply=False)
            rnd = random.Random(7)

            def hit_ratio(n):
                return sum(1 for _ in range(n) if c.get(rnd.choice(keys)) is not None) / n

            before = hit_ratio(500)
            port = nodes[1].port
            addr = "127.0.0.1:%d" % port
            check(command(admin, "drain " + addr) == "OK", "drain")
            nodes[1].stop()
            drained = hit_ratio(500)
            nodes[1] = Server("-t", "1", port=port)  # back, empty

            def reconnected():
                st = stat_map(command(admin, "stats nodes"))
                return st["node:%s:state" % addr] == "up" and st["node:%s:warming" % addr] == "1"

            wait_for(reconnected, 10 * SLOW, "the restarted node reconnected and warming")
            check(command(admin, "undrain " + addr) == "OK", "undrain")
            # Reads until the restarted node has served some (a busy machine can leave it
            # syncing for a while after it reconnected: it serves no read until then).
            ratios = []
            deadline = time.time() + 30 * SLOW
            while True:
                ratios.append(hit_ratio(500))
                st = stat_map(command(admin, "stats nodes"))
                if (int(st["node:%s:backfills" % addr]) > 0 and len(ratios) >= 4) or \
                        time.time() > deadline:
                    break
            after = sum(ratios) / len(ratios)
            print("  %d batches of 500 reads after undrain" % len(ratios))
            print("  hit ratio %.3f before, %.3f drained, %.3f after undrain; %s back-fills" % (
                before, drained, after, st["node:%s:backfills" % addr]))
            check(before == 1.0 and drained == 1.0, "no miss while drained")
            check(after >= 0.99, "hit ratio %.3f after undrain" % after)
            check(int(st["node:%s:get_misses" % addr]) > 0, "the empty node was read (and missed)")
            check(int(st["node:%s:backfills" % addr]) > 0, "and back-filled from its sibling")
    finally:
        stop_all(nodes)


if __name__ == "__main__":
    run([test_drain_stops_reads_keeps_writes, test_route_and_stats_shards,
         test_admin_needs_an_admin_user, test_maintenance_cycle_keeps_the_hit_ratio])
