"""cacherouter's RESP front end: Redis clients through the router over 2 shards x 2 replicas of
cacheserver. Keys route by the ring (each key lands on its shard's nodes, read back over
RESP from the nodes directly); MGET, MSET, DEL, EXISTS and TOUCH over several keys
are split by shard and merged in order; a replica killed with -9 fails over with 0 errors;
commands that read and then write go through the cas route (atomic, on every replica);
cross-shard MSETNX gets an error naming it; redis-cli and
redis-benchmark run through it. Processes are started here on ephemeral loopback ports and
stopped by pid. Run with /usr/bin/python3."""
import re
import subprocess

import redis

from harness import Router, Server, check, router_config, run
from resp_client import Conn


def node_get(node, key):
    """The key's value on one node, read directly (over RESP: one store with memcache text)."""
    c = Conn(node.port)
    got = c.call("GET", key)
    c.close()
    return None if got == b"$-1\r\n" else got


def tier(backend="native"):
    nodes = [Server("-t", "1") for _ in range(4)]
    shards = [[nodes[0], nodes[1]], [nodes[2], nodes[3]]]
    router = Router(router_config(shards, backend_protocol=backend))
    return nodes, router


def stop_all(nodes, router):
    router.stop()
    for n in nodes:
        n.stop()


def test_routing_and_multi_key():
    nodes, router = tier()
    try:
        r = redis.Redis(host="127.0.0.1", port=router.port, socket_timeout=10)
        keys = ["key:%d" % i for i in range(40)]
        check(r.mset({k: "v-" + k for k in keys}) is True, "MSET of 40 keys across shards")
        on = [[node_get(n, k) is not None for n in nodes] for k in keys]
        per_shard = [sum(1 for o in on if o[0] and o[1]), sum(1 for o in on if o[2] and o[3])]
        check(per_shard[0] + per_shard[1] == 40 and min(per_shard) > 5,
              "each key on both replicas of one shard: %r" % per_shard)
        check(all(not (o[0] and o[2]) for o in on), "no key on both shards")
        got = r.mget(keys + ["nope"])
        check(got == [("v-" + k).encode() for k in keys] + [None], "MGET merged in order")
        check(r.exists(*keys, "nope", keys[0]) == 41, "EXISTS across shards counts repeats")
        check(r.touch(*keys[:10]) == 10, "TOUCH")
        check(r.delete(*keys[:20], "nope") == 20, "DEL across shards")
        check(r.exists(*keys[:20]) == 0, "deleted")
        check(all(node_get(n, k) is None for n in nodes for k in keys[:20]),
              "deleted on every replica")
        check(r.set("s", "1") and r.get("s") == b"1", "SET/GET")
        check(r.set("s", "2", nx=True) is None and r.set("s", "3", xx=True), "SET NX/XX")
        check(r.set("t", "v", ex=100) and 98 <= r.ttl("t") <= 100, "SET EX, TTL: %r" % r.ttl("t"))
        check(97000 <= r.pttl("t") <= 100000, "PTTL")
        check(r.expire("t", 500) and 498 <= r.ttl("t") <= 500, "EXPIRE")
        check(r.expire("nope", 5) is False, "EXPIRE of a missing key")
        check(r.expire("t", -1) is True and r.get("t") is None, "EXPIRE in the past deletes")
        check(r.setnx("n", "1") is True and r.setnx("n", "1") is False, "SETNX")
        check(r.setex("e", 60, "v") and r.psetex("p", 60000, "v"), "SETEX, PSETEX")
        check(r.incr("c") == 1 and r.incrby("c", 9) == 10 and r.decr("c") == 9, "INCR family")
        # Concurrent INCRs from two clients through one router: none lost (compare-and-swap).
        r2 = redis.Redis(host="127.0.0.1", port=router.port, socket_timeout=10)
        p1, p2 = r.pipeline(transaction=False), r2.pipeline(transaction=False)
        for _ in range(200):
            p1.incr("race")
            p2.incr("race")
        p1.execute()
        p2.execute()
        check(r.get("race") == b"400", "400 concurrent INCRs: %r" % r.get("race"))
        r2.close()
        check(r.decrby("c", 4) == 5, "DECRBY")
        check(r.append("a", "xy") == 2 and r.append("a", "z") == 3, "APPEND")
        check(r.strlen("a") == 3 and r.getrange("a", 0, 1) == b"xy", "STRLEN, GETRANGE")
        check(r.type("a") == b"string" and r.type("zz") == b"none", "TYPE")
        check(r.msetnx({"only": "1"}) is True, "MSETNX of one key")
        # Read-then-write commands: the primary's value and CAS, then the cas route.
        check(r.getset("g", "1") is None and r.getset("g", "2") == b"1", "GETSET")
        check(r.set("g", "3", get=True) == b"2", "SET GET")
        check(r.set("kt", "v", ex=300) and r.set("kt", "w", keepttl=True) and
              295 <= r.ttl("kt") <= 300, "SET KEEPTTL keeps the TTL")
        check(r.getex("kt", persist=True) == b"w" and r.ttl("kt") == -1, "GETEX PERSIST")
        check(r.getex("kt", ex=50) == b"w" and 48 <= r.ttl("kt") <= 50, "GETEX EX")
        check(r.persist("kt") is True and r.ttl("kt") == -1 and r.persist("kt") is False,
              "PERSIST")
        check(r.expire("kt", 100, nx=True) is True and r.expire("kt", 50, gt=True) is False and
              r.expire("kt", 200, gt=True) is True and r.expire("kt", 80, lt=True) is True,
              "EXPIRE NX/GT/LT")
        check(r.getdel("g") == b"3" and r.get("g") is None and r.getdel("g") is None, "GETDEL")
        check(r.incrbyfloat("fl", 1.5) == 1.5 and r.incrbyfloat("fl", "0.25") == 1.75,
              "INCRBYFLOAT")
        check(r.set("neg", -5) and r.decrby("neg", 10) == -15 and r.incr("neg") == -14,
              "counters are signed, as in Redis")
        check(r.setrange("sr", 3, "x") == 4 and r.get("sr") == b"\x00\x00\x00x", "SETRANGE")
        # The same change reached every replica of the key's shard.
        on = [node_get(n, "sr") for n in nodes]
        check(sorted(x for x in on if x is not None) == [b"$4\r\n\x00\x00\x00x\r\n"] * 2,
              "SETRANGE on both replicas: %r" % on)
        for f, text in [(lambda: r.msetnx({"x1": "1", "x2": "2"}), "cannot be atomic"),
                        (lambda: r.execute_command("LPUSH", "l", "1"), "unknown command 'LPUSH'"),
                        (lambda: r.incr("a"), "value is not an integer"),
                        (lambda: r.execute_command("DBSIZE"), "answered by each cacheserver")]:
            try:
                f()
                raise AssertionError("no error for %r" % text)
            except redis.exceptions.ResponseError as e:
                check(text in str(e), "%r in %r" % (text, str(e)))
        p = r.pipeline(transaction=False)
        for i in range(300):
            p.set("pipe:%d" % i, i)
        for i in range(300):
            p.get("pipe:%d" % i)
        out = p.execute()
        check(out[300:] == [str(i).encode() for i in range(300)], "a pipeline in order")
        c = Conn(router.port)
        check(c.call("HELLO", "3").startswith(b"%7\r\n"), "HELLO 3 through the router")
        check(c.call("GET", "nope") == b"_\r\n" and c.call("MGET", "nope") == b"*1\r\n_\r\n",
              "RESP3 nulls")
        c.send_raw(b"*1\r\n$-3\r\n")
        check(c.read_until_close() == b"-ERR Protocol error: invalid bulk length\r\n",
              "a protocol error closes that connection")
        c.close()
        check(r.ping() and r.get("s") == b"3", "other clients undisturbed")
        check(r.flushall() is True and r.get("s") is None, "FLUSHALL broadcast")
        r.close()
    finally:
        stop_all(nodes, router)


