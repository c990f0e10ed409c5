"""Real Redis clients against cacheserver's RESP: Debian's python3-redis (every supported
command, pipelines, RESP2 and RESP3, expiry with the node's test clock), redis-cli (commands
on its command line and on stdin, --pipe mass insertion, INFO, -3) and redis-benchmark
(-t set,get,incr,mset,lpush, -P 16). One store with memcache text (pymemcache). Limits and bad
input: a clear error, and only the offending connection closes. Servers are started here on
ephemeral loopback ports and stopped by pid. Run with /usr/bin/python3."""
import os
import re
import socket
import subprocess
import tempfile
import time

import redis
from pymemcache.client.base import Client as Memcache

from harness import Server, check, run
from resp_client import Conn


def resp_port(node):
    return int(re.search(r"resp port (\d+)", node.banner).group(1))


def client(node, **kw):
    return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=10, **kw)


def test_redis_py_commands():
    with Server("-t", "2", "--debug-clock") as node:
        r = client(node)
        check(r.ping() is True, "PING")
        check(r.echo("hi") == b"hi", "ECHO")
        check(r.set("k", "v") is True and r.get("k") == b"v", "SET/GET")
        check(r.get("missing") is None, "GET miss is None")
        check(r.set("k", "w", nx=True) is None, "SET NX on an existing key")
        check(r.set("k", "w", xx=True) is True and r.get("k") == b"w", "SET XX")
        check(r.set("k", "x", get=True) == b"w", "SET GET returns the old value")
        check(r.set("t", "1", ex=100) and 99 <= r.ttl("t") <= 100, "SET EX and TTL")
        check(r.set("t", "2", keepttl=True) and r.ttl("t") > 0, "SET KEEPTTL keeps it")
        check(r.set("t", "3") and r.ttl("t") == -1, "a plain SET clears the TTL")
        check(r.set("t", "4", px=100500) and 99000 <= r.pttl("t") <= 101500, "SET PX and PTTL")
        at = int(time.time()) + 500
        check(r.set("t", "5", exat=at) and r.execute_command("EXPIRETIME", "t") == at,
              "SET EXAT and EXPIRETIME")
        check(r.set("t", "6", pxat=at * 1000) and
              r.execute_command("PEXPIRETIME", "t") == at * 1000, "SET PXAT and PEXPIRETIME")
        check(r.setnx("n", "1") is True and r.setnx("n", "2") is False, "SETNX")
        check(r.setex("e", 50, "v") and 49 <= r.ttl("e") <= 50, "SETEX")
        check(r.psetex("e", 50000, "v") and 48000 <= r.pttl("e") <= 51000, "PSETEX")
        check(r.getset("g", "1") is None and r.getset("g", "2") == b"1", "GETSET")
        check(r.getex("g", ex=70) == b"2" and 69 <= r.ttl("g") <= 70, "GETEX EX")
        check(r.getex("g", persist=True) == b"2" and r.ttl("g") == -1, "GETEX PERSIST")
        check(r.getdel("g") == b"2" and r.get("g") is None, "GETDEL")
        check(r.mset({"a": "1", "b": "2"}) is True, "MSET")
        check(r.mget("a", "nope", "b") == [b"1", None, b"2"], "MGET")
        check(r.msetnx({"a": "9", "c": "3"}) is False and r.get("c") is None, "MSETNX refused")
        check(r.msetnx({"c": "3", "d": "4"}) is True, "MSETNX")
        check(r.exists("a", "b", "zz", "a") == 3, "EXISTS counts repeats")
        check(r.touch("a", "zz") == 1, "TOUCH")
        check(r.delete("a", "zz") == 1 and r.unlink("b") == 1, "DEL, UNLINK")
        check(r.expire("c", 100) is True and r.expire("zz", 100) is False, "EXPIRE")
        check(r.expire("c", 50, gt=True) is False and r.expire("c", 200, gt=True) is True,
              "EXPIRE GT")
        check(r.expire("c", 300, lt=True) is False and r.expire("c", 150, lt=True) is True,
              "EXPIRE LT")
        check(r.expire("c", 10, nx=True) is False and r.expire("c", 10, xx=True) is True,
              "EXPIRE NX/XX")
        check(r.pexpire("c", 80000) and 78000 <= r.pttl("c") <= 81000, "PEXPIRE")
        check(r.expireat("c", at) and r.execute_command("EXPIRETIME", "c") == at, "EXPIREAT")
        check(r.pexpireat("c", at * 1000) and r.ttl("c") > 0, "PEXPIREAT")
        check(r.persist("c") is True and r.ttl("c") == -1 and r.persist("c") is False, "PERSIST")
        check(r.ttl("zz") == -2 and r.pttl("zz") == -2, "TTL of a missing key is -2")
        check(r.expire("d", -1) is True and r.exists("d") == 0, "EXPIRE in the past deletes")
        check(r.incr("i") == 1 and r.incrby("i", 10) == 11, "INCR, INCRBY")
        check(r.decr("i") == 10 and r.decrby("i", 4) == 6, "DECR, DECRBY")
        check(r.incrbyfloat("f", 1.5) == 1.5 and r.incrbyfloat("f", "0.25") == 1.75, "INCRBYFLOAT")
        check(r.append("s", "ab") == 2 and r.append("s", "cd") == 4, "APPEND")
        check(r.strlen("s") == 4 and r.strlen("zz") == 0, "STRLEN")
        check(r.getrange("s", 1, -2) == b"bc" and r.getrange("zz", 0, -1) == b"", "GETRANGE")
        check(r.setrange("s", 6, "x") == 7 and r.get("s") == b"abcd\x00\x00x", "SETRANGE pads")
        check(r.type("s") == b"string" and r.type("zz") == b"none", "TYPE")
        check(r.execute_command("SELECT", 0) in (True, b"OK"), "SELECT 0")
        expect_error(lambda: r.execute_command("SELECT", 1), "DB index is out of range")
        check(r.dbsize() >= 5, "DBSIZE")
        info = r.info()
        check(info["redis_version"] and "connected_clients" in info and "used_memory" in info,
              "INFO has Redis's field names")
        check("keyspace_hits" in r.info("stats"), "INFO stats")
        check(r.client_setname("me") and r.client_getname() == "me", "CLIENT SETNAME/GETNAME")
        check(isinstance(r.client_id(), int), "CLIENT ID")
        check(r.client_info()["name"] == "me", "CLIENT INFO")
        check(r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == b"OK",
              "CLIENT SETINFO")
        check(r.command_count() > 40, "COMMAND COUNT")
        info = r.execute_command("COMMAND", "INFO", "get")
        check("get" in info and info["get"]["arity"] == 2, "COMMAND INFO: %r" % info)
        # (redis-py 4.3 parses every COMMAND reply as COMMAND INFO's: DOCS is read raw.)
        raw = Conn(node.port)
        docs = raw.call("COMMAND", "DOCS", "get")
        check(docs.startswith(b"*2\r\n$3\r\nget\r\n") and b"summary" in docs,
              "COMMAND DOCS: %r" % docs)
        raw.close()
        check(r.config_get("maxmemory")["maxmemory"].isdigit(), "CONFIG GET")
        check(r.execute_command("RESET") in (b"RESET", "RESET"), "RESET")
        expect_error(lambda: r.execute_command("LPUSH", "l", "x"), "unknown command 'LPUSH'")
        expect_error(lambda: r.incr("s"), "value is not an integer or out of range")
        expect_error(lambda: r.execute_command("GET"), "wrong number of arguments for 'get'")
        expect_error(lambda: r.set("k", "v", ex=0), "invalid expire time in 'set' command")
        expect_error(lambda: r.auth("pw"), "AUTH <password> called without any password")

        # Pipelines (not transactions: MULTI is not supported).
        p = r.pipeline(transaction=False)
        for i in range(200):
            p.set("p%d" % i, i)
            p.incr("p%d" % i)
        p.mget(["p%d" % i for i in range(200)])
        out = p.execute()
        check(out[-1] == [str(i + 1).encode() for i in range(200)], "a pipeline of 401")

        # Expiry with the node's test clock: no sleeping.
        r.set("x1", "v", ex=100)
        r.set("x2", "v", px=3000)
        r.set("x3", "v", ex=100)
        r.persist("x3")
        r.execute_command("DEBUG", "ADVANCE-CLOCK", 50)
        check(r.ttl("x1") in (49, 50), "TTL counts down with the clock: %r" % r.ttl("x1"))
        check(r.get("x2") is None and r.exists("x2") == 0, "PX 3000 expired after 50 s")
        r.execute_command("DEBUG", "ADVANCE-CLOCK", 51)
        check(r.get("x1") is None and r.ttl("x1") == -2, "EX 100 expired after 101 s")
        check(r.get("x3") == b"v", "PERSIST keeps it")
        r.set("x4", "v", exat=int(time.time()) + 80)  # the node's clock is 101 s ahead
        check(r.get("x4") is None, "an EXAT before the node's now is expired at once")
        r.set("x5", "v5")
        n = r.dbsize()
        check(r.getex("x5", exat=1) == b"v5" and r.dbsize() == n - 1,
              "GETEX with a time past returns the value and deletes the key at once")

        check(r.flushdb() is True and r.dbsize() == 0, "FLUSHDB")
        check(r.flushall(asynchronous=True) is True, "FLUSHALL ASYNC")
        r.close()


