"""The test bed itself: hosts reach each other by address and by name, every fault does what
it says and is undone, and close() leaves nothing behind. Root only (CI runs as root); without
root or namespaces it fails with the reason. Run with Debian's /usr/bin/python3."""
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netbed import Bed, wait_tcp  # noqa: E402

SERVER = os.environ.get("CACHESERVER_BIN", "cacheserver")
PORT = 11211


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def reaches(bed, src, dst, timeout=0.5):
    """True when a client in `src` gets an answer from the cacheserver in `dst`."""
    with bed.inside(src):
        s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((bed.addr(dst), PORT))
        s.sendall(b"version\r\n")
        return s.recv(100).startswith(b"VERSION")
    except OSError:
        return False
    finally:
        s.close()


def transfer_seconds(bed, src, dst, nbytes):
    """Time for `src` to store an nbytes value on `dst` and read it back."""
    with bed.inside(src):
        s = socket.socket()
    s.settimeout(30)
    s.connect((bed.addr(dst), PORT))
    value = b"v" * nbytes
    t0 = time.monotonic()
    s.sendall(b"set big 0 0 %d\r\n" % nbytes + value + b"\r\n")
    buf = b""
    while b"STORED\r\n" not in buf:
        buf += s.recv(4096)
    s.sendall(b"get big\r\n")
    buf = b""
    while not buf.endswith(b"END\r\n"):
        chunk = s.recv(65536)
        check(chunk, "closed during the transfer")
        buf += chunk
    s.close()
    return time.monotonic() - t0


def main():
    bed = Bed(["a", "b", "c"])
    with bed:
        nodes = {h: bed.spawn(h, [SERVER, "-p", str(PORT), "-l", "0.0.0.0", "-t", "1",
                                  "-m", "64"]) for h in ("b", "c")}
        for h in nodes:
            check(wait_tcp(bed, "a", bed.addr(h), PORT), "cacheserver in %s did not come up:\n%s"
                  % (h, nodes[h].output()))
        check(reaches(bed, "a", "b") and reaches(bed, "c", "b"), "hosts reach each other")
        # Names resolve through /etc/netns/NS/hosts for programs started in a host.
        out = bed.exec("a", "getent", "hosts", "b")
        check(out.split()[0] == bed.addr("b"), "b resolves to its address in a: %r" % out)
        # Nothing of the bed is in the machine's own namespace (no address, no link).
        check("10.231.0." not in sh_out("ip", "-o", "addr"), "no bed address in the root ns")
        print("  3 hosts, names resolve, the root namespace holds none of the bed")

        bed.cut("a", "b")
        check(not reaches(bed, "a", "b"), "cut: a no longer reaches b")
        check(reaches(bed, "c", "b"), "cut: c still reaches b")
        check(reaches(bed, "a", "c"), "cut: a still reaches c")
        bed.mend("a", "b")
        check(reaches(bed, "a", "b"), "mended")
        print("  cut a -/- b: a-b silent, c-b and a-c fine; mended")

        bed.isolate("b")
        check(not reaches(bed, "a", "b") and not reaches(bed, "c", "b"), "isolated")
        check(reaches(bed, "a", "c"), "the others still talk")
        bed.heal("b")
        check(reaches(bed, "a", "b") and reaches(bed, "c", "b"), "healed")
        print("  isolate b: nobody reaches it; healed")

        bed.link_down("b")
        check(not reaches(bed, "a", "b"), "link down")
        bed.link_up("b")
        ok = any(reaches(bed, "a", "b") or time.sleep(0.1) for _ in range(50))
        check(ok, "link up again")
        print("  link down and up")

        fast = transfer_seconds(bed, "a", "b", 200_000)
        bed.throttle("b", 1000)  # 1 Mbit/s: 400 KB of traffic takes >= ~3 s
        slow = transfer_seconds(bed, "a", "b", 200_000)
        bed.unthrottle("b")
        again = transfer_seconds(bed, "a", "b", 200_000)
        check(slow > 2.0 and fast < 1.0 and again < 1.0,
              "tbf limits the link: %.2fs / %.2fs / %.2fs" % (fast, slow, again))
        print("  200 KB there and back: %.3f s, throttled to 1 Mbit/s %.2f s, after %.3f s"
              % (fast, slow, again))

        nodes["b"].pause()
        check(not reaches(bed, "a", "b"), "a paused node does not answer")
        nodes["b"].resume()
        check(reaches(bed, "a", "b", timeout=2), "resumed")
        nodes["b"].kill()
        check(not reaches(bed, "a", "b"), "killed")
        nodes["b"].start()
        check(wait_tcp(bed, "a", bed.addr("b"), PORT), "restarted")
        print("  SIGSTOP/SIGCONT, kill -9, restart")

        # Threads in different hosts at once (the checker's readers and writers do this).
        results = []

        def probe(src):
            results.append(reaches(bed, src, "c"))
        ts = [threading.Thread(target=probe, args=(h,)) for h in ("a", "b") * 4]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(results == [True] * 8, "threads in two hosts at once: %r" % results)
    left = bed.leftovers()
    check(left == [], "close() left %r" % left)
    print("  closed: no namespace, /etc/netns entry or process left")


def sh_out(*argv):
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


if __name__ == "__main__":
    main()
    print("ok")
