"""One client never hurts another through cacherouter: a client that does not read its replies,
huge multi-gets, slow senders, a flood of connections and random bytes, each next to a
well-behaved client that must see 0 errors and 0 false misses, with no node marked down and no
backend connection lost (node errors and timeouts stay 0). Real processes on loopback; every
load loop is bounded in count and in time. Run with /usr/bin/python3."""
import os
import random
import socket
import threading
import time

from harness import SANITIZED, Router, Server, check, router_config, run, wait_for

SLOW = 3 if SANITIZED else 1
BIG = 1 << 20


def tier(**settings):
    # Sanitized nodes build a multi-megabyte reply several times slower; the backend timeout
    # grows with them, so that only what a test does, not the sanitizer, can time a node out.
    if SANITIZED:
        settings.setdefault("timeout_ms", 6000)
    nodes = [Server("-t", "1", "-m", "512") for _ in range(2)]
    router = Router(router_config([nodes], read_policy="round_robin", **settings))
    return nodes, router


def stop(nodes, router):
    router.stop()
    for n in nodes:
        n.stop()


class GoodClient(threading.Thread):
    """Reads keys it stored itself, in a loop, until told to stop: every read must hit."""

    def __init__(self, router, keys=20, limit=100000):
        super().__init__()
        self.conn = router.connect(timeout=10 * SLOW)
        self.keys = {b"good%d" % i: b"value-%d" % i for i in range(keys)}
        for k, v in self.keys.items():
            self.conn.send(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v))
            check(self.conn.line() == b"STORED", "good client's set")
        self.limit = limit
        self.reads = self.misses = 0
        self.errors = []
        self.done = threading.Event()

    def run(self):
        rnd = random.Random(1)
        keys = list(self.keys)
        while not self.done.is_set() and self.reads < self.limit:
            k = rnd.choice(keys)
            try:
                got = self.conn.get(k)
                if got is None:
                    self.misses += 1
                elif got != self.keys[k]:
                    self.errors.append("wrong value for %r" % k)
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.errors.append(repr(e))
                return
            self.reads += 1

    def finish(self):
        self.done.set()
        self.join(30)
        check(self.reads > 50, "the good client ran (%d reads)" % self.reads)
        check(not self.errors, "good client errors: %s" % self.errors[:3])
        check(self.misses == 0, "good client: %d false misses of %d reads" % (self.misses,
                                                                              self.reads))
        return self.reads


def nodes_unharmed(router, nodes):
    st = router.stats()
    for n in nodes:
        p = "node:127.0.0.1:%d:" % n.port
        # Never down. (A node kept busy past suspect_ms may leave reads for a while, syncing,
        # as any slow node does: docs/consistency.md. The good client sees no difference.)
        check(st[p + "state"] != "down", "%s is %s" % (p, st[p + "state"]))
        check(st[p + "marked_down"] == "0", "%s marked down" % p)
        check(st[p + "errors"] == "0" and st[p + "timeouts"] == "0",
              "%s saw errors %s, timeouts %s" % (p, st[p + "errors"], st[p + "timeouts"]))
    return st


def nodes_wrote(nodes):
    return sum(int(n.stats()["bytes_written"]) for n in nodes)


def test_a_client_that_never_reads_hurts_nobody():
    """It stores a 1 MB value and asks for it four times per request, 300 times, without
    reading. The router stops reading it after its first window of requests (4 MB replies:
    one or two in flight, not client_max_in_flight), so the nodes send it a few of the 1.2 GB
    it asked for, and the good client's reads never queue behind more than that."""
    nodes, router = tier()
    try:
        c = router.connect()
        c.send(b"set big 0 0 %d\r\n%s\r\n" % (BIG, b"x" * BIG))
        check(c.line() == b"STORED", "big stored")
        good = GoodClient(router)
        good.start()
        before = nodes_wrote(nodes)
        hog = socket.create_connection(("127.0.0.1", router.port))
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.sendall(b"get big big big big\r\n" * 300)
        time.sleep(2 * SLOW)
        reads = good.finish()
        st = nodes_unharmed(router, nodes)
        sent = nodes_wrote(nodes) - before
        check(int(st["clients_paused"]) >= 1, "the hog was stopped (clients_paused)")
        check(st["clients_dropped"] == "0", "the hog was held, not closed (below client_output_hard)")
        # kFirstWindow (4) requests (the router fetches a key asked for four times once: 1 MB
        # from a node each), plus the good client's small replies; 64 in flight were 64 MB.
        check(sent < 24 * BIG, "the nodes sent %d bytes for the hog" % sent)
        hog.close()
        print("  %d good reads, 0 errors; hog paused %s; nodes sent %.1f MB" % (
            reads, st["clients_paused"], sent / BIG))
    finally:
        stop(nodes, router)


def test_a_client_past_client_output_hard_is_closed():
    """The same hog with client_output_hard at 6 MB: its second 4 MB reply closes it, and
    nobody else notices."""
    nodes, router = tier(client_output_hard=6 * BIG)
    try:
        c = router.connect()
        c.send(b"set big 0 0 %d\r\n%s\r\n" % (BIG, b"x" * BIG))
        check(c.line() == b"STORED", "big stored")
        good = GoodClient(router)
        good.start()
        hog = socket.create_connection(("127.0.0.1", router.port))
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.sendall(b"get big big big big\r\n" * 300)
        wait_for(lambda: router.stats()["clients_dropped"] != "0", 10 * SLOW, "the hog closed")
        time.sleep(1 * SLOW)  # the good client goes on reading after the close
        reads = good.finish()
        st = nodes_unharmed(router, nodes)
        check(st["clients_dropped"] == "1", "one client closed, not %s" % st["clients_dropped"])
        hog.close()
        print("  %d good reads, 0 errors; hog dropped" % reads)
    finally:
        stop(nodes, router)