def expect_error(f, text):
    try:
        f()
    except redis.exceptions.ResponseError as e:
        check(text in str(e), "error %r has %r" % (str(e), text))
        return
    raise AssertionError("no error (wanted %r)" % text)


def test_resp3():
    with Server("-t", "1") as node:
        c = Conn(node.port)
        hello = c.call("HELLO", "3")
        check(hello.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "HELLO 3 map: %r" % hello)
        check(c.call("GET", "none") == b"_\r\n", "RESP3 null")
        c.call("SET", "a", "1")
        check(c.call("MGET", "a", "none") == b"*2\r\n$1\r\n1\r\n_\r\n", "RESP3 MGET")
        check(c.call("CONFIG", "GET", "save").startswith(b"%1\r\n"), "RESP3 map for CONFIG GET")
        check(c.call("INFO", "server").startswith(b"="), "RESP3 verbatim INFO")
        check(c.call("HELLO", "4") == b"-NOPROTO unsupported protocol version\r\n", "HELLO 4")
        check(c.call("HELLO", "2").startswith(b"*14\r\n"), "back to RESP2")
        check(c.call("GET", "none") == b"$-1\r\n", "RESP2 null again")
        c.close()
        # redis-cli -3 speaks RESP3 from the start.
        out = subprocess.run(["redis-cli", "-3", "-p", str(node.port), "GET", "none"],
                             capture_output=True, text=True, timeout=20)
        check(out.returncode == 0 and "(nil)" in out.stdout or out.stdout.strip() == "",
              "redis-cli -3: %r" % out.stdout)


