"""cacheserver as a process: peer tools, memory bound, pipelining, limits, flags, signals."""
import shutil
import socket
import subprocess
import threading
import time

from harness import BIN, SANITIZED, Server, check, read_stats, run


def test_memccapable_ascii():
    tool = shutil.which("memccapable")
    check(tool is not None, "memccapable (libmemcached-tools) is not installed")
    with Server("-t", "2") as srv:
        p = subprocess.run([tool, "-a", "-h", "127.0.0.1", "-p", str(srv.port)],
                           capture_output=True, text=True, timeout=120)
        out = p.stdout + p.stderr
        check(p.returncode == 0 and "All tests passed" in out, "memccapable -a:\n" + out)
        check("[FAIL]" not in out, out)


def test_memory_limit_is_a_bound():
    limit_mb = 32
    with Server("-m", str(limit_mb), "-t", "2") as srv:
        c = srv.connect()
        value = b"v" * 1000
        total = 3 * limit_mb * 1024 * 1024 // len(value)
        batch = 500
        for start in range(0, total, batch):
            req = b"".join(b"set key%d 0 0 %d noreply\r\n%s\r\n" % (i, len(value), value)
                           for i in range(start, min(total, start + batch)))
            c.send(req)
        c.send(b"mn\r\n")
        check(c.line() == b"MN", "all sets applied")
        rss_mb = srv.rss_kb() / 1024
        bound = limit_mb * 1.10 + 16
        st = srv.stats()
        if not SANITIZED:
            check(rss_mb <= bound, "RSS %.1f MB over the bound %.1f MB" % (rss_mb, bound))
        check(int(st["evictions"]) > 0, "no evictions after writing 3x the limit")
        check(int(st["memory_used"]) <= limit_mb << 20, "accounted memory over the limit")
        for i in range(total - 100, total):
            check(c.get(b"key%d" % i) == value, "recent key%d missing" % i)
        print("  rss %.1f MB (bound %.1f), items %s, evictions %s" % (
            rss_mb, bound, st["curr_items"], st["evictions"]))


def test_pipeline_10000_in_one_write():
    with Server("-t", "2") as srv:
        c = srv.connect()
        parts = []
        for i in range(5000):
            parts.append(b"set p%d 0 0 %d\r\nval%d\r\n" % (i, len(b"val%d" % i), i))
            parts.append(b"get p%d\r\n" % i)
        c.send(b"".join(parts))  # 10,000 requests, one sendall
        for i in range(5000):
            check(c.line() == b"STORED", "set %d" % i)
            check(c.line() == b"VALUE p%d 0 %d" % (i, len(b"val%d" % i)), "get %d header" % i)
            check(c.exact(len(b"val%d" % i) + 2) == b"val%d\r\n" % i, "get %d value" % i)
            check(c.line() == b"END", "get %d end" % i)


def test_key_value_and_line_limits():
    with Server("-I", "64k", "--max-line", "4096") as srv:
        c = srv.connect()
        c.send(b"get " + b"k" * 251 + b"\r\n")
        check(c.line() == b"CLIENT_ERROR bad command line format", "key over 250 bytes")
        c.send(b"set " + b"k" * 250 + b" 0 0 1\r\nx\r\n")
        check(c.line() == b"STORED", "key of 250 bytes")
        big = b"x" * (64 * 1024 + 1)
        c.send(b"set big 0 0 %d\r\n%s\r\n" % (len(big), big))
        check(c.line() == b"SERVER_ERROR object too large for cache", "value over -I")
        c.send(b"set ok 0 0 2\r\nhi\r\n")
        check(c.line() == b"STORED", "connection usable after a refused value")
        c.send(b"set bad 0 0 2\r\nhello\r\n")
        check(c.line() == b"CLIENT_ERROR bad data chunk", "bad data chunk")
        check(c.line() == b"ERROR", "rest of the bad chunk")
        c.send(b"nonsense\r\n")
        check(c.line() == b"ERROR", "unknown command")
        other = srv.connect()
        c.send(b"get " + b"k" * 5000 + b"\r\n")
        check(c.line() == b"CLIENT_ERROR line too long", "line too long")
        check(c.closed_by_peer(), "line too long closes the connection")
        check(other.get(b"ok") == b"hi", "other connections unaffected")


