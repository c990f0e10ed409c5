"""Differential tests of the memcache text protocol (classic and meta): seeded random command
streams (differential.py) go to stock memcached and to cachetier, and every reply must match
byte for byte once CAS values are named by identity. Each server is started here on an
ephemeral loopback port and stopped by pid. Run with /usr/bin/python3."""
import os
import subprocess

from differential import Target, run_stream
from harness import SANITIZED, Router, Server, check, free_port, router_config, run, wait_port

OPS = int(os.environ.get("DIFFERENTIAL_OPS", "6000"))
SEEDS = (11, 12)  # two streams of OPS operations each per comparison


class Memcached:
    """Debian's memcached 1.6 on an ephemeral port, one thread, without its background LRU
    threads: with them, whether an incr rewrites the item in place (keeping its fetched and
    win marks and padding the number with spaces) depends on whether the crawler or the
    maintainer holds the item at that instant, so the same stream could be answered two ways."""

    def __init__(self):
        self.port = free_port()
        argv = ["memcached", "-p", str(self.port), "-U", "0", "-l", "127.0.0.1", "-t", "1",
                "-o", "no_lru_crawler,no_lru_maintainer"]
        if os.getuid() == 0:
            argv += ["-u", "root"]
        self.proc = subprocess.Popen(argv)
        if not wait_port(self.port):
            self.proc.kill()
            raise RuntimeError("memcached did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def compare(reference_port, port, name, extended=False, ops=OPS):
    total, bad = 0, 0
    for seed in SEEDS:
        targets = [Target("reference", reference_port), Target(name, port)]
        try:
            n, m = run_stream(targets, seed, ops // (3 if SANITIZED else 1), extended=extended)
        finally:
            for t in targets:
                t.close()
        total += n
        bad += m
    print("  %s: %d operations, %d mismatches" % (name, total, bad))
    check(bad == 0, "%d of %d replies differ from the reference" % (bad, total))


def test_cacheserver_answers_as_memcached():
    mc = Memcached()
    try:
        with Server("-t", "2") as node:
            compare(mc.port, node.port, "cacheserver")
    finally:
        mc.stop()


def tier():
    """cacherouter over 2 shards x 2 replicas of cacheserver, reads spread round robin."""
    nodes = [Server("-t", "1") for _ in range(4)]
    router = Router(router_config([nodes[0:2], nodes[2:4]], read_policy="round_robin"))
    return nodes, router


def test_cacherouter_answers_as_memcached():
    mc = Memcached()
    nodes, router = tier()
    try:
        compare(mc.port, router.port, "cacherouter (2 shards x 2 replicas)")
        st = router.stats()
        check(all(st["node:127.0.0.1:%d:state" % n.port] == "up" for n in nodes), "nodes up")
    finally:
        mc.stop()
        router.stop()
        for n in nodes:
            n.stop()


def test_cacherouter_answers_as_cacheserver_with_newer_flags():
    """Flags of memcached releases after 1.6.18 that cacheserver has (ms N, ma T, E, md x):
    through the router they answer as a single cacheserver does."""
    nodes, router = tier()
    try:
        with Server("-t", "1") as single:
            compare(single.port, router.port, "cacherouter vs cacheserver, newer flags",
                    extended=True)
    finally:
        router.stop()
        for n in nodes:
            n.stop()


if __name__ == "__main__":
    run([test_cacheserver_answers_as_memcached, test_cacherouter_answers_as_memcached,
         test_cacherouter_answers_as_cacheserver_with_newer_flags])
