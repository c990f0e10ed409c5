"""A consistency checker for the test bed: writers give each key increasing values through
routers, readers read keys through routers, and every operation is recorded with when it
started and ended. A read is stale when it returns a value older than one whose write had
been acknowledged before the read began; its staleness is how long before the read the first
newer value had been acknowledged. Keys are split among writers so that each key has one
writer and its values are a plain sequence (value = b"<seq>:<padding>").

    h = History(keys=300)
    w = Client(bed, "a", port)             # an app on host a, talking to the router there
    h.write_all(w)                         # seq 1 of every key, acknowledged
    readers = Readers(bed, h, [("b", port)])
    readers.start(); h.phase("paused"); ...; readers.stop()
    print(h.report())                      # per phase: ops, errors, stale, longest, hit ratio

Run with Debian's /usr/bin/python3 (threads are real threads; each enters its host's network
namespace for its sockets).
"""
import bisect
import random
import socket
import threading
import time

PAD = b"x" * 40


class ClientError(Exception):
    pass


class Client:
    """A memcache text client in one host of the bed; reconnects after an error."""

    def __init__(self, bed, host, port, addr="127.0.0.1", timeout=2.0):
        self.bed, self.host, self.port, self.addr, self.timeout = bed, host, port, addr, timeout
        self.sock, self.buf = None, b""

    def _connect(self):
        with self.bed.inside(self.host):
            s = socket.socket()
        s.settimeout(self.timeout)
        try:
            s.connect((self.addr, self.port))
        except OSError as e:
            s.close()
            raise ClientError("connect: %s" % e)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = s, b""

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ClientError("closed by the router")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ClientError("closed by the router")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _call(self, fn):
        try:
            if self.sock is None:
                self._connect()
            return fn()
        except (OSError, ClientError) as e:
            self.close()
            raise ClientError(str(e))

    def set(self, key, value):
        def op():
            self.sock.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value))
            line = self._line()
            if line != b"STORED":
                raise ClientError(line.decode(errors="replace"))
        self._call(op)

    def flush_all(self):
        """The reply line of `flush_all` (OK, or the router's error)."""
        def op():
            self.sock.sendall(b"flush_all\r\n")
            return self._line().decode(errors="replace")
        return self._call(op)

    def stats(self):
        """The server's `stats` as a dict of strings."""
        def op():
            self.sock.sendall(b"stats\r\n")
            out = {}
            while True:
                line = self._line()
                if line == b"END":
                    return out
                parts = line.decode(errors="replace").split(" ", 2)
                if len(parts) == 3 and parts[0] == "STAT":
                    out[parts[1]] = parts[2]
        return self._call(op)

    def get(self, key):
        """The value, or None on a miss."""
        def op():
            self.sock.sendall(b"get %s\r\n" % key)
            line = self._line()
            if line == b"END":
                return None
            parts = line.split()
            if len(parts) < 4 or parts[0] != b"VALUE":
                raise ClientError(line.decode(errors="replace"))
            value = self._exact(int(parts[3]) + 2)[:-2]
            if self._line() != b"END":
                raise ClientError("no END")
            return value
        return self._call(op)