def test_connection_limit():
    with Server("-c", "5") as srv:
        conns = [srv.connect() for _ in range(5)]
        for c in conns:
            c.send(b"version\r\n")
            check(c.line().startswith(b"VERSION"), "within the limit")
        extra = srv.connect()
        check(extra.line() == b"SERVER_ERROR Too many open connections", "over the limit")
        check(extra.closed_by_peer(), "rejected connection closed")
        conns[0].close()
        time.sleep(0.3)
        again = srv.connect()
        again.send(b"version\r\n")
        check(again.line().startswith(b"VERSION"), "a freed slot is reusable")
        again.close()
        time.sleep(0.3)
        check(int(srv.stats()["rejected_connections"]) >= 1, "rejections counted")


def test_client_that_never_reads_is_bounded():
    with Server("-t", "2", "--max-conn-output", "8m") as srv:
        c = srv.connect()
        c.send(b"set v 0 0 %d\r\n%s\r\n" % (100000, b"x" * 100000))
        check(c.line() == b"STORED", "stored")
        rss_before = srv.rss_kb()
        hog = socket.create_connection(("127.0.0.1", srv.port))
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.settimeout(0.2)
        sent = 0
        deadline = time.time() + 5
        req = b"get v\r\n" * 1000
        while time.time() < deadline:  # the server stops reading once its output backs up
            try:
                sent += hog.send(req)
            except socket.timeout:
                break
        growth_mb = (srv.rss_kb() - rss_before) / 1024
        check(growth_mb < 20, "RSS grew %.1f MB for a client that does not read" % growth_mb)
        check(c.get(b"v") == b"x" * 100000, "other clients still served")
        hog.close()
        # One response bigger than the per-connection output limit is answered with memcached's
        # error instead, and the connection goes on (it may be a router's, shared by many).
        greedy = srv.connect()
        greedy.send(b"get" + b" v" * 200 + b"\r\n")  # 200 x 100 kB = 20 MB > 8 MB
        check(greedy.line() == b"SERVER_ERROR out of memory writing get response", "error sent")
        check(greedy.get(b"v") == b"x" * 100000, "the same connection goes on")
        # Just under the limit (the check ahead, past 1 MB, must not refuse what fits):
        # 80 x 100 kB = 8.0 MB < 8 MiB.
        greedy.send(b"get" + b" v" * 80 + b"\r\n")
        n = 0
        while True:
            line = greedy.line()
            if line == b"END":
                break
            check(line.startswith(b"VALUE v "), "a value, not %r" % line[:60])
            check(greedy.exact(100002)[:-2] == b"x" * 100000, "the value")
            n += 1
        check(n == 80, "all 80 values of a reply just under the limit (%d)" % n)
        check(c.get(b"v") is not None, "server fine afterwards")
        print("  never-reading client sent %d kB; RSS growth %.1f MB" % (sent // 1024, growth_mb))


def test_idle_connections_are_cheap():
    with Server("-t", "2", "-c", "2000") as srv:
        before = srv.rss_kb()
        conns = [srv.connect() for _ in range(1000)]
        for c in conns[:10]:
            c.send(b"version\r\n")
            c.line()
        time.sleep(0.3)
        per_conn = (srv.rss_kb() - before) * 1024 / 1000
        check(int(srv.stats()["curr_connections"]) >= 1000, "connections open")
        if not SANITIZED:  # sanitizers' shadow memory makes RSS per connection meaningless
            check(per_conn < 4096, "an idle connection costs %.0f bytes" % per_conn)
        print("  idle connection cost: %.0f bytes" % per_conn)
        for c in conns:
            c.close()


def test_bad_flags_exit_2():
    for args in (["--bogus"], ["-m", "lots"], ["-p", "70000"], ["-I", "1x"], ["-t", "0"],
                 ["-c", "-1"], ["-U", "11211"]):
        p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=10)
        check(p.returncode == 2, "%s exited %d" % (args, p.returncode))
        check(p.stderr.strip() != "", "%s printed no message" % args)
    p = subprocess.run([BIN, "--version"], capture_output=True, text=True, timeout=10)
    check(p.returncode == 0 and "cacheserver" in p.stdout, "--version")
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    check(p.returncode == 0 and "--memory-limit" in p.stdout, "--help")


def test_sigterm_finishes_in_flight_and_exits_0():
    srv = Server("-t", "2")
    c = srv.connect()
    value = b"z" * 200000
    c.send(b"set big 0 0 %d\r\n%s\r\n" % (len(value), value))
    check(c.line() == b"STORED", "stored")
    c.send(b"get big\r\n" * 50)  # about 10 MB of replies in flight
    time.sleep(0.2)
    srv.proc.send_signal(15)
    got = 0
    try:
        for _ in range(50):
            c.line()
            c.exact(len(value) + 2)
            check(c.line() == b"END", "complete reply")
            got += 1
    except EOFError:
        pass
    code = srv.proc.wait(10)
    check(code == 0, "exit code %d after SIGTERM, stderr:\n%s" % (code, srv.stderr()[-20000:]))
    check(got == 50, "only %d of 50 in-flight replies arrived" % got)
    try:
        socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
        check(False, "still accepting after shutdown")
    except OSError:
        pass


def test_backpressure_resumes_when_output_drains_at_once():
    # Regression: a connection paused at the output high-water mark hung forever when the
    # kernel took all pending output in one try-write (nothing left for a write callback).
    with Server("-t", "1") as srv:
        c = srv.connect()
        value = b"q" * 300000
        c.send(b"set big 0 0 %d\r\n%s\r\n" % (len(value), value))
        check(c.line() == b"STORED", "stored")
        for round_ in range(3):
            c.send(b"get big\r\n" * 40)  # 12 MB of replies: passes the high-water mark
            for i in range(40):
                check(c.line() == b"VALUE big 0 %d" % len(value), "reply %d/%d" % (round_, i))
                check(c.exact(len(value) + 2)[:-2] == value, "value")
                check(c.line() == b"END", "end")


def test_idle_server_uses_no_cpu():
    # Workers poll a few times (with a yield) after activity before they sleep; they must
    # never keep polling while idle.
    with Server("-t", "2") as srv:
        conns = [srv.connect() for _ in range(20)]
        for c in conns:
            c.send(b"set k 0 0 1\r\nx\r\n")
            check(c.line() == b"STORED", "stored")
        time.sleep(0.5)
        before = srv.cpu_seconds()
        time.sleep(3)
        used = srv.cpu_seconds() - before
        check(used < 0.1, "an idle server used %.2f s of CPU in 3 s" % used)
        print("  idle CPU over 3 s: %.3f s" % used)


def test_concurrent_clients_on_all_threads():
    with Server("-t", "2") as srv:
        errors = []

        def worker(n):
            try:
                c = srv.connect()
                for i in range(500):
                    k = b"t%d_%d" % (n, i)
                    c.send(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(k), k))
                    if c.line() != b"STORED" or c.get(k) != k:
                        errors.append(k)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        ts = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        check(not errors, "errors: %r" % errors[:5])
        check(int(srv.stats()["curr_items"]) == 4000, "all items present")



