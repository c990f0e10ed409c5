"""cachebench against real servers: cacheserver (memcache_text and native), stock memcached
and redis-server (RESP2): exact --requests counts, the JSON / CSV / HTML outputs, bad flags,
and a server that dies mid-run (errors are counted per second; the run goes on and reconnects).
Run with /usr/bin/python3."""
import json
import os
import shutil
import subprocess
import tempfile
import time

from harness import BIN, Server, check, free_port, run, wait_port

BENCH = os.environ.get("CACHEBENCH_BIN", "cachebench")


def bench(port, *args, timeout=120):
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    try:
        p = subprocess.run([BENCH, "-s", "127.0.0.1", "-p", str(port), "--json-out-file", out,
                            *args], capture_output=True, text=True, timeout=timeout)
        with open(out) as f:
            data = json.load(f) if os.path.getsize(out) else None
    finally:
        os.unlink(out)
    return p, data


def check_exact(port, protocol, *extra):
    p, data = bench(port, "-P", protocol, "-t", "2", "-c", "3", "-n", "500", "--ratio", "1:1",
                    "--key-maximum", "999", *extra)
    check(p.returncode == 0, "%s: exit %d: %s" % (protocol, p.returncode, p.stderr))
    tot = data["ALL STATS"]["Totals"]
    check(tot["Count"] == 2 * 3 * 500, "%s: %d requests, expected 3000" % (protocol, tot["Count"]))
    check(data["ALL STATS"]["Errors"] == 0, "%s: errors" % protocol)
    check(data["ALL STATS"]["Sets"]["Count"] == 1500, "%s: half sets" % protocol)
    check(data["ALL STATS"]["Gets"]["Hits/sec"] > 0, "%s: some gets hit" % protocol)
    check("p99.90" in tot["Percentile Latencies"], "percentile keys as memtier names them")
    for line in ("ALL STATS", "Sets", "Gets", "Waits", "Totals", "p99.9 Latency", "KB/sec"):
        check(line in p.stdout, "%s: report has %r" % (protocol, line))


def test_cacheserver_memcache_text_and_native():
    with Server("-t", "2") as s:
        check_exact(s.port, "memcache_text")
        check_exact(s.port, "native")


def test_tls_against_cacheserver_and_memcached():
    """memtier's TLS flags: --tls --cacert --sni, and --cert/--key for a node that requires a
    client certificate; stock memcached -Z as well."""
    from certs import Certs
    with Certs() as certs:
        tls = ["--tls", "--cacert", certs.path("ca.crt"), "--sni", "localhost"]
        mutual = tls + ["--cert", certs.path("client.crt"), "--key", certs.path("client.key")]
        opts = "ssl_chain_cert=%s,ssl_key=%s" % (certs.path("server.crt"), certs.path("server.key"))
        with Server("-t", "2", "-Z", "-o", opts + ",ssl_ca_cert=%s,ssl_verify_mode=2" %
                    certs.path("ca.crt")) as s:
            check_exact(s.port, "memcache_text", *mutual)
            check_exact(s.port, "native", *mutual)
            p, data = bench(s.port, "-t", "1", "-c", "1", "-n", "10", *tls)
            st = data["ALL STATS"]
            check(st["Errors"] > 0 and st["Totals"]["Count"] == 0,
                  "no client certificate: every request fails (%r)" % st)
        p, _ = bench(1, "--tls", "--cacert", certs.path("missing.crt"))
        check(p.returncode == 2 and "missing.crt" in p.stderr, "a bad --cacert: %r" % p.stderr)
        port = free_port()
        argv = ["memcached", "-p", str(port), "-U", "0", "-l", "127.0.0.1", "-t", "1", "-Z",
                "-o", opts]
        if os.getuid() == 0:
            argv += ["-u", "root"]
        mc = subprocess.Popen(argv)
        try:
            check(wait_port(port), "memcached -Z listens on %d" % port)
            check_exact(port, "memcache_text", *tls)
        finally:
            mc.terminate()
            mc.wait()


def test_stock_memcached():
    port = free_port()
    argv = ["memcached", "-p", str(port), "-U", "0", "-l", "127.0.0.1", "-t", "1"]
    if os.getuid() == 0:
        argv += ["-u", "root"]
    mc = subprocess.Popen(argv)
    try:
        check(wait_port(port), "memcached listens on %d" % port)
        check_exact(port, "memcache_text")
    finally:
        mc.terminate()
        mc.wait()


