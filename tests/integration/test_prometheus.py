"""A real Prometheus (Debian's package, started here on loopback, scraping every second)
scrapes a cacheserver and a cacherouter while cachebench loads each; its HTTP query API gives
the get count cachebench sent and a rate() within 10% of cachebench's. cachebench offers a
fixed rate (--rate-limiting), so a window inside the run sees the rate cachebench reports
however busy the machine is. Run with /usr/bin/python3."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from harness import Router, Server, check, free_port
from test_metrics import metrics_port, router_config

BENCH = os.environ.get("CACHEBENCH_BIN", "cachebench")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class Prometheus:
    """A real Prometheus scraping `targets` ({job: "host:port"}) every second."""

    def __init__(self, targets):
        self.dir = tempfile.mkdtemp(prefix="prom-")
        cfg = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 900ms", "scrape_configs:"]
        for job, addr in targets.items():
            cfg += ["  - job_name: %s" % job, "    static_configs:",
                    "      - targets: ['%s']" % addr]
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.port = free_port()
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + os.path.join(self.dir, "prometheus.yml"),
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port], stdout=self.log,
            stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port,
                                            timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError("prometheus did not become ready")

    def query(self, expr, at=None):
        q = {"query": expr}
        if at is not None:
            q["time"] = "%.3f" % at
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (self.port, urllib.parse.urlencode(q))
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        check(body["status"] == "success", "query %s: %s" % (expr, body))
        return body["data"]["result"]

    def value(self, expr, at=None):
        res = self.query(expr, at)
        check(len(res) == 1, "query %s: %d series, expected 1: %s" % (expr, len(res), res))
        return float(res[0]["value"][1])

    def targets_up(self):
        res = self.query("up")
        return {r["metric"]["job"]: float(r["value"][1]) for r in res}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def bench(port, seconds, out, rate):
    return subprocess.Popen(
        [BENCH, "-s", "127.0.0.1", "-p", str(port), "-P", "memcache_text", "-t", "1", "-c", "4",
         "--pipeline", "16", "--rate-limiting", str(rate),
         "--ratio", "1:9", "--key-maximum", "5000", "--test-time", str(seconds),
         "--json-out-file", out, "--hide-histogram"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_prometheus_scrapes_under_load():
    """A real Prometheus scrapes a node and a router while cachebench loads each; the rate of
    get commands it computes is within 10% of what cachebench reported."""
    seconds = 8
    with Server("-t", "1", "--metrics-port", "0") as s, \
            Server("-t", "1") as n1, Server("-t", "1") as n2:
        with Router(router_config([n1, n2])) as r:
            targets = {"node": "127.0.0.1:%d" % metrics_port(s.banner),
                       "router": "127.0.0.1:%d" % metrics_port(r.banner)}
            with Prometheus(targets) as prom:
                deadline = time.time() + 30
                while time.time() < deadline and prom.targets_up() != {"node": 1, "router": 1}:
                    time.sleep(0.5)
                check(prom.targets_up() == {"node": 1, "router": 1},
                      "both targets up: %s" % prom.targets_up())
                outs = [tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
                        for _ in range(2)]
                node_q = 'sum(memcached_commands_total{job="node",command="get"})'
                router_q = 'sum(cachetier_router_commands_total{job="router",command="get"})'
                time.sleep(1.5)  # a scrape of the idle counters
                before = (prom.value(node_q), prom.value(router_q))
                try:
                    start = time.time()
                    # Each 20 ms burst fits in the pipeline: the offered rate holds even when
                    # a busy machine stretches round trips.
                    runs = [bench(s.port, seconds, outs[0], 800),
                            bench(r.port, seconds, outs[1], 400)]
                    for p in runs:
                        _, err = p.communicate(timeout=seconds + 60)
                        check(p.returncode == 0, "cachebench: %d %s" % (p.returncode, err))
                    end = time.time()
                    reports = []
                    for o in outs:
                        with open(o) as f:
                            reports.append(json.load(f)["ALL STATS"])
                finally:
                    for o in outs:
                        os.unlink(o)
                time.sleep(2.5)  # the last scrapes of the run
                # Every get cachebench sent is counted (the router's own probes are not).
                for what, q, b, rep in (("node", node_q, before[0], reports[0]),
                                        ("router", router_q, before[1], reports[1])):
                    n = prom.value(q) - b
                    print("%s: %d gets counted, cachebench sent %d" % (what, n,
                                                                       rep["Gets"]["Count"]))
                    check(abs(n - rep["Gets"]["Count"]) <= 0.01 * rep["Gets"]["Count"],
                          "%s: %d gets counted, cachebench sent %d" % (what, n,
                                                                      rep["Gets"]["Count"]))
                # Prometheus's rate() over the steady part of the run (its first 2.5 s and
                # last 1.5 s left out) against cachebench's ops/s at its fixed offered rate.
                at = end - 1.5
                window = "[%dms]" % int((at - start - 2.5) * 1000)
                for what, expr, rep in (
                        ("node", 'sum(rate(memcached_commands_total{job="node",command="get"}'
                         '%s))' % window, reports[0]),
                        ("router", 'sum(rate(cachetier_router_commands_total{job="router",'
                         'command="get"}%s))' % window, reports[1])):
                    rate = prom.value(expr, at)
                    want = rep["Gets"]["Ops/sec"]
                    print("%s gets/s: prometheus rate %.0f over %s, cachebench %.0f"
                          % (what, rate, window, want))
                    check(abs(rate - want) <= 0.1 * want,
                          "%s: prometheus %.0f/s vs cachebench %.0f/s" % (what, rate, want))
                sets = prom.value('sum(rate(memcached_commands_total{job="node",'
                                  'command="set"}%s))' % window, at)
                want = reports[0]["Sets"]["Ops/sec"]
                check(abs(sets - want) <= 0.1 * want, "node sets %.0f/s vs %.0f/s" % (sets, want))
                p99 = prom.value('histogram_quantile(0.99, sum by (le) (rate('
                                 'cachetier_request_duration_seconds_bucket{family="get"}%s)))'
                                 % window, at)
                check(0 < p99 < 0.1, "node get p99 %.6f s" % p99)
                bp99 = prom.value('histogram_quantile(0.99, sum by (le) (rate('
                                  'cachetier_router_backend_request_duration_seconds_bucket%s)))'
                                  % window, at)
                check(0 < bp99 < 0.25, "router backend p99 %.6f s" % bp99)
                up = prom.query("cachetier_router_node_up")
                check(len(up) == 2 and all(float(x["value"][1]) == 1 for x in up),
                      "two nodes up: %s" % up)
                check(prom.value('memcached_current_items{job="node"}') > 0, "items")
                print("node get p99 %.1f us, router backend p99 %.1f us" % (p99 * 1e6,
                                                                           bp99 * 1e6))


if __name__ == "__main__":
    test_prometheus_scrapes_under_load()
    print("ok")
