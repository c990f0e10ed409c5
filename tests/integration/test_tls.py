"""cacheserver with TLS (-Z, memcached's -o ssl_* options): real clients (pymemcache with a
tls_context, Python's ssl, `openssl s_client`), certificates made here by certs.py. Each bad
input (plaintext on a TLS port, an untrusted or expired certificate, a handshake that never
finishes, a flood of handshakes) runs with a well-behaved TLS client beside it, which must not
notice. Run with Debian's /usr/bin/python3."""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

from pymemcache.client.base import Client

from certs import Certs, TlsLineConn, tls_context
from harness import BIN, SANITIZED, Server, check, read_stats, run

CERTS = Certs()
SLOW = 4 if SANITIZED else 1


def tls_args(name="server", **extra):
    opts = {"ssl_chain_cert": CERTS.path(name + ".crt"), "ssl_key": CERTS.path(name + ".key")}
    opts.update(extra)
    return ["-t", "2", "-Z", "-o", ",".join("%s=%s" % kv for kv in opts.items())]


def client_context(ca="ca", cert=None, check_name=True):
    return tls_context(CERTS, ca, cert, check_name)


def TlsConn(port, ctx=None, host="localhost", timeout=10 * SLOW):  # noqa: N802
    return TlsLineConn(port, ctx or client_context(), host, timeout)


def s_client(port, *args, send=b"version\r\n"):
    """`openssl s_client` to the port; returns (its output, whether the server answered)."""
    p = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile",
         CERTS.path("ca.crt"), "-verify_return_error", "-ign_eof", *args],
        input=send + b"quit\r\n", capture_output=True, timeout=30 * SLOW)
    out = (p.stdout + p.stderr).decode(errors="replace")
    return out, "VERSION " in out


def stats(s, arg="", ctx=None):
    """`stats` over TLS."""
    c = TlsConn(s.port, ctx)
    out = read_stats(c, arg)
    c.close()
    return out


def der(name):
    with open(CERTS.path(name + ".crt")) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def test_pymemcache_over_tls():
    with Server(*tls_args()) as s:
        c = Client(("127.0.0.1", s.port), tls_context=client_context(), connect_timeout=10,
                   timeout=10)
        c.set("k", b"v" * 1000)
        check(c.get("k") == b"v" * 1000, "pymemcache get over TLS")
        c.set_many({"a%d" % i: b"x" * i for i in range(1, 200)})
        got = c.get_many(["a%d" % i for i in range(1, 200)])
        check(len(got) == 199 and got["a150"] == b"x" * 150, "pymemcache get_many over TLS")
        big = os.urandom(500_000)  # many TLS records each way
        c.set("big", big)
        check(c.get("big") == big, "a 500 kB value over TLS")
        c.close()
        st = stats(s)
        check(int(st["ssl_new_sessions"]) >= 1, "ssl_new_sessions counts the handshake")
        check(st["ssl_handshake_errors"] == "0", "no handshake errors")
        check(0 <= int(st["time_since_server_cert_refresh"]) < 60, "cert refresh age")
        settings = stats(s, "settings")
        check(settings["ssl_enabled"] == "yes", "stats settings ssl_enabled")


def test_versions_and_sni():
    with Server(*tls_args()) as s:
        for flag, proto in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            out, ok = s_client(s.port, flag, "-servername", "localhost")
            check(ok and ("Protocol  : " + proto in out or proto in out),
                  "%s accepted with the default minimum: %s" % (proto, out[-400:]))
    with Server(*tls_args(ssl_min_version="tlsv1.3")) as s:
        _, ok = s_client(s.port, "-tls1_2")
        check(not ok, "TLS 1.2 refused with ssl_min_version=tlsv1.3")
        _, ok = s_client(s.port, "-tls1_3")
        check(ok, "TLS 1.3 accepted with ssl_min_version=tlsv1.3")
        check(int(stats(s)["ssl_handshake_errors"]) >= 1, "the refused handshake is counted")
        check("TLS connection from 127.0.0.1" in s.stderr(), "a log line names the peer")


def test_verify_modes_and_mutual_tls():
    cert = ["-cert", CERTS.path("client.crt"), "-key", CERTS.path("client.key")]
    stranger = ["-cert", CERTS.path("stranger.crt"), "-key", CERTS.path("stranger.key")]
    ca = CERTS.path("ca.crt")
    with Server(*tls_args(ssl_verify_mode="2", ssl_ca_cert=ca)) as s:
        beside = TlsConn(s.port, client_context(cert="client"))
        check(not s_client(s.port)[1], "require: no client certificate is refused")
        check(s_client(s.port, *cert)[1], "require: a certificate from the CA is accepted")
        check(not s_client(s.port, *stranger)[1], "require: a certificate from another CA refused")
        beside.roundtrip(b"mtls", b"yes")
        beside.close()
        check(int(stats(s, ctx=client_context(cert="client"))["ssl_handshake_errors"]) >= 2,
              "refusals counted")
    with Server(*tls_args(ssl_verify_mode="1", ssl_ca_cert=ca)) as s:
        check(s_client(s.port)[1], "request: no certificate is fine")
        check(s_client(s.port, *cert)[1], "request: a good certificate is fine")
        check(not s_client(s.port, *stranger)[1], "request: a bad certificate is refused")
    with Server(*tls_args(ssl_verify_mode="3", ssl_ca_cert=ca)) as s:
        check(not s_client(s.port)[1], "once: no client certificate is refused")
        check(s_client(s.port, *cert)[1], "once: a certificate from the CA is accepted")
    with Server(*tls_args()) as s:
        check(s_client(s.port, *stranger)[1], "mode 0: client certificates are not checked")


