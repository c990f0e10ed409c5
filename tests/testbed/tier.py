"""A tier on the test bed: cache nodes and routers, each on its own host, configured by host
name. Used by the consistency scenarios.

    with Tier(nodes=["x", "y"], routers=["a", "b"]) as t:
        app = t.client("a")            # an app on host a, through the router there
        t.node("x").pause()
        t.bed.cut("a", "x")
"""
import os
import tempfile

from checker import Client
from netbed import Bed, wait_tcp

SERVER = os.environ.get("CACHESERVER_BIN", "cacheserver")
ROUTER = os.environ.get("CACHEROUTER_BIN", "cacherouter")
NODE_PORT = 11211
ROUTER_PORT = 22121
# Under sanitizers every process is several times slower.
SANITIZED = os.environ.get("CACHETIER_SANITIZED", "")


class Tier:
    def __init__(self, nodes, routers, shards=None, memcached=False, node_args=(),
                 **settings):
        """shards: list of replica host lists (default: one shard of every node)."""
        self.node_hosts, self.router_hosts = list(nodes), list(routers)
        self.shards = shards or [list(nodes)]
        self.memcached = memcached
        self.node_args = list(node_args)
        self.settings = {"timeout_ms": 100, "failure_limit": 2, "retry_ms": 50,
                         "retry_max_ms": 200, "threads": 1}
        if memcached:
            self.settings["backend_protocol"] = "memcache"
        self.settings.update(settings)
        self.bed = Bed(self.node_hosts + self.router_hosts)
        self.nodes, self.routers = {}, {}
        self.config_path = None

    def __enter__(self):
        self.bed.__enter__()
        try:
            self.config_path = self._write_config()
            for h in self.node_hosts:
                self.nodes[h] = self._start_node(h)
            for h in self.node_hosts:
                if not wait_tcp(self.bed, h, "127.0.0.1", NODE_PORT):
                    raise RuntimeError("node %s did not start:\n%s" % (
                        h, self.nodes[h].output()))
            for h in self.router_hosts:
                self.start_router(h)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.bed.close()
        if self.config_path and os.path.exists(self.config_path):
            os.unlink(self.config_path)

    def _write_config(self):
        lines = ["listen: 0.0.0.0:%d" % ROUTER_PORT]
        lines += ["%s: %s" % kv for kv in self.settings.items()]
        lines.append("shards:")
        for i, reps in enumerate(self.shards):
            lines.append("  - name: s%d" % i)
            lines.append("    replicas: [%s]" % ", ".join("%s:%d" % (h, NODE_PORT) for h in reps))
        f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        f.write("\n".join(lines) + "\n")
        f.close()
        return f.name

    def _start_node(self, h):
        if self.memcached:
            argv = ["memcached", "-p", str(NODE_PORT), "-U", "0", "-l", "0.0.0.0", "-t", "1",
                    "-m", "64", "-u", "root"]
        else:
            memory = [] if "-m" in self.node_args else ["-m", "64"]
            argv = [SERVER, "-p", str(NODE_PORT), "-l", "0.0.0.0", "-t", "1"] + memory
        return self.bed.spawn(h, argv + self.node_args, name="node-" + h)

    def start_router(self, h):
        p = self.bed.spawn(h, [ROUTER, "-c", self.config_path], name="router-" + h)
        self.routers[h] = p
        if not wait_tcp(self.bed, h, "127.0.0.1", ROUTER_PORT):
            raise RuntimeError("router %s did not start:\n%s" % (h, p.output()))
        return p

    def wait_router(self, h):
        if not wait_tcp(self.bed, h, "127.0.0.1", ROUTER_PORT):
            raise RuntimeError("router %s did not come up:\n%s" % (h, self.routers[h].output()))

    def restart_router(self, h):
        self.routers[h].kill()
        self.routers[h].start()
        self.wait_router(h)

    def restart_node(self, h):
        self.nodes[h].kill()
        self.nodes[h].start()
        if not wait_tcp(self.bed, h, "127.0.0.1", NODE_PORT):
            raise RuntimeError("node %s did not restart" % h)

    def node(self, h):
        return self.nodes[h]

    def client(self, router_host, timeout=2.0):
        """An app on `router_host`, talking to the router there."""
        return Client(self.bed, router_host, ROUTER_PORT, timeout=timeout)

    def direct(self, node_host, from_host=None, timeout=2.0):
        """A client of one node (to look at what it holds)."""
        src = from_host or node_host
        return Client(self.bed, src, NODE_PORT, addr=(
            "127.0.0.1" if src == node_host else self.bed.addr(node_host)), timeout=timeout)
