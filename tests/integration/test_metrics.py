"""Prometheus metrics: cacheserver --metrics-port and cacherouter metrics_listen serve every
documented name (docs/metrics.md) with values that follow what was done, and `promtool check
metrics` accepts both. A real Prometheus scraping them under load: test_prometheus.py.
Run with /usr/bin/python3."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

from harness import Router, Server, check

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def metrics_port(banner):
    m = re.search(r"metrics [^ ]*:(\d+)", banner)
    assert m, "no metrics endpoint in the banner: %r" % banner
    return int(m.group(1))


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        check(r.status == 200, "GET /metrics: %d" % r.status)
        return r.read().decode()


def samples(text):
    """{'name{labels}': value} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def promtool_ok(text, what):
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 0, "promtool check metrics on %s: %d %s%s" % (
        what, p.returncode, p.stdout, p.stderr))


def expect(conn, data):
    got = conn.exact(len(data))
    check(got == data, "reply %r, expected %r" % (got, data))


def router_config(nodes, extra=""):
    reps = ", ".join("127.0.0.1:%d" % n.port for n in nodes)
    return ("listen: 127.0.0.1:0\nmetrics_listen: 127.0.0.1:0\nthreads: 2\n%s"
            "shards:\n  - name: s0\n    replicas: [%s]\n" % (extra, reps))


def test_names_and_promtool():
    """memcached_exporter's names on the node, the router's per shard and node, both accepted
    by promtool; the values follow what was done."""
    with Server("-t", "2", "--metrics-port", "0") as s:
        c = s.connect()
        c.send(b"set a 0 0 1\r\nb\r\nget a\r\nget nope\r\ndelete nope\r\n")
        expect(c, b"STORED\r\nVALUE a 0 1\r\nb\r\nEND\r\nEND\r\nNOT_FOUND\r\n")
        text = scrape(metrics_port(s.banner))
        promtool_ok(text, "cacheserver")
        v = samples(text)
        for name in ("memcached_up", "memcached_uptime_seconds", "memcached_current_items",
                     "memcached_items_total", "memcached_items_evicted_total",
                     "memcached_items_reclaimed_total", "memcached_current_bytes",
                     "memcached_limit_bytes", "memcached_current_connections",
                     "memcached_connections_total", "memcached_connections_rejected_total",
                     "memcached_max_connections", "memcached_read_bytes_total",
                     "memcached_written_bytes_total", "memcached_process_user_cpu_seconds_total",
                     "memcached_process_system_cpu_seconds_total",
                     "cachetier_memory_charged_bytes", "process_resident_memory_bytes"):
            check(name in v, "cacheserver: no %s" % name)
        check(v["memcached_up"] == 1, "up")
        check(v['memcached_version{version="%s"}' % s.stats()["version"]] == 1, "version label")
        check(v['memcached_commands_total{command="get",status="hit"}'] == 1, "get hit")
        check(v['memcached_commands_total{command="get",status="miss"}'] == 1, "get miss")
        check(v['memcached_commands_total{command="set",status="hit"}'] == 1, "set")
        check(v['memcached_commands_total{command="delete",status="miss"}'] == 1, "delete miss")
        check(v["memcached_current_items"] == 1, "one item")
        check(v["memcached_limit_bytes"] == 64 << 20, "limit")
        check(v["memcached_current_connections"] >= 1, "this connection")
        check(v['cachetier_request_duration_seconds_count{family="get"}'] == 2, "two gets timed")
        check(v['cachetier_request_duration_seconds_count{family="delete"}'] == 1, "one delete")
        check(any(k.startswith("cachetier_class_pages{") for k in v), "per class pages")
        c.close()

        with Server("-t", "1") as n1, Server("-t", "1") as n2:
            with Router(router_config([n1, n2])) as r:
                c = r.connect()
                c.send(b"set a 0 0 1\r\nb\r\nget a\r\n")
                expect(c, b"STORED\r\nVALUE a 0 1\r\nb\r\nEND\r\n")
                text = scrape(metrics_port(r.banner))
                promtool_ok(text, "cacherouter")
                v = samples(text)
                for n in (n1, n2):
                    lab = 'shard="s0",node="127.0.0.1:%d"' % n.port
                    check(v["cachetier_router_node_up{%s}" % lab] == 1, "node up")
                    check(v['cachetier_router_node_state{%s,state="up"}' % lab] == 1, "state")
                    check(v['cachetier_router_node_state{%s,state="down"}' % lab] == 0, "state")
                    check(v["cachetier_router_node_requests_total{%s}" % lab] >= 1, "requests")
                    check(v["cachetier_router_backend_request_duration_seconds_count{%s}" % lab]
                          >= 1, "backend latency")
                    for k in ("errors", "timeouts", "failovers", "markdowns", "repairs",
                              "backfills"):
                        check("cachetier_router_node_%s_total{%s}" % (k, lab) in v, k)
                check(v['cachetier_router_commands_total{command="get",status="hit"}'] == 1, "hit")
                check(v['cachetier_router_request_duration_seconds_count{frontend="text"}'] == 2,
                      "client latency")
                check(v["cachetier_router_config_generation"] >= 1, "generation")
                check(v["cachetier_router_reloads_total"] == 0, "reloads")
                check(v['cachetier_router_shard_requests_total{shard="s0"}'] == 2, "shard")
                c.close()
                # A node down shows as such.
                n2.kill9()
                n2.expect_exit = -9
                deadline = time.time() + 10
                lab = 'shard="s0",node="127.0.0.1:%d"' % n2.port
                while time.time() < deadline:
                    v = samples(scrape(metrics_port(r.banner)))
                    if v["cachetier_router_node_up{%s}" % lab] == 0:
                        break
                    time.sleep(0.1)
                check(v['cachetier_router_node_state{%s,state="down"}' % lab] == 1,
                      "killed node down")
                check(v["cachetier_router_node_markdowns_total{%s}" % lab] >= 1, "markdown")