def test_huge_multi_gets_hurt_nobody():
    """A client that reads, but asks for 5 MB at a time, and once for more than a node may
    send in one reply (which it gets as an error); the good client is not slowed into
    timeouts."""
    nodes, router = tier()
    try:
        c = router.connect(timeout=30 * SLOW)
        for i in range(100):
            c.send(b"set h%d 0 0 %d\r\n%s\r\n" % (i, 100000, b"h" * 100000))
            check(c.line() == b"STORED", "stored")
        good = GoodClient(router)
        good.start()
        end = time.time() + 2 * SLOW
        big_gets = 0
        while time.time() < end and big_gets < 200:
            keys = b" ".join(b"h%d" % i for i in random.Random(big_gets).sample(range(100), 50))
            c.send(b"get " + keys + b"\r\n")
            n = 0
            while True:
                line = c.line()
                if line == b"END":
                    break
                c.exact(int(line.split()[3]) + 2)
                n += 1
            check(n == 50, "the huge multi-get got all 50 values")
            big_gets += 1
        # 700 x 100 kB (keys repeated) is deduplicated by the router; 100 distinct keys of 1 MB
        # are not: the node's reply would pass its 64 MB output limit.
        for i in range(100):
            c.send(b"set m%d 0 0 %d\r\n%s\r\n" % (i, BIG, b"m" * BIG))
            check(c.line() == b"STORED", "stored 1 MB")
        c.send(b"get " + b" ".join(b"m%d" % i for i in range(100)) + b"\r\n")
        check(c.line() == b"SERVER_ERROR out of memory writing get response",
              "a reply over the node's limit is an error, as memcached words it")
        check(c.get(b"h1") == b"h" * 100000, "and the connection goes on")
        reads = good.finish()
        nodes_unharmed(router, nodes)
        print("  %d multi-gets of 5 MB beside %d good reads, 0 errors" % (big_gets, reads))
    finally:
        stop(nodes, router)


def test_slow_senders_hurt_nobody():
    """Slowloris: clients that send half a command, or a value, a few bytes at a time."""
    nodes, router = tier()
    try:
        good = GoodClient(router)
        good.start()
        slow = [socket.create_connection(("127.0.0.1", router.port)) for _ in range(40)]
        for i, s in enumerate(slow):
            s.sendall(b"set slow%d 0 0 100000\r\n" % i if i % 2 else b"get slow")
        end = time.time() + 2 * SLOW
        while time.time() < end:
            for s in slow:
                s.sendall(b"zzzz")
            time.sleep(0.05)
        reads = good.finish()
        nodes_unharmed(router, nodes)
        for s in slow:
            s.close()
        print("  40 slow senders beside %d good reads, 0 errors" % reads)
    finally:
        stop(nodes, router)


def test_a_flood_of_connections_hurts_nobody():
    nodes, router = tier(max_connections=100)
    try:
        good = GoodClient(router)
        good.start()
        flood, refused = [], 0
        for _ in range(400):  # bounded: 400 connections
            s = socket.create_connection(("127.0.0.1", router.port))
            flood.append(s)
        time.sleep(1 * SLOW)  # the refusals are written at once
        for s in flood:
            s.setblocking(False)
            try:
                data = s.recv(100)
            except BlockingIOError:
                data = b""  # accepted: it says nothing until asked
            if data == b"SERVER_ERROR Too many open connections\r\n":
                refused += 1
        reads = good.finish()
        for s in flood:
            s.close()
        time.sleep(0.5)
        st = nodes_unharmed(router, nodes)
        check(refused >= 290, "%d of 400 refused past the limit of 100" % refused)
        check(int(st["rejected_connections"]) >= refused, "rejections counted")
        late = router.connect()
        late.send(b"version\r\n")
        check(late.line().startswith(b"VERSION"), "new connections work after the flood")
        print("  %d of 400 connections refused beside %d good reads, 0 errors" % (refused, reads))
    finally:
        stop(nodes, router)


def test_random_bytes_hurt_nobody():
    nodes, router = tier()
    try:
        good = GoodClient(router)
        good.start()
        rnd = random.Random(99)
        for i in range(20):  # text garbage, native garbage (first byte 0xFA), and mixed
            s = socket.create_connection(("127.0.0.1", router.port))
            head = b"\xfa" if i % 3 == 0 else b""
            payload = head + bytes(rnd.getrandbits(8) for _ in range(64 * 1024))
            try:
                s.sendall(payload)
                s.settimeout(0.3)
                while s.recv(1 << 16):
                    pass
            except OSError:
                pass  # closed on us: fine
            s.close()
        reads = good.finish()
        st = nodes_unharmed(router, nodes)
        check(int(st["client_errors"]) > 0, "the garbage was answered with errors")
        print("  20 clients of random bytes beside %d good reads, 0 errors" % reads)
    finally:
        stop(nodes, router)


if __name__ == "__main__":
    run([test_a_client_that_never_reads_hurts_nobody,
         test_a_client_past_client_output_hard_is_closed, test_huge_multi_gets_hurt_nobody,
         test_slow_senders_hurt_nobody, test_a_flood_of_connections_hurts_nobody,
         test_random_bytes_hurt_nobody])
