"""cacherouter with TLS and authentication on both sides: clients -> router (tls:, auth_file:),
router -> nodes (backend_tls:, mutual: the nodes require the router's client certificate; and
backend_auth: the nodes run with -Y). pymemcache with a tls_context through the router (and
redis-py over TLS with AUTH, to a node and through the router),
failover with kill -9 and SIGSTOP under load with 0 errors, a node whose certificate the
router does not trust, wrong credentials either way, a plaintext client on the router's TLS
port, reloads, and bad config. Run with Debian's /usr/bin/python3."""
import os
import shutil
import ssl
import subprocess
import time

from pymemcache.client.base import Client

from certs import Certs, TlsLineConn, tls_context
from harness import ROUTER_BIN, SANITIZED, Router, Server, check, mixed_load, read_stats, run

CERTS = Certs()
SLOW = 4 if SANITIZED else 1
NODE_USERS = CERTS.path("node.users")  # the router's credentials, on the nodes
APP_USERS = CERTS.path("app.users")    # the application's, on the router
with open(NODE_USERS, "w") as f:
    f.write("router:r0uterpw\n")
with open(APP_USERS, "w") as f:
    f.write("app:appsecret\n")


def node(name="server", **extra):
    """cacheserver with TLS that requires a client certificate from the CA."""
    opts = {"ssl_chain_cert": CERTS.path(name + ".crt"), "ssl_key": CERTS.path(name + ".key"),
            "ssl_ca_cert": CERTS.path("ca.crt"), "ssl_verify_mode": "2"}
    opts.update(extra)
    return Server("-t", "1", "-Z", "-o", ",".join("%s=%s" % kv for kv in opts.items()),
                  "-Y", NODE_USERS)


def config(shards, cert="server", backend_password="r0uterpw", **settings):
    lines = ["listen: 127.0.0.1:0",
             "auth_file: %s" % APP_USERS,
             "backend_auth:",
             "  user: router",
             "  password: %s" % backend_password,
             "timeout_ms: %d" % (1000 if SANITIZED else 250),
             "retry_max_ms: 500",
             "tls:",
             "  cert: %s" % CERTS.path(cert + ".crt"),
             "  key: %s" % CERTS.path(cert + ".key"),
             "backend_tls:",
             "  ca: %s" % CERTS.path("ca.crt"),
             "  cert: %s" % CERTS.path("client.crt"),
             "  key: %s" % CERTS.path("client.key")]
    for k, v in settings.items():
        lines.append("%s: %s" % (k, v))
    lines.append("shards:")
    for i, replicas in enumerate(shards):
        lines.append("  - name: s%d" % i)
        lines.append("    replicas: [%s]" % ", ".join("127.0.0.1:%d" % n.port for n in replicas))
    return "\n".join(lines) + "\n"


def py(port, password="appsecret"):
    c = Client(("127.0.0.1", port), tls_context=tls_context(CERTS), connect_timeout=10 * SLOW,
               timeout=10 * SLOW)
    c.set("auth", "app " + password, noreply=False)  # memcached's ASCII auth
    return c


def conn(port, password=b"appsecret"):
    c = TlsLineConn(port, tls_context(CERTS), timeout=10 * SLOW)
    tok = b"app " + password
    reply = c.cmd(b"set auth 0 0 %d\r\n%s\r\n" % (len(tok), tok))
    if password == b"appsecret" and reply != b"STORED":
        raise AssertionError("the router refused the app's credentials: %r" % reply)
    return c


def stats(r):
    c = conn(r.port)
    out = read_stats(c)
    c.close()
    return out


def stop_all(nodes):
    for n in nodes:
        if n.proc.poll() is None:
            n.stop()


def test_pymemcache_through_the_router_over_tls_both_ways():
    nodes = [node(), node()]
    try:
        with Router(config([nodes])) as r:
            check("(TLS)" in r.banner, "the banner says TLS: %r" % r.banner)
            c = py(r.port)
            c.set("k", b"v" * 3000)
            check(c.get("k") == b"v" * 3000, "a get through the router over TLS")
            c.set_many({"m%d" % i: b"x%d" % i for i in range(300)})
            got = c.get_many(["m%d" % i for i in range(300)])
            check(len(got) == 300 and got["m7"] == b"x7", "multi-get over TLS")
            c.close()
            for n in nodes:  # the write reached both replicas, over mutual TLS
                d = TlsLineConn(n.port, tls_context(CERTS, cert="client"))
                check(d.cmd(b"set a 0 0 15\r\nrouter r0uterpw\r\n") == b"STORED", "node auth")
                d.send(b"get k\r\n")
                check(d.line().startswith(b"VALUE k"), "replica %d holds the key" % n.port)
                d.close()
            st = stats(r)
            check(int(st["ssl_new_sessions"]) >= 2, "router counts its client handshakes")
            check(st["ssl_handshake_errors"] == "0", "no handshake errors")
    finally:
        stop_all(nodes)