def test_one_store_with_memcache():
    with Server("-t", "2") as node:
        r = client(node)
        mc = Memcache(("127.0.0.1", node.port), timeout=10, default_noreply=False)
        mc.set("from_mc", b"hello", expire=100)
        check(r.get("from_mc") == b"hello", "a memcache write reads over RESP")
        check(95 <= r.ttl("from_mc") <= 100, "its TTL reads over RESP: %r" % r.ttl("from_mc"))
        r.set("from_redis", "world", ex=200)
        check(mc.get("from_redis") == b"world", "a RESP write reads over memcache text")
        r.set("num", 41)
        check(mc.incr("num", 1) == 42 and r.get("num") == b"42", "memcache incr on a RESP number")
        check(r.incr("num") == 43 and mc.get("num") == b"43", "RESP INCR on the same key")
        gets = mc.gets("num")
        r.set("num", 7)
        check(mc.cas("num", b"8", gets[1]) is False, "a RESP write changes the CAS unique")
        mc.delete("from_redis")
        check(r.exists("from_redis") == 0, "a memcache delete reads over RESP")
        mc.close()
        r.close()


def test_redis_cli():
    with Server("-t", "2", "--resp-port", "0") as node:
        port = str(node.port)
        out = subprocess.run(["redis-cli", "-p", port, "SET", "cli", "1"], capture_output=True,
                             text=True, timeout=20).stdout
        check(out.strip() == "OK", "redis-cli SET: %r" % out)
        script = "INCR cli\nGET cli\nEXPIRE cli 100\nTTL cli\nNOSUCH a\nMGET cli nope\n"
        out = subprocess.run(["redis-cli", "-p", port], input=script, capture_output=True,
                             text=True, timeout=20).stdout.splitlines()
        check(out[0] == "2" and out[1] == "2" and out[2] == "1" and out[3] in ("99", "100"),
              "redis-cli commands on stdin: %r" % out)
        check("unknown command 'NOSUCH'" in out[4], "unknown command: %r" % out[4])
        # (redis-cli prints a blank line after an error, as it does with redis-server)
        check(out[5:8] == ["", "2", ""], "MGET with a miss: %r" % out[5:])
        # --pipe: mass insertion in RESP, counted by the tool.
        with tempfile.NamedTemporaryFile("wb", delete=False) as f:
            for i in range(20000):
                k, v = b"mass:%d" % i, b"value-%d" % i
                f.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
            path = f.name
        with open(path, "rb") as f:
            res = subprocess.run(["redis-cli", "-p", port, "--pipe"], stdin=f,
                                 capture_output=True, text=True, timeout=60)
        os.unlink(path)
        check("errors: 0, replies: 20000" in res.stdout, "redis-cli --pipe: %r" % res.stdout)
        out = subprocess.run(["redis-cli", "-p", port, "GET", "mass:19999"], capture_output=True,
                             text=True, timeout=20).stdout
        check(out.strip() == "value-19999", "mass insertion landed")
        out = subprocess.run(["redis-cli", "-p", port, "INFO", "keyspace"], capture_output=True,
                             text=True, timeout=20).stdout
        check(re.search(r"db0:keys=(\d+)", out) and
              int(re.search(r"db0:keys=(\d+)", out).group(1)) >= 20001, "INFO keyspace: %r" % out)
        out = subprocess.run(["redis-cli", "-p", port, "INFO"], capture_output=True, text=True,
                             timeout=20).stdout
        for field in ("redis_version:", "tcp_port:" + port, "connected_clients:", "used_memory:",
                      "maxmemory:", "keyspace_hits:", "keyspace_misses:"):
            check(field in out, "INFO has %s" % field)
        # The RESP-only port takes inline commands from the first byte.
        s = socket.create_connection(("127.0.0.1", resp_port(node)), timeout=10)
        s.sendall(b"PING\r\nGET cli\r\n")
        time.sleep(0.2)
        got = s.recv(1000)
        check(got == b"+PONG\r\n$1\r\n2\r\n", "inline on --resp-port: %r" % got)
        s.close()


