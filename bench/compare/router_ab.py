"""Two cacherouter binaries side by side under memtier_benchmark: the same 2 cacheserver
nodes, the same config, alternating runs. For "within 5% of before" checks.

    /usr/bin/python3 bench/compare/router_ab.py --memtier PATH --before OLD_ROUTER
        [--after NEW_ROUTER] [--seconds 5] [--rounds 3] [--extra 'read_verify: true']
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import memcached_compare  # noqa: E402
from memcached_compare import Proc, free_port, programs  # noqa: E402
from router_compare import router_yaml, write_temp  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memtier", required=True)
    ap.add_argument("--before", required=True, help="the cacherouter binary to compare with")
    ap.add_argument("--after", help="default: this build's cacherouter")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--extra", action="append", default=[],
                    help="'key: value' added to the after router's config")
    ap.add_argument("--replicas", type=int, default=1, help="replicas per shard (2 shards)")
    args = ap.parse_args()
    server, router = programs("cacheserver", "cacherouter")
    after = args.after or router
    procs, files = [], []
    try:
        nodes = []
        for _ in range(2 * args.replicas):
            p = free_port()
            nodes.append(Proc("cacheserver", [server, "-p", str(p), "-l", "127.0.0.1", "-t",
                                              "1", "-m", "1024", "-c", "4096"], p))
            procs.append(nodes[-1])
        shards = [[n.port for n in nodes[i::2]] for i in range(2)]
        routers = {}
        for name, binary, extra in (("before", args.before, []), ("after", after, args.extra)):
            port = free_port()
            kv = dict(e.split(": ", 1) for e in extra)
            cfg = write_temp(router_yaml(port, shards, 1, **kv), ".yaml")
            files.append(cfg)
            routers[name] = Proc(name, [binary, "-c", cfg], port)
            procs.append(routers[name])
        mt = ["--protocol=memcache_text"]
        memcached_compare.cachebench(args.memtier, routers["before"].port,
                                     mt + ["-t", "1", "-c", "4", "--ratio", "1:0",
                                           "--key-pattern", "P:P", "-n", "25000"])
        res = {}
        for pipeline in (1, 16):
            for rnd in range(args.rounds):
                order = ["before", "after"] if rnd % 2 == 0 else ["after", "before"]
                for name in order:
                    st = memcached_compare.cachebench(
                        args.memtier, routers[name].port,
                        mt + ["-t", "1", "-c", "50", "--ratio", "1:10", "--pipeline",
                              str(pipeline)], args.seconds)
                    res.setdefault((name, pipeline), []).append(st["Totals"]["Ops/sec"])
        print("| pipeline | before ops/s | after ops/s (%s) | after / before |" % (
            ", ".join(args.extra) or "same config"))
        print("|---|---|---|---|")
        for pipeline in (1, 16):
            b = sum(res[("before", pipeline)]) / args.rounds
            a = sum(res[("after", pipeline)]) / args.rounds
            print("| %d | %.0f | %.0f | %.3f |" % (pipeline, b, a, a / b))
        print("raw:", res)
    finally:
        for p in procs:
            p.stop()
        for f in files:
            os.unlink(f)


if __name__ == "__main__":
    main()
