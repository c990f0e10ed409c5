"""cacherouter's RESP front end: Redis clients through the router over 2 shards x 2 replicas of
cacheserver. Keys route by the ring (each key lands on its shard's nodes, read back over
RESP from the nodes directly); MGET, MSET, DEL, EXISTS and TOUCH over several keys
are split by shard and merged in order; a replica killed with -9 fails over with 0 errors;
commands that cannot be done through the router get errors naming them; redis-cli and
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
        check(r.decrby("c", 4) == 5, "DECRBY")
        check(r.append("a", "xy") == 2 and r.append("a", "z") == 3, "APPEND")
        check(r.strlen("a") == 3 and r.getrange("a", 0, 1) == b"xy", "STRLEN, GETRANGE")
        check(r.type("a") == b"string" and r.type("zz") == b"none", "TYPE")
        check(r.msetnx({"only": "1"}) is True, "MSETNX of one key")
        for f, text in [(lambda: r.msetnx({"x1": "1", "x2": "2"}), "cannot be atomic"),
                        (lambda: r.getset("a", "1"), "'getset' is not supported through"),
                        (lambda: r.set("a", "1", get=True), "not supported through cacherouter"),
                        (lambda: r.expire("a", 10, gt=True), "not supported through cacherouter"),
                        (lambda: r.execute_command("LPUSH", "l", "1"), "unknown command 'LPUSH'"),
                        (lambda: r.incr("a"), "value is not an integer")]:
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
    run([test_routing_and_multi_key, test_failover, test_redis_tools_through_router])
