"""TLS test material. Certs: certificates made by the test with the openssl CLI in a
temporary directory (no private key is committed): a CA, a server certificate for localhost
and 127.0.0.1, a client certificate from the same CA, a second CA nobody trusts with a client
certificate of its own, and an expired server certificate. tls_context and TlsLineConn: a
Python ssl client of memcache text."""
import os
import socket
import ssl
import subprocess
import tempfile


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class Certs:
    def __init__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="ctcerts")
        d = self.dir = self._dir.name
        for ca in ("ca", "other_ca"):
            _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", ca + ".key", "-out", ca + ".crt", "-days", "2",
                     "-subj", "/CN=cachetier test " + ca, cwd=d)
        self.issue("server", "localhost", "ca", san="DNS:localhost,IP:127.0.0.1")
        self.issue("server2", "localhost", "ca", san="DNS:localhost,IP:127.0.0.1")
        self.issue("client", "router", "ca")
        self.issue("stranger", "stranger", "other_ca")
        self.issue("expired", "localhost", "ca", san="DNS:localhost,IP:127.0.0.1", days=-1)

    def issue(self, name, cn, ca, san=None, days=2):
        d = self.dir
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            if san:
                f.write("subjectAltName=%s\n" % san)
        args = ["x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                "-CAcreateserial", "-out", name + ".crt", "-extfile", ext]
        # days < 0: not-after lies in the past (OpenSSL 3.0 takes a negative -days).
        args += ["-days", str(days)]
        _openssl(*args, cwd=d)

    def path(self, name):
        return os.path.join(self.dir, name)

    def close(self):
        self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def tls_context(certs, ca="ca", cert=None, check_name=True):
    """A client context trusting `ca`, presenting `cert` if given."""
    ctx = ssl.create_default_context(cafile=certs.path(ca + ".crt"))
    ctx.check_hostname = check_name
    if cert:
        ctx.load_cert_chain(certs.path(cert + ".crt"), certs.path(cert + ".key"))
    return ctx


class TlsLineConn:
    """A TLS connection with line reads (memcache text)."""

    def __init__(self, port, ctx, host="localhost", timeout=10):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=host)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, text):
        self.sock.sendall(text)
        return self.line()

    def roundtrip(self, key, value):
        if self.cmd(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value)) != b"STORED":
            raise AssertionError("set over TLS")
        self.sock.sendall(b"get %s\r\n" % key)
        if not self.line().startswith(b"VALUE " + key) or self.line() != value:
            raise AssertionError("get over TLS")
        if self.line() != b"END":
            raise AssertionError("END over TLS")

    def peer_der(self):
        return self.sock.getpeercert(binary_form=True)

    def close(self):
        self.sock.close()
