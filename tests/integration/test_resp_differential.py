"""Differential test of RESP against redis-server: seeded random streams of the commands
cacheserver supports, with random arguments, valid and invalid, go to Debian's redis-server
and to cacheserver; every reply must match byte for byte. TTL-like replies (TTL, PTTL,
EXPIRETIME, PEXPIRETIME) may differ by what the clocks' precision allows: cacheserver keeps
expiry in whole seconds, rounded up, and at most 2^32-1 (2106). The same streams then go
through cacherouter over 2 shards x 2 replicas (without DBSIZE and multi-key MSETNX, and
without the values on which the nodes' memcached increment differs: docs/resp.md). Protocol errors are compared on fresh connections,
including that the server then closes. Both servers are started here on ephemeral loopback
ports and stopped by pid. Run with /usr/bin/python3."""
import os
import random
import subprocess
import sys
import time

from harness import Router, Server, check, free_port, router_config, run, wait_port
from resp_client import Conn, encode

OPS = int(os.environ.get("RESP_DIFFERENTIAL_OPS", "3000"))
SEEDS = (21, 22)


class RedisServer:
    def __init__(self, *extra):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--databases", "1", *extra],
            stdout=subprocess.DEVNULL)
        if not wait_port(self.port):
            self.proc.kill()
            raise RuntimeError("redis-server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


KEYS = ["k%d" % i for i in range(12)] + ["a b", "bin\x00\r\nkey", "x" * 200]


class Gen:
    def __init__(self, seed, router=False):
        self.r = random.Random(seed)
        # Through cacherouter: DBSIZE (each node answers its own) and MSETNX over several keys
        # (refused: not atomic across nodes) are left out, and so are the values on which the
        # nodes' memcached increment differs from Redis's (docs/resp.md): leading zeros or
        # spaces, and numbers at the edge of int64.
        self.router = router
        # Expiry amounts are never repeated, 10 s apart: GT and LT then compare the same way at
        # a second's precision as at a millisecond's.
        self.ttls = self.r.sample(range(200, 2000000, 10), 20000)

    def key(self):
        return self.r.choice(KEYS)

    def ttl(self):
        return self.ttls.pop()

    def value(self):
        r = self.r
        if self.router:
            return r.choice([
                lambda: str(r.randint(-100, 100)),
                lambda: str(r.randint(-2**40, 2**40)),
                lambda: r.choice(["0", "", "1e5", "3.5", "-2.25", "inf", "nan", "abc", "-0"]),
                lambda: "".join(r.choice("abc \r\n\x00\xff") for _ in range(r.randint(1, 12))),
                lambda: "v" * r.randint(1, 300),
                lambda: "%.3f" % r.uniform(-1000, 1000),
            ])()
        return r.choice([
            lambda: str(r.randint(-100, 100)),
            lambda: str(r.randint(-2**63, 2**63 - 1)),
            lambda: r.choice(["9223372036854775807", "-9223372036854775808", "010", " 1", "1 ",
                              "+5", "-0", "0", "", "1e5", "3.5", "-2.25", "inf", "nan", "0x10",
                              "1.0e1", "  2.5"]),
            lambda: "".join(r.choice("abc \r\n\x00\xff") for _ in range(r.randint(0, 12))),
            lambda: "v" * r.randint(1, 300),
            lambda: "%.3f" % r.uniform(-1000, 1000),
        ])()

    def integer(self):
        r = self.r
        if self.router:
            return r.choice([lambda: str(r.randint(-20, 20)), lambda: str(r.randint(-10**6, 10**6)),
                             lambda: r.choice(["abc", "", "1.5", "99999999999999999999", "+1",
                                               "007", " 3", "-9223372036854775808"])])()
        return r.choice([
            lambda: str(r.randint(-20, 20)),
            lambda: str(r.randint(-2**63, 2**63 - 1)),
            lambda: r.choice(["abc", "", "1.5", "99999999999999999999", "-9223372036854775808",
                              "9223372036854775807", "+1", "007", " 3"]),
        ])()

    def expire_arg(self, unit_ms, absolute, past=True):
        r = self.r
        x = r.random()
        if x < 0.08:
            return r.choice(["0", "-1", "-100", "abc", "", "1.5", "9223372036854775807",
                             "-9223372036854775808", "99999999999999999999"])
        if x < 0.12 and absolute and past:
            return str(r.randint(1, 1000000))  # in the past
        t = self.ttl()
        if absolute:
            t += int(time.time())
        return str(t * 1000 if unit_ms else t)

    def set_options(self):
        r = self.r
        opts = []
        for _ in range(r.choice([0, 0, 1, 1, 2, 3])):
            o = r.choice(["NX", "XX", "GET", "KEEPTTL", "EX", "PX", "EXAT", "PXAT", "nx", "ex",
                          "keepttl", "BOGUS", "px"])
            if o.upper() in ("EX", "PX", "EXAT", "PXAT"):
                opts.append(o)
                if r.random() < 0.95:
                    # SET with a time already past: redis-server keeps the key until its
                    # active expiry samples it, cacheserver until its reclaimer passes, so
                    # DBSIZE would depend on two timers (test_redis_clients covers the case).
                    opts.append(self.expire_arg(o.upper().startswith("P"), o.upper().endswith("AT"),
                                                past=False))
            else:
                opts.append(o)
        return opts

    def command(self):
        r, k = self.r, self.key
        choices = [
            (8, lambda: ["GET", k()]),
            (10, lambda: ["SET", k(), self.value()] + self.set_options()),
            (2, lambda: ["SETNX", k(), self.value()]),
            (2, lambda: ["SETEX", k(), self.expire_arg(False, False), self.value()]),
            (2, lambda: ["PSETEX", k(), self.expire_arg(True, False), self.value()]),
            (2, lambda: ["GETSET", k(), self.value()]),
            (3, lambda: ["GETEX", k()] + r.choice([[], ["PERSIST"], ["EX", self.expire_arg(False, False)],
                                                   ["PX", self.expire_arg(True, False)],
                                                   ["EXAT", self.expire_arg(False, True)],
                                                   ["PXAT", self.expire_arg(True, True)],
                                                   ["NX"], ["EX"], ["PERSIST", "EX", "100"]])),
            (2, lambda: ["GETDEL", k()]),
            (3, lambda: ["MGET"] + [k() for _ in range(r.randint(1, 5))]),
            (3, lambda: ["MSET"] + sum([[k(), self.value()] for _ in range(r.randint(1, 3))], [])
             + (["extra"] if r.random() < 0.1 else [])),
            (2, lambda: ["MSETNX"] + sum([[k(), self.value()]
                                          for _ in range(1 if self.router else r.randint(1, 3))],
                                         [])),
            (3, lambda: [r.choice(["DEL", "UNLINK"])] + [k() for _ in range(r.randint(1, 4))]),
            (3, lambda: ["EXISTS"] + [k() for _ in range(r.randint(1, 4))]),
            (2, lambda: ["TOUCH"] + [k() for _ in range(r.randint(1, 3))]),
            (6, lambda: [r.choice(["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])]),
            (4, lambda: [r.choice(["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"]), k()]),
            (2, lambda: ["PERSIST", k()]),
            (3, lambda: [r.choice(["INCR", "DECR"]), k()]),
            (3, lambda: [r.choice(["INCRBY", "DECRBY"]), k(), self.integer()]),
            (3, lambda: ["INCRBYFLOAT", k(), r.choice([self.value(), "%.2f" % r.uniform(-50, 50),
                                                       "1e308", "-1e308", "inf", "abc"])]),
            (3, lambda: ["APPEND", k(), self.value()]),
            (2, lambda: ["STRLEN", k()]),
            (3, lambda: ["GETRANGE", k(), self.integer(), self.integer()]),
            (2, lambda: ["SETRANGE", k(), r.choice([str(r.randint(0, 40)), "-1", "abc",
                                                    "536870912"]), self.value()]),
            (2, lambda: ["TYPE", k()]),
            (0 if self.router else 1, lambda: ["DBSIZE"]),
            (1, lambda: ["PING"] + r.choice([[], ["hi"], ["a", "b"]])),
            (1, lambda: ["ECHO", self.value()]),
            (1, lambda: ["SELECT", r.choice(["0", "1", "-1", "abc", "99999999999"])]),
            (1, lambda: [r.choice(["NOSUCH", "nosuch", "FOO\r\nBAR", "x" * 140]), k(), "a\r\nb", "y" * r.choice([1, 130])]),
            (2, lambda: [r.choice(["GET", "SET", "INCR", "TTL", "MGET", "EXPIRE", "GETRANGE",
                                   "SETEX", "ECHO", "STRLEN", "TYPE"] +
                                  ([] if self.router else ["DBSIZE"]))]
             + [k() for _ in range(r.choice([0, 4, 5]))]),
            (1, lambda: ["CLIENT", "SETNAME", r.choice(["good", "bad name", ""])]),
            (1, lambda: ["CLIENT", "GETNAME"]),
            (1, lambda: ["CLIENT", r.choice(["NOSUCH", "getname"]), "x"]),
            (1, lambda: ["FLUSHALL"] + r.choice([[], ["ASYNC"], ["SYNC"], ["BAD"], ["A", "B"]])),
            (1, lambda: ["AUTH", "pw"]),
        ]
        total = sum(w for w, _ in choices)
        x = r.uniform(0, total)
        for w, f in choices:
            x -= w
            if x <= 0:
                cmd = f()
                break
        if cmd[0] in ("EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"):
            ms = cmd[0].startswith("P")
            absolute = cmd[0].endswith("AT")
            cmd += [k(), self.expire_arg(ms, absolute)]
            cmd += r.choice([[], [], ["NX"], ["XX"], ["GT"], ["LT"], ["NX", "XX"], ["GT", "LT"],
                             ["XX", "GT"], ["BAD"]])
        if cmd[0] == "FLUSHALL" and r.random() < 0.7:
            cmd = ["PING"]  # flushes rarely, so keys build up
        return cmd


TIMED = {"TTL": 1, "PTTL": 1500, "EXPIRETIME": 1, "PEXPIRETIME": 1500}
CLAMP = 2**32 - 1


def close_enough(cmd, a, b, elapsed):
    name = cmd[0].upper()
    if name not in TIMED or not (a.startswith(b":") and b.startswith(b":")):
        return False
    x, y = int(a[1:-2]), int(b[1:-2])
    if x < 0 or y < 0:
        return x == y
    # cacheserver keeps an expiry past 2^32-1 s (2106) as that second (docs/resp.md).
    clamp = {"TTL": CLAMP - int(time.time()), "PTTL": (CLAMP - int(time.time())) * 1000,
             "EXPIRETIME": CLAMP, "PEXPIRETIME": CLAMP * 1000}[name]
    if x > clamp:
        x = clamp
    slack = TIMED[name] + (elapsed if name in ("TTL", "EXPIRETIME") else elapsed * 1000)
    return abs(x - y) <= slack


def run_stream(ref_port, port, seed, ops, resp3=False, router=False):
    gen = Gen(seed, router)
    a, b = Conn(ref_port), Conn(port)
    mismatches = []
    t0 = time.time()
    if resp3:
        ra, rb = a.call("HELLO", "3"), b.call("HELLO", "3")
        # The same map but for the client id.
        strip = lambda s: s.split(b"$2\r\nid\r\n")[0]  # noqa: E731
        if strip(ra) != strip(rb):
            mismatches.append((["HELLO", "3"], ra, rb))
    n = 0
    for i in range(ops):
        cmd = gen.command()
        inline = all(isinstance(x, str) and x and " " not in x and "\r" not in x and "\n" not in x
                     and "\x00" not in x and '"' not in x and "'" not in x for x in cmd) \
            and gen.r.random() < 0.1
        data = (" ".join(cmd) + "\r\n").encode() if inline else encode(*cmd)
        a.send_raw(data)
        b.send_raw(data)
        ra, rb = a.reply(), b.reply()
        n += 1
        if ra != rb and not close_enough(cmd, ra, rb, time.time() - t0 + 1):
            mismatches.append((cmd, ra, rb))
    a.close()
    b.close()
    return n, mismatches


PROTOCOL_CASES = [
    b"*abc\r\n",
    b"*-5\r\nPING\r\n",
    b"*2147483648\r\n",
    b"*1\r\n+PING\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$abc\r\n",
    b"*1\r\n$536870913\r\n",
    b"*1\r\n$" + b"9" * 70000 + b"\r\n",
    b"*" + b"1" * 70000,
    b"*2\r\n$3\r\nGET\r\n" + b"x" * 70000,
    b"SET \"a b\r\n",
    b"SET 'a\r\n",
    b"GET \"a\"b\r\n",
    b"a" * 70000,
    b"*0\r\n*1\r\n$4\r\nPING\r\n",
    b"\r\n\r\nPING\r\n",
    b"  ECHO \"x\\x41\\n\\ty\"  'it\\'s'\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n",
]


def protocol_case(ref_port, port, data):
    out = []
    for p in (ref_port, port):
        c = Conn(p, timeout=2)
        c.send_raw(data)
        if data.startswith(b"*0") or data.startswith(b"\r\n") or data.startswith(b"  ECHO") \
                or data.startswith(b"*-5"):
            # Complete requests: read the replies that come (nothing closes).
            time.sleep(0.2)
        out.append(c.read_until_close(limit=4096))
        c.close()
    return out


def router_stream(redis):
    """The same comparison through cacherouter over 2 shards x 2 replicas (a fresh
    redis-server database): the routes, versions and the cas route under RESP."""
    c = Conn(redis.port)
    check(c.call("FLUSHALL") == b"+OK\r\n", "redis-server flushed")
    c.close()
    nodes = [Server("-t", "1") for _ in range(4)]
    router = Router(router_config([[nodes[0], nodes[1]], [nodes[2], nodes[3]]]))
    try:
        total, bad = 0, []
        for seed in (31,):
            n, m = run_stream(redis.port, router.port, seed, OPS, router=True)
            total += n
            bad += m
        n, m = run_stream(redis.port, router.port, 32, OPS // 3, resp3=True, router=True)
        total += n
        bad += m
        for cmd, ra, rb in bad[:20]:
            print("ROUTER MISMATCH %r\n  redis-server: %r\n  cacherouter:  %r" % (
                cmd, ra[:300], rb[:300]))
        print("resp differential through cacherouter: %d commands, %d mismatches" % (
            total, len(bad)))
        check(total >= 3000, "at least 3000 commands through the router")
        check(not bad, "the router's replies match redis-server's byte for byte")
    finally:
        router.stop()
        for node in nodes:
            node.stop()


def main():
    redis = RedisServer()
    try:
        with Server("-t", "2", "--resp-port", "0") as node:
            resp_port = int(node.banner.split("resp port ")[1].split(")")[0].split(",")[0])
            total, bad = 0, []
            for seed in SEEDS:
                n, m = run_stream(redis.port, resp_port, seed, OPS)
                total += n
                bad += m
            n, m = run_stream(redis.port, resp_port, 23, OPS // 3, resp3=True)
            total += n
            bad += m
            for cmd, ra, rb in bad[:20]:
                print("MISMATCH %r\n  redis-server: %r\n  cacheserver:  %r" % (cmd, ra[:300], rb[:300]))
            print("resp differential: %d commands, %d mismatches" % (total, len(bad)))
            check(total >= 5000, "at least 5000 commands compared")
            check(not bad, "replies match redis-server's byte for byte")
            pbad = 0
            for data in PROTOCOL_CASES:
                ra, rb = protocol_case(redis.port, resp_port, data)
                if ra != rb:
                    pbad += 1
                    print("PROTOCOL MISMATCH %r\n  redis-server: %r\n  cacheserver:  %r"
                          % (data[:60], ra[:300], rb[:300]))
            print("protocol errors: %d cases, %d mismatches" % (len(PROTOCOL_CASES), pbad))
            check(pbad == 0, "protocol errors match redis-server's")
            router_stream(redis)
            # The shared port takes RESP too, by its first byte, and inline then.
            c = Conn(node.port)
            check(c.call("SET", "shared", "1") == b"+OK\r\n", "RESP on the memcache port")
            c.send_raw(b"GET shared\r\n")
            check(c.reply() == b"$1\r\n1\r\n", "inline after a RESP command on the shared port")
            c.close()
    finally:
        redis.stop()


if __name__ == "__main__":
    run([main])