def test_redis_benchmark():
    with Server("-t", "2") as node:
        for pipeline in ("1", "16"):
            res = subprocess.run(["redis-benchmark", "-p", str(node.port), "-t",
                                  "set,get,incr,mset", "-n", "20000", "-P", pipeline, "-q"],
                                 capture_output=True, text=True, timeout=120)
            out = res.stdout + res.stderr
            print("-P %s: %s" % (pipeline, out.strip().splitlines()[-4:]))
            for t in ("SET", "GET", "INCR", "MSET (10 keys)"):
                m = re.search(re.escape(t) + r": ([\d.]+) requests per second", out)
                check(m and float(m.group(1)) > 0, "redis-benchmark %s ran: %r" % (t, out))
        # redis-benchmark stops at a server error, so an unsupported type runs on its own.
        res = subprocess.run(["redis-benchmark", "-p", str(node.port), "-t", "lpush", "-n",
                              "1000", "-P", "16", "-q"], capture_output=True, text=True,
                             timeout=60)
        out = res.stdout + res.stderr
        check("Error from server: ERR unknown command 'LPUSH', with args beginning with:" in out,
              "LPUSH gets a clean error: %r" % out)
        # The node still serves after the unsupported commands.
        r = client(node)
        check(r.ping() is True and r.dbsize() > 0, "still serving")
        r.close()