def test_failover():
    nodes, router = tier()
    try:
        r = redis.Redis(host="127.0.0.1", port=router.port, socket_timeout=10)
        keys = ["f:%d" % i for i in range(200)]
        r.mset({k: k for k in keys})
        nodes[0].kill9()
        nodes[2].kill9()
        errors = 0
        for k in keys:
            try:
                if r.get(k) != k.encode():
                    errors += 1
            except redis.exceptions.RedisError:
                errors += 1
        check(errors == 0, "reads fail over to the live replicas: %d errors" % errors)
        check(r.set("after", "1") and r.get("after") == b"1", "writes go on")
        r.close()
    finally:
        stop_all(nodes, router)


def test_read_then_write_races():
    """DECR (a read and a compare-and-swap) from 6 pipelining clients through a 2-thread router:
    no decrement lost, no error (lost races read again)."""
    import threading
    nodes = [Server("-t", "1") for _ in range(2)]
    router = Router(router_config([nodes], threads=2))
    try:
        errors = []

        def work():
            c = redis.Redis(host="127.0.0.1", port=router.port, socket_timeout=30)
            for _ in range(10):
                p = c.pipeline(transaction=False)
                for _ in range(50):
                    p.decr("d")
                try:
                    p.execute()
                except redis.exceptions.RedisError as e:
                    errors.append(str(e))
            c.close()

        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        r = redis.Redis(host="127.0.0.1", port=router.port, socket_timeout=10)
        got = r.get("d")
        r.close()
        check(not errors, "errors: %r" % errors[:2])
        check(got == b"-3000", "3000 concurrent DECRs: %r" % got)
        check(all(node_get(n, "d") == b"$5\r\n-3000\r\n" for n in nodes), "on both replicas")
    finally:
        stop_all(nodes, router)


def test_redis_tools_through_router():
    nodes, router = tier()
    try:
        port = str(router.port)
        out = subprocess.run(["redis-cli", "-p", port], input="SET a 1\nINCR a\nGET a\n",
                             capture_output=True, text=True, timeout=30).stdout.split()
        check(out == ["OK", "2", "2"], "redis-cli through the router: %r" % out)
        for pipeline in ("1", "16"):
            res = subprocess.run(["redis-benchmark", "-p", port, "-t", "set,get,incr,mset",
                                  "-n", "20000", "-c", "20", "-P", pipeline, "-q"],
                                 capture_output=True, text=True, timeout=120)
            text = res.stdout + res.stderr
            print("-P %s: %s" % (pipeline, re.findall(r"(\w[\w ()]*): ([\d.]+) requests", text)))
            for t in ("SET", "GET", "INCR", "MSET (10 keys)"):
                m = re.search(re.escape(t) + r": ([\d.]+) requests per second", text)
                check(m and float(m.group(1)) > 0, "redis-benchmark %s: %r" % (t, text))
    finally:
        stop_all(nodes, router)


if __name__ == "__main__":
    run([test_routing_and_multi_key, test_failover, test_read_then_write_races,
         test_redis_tools_through_router])
