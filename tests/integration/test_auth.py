"""memcached's ASCII authentication (-Y FILE) and -F on cacheserver, byte for byte against
memcached 1.6 (Debian) for the same sequences: commands before auth, a bad password, an
unknown user, a malformed token, the good user, then normal commands. Also pymemcache, the
failure limit, SIGHUP re-reading the file, stats, no password in the logs, bad files, and a
native protocol's HELLO credentials. Run with Debian's /usr/bin/python3."""
import os
import signal
import socket
import subprocess
import tempfile
import time

from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheClientError

from harness import BIN, SANITIZED, Server, check, free_port, run, wait_port
from native_client import NativeClient

SLOW = 4 if SANITIZED else 1
USERS = "alice:secret\nbob:hunter2\n"

# The same bytes to both servers; each reply line is read before the next request is sent.
TRANSCRIPT = [
    b"get k\r\n",
    b"version\r\n",
    b"stats\r\n",
    b"set auth 0 0 10\r\nalice nope\r\n",
    b"set auth 0 0 11\r\nmallory pwd\r\n",
    b"set x 0 0 5\r\nalice\r\n",
    b"set auth 0 0 12\r\nalice secretXX",  # bad termination
    b"set auth 0 0 12\r\nalice secret\r\n",
    b"set k 0 0 1\r\nv\r\n",
    b"get k\r\n",
    b"flush_all\r\n",
]


def auth_file(text=USERS):
    f = tempfile.NamedTemporaryFile(mode="w", suffix=".auth", delete=False)
    f.write(text)
    f.close()
    return f.name


class Memcached:
    def __init__(self, *args):
        self.port = free_port()
        argv = ["memcached", "-p", str(self.port), "-U", "0", "-l", "127.0.0.1", "-t", "1", *args]
        if os.getuid() == 0:
            argv += ["-u", "root"]
        self.p = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        check(wait_port(self.port), "memcached listens")

    def stop(self):
        self.p.terminate()
        self.p.wait(10)