def test_client_side_refusals():
    """The server's certificate is expired, or from a CA the client does not trust: the client
    refuses, the server logs and counts it, a good client beside it goes on."""
    with Server(*tls_args("expired")) as s:
        try:
            TlsConn(s.port)
            raise AssertionError("an expired certificate was accepted")
        except ssl.SSLCertVerificationError as e:
            check("expired" in str(e), "the client says expired: %s" % e)
    with Server(*tls_args()) as s:
        beside = TlsConn(s.port)
        try:
            TlsConn(s.port, client_context(ca="other_ca"))
            raise AssertionError("a certificate from an untrusted CA was accepted")
        except ssl.SSLCertVerificationError:
            pass
        try:
            TlsConn(s.port, host="not-this-host")
            raise AssertionError("a certificate for another name was accepted")
        except ssl.SSLCertVerificationError:
            pass
        beside.roundtrip(b"k", b"still fine")
        beside.close()
        deadline = time.time() + 5 * SLOW
        while int(stats(s)["ssl_handshake_errors"]) < 2 and time.time() < deadline:
            time.sleep(0.05)
        check(int(stats(s)["ssl_handshake_errors"]) >= 2, "the client's alerts are counted")


def test_plaintext_client_and_notls_listener():
    with Server(*tls_args(), "-l", "notls:127.0.0.1:0") as s:
        m = re.search(r"also 127\.0\.0\.1:(\d+)", s.banner)
        check(m and "TLS" in s.banner, "banner lists the notls listener: %r" % s.banner)
        plain_port = int(m.group(1))
        beside = TlsConn(s.port)
        c = s.connect()
        c.send(b"version\r\n")
        check(c.closed_by_peer(5 * SLOW) and b"VERSION" not in c.buf,
              "a plaintext client on the TLS port is closed, unanswered")
        beside.roundtrip(b"a", b"b")
        plain = socket.create_connection(("127.0.0.1", plain_port), timeout=10)
        plain.sendall(b"get a\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            data += plain.recv(4096)
        check(data == b"VALUE a 0 1\r\nb\r\nEND\r\n", "the notls listener speaks plaintext")
        plain.close()
        check(int(stats(s)["ssl_handshake_errors"]) == 1, "counted once")
        check("plaintext client on a TLS port" in s.stderr(), "the log line says why")
        beside.close()


def test_handshake_timeout_and_flood():
    with Server(*tls_args(ssl_handshake_timeout_ms=str(500 * SLOW))) as s:
        beside = TlsConn(s.port)
        silent = s.connect()  # sends nothing
        partial = s.connect()
        partial.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello, cut
        t0 = time.time()
        check(silent.closed_by_peer(10 * SLOW), "a silent connection is closed")
        check(partial.closed_by_peer(10 * SLOW), "a half handshake is closed")
        took = time.time() - t0
        check(took < 3 * SLOW, "closed after the handshake timeout (%.1f s)" % took)
        check("no handshake within" in s.stderr(), "the timeout is logged")
        # A flood: 150 handshakes (good, garbage and abandoned) from 6 threads while the
        # client beside keeps working.
        errors = []

        def flood(kind):
            try:
                for _ in range(25):
                    raw = socket.create_connection(("127.0.0.1", s.port), timeout=10 * SLOW)
                    if kind == "good":
                        tls = client_context().wrap_socket(raw, server_hostname="localhost")
                        tls.sendall(b"version\r\n")
                        if not tls.recv(100).startswith(b"VERSION"):
                            errors.append("no VERSION")
                        tls.close()
                    elif kind == "garbage":
                        raw.sendall(os.urandom(300))
                        raw.close()
                    else:
                        raw.close()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=flood, args=(k,))
                   for k in ("good", "garbage", "abandoned") * 2]
        for t in threads:
            t.start()
        for i in range(200):
            beside.roundtrip(b"k%d" % (i % 7), b"v%d" % i)
        for t in threads:
            t.join(60 * SLOW)
        check(not errors, "good handshakes during the flood: %r" % errors[:3])
        beside.roundtrip(b"after", b"flood")
        beside.close()
        st = stats(s)
        check(int(st["ssl_handshake_errors"]) >= 2 + 50, "garbage handshakes counted: %s" %
              st["ssl_handshake_errors"])
        check(int(st["ssl_new_sessions"]) >= 51, "good handshakes counted")