def test_bad_input_and_limits():
    with Server("-t", "2", "-I", "64k") as node:
        r = client(node)
        r.set("keep", "1")
        expect_error(lambda: r.set("big", "x" * (70 << 10)), "item size limit")
        expect_error(lambda: r.set("k" * 251, "v"), "longer than 250 bytes")
        expect_error(lambda: r.setrange("keep", 1 << 20, "x"), "item size limit")
        check(r.get("keep") == b"1", "the connection goes on after refused writes")
        # A protocol error closes that connection only.
        bad = Conn(node.port, timeout=5)
        bad.send_raw(b"*1\r\n$-7\r\n")
        got = bad.read_until_close()
        check(got == b"-ERR Protocol error: invalid bulk length\r\n", "protocol error: %r" % got)
        bad.close()
        big = Conn(node.port, timeout=5)
        big.send_raw(b"*1\r\n$" + b"9" * 70000)
        got = big.read_until_close()
        check(got == b"-ERR Protocol error: too big bulk count string\r\n", "limit: %r" % got)
        big.close()
        check(r.get("keep") == b"1" and r.ping(), "the other client is undisturbed")
        r.close()


def test_auth():
    with tempfile.NamedTemporaryFile("w", suffix=".auth", delete=False) as f:
        f.write("alice:secret\ndefault:pw\n")
        path = f.name
    try:
        with Server("-t", "1", "-Y", path) as node:
            c = Conn(node.port)
            check(c.call("GET", "a") == b"-NOAUTH Authentication required.\r\n", "NOAUTH")
            check(c.call("AUTH", "alice", "wrong").startswith(b"-WRONGPASS"), "WRONGPASS")
            check(c.call("AUTH", "alice", "secret") == b"+OK\r\n", "AUTH user pass")
            check(c.call("SET", "a", "1") == b"+OK\r\n", "then commands run")
            c.close()
            r = client(node, password="pw")
            check(r.get("a") == b"1", "redis-py with a password (the default user)")
            r.close()
            r = client(node, username="alice", password="secret", protocol=None) \
                if False else redis.Redis(host="127.0.0.1", port=node.port, username="alice",
                                          password="secret")
            check(r.get("a") == b"1", "redis-py with user and password")
            r.close()
            c = Conn(node.port)
            check(c.call("HELLO", "3", "AUTH", "alice", "secret").startswith(b"%7"),
                  "HELLO 3 AUTH")
            c.close()
            c = Conn(node.port)
            c.send_raw(b"*11\r\n")
            check(c.read_until_close().startswith(
                b"-ERR Protocol error: unauthenticated multibulk length"),
                "before AUTH, at most 10 arguments")
            c.close()
    finally:
        os.unlink(path)


if __name__ == "__main__":
    run([test_redis_py_commands, test_resp3, test_one_store_with_memcache, test_redis_cli,
         test_redis_benchmark, test_bad_input_and_limits, test_auth])