def until(fn, seconds=10.0):
    """True once fn() is true (a ClientError counts as not yet), False after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if fn():
                return True
        except ClientError:
            pass
        time.sleep(0.05)
    return False


def key_name(i):
    return b"ck:%d" % i


def seq_of(value):
    return int(value.split(b":", 1)[0])


class History:
    """What was acknowledged when, and every read, by phase."""

    def __init__(self, keys):
        self.keys = keys
        self.lock = threading.Lock()
        self.next_seq = [1] * keys
        self.ack_times = [[] for _ in range(keys)]  # per key, increasing
        self.ack_seqs = [[] for _ in range(keys)]
        self.reads = []   # (t0, key index, seq | None | "error", host)
        self.writes = []  # (t0, key index, seq, ok, host)
        self.phases = [(time.monotonic(), "start")]

    def phase(self, name):
        with self.lock:
            self.phases.append((time.monotonic(), name))

    def write(self, client, i):
        """One write of key i through `client`: the next value of its sequence."""
        with self.lock:
            seq = self.next_seq[i]
            self.next_seq[i] += 1
        t0 = time.monotonic()
        try:
            client.set(key_name(i), b"%d:%s" % (seq, PAD))
            ok = True
        except ClientError:
            ok = False
        t1 = time.monotonic()
        with self.lock:
            self.writes.append((t0, i, seq, ok, client.host))
            if ok:
                # One writer per key, so acks arrive in sequence order.
                self.ack_times[i].append(t1)
                self.ack_seqs[i].append(seq)
        return ok

    def write_all(self, client, keys=None):
        failed = 0
        for i in (range(self.keys) if keys is None else keys):
            failed += 0 if self.write(client, i) else 1
        return failed

    def read(self, client, i):
        t0 = time.monotonic()
        try:
            v = client.get(key_name(i))
            r = None if v is None else seq_of(v)
        except (ClientError, ValueError):
            r = "error"
        with self.lock:
            self.reads.append((t0, i, r, client.host))
        return r

    def acked_before(self, i, t):
        """(seq, ack time) of the newest write of key i acknowledged before t, or (0, None)."""
        n = bisect.bisect_left(self.ack_times[i], t)
        if n == 0:
            return 0, None
        return self.ack_seqs[i][n - 1], self.ack_times[i][n - 1]

    def first_ack_after_seq(self, i, seq):
        n = bisect.bisect_right(self.ack_seqs[i], seq)
        return self.ack_times[i][n] if n < len(self.ack_times[i]) else None

    def report(self):
        """Per phase: reads, errors, stale, longest staleness (ms), hits, misses of keys that
        had a value, hit ratio; writes and write errors."""
        with self.lock:
            phases = list(self.phases)
            reads = list(self.reads)
            writes = list(self.writes)
        starts = [t for t, _ in phases]
        out = [dict(phase=name, reads=0, errors=0, stale=0, longest_ms=0.0, hits=0, misses=0,
                    writes=0, write_errors=0) for _, name in phases]
        for t0, i, r, _host in reads:
            p = out[max(0, bisect.bisect_right(starts, t0) - 1)]
            p["reads"] += 1
            if r == "error":
                p["errors"] += 1
                continue
            acked, _ = self.acked_before(i, t0)
            if r is None:
                p["misses"] += 1
                continue
            p["hits"] += 1
            if r < acked:
                p["stale"] += 1
                newer = self.first_ack_after_seq(i, r)
                p["longest_ms"] = max(p["longest_ms"], (t0 - newer) * 1000.0)
        for t0, i, seq, ok, _host in writes:
            p = out[max(0, bisect.bisect_right(starts, t0) - 1)]
            p["writes"] += 1
            p["write_errors"] += 0 if ok else 1
        for p in out:
            looked = p["hits"] + p["misses"]
            p["hit_ratio"] = round(100.0 * p["hits"] / looked, 2) if looked else None
            p["longest_ms"] = round(p["longest_ms"], 1)
        return [p for p in out if p["reads"] or p["writes"]]

    def totals(self):
        rep = self.report()
        return {k: sum(p[k] for p in rep) for k in ("reads", "errors", "stale", "hits",
                                                     "misses", "writes", "write_errors")} | {
            "longest_ms": max([p["longest_ms"] for p in rep] or [0.0])}

    def lost_keys(self, client):
        """Keys with an acknowledged value that read as a miss through `client` now."""
        lost = []
        for i in range(self.keys):
            if self.ack_seqs[i] and self.read(client, i) is None:
                lost.append(i)
        return lost


def format_report(rep):
    lines = ["  %-24s %7s %6s %6s %9s %8s %6s %7s" % (
        "phase", "reads", "errors", "stale", "longest", "hit %", "writes", "w.err")]
    for p in rep:
        lines.append("  %-24s %7d %6d %6d %7.1fms %8s %6d %7d" % (
            p["phase"][:24], p["reads"], p["errors"], p["stale"], p["longest_ms"],
            "-" if p["hit_ratio"] is None else "%.2f" % p["hit_ratio"], p["writes"],
            p["write_errors"]))
    return "\n".join(lines)


class Loop:
    """Threads that repeat one operation until stop() or their bound (ops and seconds)."""

    def __init__(self, max_seconds=120, max_ops=2_000_000):
        self.stop_flag = threading.Event()
        self.threads = []
        self.max_seconds, self.max_ops = max_seconds, max_ops

    def add(self, fn):
        def run():
            deadline = time.monotonic() + self.max_seconds
            n = 0
            while not self.stop_flag.is_set() and n < self.max_ops and \
                    time.monotonic() < deadline:
                fn()
                n += 1
        self.threads.append(threading.Thread(target=run, daemon=True))

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)


def readers(history, clients, keys=None, seed=1):
    """A Loop of one reader per client over `keys` (default all), random order."""
    loop = Loop()
    keyset = list(range(history.keys)) if keys is None else list(keys)
    for n, c in enumerate(clients):
        rnd = random.Random(seed + n)
        loop.add(lambda c=c, rnd=rnd: history.read(c, rnd.choice(keyset)))
    return loop


def writers(history, clients, keys=None, pause_s=0.0):
    """A Loop of one writer per client; key k belongs to writer k % len(clients)."""
    loop = Loop()
    keyset = list(range(history.keys)) if keys is None else list(keys)
    for n, c in enumerate(clients):
        mine = keyset[n::len(clients)]
        state = {"next": 0}

        def step(c=c, mine=mine, state=state):
            history.write(c, mine[state["next"] % len(mine)])
            state["next"] += 1
            if pause_s:
                time.sleep(pause_s)
        loop.add(step)
    return loop