def failover(fault):
    nodes = [node(), node()]
    try:
        with Router(config([nodes], read_policy="round_robin", failure_limit=2)) as r:
            c = py(r.port)
            before = {"pre%d" % i: b"value%d" % i for i in range(300)}
            c.set_many(before, noreply=False)
            ops, errors, wrong = mixed_load(lambda: py(r.port), before, 4 * SLOW,
                                            lambda: fault(nodes[0]), fault_after=1 * SLOW)
            if nodes[0].proc.poll() is None:
                nodes[0].resume()
            check(ops > 300, "the load ran (%d ops)" % ops)
            check(not errors, "%d errors, e.g. %s" % (len(errors), errors[:3]))
            check(not wrong, "%d wrong reads, e.g. %s" % (len(wrong), wrong[:3]))
            print("  %d ops over TLS both ways, 0 errors, 0 wrong reads" % ops)
    finally:
        stop_all(nodes)


def test_wrong_credentials_either_way():
    """A client with a wrong password is refused by the router; a router with a wrong
    backend password is refused by the nodes, which it then treats as down."""
    nodes = [node()]
    try:
        with Router(config([nodes])) as r:
            c = conn(r.port, password=b"wrong")
            c.send(b"get k\r\n")
            check(c.line() == b"CLIENT_ERROR unauthenticated", "no command before auth")
            c.close()
            check(int(stats(r)["auth_errors"]) == 1, "the router counts the refusal")
            check("wrong" not in r.stderr(), "no password in the router's log")
        text = config([nodes], backend_password="nope")
        with Router(text) as r:
            c = conn(r.port)
            check(c.cmd(b"get k\r\n").startswith((b"SERVER_ERROR", b"END")),
                  "no node answers a router it refused")
            c.close()
            n = TlsLineConn(nodes[0].port, tls_context(CERTS, cert="client"))
            check(n.cmd(b"set a 0 0 15\r\nrouter r0uterpw\r\n") == b"STORED", "node auth")
            st = read_stats(n)
            n.close()
            check(int(st["auth_errors"]) >= 1, "the node counts the router's bad password")
    finally:
        stop_all(nodes)


def test_kill9_failover_over_tls():
    failover(lambda n: n.kill9())


def test_sigstop_failover_over_tls():
    failover(lambda n: n.pause())


def test_untrusted_node_and_plaintext_client():
    """A node whose certificate is from another CA is never used (the router says why); a
    plaintext client on the router's TLS port is closed and counted, a TLS client beside it
    goes on."""
    CERTS.issue("other_server", "localhost", "other_ca", san="DNS:localhost,IP:127.0.0.1")
    good, bad = node(), node("other_server")
    try:
        with Router(config([[good, bad]], read_policy="round_robin")) as r:
            beside = conn(r.port)
            for i in range(20):
                beside.roundtrip(b"k%d" % i, b"v%d" % i)  # every read answered (from good)
            deadline = time.time() + 10 * SLOW
            while stats(r)["node:127.0.0.1:%d:state" % bad.port] != "down":
                check(time.time() < deadline, "the untrusted node is marked down")
                time.sleep(0.05)
            plain = r.connect()
            plain.send(b"get k1\r\n")
            check(plain.closed_by_peer(5 * SLOW) and b"VALUE" not in plain.buf,
                  "a plaintext client on the TLS port is closed")
            beside.roundtrip(b"after", b"plaintext")
            beside.close()
            st = stats(r)
            check(int(st["ssl_handshake_errors"]) >= 1, "counted")
            err = r.stderr()
            check("plaintext client on a TLS port" in err, "logged: %s" % err[-500:])
    finally:
        stop_all([good, bad])


