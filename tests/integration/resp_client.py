"""A raw RESP client for the tests: encode a command, read exactly one reply's bytes (RESP2 or
RESP3, aggregates included). Standard library only."""
import socket


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port, timeout=10, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        d = self.sock.recv(1 << 16)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def _line(self, at):
        while True:
            i = self.buf.find(b"\r\n", at)
            if i >= 0:
                return i
            self._fill()

    def _parse(self, at):
        """Returns the end offset of the reply starting at `at` (reading more as needed)."""
        eol = self._line(at)
        t = self.buf[at:at + 1]
        head = self.buf[at + 1:eol]
        end = eol + 2
        if t in (b"$", b"=", b"!"):
            n = int(head)
            if n < 0:
                return end
            while len(self.buf) < end + n + 2:
                self._fill()
            return end + n + 2
        if t in (b"*", b"~", b">", b"%"):
            n = int(head)
            if t == b"%":
                n *= 2
            for _ in range(max(n, 0)):
                end = self._parse(end)
            return end
        return end

    def reply(self):
        """The raw bytes of one reply."""
        end = self._parse(0)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def call(self, *args):
        self.sock.sendall(encode(*args))
        return self.reply()

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_until_close(self, limit=1 << 20):
        """Everything until the peer closes (for protocol errors)."""
        while len(self.buf) < limit:
            try:
                d = self.sock.recv(1 << 16)
            except socket.timeout:
                break
            if not d:
                break
            self.buf += d
        out, self.buf = self.buf, b""
        return out