def test_explicit_cas_e_flag_on_stores_and_vivified_placeholders():
    """E (newer than memcached 1.6.18, so outside the differential's reference): the item
    changed or created takes the given CAS, a placeholder from mg N included."""
    with Server("-t", "1") as srv:
        c = srv.connect()
        c.send(b"mg viv N30 E12345 c\r\n")
        check(c.line() == b"HD c12345 W", "the placeholder takes E's CAS and the win")
        c.send(b"mg viv c\r\n")
        check(c.line() == b"HD c12345 Z", "kept; win already sent")
        c.send(b"ms e1 1 E777 c\r\nx\r\n")
        check(c.line() == b"HD c777", "ms E")
        c.send(b"mg e1 c v\r\n")
        check(c.line() == b"VA 1 c777", "the stored CAS")
        check(c.exact(3) == b"x\r\n", "value")
        c.send(b"ma e2 N0 J5 E999 c v\r\n")
        check(c.line() == b"VA 1 c999", "ma N: the created counter takes E's CAS")
        check(c.exact(3) == b"5\r\n", "its initial value")
        c.close()


def test_stats_subcommands_carry_real_values():
    """stats settings, items, slabs and conns: values that follow the flags and what was done."""
    with Server("-t", "2", "-m", "32", "-c", "77", "-I", "2m") as srv:
        a, b = srv.connect(), srv.connect()
        a.send(b"set small 0 0 1\r\nx\r\n")
        check(a.line() == b"STORED", "small")
        big = b"y" * 1500000
        b.send(b"set big 0 0 %d\r\n%s\r\n" % (len(big), big))
        check(b.line() == b"STORED", "big")
        st = read_stats(a, "settings")
        check(st["maxbytes"] == str(32 << 20) and st["maxconns"] == "77", "settings: %s" % st)
        check(st["item_size_max"] == str(2 << 20) and st["num_threads"] == "2", "settings")
        check(st["tcpport"] == str(srv.port), "settings port")
        it = read_stats(a, "items")
        check(it["items:1:number"] == "2", "items: %s" % it)
        sl = read_stats(a, "slabs")
        classes = {k.split(":")[0] for k in sl if ":" in k}
        check(int(sl["active_slabs"]) == len(classes) >= 2, "slabs: %s" % sl)
        small = [c for c in classes if sl[c + ":chunk_size"] != "0"]
        check(any(int(sl[c + ":total_pages"]) >= 1 for c in small), "a page holds the small one")
        large = [c for c in classes if sl[c + ":chunk_size"] == "0"]
        check(len(large) == 1 and sl[large[0] + ":used_chunks"] == "1", "the large item")
        check(int(sl["total_malloced"]) >= len(big), "malloced counts the large item")
        cn = read_stats(a, "conns")
        addrs = sorted(v for k, v in cn.items() if k.endswith(":addr"))
        mine = sorted("tcp:127.0.0.1:%d" % c.sock.getsockname()[1] for c in (a, b))
        check(addrs == mine, "conns lists both connections: %s vs %s" % (addrs, mine))
        check(all(v == "tcp:127.0.0.1:%d" % srv.port for k, v in cn.items()
                  if k.endswith(":listen_addr")), "listen addr")
        check(all(int(v) <= 2 for k, v in cn.items() if k.endswith(":secs_since_last_cmd")),
              "recent")
        b.close()
        time.sleep(0.2)
        cn = read_stats(a, "conns")
        check(len([k for k in cn if k.endswith(":addr")]) == 1, "a closed one is gone: %s" % cn)
        a.close()


if __name__ == "__main__":
    run([test_memccapable_ascii, test_memory_limit_is_a_bound, test_pipeline_10000_in_one_write,
         test_key_value_and_line_limits, test_connection_limit,
         test_client_that_never_reads_is_bounded, test_idle_connections_are_cheap,
         test_bad_flags_exit_2, test_sigterm_finishes_in_flight_and_exits_0,
         test_backpressure_resumes_when_output_drains_at_once, test_idle_server_uses_no_cpu,
         test_concurrent_clients_on_all_threads,
         test_explicit_cas_e_flag_on_stores_and_vivified_placeholders,
         test_stats_subcommands_carry_real_values])