def test_router_certificate_reload_and_bad_config():
    work = CERTS.path("router_live")
    os.makedirs(work, exist_ok=True)
    for n in ("server", "server2"):
        for ext in ("crt", "key"):
            shutil.copy(CERTS.path("%s.%s" % (n, ext)), os.path.join(work, "%s.%s" % (n, ext)))
    crt, key = os.path.join(work, "live.crt"), os.path.join(work, "live.key")
    shutil.copy(CERTS.path("server.crt"), crt)
    shutil.copy(CERTS.path("server.key"), key)
    nodes = [node()]
    try:
        text = config([nodes]).replace(CERTS.path("server.crt"), crt).replace(
            CERTS.path("server.key"), key)
        with Router(text) as r:
            old = conn(r.port)
            with open(CERTS.path("server.crt")) as f:
                first = ssl.PEM_cert_to_DER_cert(f.read())
            check(old.peer_der() == first, "the first certificate")
            shutil.copy(CERTS.path("server2.crt"), crt + ".tmp")
            shutil.copy(CERTS.path("server2.key"), key + ".tmp")
            os.replace(crt + ".tmp", crt)
            os.replace(key + ".tmp", key)
            r.reload(text)
            deadline = time.time() + 5 * SLOW
            while True:
                c = conn(r.port)
                changed = c.peer_der() != first
                c.close()
                if changed or time.time() > deadline:
                    break
                time.sleep(0.05)
            check(changed, "SIGHUP: new connections get the new certificate")
            old.roundtrip(b"old", b"kept")  # the open connection was not dropped
            old.close()
            # A reload that turns TLS off is refused; the running one stays.
            plain_text = text.split("tls:")[0] + "shards:" + text.split("shards:")[1]
            r.reload(plain_text)
            time.sleep(0.3 * SLOW)
            check(int(stats(r)["reload_errors"]) >= 1, "turning TLS off by reload is refused")
    finally:
        stop_all(nodes)
    # --check-config builds the contexts: a missing file or a bad block is exit 2.
    for bad, needle in (
            (text.replace(crt, "/nonexistent.crt"), "/nonexistent.crt"),
            (text.replace("backend_tls:", "backend_tls:\n  verify: maybe"), "backend_tls.verify"),
            (text.replace("  cert: " + crt + "\n", "", 1), "tls.cert")):
        path = os.path.join(work, "bad.yaml")
        with open(path, "w") as f:
            f.write(bad)
        p = subprocess.run([ROUTER_BIN, "-c", path, "--check-config"], capture_output=True,
                           text=True, timeout=30)
        check(p.returncode == 2 and needle in p.stderr,
              "--check-config: exit %d, %r" % (p.returncode, p.stderr[-300:]))


def test_redis_clients_over_tls():
    """RESP over TLS with authentication: redis-py to a node (-Z -Y) and through the router
    (tls: and auth_file:, TLS and credentials to the nodes), AUTH refused and accepted."""
    import redis
    nodes = [node() for _ in range(2)]
    try:
        r = redis.Redis(host="127.0.0.1", port=nodes[0].port, ssl=True,
                        ssl_ca_certs=CERTS.path("ca.crt"), ssl_certfile=CERTS.path("client.crt"),
                        ssl_keyfile=CERTS.path("client.key"), username="router",
                        password="r0uterpw", socket_timeout=10 * SLOW)
        check(r.set("tls", "1") is True and r.get("tls") == b"1", "redis-py to a node over TLS")
        r.close()
        with Router(config([[nodes[0], nodes[1]]])) as router:
            bad = redis.Redis(host="127.0.0.1", port=router.port, ssl=True,
                              ssl_ca_certs=CERTS.path("ca.crt"), username="app",
                              password="wrong", socket_timeout=10 * SLOW)
            try:
                bad.ping()
                raise AssertionError("a wrong password was accepted")
            except redis.exceptions.RedisError as e:
                check("WRONGPASS" in str(e) or "invalid" in str(e), "WRONGPASS: %s" % e)
            r = redis.Redis(host="127.0.0.1", port=router.port, ssl=True,
                            ssl_ca_certs=CERTS.path("ca.crt"), username="app",
                            password="appsecret", socket_timeout=10 * SLOW)
            check(r.get("tls") == b"1", "through the router, TLS both ways")
            p = r.pipeline(transaction=False)
            for i in range(100):
                p.set("t%d" % i, "v" * i)
            p.mget(["t%d" % i for i in range(100)])
            check(p.execute()[-1] == [b"v" * i for i in range(100)], "a pipeline over TLS")
            check(r.getset("tls", "2") == b"1" and r.incr("n") == 1, "read-then-write over TLS")
            r.close()
    finally:
        for n in nodes:
            n.stop()


if __name__ == "__main__":
    try:
        run([test_pymemcache_through_the_router_over_tls_both_ways, test_wrong_credentials_either_way,
             test_kill9_failover_over_tls,
             test_sigstop_failover_over_tls, test_untrusted_node_and_plaintext_client,
             test_router_certificate_reload_and_bad_config, test_redis_clients_over_tls])
    finally:
        CERTS.close()
