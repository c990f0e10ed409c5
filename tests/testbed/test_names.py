"""Host names in the router's config, on the test bed: a name resolves (IPv4 and IPv6), a node
replaced under the same name at a new address is found again after the old one dies, a name
that does not resolve is an error at --check-config and a counted, retried failure at run
time. Root only (network namespaces). Run with Debian's /usr/bin/python3."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checker import Client, until  # noqa: E402
from netbed import Bed, wait_tcp  # noqa: E402

SERVER = os.environ.get("CACHESERVER_BIN", "cacheserver")
ROUTER = os.environ.get("CACHEROUTER_BIN", "cacherouter")
NODE_PORT, R1, R2 = 11211, 22122, 22123


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def config(port, replicas):
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    f.write("listen: 0.0.0.0:%d\nthreads: 1\ntimeout_ms: 200\nretry_ms: 50\nretry_max_ms: 200\n"
            "shards:\n  - name: s0\n    replicas: [%s]\n" % (port, ", ".join(replicas)))
    f.close()
    return f.name


def main():
    files = []
    bed = Bed(["r", "x", "y"])
    try:
        with bed:
            nodes = {h: bed.spawn(h, [SERVER, "-p", str(NODE_PORT), "-l", "::", "-t", "1",
                                      "-m", "64"]) for h in ("x", "y")}
            for h in nodes:
                check(wait_tcp(bed, "r", bed.addr(h), NODE_PORT), "node %s up" % h)
            bed.rename("r", "node", "x")  # "node" is x, as far as host r knows

            # --check-config resolves every name; one that does not is an exit 2 naming it.
            bad = config(R1, ["node:%d" % NODE_PORT, "ghost:%d" % NODE_PORT])
            files.append(bad)
            r = subprocess.run(["ip", "netns", "exec", bed.ns("r"), ROUTER, "-c", bad,
                                "--check-config"], capture_output=True, text=True, timeout=30)
            check(r.returncode == 2 and "'ghost:11211' does not resolve" in r.stderr,
                  "check-config: %d %r" % (r.returncode, r.stderr))
            good = config(R1, ["node:%d" % NODE_PORT])
            files.append(good)
            r = subprocess.run(["ip", "netns", "exec", bed.ns("r"), ROUTER, "-c", good,
                                "--check-config"], capture_output=True, text=True, timeout=30)
            check(r.returncode == 0, "check-config of names that resolve: %r" % r.stderr)
            print("  --check-config: 'ghost' refused (exit 2, named), 'node' accepted")

            # A node by name; then the name moves to another node and the first one dies.
            bed.spawn("r", [ROUTER, "-c", good], name="router1")
            check(wait_tcp(bed, "r", "127.0.0.1", R1), "router up")
            app = Client(bed, "r", R1)
            check(until(lambda: app.set(b"k1", b"on-x") is None), "a write through the name")
            check(app.get(b"k1") == b"on-x", "read back")
            on_x = Client(bed, "r", NODE_PORT, addr=bed.addr("x"))
            check(on_x.get(b"k1") == b"on-x", "the write landed on x")
            bed.rename("r", "node", "y")
            nodes["x"].kill()
            check(until(lambda: app.set(b"k2", b"on-y") is None),
                  "writes go on once the name points at y")
            on_y = Client(bed, "r", NODE_PORT, addr=bed.addr("y"))
            check(on_y.get(b"k2") == b"on-y", "the write after the move landed on y")
            print("  'node' moved from x to y and x killed: the router reconnected to y")

            # IPv6 by name, and a name that never resolves: counted, retried, nothing else hurt.
            mixed = config(R2, ["y6:%d" % NODE_PORT, "ghost:%d" % NODE_PORT])
            files.append(mixed)
            router2 = bed.spawn("r", [ROUTER, "-c", mixed], name="router2")
            check(wait_tcp(bed, "r", "127.0.0.1", R2), "router 2 up")
            app2 = Client(bed, "r", R2)
            check(until(lambda: app2.set(b"k6", b"v6") is None), "a write over IPv6 by name")
            check(app2.get(b"k6") == b"v6", "read back over IPv6")
            check(on_y.get(b"k6") == b"v6", "it landed on y")
            st = {}

            def counted():
                st.update(app2.stats())
                return int(st.get("node:ghost:11211:resolve_failures", 0)) >= 2
            check(until(counted),
                  "resolve failures counted and retried")
            check(st["node:y6:11211:state"] == "up", "y6 up: %r" % st["node:y6:11211:state"])
            check("does not resolve" in router2.output(), "logged at start: %r" %
                  router2.output())
            print("  y6 (IPv6) served; ghost: %s resolve failures, state %s" % (
                st["node:ghost:11211:resolve_failures"], st["node:ghost:11211:state"]))
        left = bed.leftovers()
        check(left == [], "left behind: %r" % left)
    finally:
        for f in files:
            os.unlink(f)


if __name__ == "__main__":
    main()
    print("ok")