def test_refresh_certs_and_sighup():
    work = CERTS.path("live")
    os.makedirs(work, exist_ok=True)
    crt, key = os.path.join(work, "s.crt"), os.path.join(work, "s.key")

    def install(name):
        shutil.copy(CERTS.path(name + ".crt"), crt + ".tmp")
        shutil.copy(CERTS.path(name + ".key"), key + ".tmp")
        os.replace(crt + ".tmp", crt)
        os.replace(key + ".tmp", key)

    install("server")
    with Server("-t", "2", "-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s" % (crt, key)) as s:
        old = TlsConn(s.port)
        check(old.peer_der() == der("server"), "the first certificate")
        install("server2")
        check(old.cmd(b"refresh_certs\r\n") == b"OK", "refresh_certs answers OK")
        new = TlsConn(s.port)
        check(new.peer_der() == der("server2"), "a new connection gets the new certificate")
        old.roundtrip(b"old", b"connection kept")
        install("server")
        os.kill(s.pid, signal.SIGHUP)
        deadline = time.time() + 5 * SLOW
        while time.time() < deadline:
            c = TlsConn(s.port)
            ok = c.peer_der() == der("server")
            c.close()
            if ok:
                break
            time.sleep(0.05)
        check(ok, "SIGHUP reloads the certificate")
        with open(crt, "w") as f:
            f.write("not a certificate\n")
        reply = old.cmd(b"refresh_certs\r\n")
        check(reply.startswith(b"SERVER_ERROR") and b"ssl_chain_cert" in reply,
              "a bad file is refused: %r" % reply)
        c = TlsConn(s.port)
        check(c.peer_der() == der("server"), "the previous certificate stays")
        c.close()
        old.roundtrip(b"old", b"still")
        new.roundtrip(b"new", b"still")
        old.close()
        new.close()
    with Server() as s:  # plaintext
        c = s.connect()
        c.send(b"refresh_certs\r\n")
        check(c.line().startswith(b"SERVER_ERROR TLS is not enabled"), "refresh_certs, no TLS")


def test_bad_tls_flags():
    def fails(args, code, needle):
        p = subprocess.run([BIN, "-p", "0", *args], capture_output=True, text=True, timeout=30)
        check(p.returncode == code and needle in p.stderr,
              "%r: exit %d, %r" % (args, p.returncode, p.stderr[-300:]))

    crt, key = CERTS.path("server.crt"), CERTS.path("server.key")
    fails(["-Z"], 2, "needs a certificate")
    fails(["-Z", "-o", "ssl_chain_cert=%s,ssl_verify_mode=7" % crt], 2, "ssl_verify_mode")
    fails(["-Z", "-o", "ssl_chain_cert=%s,ssl_min_version=tlsv1.0" % crt], 2, "ssl_min_version")
    fails(["-Z", "-o", "ssl_chain_cert=/nonexistent.pem"], 1, "/nonexistent.pem")
    fails(["-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s" % (crt, CERTS.path("client.key"))], 1,
          "does not match")
    fails(["-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s,ssl_verify_mode=2" % (crt, key)], 1,
          "needs ssl_ca_cert")
    fails(["-o", "no_such_option=1"], 2, "no_such_option")
    fails(["-l", "notls:127.0.0.1"], 2, "notls")

def mapped(server):
    with open("/proc/%d/maps" % server.proc.pid) as f:
        return {os.path.basename(line.split()[-1]) for line in f if "/" in line}


def test_openssl_is_opened_only_for_tls_or_auth():
    """Without -Z or -Y a node maps neither libssl nor libcrypto (1.7 MB of its RSS); with
    either it opens them and works (common/net/openssl_api.h)."""
    with Server("-t", "1") as s:
        libs = mapped(s)
        check(not any(n.startswith(("libssl", "libcrypto")) for n in libs),
              "a plaintext node maps %s" % sorted(n for n in libs if "ssl" in n or "crypto" in n))
    with Server(*tls_args()) as s:
        libs = mapped(s)
        check("libssl.so.3" in libs and "libcrypto.so.3" in libs, "a TLS node opened OpenSSL")
        check(stats(s)["ssl_handshake_errors"] == "0", "and serves over TLS")
    with open(CERTS.path("auth.txt"), "w") as f:
        f.write("user:secret\n")
    with Server("-t", "1", "-Y", CERTS.path("auth.txt")) as s:
        check("libcrypto.so.3" in mapped(s), "a node with an auth file opened OpenSSL")
        c = s.connect()
        c.send(b"set a 0 0 11\r\nuser secret\r\n")
        check(c.line() == b"STORED", "and authenticates")


if __name__ == "__main__":
    try:
        run([test_pymemcache_over_tls, test_versions_and_sni, test_verify_modes_and_mutual_tls,
             test_client_side_refusals, test_plaintext_client_and_notls_listener,
             test_handshake_timeout_and_flood, test_refresh_certs_and_sighup,
             test_bad_tls_flags, test_openssl_is_opened_only_for_tls_or_auth])
    finally:
        CERTS.close()