def replay(port, steps):
    """Sends each step and collects what arrives until the server goes quiet (50 ms)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
    out = []
    for step in steps:
        s.sendall(step)
        got = b""
        s.settimeout(0.05 * SLOW if got else 2 * SLOW)
        while True:
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            got += d
            s.settimeout(0.05 * SLOW)
        out.append(got)
    s.close()
    return out


def test_same_bytes_as_memcached():
    path = auth_file()
    mc = Memcached("-Y", path, "-F")
    try:
        theirs = replay(mc.port, TRANSCRIPT)
    finally:
        mc.stop()
    with Server("-t", "1", "-Y", path, "-F") as s:
        ours = replay(s.port, TRANSCRIPT)
        err = s.stderr()
    for step, a, b in zip(TRANSCRIPT, theirs, ours):
        check(a == b, "after %r: memcached %r, cacheserver %r" % (step, a, b))
    check(theirs[0] == b"CLIENT_ERROR unauthenticated\r\n", "memcached refuses before auth")
    check(theirs[7] == b"STORED\r\n", "the good user is accepted")
    check(theirs[9].startswith(b"VALUE k 0 1\r\nv\r\nEND"), "commands work after auth")
    for word in ("secret", "nope", "hunter2", "pwd"):
        check(word not in err, "no password in the log (%s)" % word)
    os.unlink(path)
    print("  %d steps, the same bytes from memcached -Y -F and cacheserver -Y -F" % len(TRANSCRIPT))


def test_pymemcache_stats_and_failure_limit():
    path = auth_file()
    with Server("-t", "1", "-Y", path) as s:
        c = Client(("127.0.0.1", s.port), timeout=5 * SLOW)
        try:
            c.get("k")
            raise AssertionError("a get before auth succeeded")
        except MemcacheClientError as e:
            check("unauthenticated" in str(e), "pymemcache sees unauthenticated: %s" % e)
        c.set("auth", "bob hunter2", noreply=False)  # the credentials, as a set
        c.set("k", b"v", noreply=False)
        check(c.get("k") == b"v", "pymemcache after auth")
        raw = socket.create_connection(("127.0.0.1", s.port), timeout=5 * SLOW)
        bad = b"set a 0 0 9\r\nbob wrong\r\n"
        raw.sendall(bad * 6)
        data = b""
        while True:
            d = raw.recv(65536)
            if not d:
                break
            data += d
        check(data == b"CLIENT_ERROR authentication failure\r\n" * 5,
              "closed after 5 failures: %r" % data)
        raw.close()
        st = stats_as(s.port, "alice", "secret")
        check(int(st["auth_cmds"]) == 7 and int(st["auth_errors"]) == 5,  # 1 + 5 + this one
              "auth_cmds %s auth_errors %s" % (st["auth_cmds"], st["auth_errors"]))
        check("hunter2" not in s.stderr() and "wrong" not in s.stderr(), "no password logged")
        # Native: every request is UNAUTHENTICATED until a HELLO with good credentials.
        nat = NativeClient(s.port, timeout=5 * SLOW)
        st, reply = nat.call("get", key=b"k")
        check(st == "UNAUTHENTICATED", "native get before HELLO: %s %r" % (st, reply))
        st, reply = nat.call("hello", proto_version=1)
        check(st == "UNAUTHENTICATED", "a HELLO without credentials")
        st, reply = nat.call("hello", proto_version=1, user=b"alice", password=b"bad")
        check(st == "UNAUTHENTICATED" and reply.get("message") == b"authentication failure",
              "bad native credentials: %s %r" % (st, reply))
        st, reply = nat.call("hello", proto_version=1, user=b"alice", password=b"secret")
        check(st == "OK" and reply.get("server", b"").startswith(b"cacheserver"),
              "good native credentials: %s %r" % (st, reply))
        st, reply = nat.call("get", key=b"k")
        check(st == "OK" and reply.get("value") == b"v", "native get after HELLO")
        nat.close()
    os.unlink(path)


def stats_as(port, user, password):
    raw = socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW)
    tok = ("%s %s" % (user, password)).encode()
    raw.sendall(b"set a 0 0 %d\r\n%s\r\nstats\r\n" % (len(tok), tok))
    data = b""
    while not data.endswith(b"END\r\n"):
        data += raw.recv(65536)
    raw.close()
    check(data.startswith(b"STORED\r\n"), "authenticated for stats: %r" % data[:60])
    out = {}
    for line in data.split(b"\r\n")[1:]:
        if line.startswith(b"STAT "):
            _, k, v = line.decode().split(" ", 2)
            out[k] = v
    return out


def test_sighup_rereads_the_file_and_bad_files():
    path = auth_file()
    with Server("-t", "1", "-Y", path) as s:
        with open(path, "w") as f:
            f.write(USERS + "carol:pw3\n")
        os.kill(s.pid, signal.SIGHUP)
        deadline = time.time() + 5 * SLOW
        ok = False
        while not ok and time.time() < deadline:
            ok = replay(s.port, [b"set a 0 0 9\r\ncarol pw3\r\n"])[0] == b"STORED\r\n"
            if not ok:
                time.sleep(0.05)
        check(ok, "a user added to the file works after SIGHUP")
        with open(path, "w") as f:
            f.write("not a valid line\n")
        os.kill(s.pid, signal.SIGHUP)
        time.sleep(0.3 * SLOW)
        check(replay(s.port, [b"set a 0 0 9\r\ncarol pw3\r\n"])[0] == b"STORED\r\n",
              "a bad file on SIGHUP keeps the previous users")
        check("auth file not reloaded" in s.stderr(), "the bad reload is logged")
    for text, needle in (("nocolon\n", "no ':'"), ("a b:c\n", "space"), ("", "no user")):
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([BIN, "-p", "0", "-Y", path], capture_output=True, text=True,
                           timeout=30)
        check(p.returncode == 1 and needle in p.stderr, "%r: exit %d %r" % (
            text, p.returncode, p.stderr[-200:]))
    p = subprocess.run([BIN, "-p", "0", "-Y", "/nonexistent.auth"], capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 1 and "/nonexistent.auth" in p.stderr, "a missing file: %r" % p.stderr)
    os.unlink(path)


def test_long_token_and_line_limits():
    path = auth_file()
    with Server("-t", "1", "-Y", path) as s:
        beside = socket.create_connection(("127.0.0.1", s.port), timeout=5 * SLOW)
        c = s.connect()
        c.send(b"set a 0 0 100000\r\n")
        check(c.line() == b"CLIENT_ERROR auth token too long", "a huge token is refused")
        check(c.closed_by_peer(5 * SLOW), "and the connection closed")
        c = s.connect()
        c.send(b"x" * 2000)
        check(c.closed_by_peer(5 * SLOW), "an unauthenticated line past 1024 bytes closes")
        beside.sendall(b"set a 0 0 12\r\nalice secret\r\nget zz\r\n")
        check(beside.recv(100).startswith(b"STORED\r\n"), "the client beside is fine")
        beside.close()
    os.unlink(path)


if __name__ == "__main__":
    run([test_same_bytes_as_memcached, test_pymemcache_stats_and_failure_limit,
         test_sighup_rereads_the_file_and_bad_files, test_long_token_and_line_limits])