def test_bad_metrics_address():
    """A metrics port that is taken: a clear error and a non-zero exit, for both."""
    with Server("-t", "1", "--metrics-port", "0") as s:
        taken = metrics_port(s.banner)
        p = subprocess.run([os.environ.get("CACHESERVER_BIN", "cacheserver"), "-p", "0", "-l",
                            "127.0.0.1", "--metrics-port", str(taken)], capture_output=True,
                           text=True, timeout=30)
        check(p.returncode != 0, "cacheserver started on a taken metrics port")
        check("metrics: cannot listen on 127.0.0.1:%d" % taken in p.stderr, p.stderr)
        with Server("-t", "1") as n:
            cfg = router_config([n]).replace("metrics_listen: 127.0.0.1:0",
                                             "metrics_listen: 127.0.0.1:%d" % taken)
            path = tempfile.NamedTemporaryFile(mode="w", suffix=".yaml", delete=False)
            path.write(cfg)
            path.close()
            try:
                p = subprocess.run([os.environ.get("CACHEROUTER_BIN", "cacherouter"), "-c",
                                    path.name], capture_output=True, text=True, timeout=60)
                check(p.returncode != 0, "router started on a taken metrics port")
                check("metrics: cannot listen" in p.stderr, p.stderr)
                bad = cfg.replace("metrics_listen: 127.0.0.1:%d" % taken, "metrics_listen: x")
                with open(path.name, "w") as f:
                    f.write(bad)
                p = subprocess.run([os.environ.get("CACHEROUTER_BIN", "cacherouter"), "-c",
                                    path.name, "--check-config"], capture_output=True, text=True,
                                   timeout=30)
                check(p.returncode != 0 and "metrics_listen" in p.stderr, p.stderr)
            finally:
                os.unlink(path.name)


if __name__ == "__main__":
    test_names_and_promtool()
    test_bad_metrics_address()
    print("ok")
