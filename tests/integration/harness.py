"""Shared helpers for integration tests: start a real cacheserver on an ephemeral loopback
port, talk to it over raw sockets, stop it by pid. Run with Debian's /usr/bin/python3."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("CACHESERVER_BIN", "cacheserver")
ROUTER_BIN = os.environ.get("CACHEROUTER_BIN", "cacherouter")
# Set by `make test-asan`: under ASan the process RSS includes shadow memory and the allocator
# quarantine, so RSS bounds are checked in the release run and the accounted memory here.
SANITIZED = os.environ.get("CACHETIER_SANITIZED", "")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "scripts"))
from loopback import free_port, wait_port  # noqa: E402,F401 (for the tests)


class Server:
    def __init__(self, *args, expect_exit=0, port=0):
        # stderr goes to a file (a pipe nobody reads could fill up with sanitizer reports).
        self.errfile = tempfile.TemporaryFile(mode="w+")
        self.args = args
        self.proc = subprocess.Popen(
            [BIN, "-p", str(port), "-l", "127.0.0.1", *args],
            stdout=subprocess.PIPE, stderr=self.errfile, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on [^ ]*:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("server did not start: %r %r" % (line, self.stderr()))
        self.port = int(m.group(1))
        self.banner = line  # "... listening on HOST:PORT (..., also HOST:PORT, ...)"
        self.expect_exit = expect_exit

    def stderr(self):
        self.errfile.seek(0)
        return self.errfile.read()

    @property
    def pid(self):
        return self.proc.pid

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill9(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def pause(self):
        """SIGSTOP, returning once the process has stopped."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        for _ in range(500):
            with open("/proc/%d/stat" % self.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "T":
                    return
            time.sleep(0.002)
        raise AssertionError("process did not stop")

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self, timeout=10):
        """SIGTERM by pid; returns the exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError("server did not exit within %ss of SIGTERM" % timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        code = self.stop()
        if exc[0] is None:
            assert code == self.expect_exit, "server exit code %r, stderr:\n%s" % (
                code, self.stderr()[-20000:])

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Conn(s)

    def stats(self, arg=""):
        c = self.connect()
        out = read_stats(c, arg)
        c.close()
        return out


class Router(Server):
    """cacherouter on an ephemeral loopback port, from a config written to a temporary file."""

    def __init__(self, config_text, *args, expect_exit=0):
        self.config = tempfile.NamedTemporaryFile(mode="w", suffix=".yaml", delete=False)
        self.config.write(config_text)
        self.config.close()
        self.errfile = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [ROUTER_BIN, "-c", self.config.name, "-p", "0", *args],
            stdout=subprocess.PIPE, stderr=self.errfile, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on [^ ]*:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("router did not start: %r %r" % (line, self.stderr()))
        self.port = int(m.group(1))
        self.banner = line
        self.expect_exit = expect_exit

    def reload(self, config_text):
        with open(self.config.name, "w") as f:
            f.write(config_text)
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self, timeout=10):
        try:
            return Server.stop(self, timeout)
        finally:
            if os.path.exists(self.config.name):
                os.unlink(self.config.name)


def router_config(shards, **settings):
    """YAML for cacherouter: shards is a list of lists of Servers (one list per shard)."""
    lines = ["listen: 127.0.0.1:0"]
    settings.setdefault("timeout_ms", 1000 if SANITIZED else 250)
    for k, v in settings.items():
        lines.append("%s: %s" % (k, v))
    lines.append("shards:")
    for i, replicas in enumerate(shards):
        lines.append("  - name: s%d" % i)
        lines.append("    replicas: [%s]" % ", ".join(
            "127.0.0.1:%d" % (r if isinstance(r, int) else r.port) for r in replicas))
    return "\n".join(lines) + "\n"


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        d = self.sock.recv(1 << 20)
        if not d:
            raise EOFError("connection closed by server")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def get(self, key):
        self.send(b"get " + key + b"\r\n")
        line = self.line()
        if line == b"END":
            return None
        n = int(line.split()[3])
        val = self.exact(n + 2)[:-2]
        assert self.line() == b"END"
        return val

    def closed_by_peer(self, timeout=5):
        """True if the server closes the connection within timeout (after any pending data)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(1 << 20)
                if not d:
                    return True
                self.buf += d
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def mixed_load(make_client, before, seconds, fault, threads=3, fault_after=1.0):
    """`threads` clients (make_client()) read the keys of `before` (80%) and write new keys
    (20%) for `seconds`, bounded by 50,000 operations each; fault() runs `fault_after` s in.
    Returns (operations, errors, wrong reads)."""
    import random
    import threading
    errors, wrong, ops = [], [], [0]
    keys = sorted(before)
    stop_at = time.time() + seconds

    def load(seed):
        cl = make_client()
        rnd = random.Random(seed)
        for i in range(50000):
            if time.time() > stop_at:
                break
            try:
                if rnd.random() < 0.8:
                    k = keys[rnd.randrange(len(keys))]
                    if cl.get(k) != before[k]:
                        wrong.append(k)
                else:
                    cl.set("new%d-%d" % (seed, i), b"x", noreply=False)
                ops[0] += 1
            except Exception as e:  # noqa: BLE001 - every error counts
                errors.append(repr(e))

    ts = [threading.Thread(target=load, args=(s,)) for s in range(threads)]
    for t in ts:
        t.start()
    time.sleep(fault_after)
    fault()
    for t in ts:
        t.join()
    return ops[0], errors, wrong


def read_stats(c, arg=""):
    """`stats [arg]` on a connection with send() and line(), as a dict."""
    c.send(("stats %s" % arg).strip().encode() + b"\r\n")
    out = {}
    while True:
        line = c.line()
        if line == b"END":
            return out
        _, k, v = line.decode().split(" ", 2)
        out[k] = v


def servers(n, *args):
    """n cacheservers, one thread each unless `args` say otherwise."""
    return [Server(*(args or ("-t", "1"))) for _ in range(n)]


def stop_all(procs):
    for p in procs:
        if p.proc.poll() is None:
            p.stop()


def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run(tests):
    """Runs test functions, prints a summary line, exits non-zero on any failure."""
    failed = 0
    for t in tests:
        start = time.time()
        try:
            t()
            print("PASS %s (%.2fs)" % (t.__name__, time.time() - start), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure
            failed += 1
            print("FAIL %s: %r" % (t.__name__, e), flush=True)
            import traceback
            traceback.print_exc()
    print("%d passed, %d failed" % (len(tests) - failed, failed))
    sys.exit(1 if failed else 0)
