"""tierctl against real routers and nodes: the health table (nodes, states, per-node hit
ratio, which nodes are down, drained or cold), drain / undrain on several routers at once,
route, --watch, unreachable routers, and a router with TLS and auth_file. Run with
/usr/bin/python3."""
import os
import re
import socket
import subprocess
import tempfile
import time

from harness import Conn, Router, check, router_config, run, servers, stop_all

TIERCTL = os.environ.get("TIERCTL_BIN", "tierctl")


def tierctl(*args, timeout=60):
    return subprocess.run([TIERCTL, *args], capture_output=True, text=True, timeout=timeout)


def rows(out):
    """{node address: (shard, state, hit%)} of a status table (the first router's)."""
    table = {}
    for line in out.splitlines():
        m = re.match(r"\s+(s\d+)\s+(\S+:\d+)\s+(\S+)\s+(\S+)\s+\d+", line)
        if m and m.group(2) not in table:
            table[m.group(2)] = (m.group(1), m.group(3), m.group(4))
    return table


def load(port, n=400):
    c = Conn(socket.create_connection(("127.0.0.1", port), timeout=10))
    for i in range(n):
        c.send(b"set t%d 0 0 1\r\nx\r\n" % i)
        check(c.line() == b"STORED", "set")
    for i in range(2 * n):  # half of them miss
        c.send(b"get t%d\r\n" % i)
        line = c.line()
        if line != b"END":
            c.exact(3)
            check(c.line() == b"END", "end")
    c.sock.close()


def test_status_drain_route_watch():
    nodes = servers(4)
    try:
        cfg = router_config([nodes[:2], nodes[2:]], read_policy="round_robin")
        with Router(cfg) as r1, Router(cfg) as r2:
            routers = ["-r", "127.0.0.1:%d" % r1.port, "-r", "127.0.0.1:%d" % r2.port]
            load(r1.port)
            p = tierctl(*routers)
            check(p.returncode == 0, "status: %d %s %s" % (p.returncode, p.stdout, p.stderr))
            t = rows(p.stdout)
            check(len(t) == 4, "four nodes: %s" % p.stdout)
            for n in nodes:
                a = "127.0.0.1:%d" % n.port
                check(t[a][1] == "up", "%s up: %s" % (a, t[a]))
                check(abs(float(t[a][2]) - 50.0) < 15, "%s hit ratio about 50%%: %s" % (a, t[a]))
            check(p.stdout.count("all nodes up and in sync") == 2, "both routers in sync")
            check(re.search(r"hit ratio 50\.\d+%", p.stdout), "router-wide hit ratio")

            victim = "127.0.0.1:%d" % nodes[1].port
            p = tierctl(*routers, "drain", victim)
            check(p.returncode == 0, "drain: %s" % p.stdout)
            check(p.stdout.count(": OK") == 2, "both routers drained: %s" % p.stdout)
            p = tierctl(*routers)
            check(rows(p.stdout)[victim][1] == "up,drained", p.stdout)
            check("attention: %s drained" % victim in p.stdout, p.stdout)
            p = tierctl(*routers, "drain", "127.0.0.1:%d" % nodes[0].port)
            check(p.returncode == 1 and "would leave shard s0" in p.stdout, "last replica: %s" %
                  p.stdout)
            p = tierctl(*routers, "undrain", victim)
            check(p.returncode == 0 and p.stdout.count(": OK") == 2, p.stdout)

            p = tierctl("-r", "127.0.0.1:%d" % r1.port, "route", "somekey")
            check(p.returncode == 0 and re.search(r"shard\s+s[01]", p.stdout), p.stdout)
            check(re.search(r"replica:0\s+127\.0\.0\.1:\d+ up", p.stdout), p.stdout)

            p = tierctl(*routers, "--watch", "0.2", "--count", "3")
            check(p.returncode == 0, p.stderr)
            check(p.stdout.count("router 127.0.0.1:%d " % r1.port) == 3, "three refreshes")

            nodes[3].kill9()
            nodes[3].expect_exit = -9
            dead = "127.0.0.1:%d" % nodes[3].port
            deadline = time.time() + 10
            while time.time() < deadline:
                load(r1.port, 20)  # requests find it gone
                p = tierctl("-r", "127.0.0.1:%d" % r1.port)
                if rows(p.stdout)[dead][1] == "down":
                    break
                time.sleep(0.1)
            check(rows(p.stdout)[dead][1] == "down", p.stdout)
            check("attention: %s down" % dead in p.stdout, p.stdout)

            p = tierctl(*routers, "-r", "127.0.0.1:1")
            check(p.returncode == 1, "an unreachable router fails the run")
            check("router 127.0.0.1:1: unreachable" in p.stdout, p.stdout)
            p = tierctl("-r", "nonsense")
            check(p.returncode != 0 and "not HOST:PORT" in p.stderr, p.stderr)
    finally:
        stop_all(nodes)


def test_tls_and_auth():
    from certs import Certs
    nodes = servers(2)
    users = tempfile.NamedTemporaryFile(mode="w", suffix=".auth", delete=False)
    users.write("ops:s3cret\n")
    users.close()
    try:
        with Certs() as certs:
            cfg = router_config([nodes], auth_file=users.name).replace(
                "shards:", "tls:\n  cert: %s\n  key: %s\nshards:" % (
                    certs.path("server.crt"), certs.path("server.key")))
            with Router(cfg) as r:
                base = ["-r", "127.0.0.1:%d" % r.port, "--tls", "--cacert", certs.path("ca.crt")]
                p = tierctl(*base, "--user", "ops", "--password", "s3cret")
                check(p.returncode == 0, "TLS + auth: %s %s" % (p.stdout, p.stderr))
                check(len(rows(p.stdout)) == 2, p.stdout)
                env = dict(os.environ, TIERCTL_PASSWORD="s3cret")
                p = subprocess.run([TIERCTL, *base, "--user", "ops"], capture_output=True,
                                   text=True, timeout=60, env=env)
                check(p.returncode == 0, "password from the environment: %s" % p.stdout)
                p = tierctl(*base, "--user", "ops", "--password", "wrong")
                check(p.returncode == 1 and "authentication refused" in p.stdout, p.stdout)
                p = tierctl(*base)
                check(p.returncode == 1 and "unauthenticated" in p.stdout, p.stdout)
                p = tierctl("-r", "127.0.0.1:%d" % r.port, "--tls", "--cacert",
                            certs.path("other_ca.crt"), "--user", "ops", "--password", "s3cret")
                check(p.returncode == 1 and "TLS handshake failed" in p.stdout, p.stdout)
    finally:
        os.unlink(users.name)
        stop_all(nodes)


if __name__ == "__main__":
    run([test_status_drain_route_watch, test_tls_and_auth])