def test_redis_server():
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    check(os.path.exists(redis), "redis-server is installed (make deps)")
    port = free_port()
    rs = subprocess.Popen([redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        check(wait_port(port), "redis-server listens on %d" % port)
        check_exact(port, "redis")
    finally:
        rs.terminate()
        rs.wait()


def test_files_patterns_and_flags():
    with Server("-t", "1") as s:
        tmp = tempfile.mkdtemp()
        csv, html = os.path.join(tmp, "s.csv"), os.path.join(tmp, "r.html")
        p, data = bench(s.port, "-t", "1", "-c", "2", "--test-time", "2", "--key-pattern", "Z:G",
                        "--data-size-range", "10-200", "--expiry-range", "100-200",
                        "--print-percentiles", "50,90", "--csv", csv, "--report", html,
                        "--distinct-client-seed", "--randomize", "-x", "2")
        check(p.returncode == 0, p.stderr)
        check("AGGREGATED AVERAGE RESULTS (2 runs)" in p.stdout, "two runs aggregated")
        check("p90 Latency" in p.stdout, "custom percentiles")
        check(list(data["ALL STATS"]["Totals"]["Percentile Latencies"]) == ["p50.00", "p90.00"],
              "json percentiles")
        rows = open(csv).read().splitlines()
        check(rows[0] == "second,ops,hits,misses,errors,p50_ms,p99_ms" and len(rows) >= 3, rows)
        page = open(html).read()
        check(page.startswith("<!DOCTYPE html>") and "new uPlot(" in page and "ALL STATS" in page,
              "html report")
        shutil.rmtree(tmp)
        # allkeys with P:P writes every key once.
        p, data = bench(s.port, "-t", "2", "-c", "2", "--ratio", "1:0", "--key-pattern", "P:P",
                        "--key-minimum", "1", "--key-maximum", "400", "-n", "allkeys",
                        "--key-prefix", "all:")
        check(data["ALL STATS"]["Totals"]["Count"] == 400, "allkeys: 400 sets")
        st = s.stats()
        check(int(st["curr_items"]) >= 400, "every key written")
    for bad in (["--ratio", "1-10"], ["--key-pattern", "X:R"], ["-P", "smtp"], ["--nope"],
                ["--data-size-range", "9-3"], ["-n", "some"], ["--print-percentiles", "a,b"]):
        p = subprocess.run([BENCH, *bad], capture_output=True, text=True, timeout=30)
        check(p.returncode == 2 and p.stderr.strip(), "%s: exit %d %r" % (bad, p.returncode,
                                                                          p.stderr))


def test_servers_shards_keys_with_the_client_ring():
    with Server("-t", "1") as a, Server("-t", "1") as b:
        out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        p = subprocess.run([BENCH, "--servers", "127.0.0.1:%d,127.0.0.1:%d" % (a.port, b.port),
                            "-t", "2", "-c", "2", "--ratio", "1:0", "--key-pattern", "P:P",
                            "--key-minimum", "1", "--key-maximum", "1000", "-n", "allkeys",
                            "--pipeline", "4", "--json-out-file", out],
                           capture_output=True, text=True, timeout=120)
        data = json.load(open(out))["ALL STATS"]
        os.unlink(out)
        check(p.returncode == 0, p.stderr)
        check(data["Totals"]["Count"] == 1000, "every key once: %d" % data["Totals"]["Count"])
        items = [int(s.stats()["curr_items"]) for s in (a, b)]
        check(sum(items) == 1000 and min(items) > 300, "split over both servers: %s" % items)
        p = subprocess.run([BENCH, "--servers", "127.0.0.1:%d,nowhere" % a.port],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode == 2 and "host:port" in p.stderr, "a bad --servers address")


def test_rate_limiting_offers_a_fixed_rate():
    """--rate-limiting N: N requests per second per connection, as memtier splits it (a burst
    of ceil(N/50) per interval); never more, and about that much on an idle server."""
    with Server("-t", "1") as s:
        p, data = bench(s.port, "-t", "2", "-c", "2", "--pipeline", "8", "--rate-limiting", "300",
                        "--test-time", "3")
        check(p.returncode == 0, p.stderr)
        check(data["configuration"]["rate_limit"] == 300, "rate_limit in the JSON")
        series = [x["Count"] for x in data["ALL STATS"]["Time-Serie"]]
        offered = 4 * 300
        print("rate-limited per-second counts %s, offered %d/s" % (series, offered))
        # A second holds at most 51 intervals of 4 bursts of 6 (one tick may straddle).
        check(all(n <= 4 * 6 * 51 for n in series), "never above the offered rate: %s" % series)
        total = data["ALL STATS"]["Totals"]["Count"]
        check(0.8 * 3 * offered <= total <= 3 * offered + 4 * 6,
              "about the offered rate: %d in 3 s" % total)
    for bad in (["--rate-limiting", "0"], ["--rate-limiting", "-5"]):
        p = subprocess.run([BENCH, *bad], capture_output=True, text=True, timeout=30)
        check(p.returncode == 2 and "rate-limiting" in p.stderr, "%s: %r" % (bad, p.stderr))


def test_scenario_timeline():
    """--scenario: kill, restart, stop, cont, reload (after writing the config) and exec at their
    times, with a phase each in the report (text and JSON), failovers read from the router;
    processes given by command are cachebench's own and gone after the run."""
    from harness import Router, router_config
    n1, n2 = Server("-t", "1"), Server("-t", "1")
    extra_port = free_port()
    tmp = tempfile.mkdtemp()
    try:
        r = Router(router_config([[n1, n2]]))
    except Exception:
        n1.stop()
        n2.stop()
        raise
    try:
        marker = os.path.join(tmp, "exec-ran")
        scenario = os.path.join(tmp, "scenario.yaml")
        with open(scenario, "w") as f:
            f.write("\n".join([
                "processes:",
                "  n1: {pid: %d, restart: \"%s -p %d -l 127.0.0.1 -t 1\"}" % (n1.pid, BIN, n1.port),
                "  router: {pid: %d}" % r.pid,
                "  extra: {command: \"%s -p %d -l 127.0.0.1 -t 1\"}" % (BIN, extra_port),
                "events:",
                "  - {at: 1.0, kill: n1}",
                "  - {at: 2.0, restart: n1, label: n1 back}",
                "  - {at: 2.5, stop: extra}",
                "  - {at: 3.0, cont: extra}",
                "  - {at: 3.5, reload: router, write: %s, content: \"%s\"}" % (
                    r.config.name, router_config([[n1, n2]], timeout_ms=900).replace(
                        "\n", "\\n")),
                "  - {at: 4.0, exec: \"touch %s\"}" % marker]) + "\n")
        p, data = bench(r.port, "-t", "1", "-c", "2", "--ratio", "1:4", "--key-maximum", "500",
                        "--test-time", "5", "--scenario", scenario, "--router-stats",
                        "127.0.0.1:%d" % r.port)
        check(p.returncode == 0, "exit %d: %s %s" % (p.returncode, p.stdout[-2000:], p.stderr))
        check("AVAILABILITY BY PHASE" in p.stdout, "the phase table: %s" % p.stdout[-3000:])
        phases = data["Phases"]
        labels = [x["Phase"] for x in phases]
        check(labels == ["start", "kill n1", "n1 back", "stop extra", "cont extra",
                         "reload router", "exec touch %s" % marker], "phases: %s" % labels)
        check(all(x["Requests"] > 0 and x["Errors"] == 0 for x in phases),
              "load in every phase, no errors: %s" % phases)
        check(all(x["Failovers"] is not None for x in phases), "failovers read from the router")
        check(abs(phases[1]["From"] - 1.0) < 0.5 and abs(phases[6]["From"] - 4.0) < 0.5,
              "events at their times: %s" % [(x["Phase"], x["From"]) for x in phases])
        check("kill -KILL n1 (pid %d)" % n1.pid in phases[1]["Event"], phases[1]["Event"])
        check(os.path.exists(marker), "exec ran")
        check(int(r.stats()["reloads"]) == 1, "the router reloaded")
        check("timeout_ms: 900" in open(r.config.name).read(), "the config was written")
        check("restart n1 (pid " in phases[2]["Event"], phases[2]["Event"])
        # What cachebench started (extra, and n1 again) it stopped after the run.
        check(not wait_port(extra_port, timeout=0.5) and not wait_port(n1.port, timeout=0.5),
              "cachebench stopped what it started")
        for bad, why in (("events: [{at: 1, kill: nobody}]\n", "unknown process 'nobody'"),
                         ("events: [{kill: x}]\n", "expected a mapping with at:"),
                         ("processes: {x: {pid: 1}}\nevents: [{at: 1, kill: x, signal: BOOM}]\n",
                          "one of KILL, TERM, INT, HUP"),
                         ("processes: {x: {pid: 1}}\nevents: [{at: 1, restart: x}]\n",
                          "no command to restart"),
                         ("nonsense: 1\n", "unknown key")):
            with open(scenario, "w") as f:
                f.write(bad)
            q = subprocess.run([BENCH, "--scenario", scenario, "--test-time", "1"],
                               capture_output=True, text=True, timeout=30)
            check(q.returncode == 2 and why in q.stderr, "%r: %d %r" % (bad, q.returncode,
                                                                       q.stderr))
    finally:
        r.stop()
        for n in (n1, n2):
            if n.proc.poll() is None:
                n.stop()
        shutil.rmtree(tmp)


def test_a_server_dying_mid_run_is_counted_not_fatal():
    port = free_port()
    s = Server("-t", "1", port=port)
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    load = subprocess.Popen([BENCH, "-s", "127.0.0.1", "-p", str(port), "-t", "1", "-c", "4",
                             "--test-time", "4", "--json-out-file", out],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.2)
        s.kill9()
        time.sleep(1.0)
        s = Server("-t", "1", port=port)
        stdout, stderr = load.communicate(timeout=60)
        data = json.load(open(out))["ALL STATS"]
        series = data["Time-Serie"]
        check(load.returncode == 1, "exit 1 when errors happened")
        check(data["Errors"] > 0, "errors counted")
        check(len(series) >= 4, "a full run: %d seconds" % len(series))
        check(series[-1]["Count"] > 0, "ops again after the restart: %s" % series[-1])
        check(any(x["Errors"] for x in series), "errors in the per-second series")
    finally:
        os.unlink(out)
        s.stop()


def trace_file(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False)
    f.write(text)
    f.close()
    return f.name


def test_trace_replay():
    """--trace: exact hit counts per phase (a miss is filled, the fill is read back), the
    same over RESP against redis-server, --trace-no-fill, pacing, and a bad trace."""
    rows = ["# a comment", "time_ms,op,key,size,ttl", "0,phase,fill,0,0"]
    rows += ["0,set,t%d,%d,0" % (i, 10 + i) for i in range(200)]
    rows += ["0,phase,read,0,0"]
    rows += ["0,get,t%d,10,0" % i for i in range(200)]      # 200 hits
    rows += ["0,get,new%d,64,0" % i for i in range(50)]     # 50 misses, filled
    rows += ["0,get,new%d,64,0" % i for i in range(50)]     # 50 hits
    rows += ["0,delete,t1,0,0"]
    path = trace_file("\n".join(rows) + "\n")
    redis = shutil.which("redis-server") or "/usr/bin/redis-server"
    rport = free_port()
    rs = subprocess.Popen([redis, "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        check(wait_port(rport), "redis-server listens")
        with Server("-t", "1") as s, Server("-t", "1") as s2:
            for port, proto in ((s.port, "memcache_text"), (rport, "redis"),
                                (s2.port, "native")):
                p, data = bench(port, "-P", proto, "--trace", path, "--pipeline", "16")
                check(p.returncode == 0, "%s: exit %d: %s" % (proto, p.returncode, p.stderr))
                t = data["Trace"]
                ph = {x["Phase"]: x for x in t["Phases"]}
                check(list(ph) == ["fill", "read"], "%s: phases %r" % (proto, list(ph)))
                check(ph["fill"]["Sets"] == 200 and ph["fill"]["Gets"] == 0, "%s: fill" % proto)
                check(ph["read"]["Gets"] == 300 and ph["read"]["Hits"] == 250,
                      "%s: 300 gets, 250 hits: %r" % (proto, ph["read"]))
                check(ph["read"]["Sets"] == 50, "%s: 50 fills" % proto)
                check(t["Skipped"] == 1 and "Skipped: 1 deletes" in p.stdout, "delete skipped")
                check("read" in p.stdout and "0.8333" in p.stdout, "the table: %s" % p.stdout)
        with Server("-t", "1") as s:
            p, data = bench(s.port, "--trace", path, "--trace-no-fill")
            ph = {x["Phase"]: x for x in data["Trace"]["Phases"]}
            check(ph["read"]["Hits"] == 200 and ph["read"]["Sets"] == 0, "no fill: %r" % ph)
            paced = trace_file("".join("%d,get,p%d,8,0\n" % (i * 100, i) for i in range(11)))
            t0 = time.time()
            p, data = bench(s.port, "--trace", paced, "--trace-speed", "2")
            check(p.returncode == 0 and 0.45 <= time.time() - t0 < 5,
                  "1 s of trace at speed 2 takes ~0.5 s: %.2f" % (time.time() - t0))
            os.unlink(paced)
            bad = trace_file("0,get,a,1,0\n0,get,b b,1,0\n")
            p, _ = bench(s.port, "--trace", bad)
            check(p.returncode == 2 and bad + ":2: bad key" in p.stderr, "bad trace: %s" % p.stderr)
            os.unlink(bad)
            p, _ = bench(s.port, "--trace", "/nonexistent.csv")
            check(p.returncode == 2 and "No such file" in p.stderr, "missing trace: %s" % p.stderr)
            p, _ = bench(s.port, "--trace", path, "--tls")
            check(p.returncode == 2 and "one plain connection" in p.stderr, "--trace with --tls")
    finally:
        rs.terminate()
        rs.wait()
        os.unlink(path)


if __name__ == "__main__":
    run([test_cacheserver_memcache_text_and_native, test_tls_against_cacheserver_and_memcached,
         test_stock_memcached, test_redis_server,
         test_files_patterns_and_flags, test_servers_shards_keys_with_the_client_ring,
         test_rate_limiting_offers_a_fixed_rate, test_scenario_timeline, test_a_server_dying_mid_run_is_counted_not_fatal,
         test_trace_replay])
