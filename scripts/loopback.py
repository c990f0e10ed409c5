"""Loopback helpers shared by scripts/, bench/compare/ and tests/integration/: ports on
127.0.0.1 and a memcache `stats` reader (cacheserver, memcached and cacherouter answer it).
Standard library only; import it after putting this folder on sys.path."""
import socket
import time


def free_port():
    """A port the kernel just handed out on 127.0.0.1 (free now; bind it soon)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_free(port):
    """True when `port` can be bound on 127.0.0.1."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_port(port, timeout=10):
    """True once something accepts connections on 127.0.0.1:port, False after `timeout` s."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stats(port, arg=""):
    """`stats [arg]` over memcache text, as a dict of name -> value (strings)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(("stats %s" % arg).strip().encode() + b"\r\n")
        buf = b""
        while not buf.endswith(b"END\r\n"):
            d = s.recv(1 << 16)
            if not d:
                break
            buf += d
    finally:
        s.close()
    out = {}
    for line in buf.decode().split("\r\n"):
        if line.startswith("STAT "):
            _, k, v = line.split(" ", 2)
            out[k] = v
    return out
