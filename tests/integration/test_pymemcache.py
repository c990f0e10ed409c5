"""Round trips with a real peer client (Debian's python3-pymemcache) against cacheserver."""
import time

from pymemcache.client.base import Client

from harness import Server, check, run


def client(srv):
    return Client(("127.0.0.1", srv.port), connect_timeout=5, timeout=5, default_noreply=False)


def test_basic_round_trips():
    with Server("-t", "2") as srv:
        c = client(srv)
        check(c.set("k", b"v") is True, "set")
        check(c.get("k") == b"v", "get")
        check(c.add("k", b"x") is False, "add existing")
        check(c.add("new", b"x") is True, "add new")
        check(c.replace("k", b"v2") is True, "replace")
        check(c.replace("absent", b"v2") is False, "replace absent")
        check(c.append("k", b"++") is True, "append")
        check(c.prepend("k", b"--") is True, "prepend")
        check(c.get("k") == b"--v2++", "append/prepend result")
        check(c.delete("k") is True, "delete")
        check(c.delete("k") is False, "delete again")
        check(c.get("k") is None, "get after delete")


def test_many_and_binary():
    with Server() as srv:
        c = client(srv)
        values = {"key%d" % i: bytes([i % 256]) * (i * 37 % 3000) for i in range(300)}
        check(c.set_many(values) == [], "set_many failures")
        got = c.get_many(list(values) + ["missing1", "missing2"])
        check(got == values, "get_many returned %d of %d" % (len(got), len(values)))
        blob = bytes(range(256)) * 100 + b"\r\nEND\r\n"
        c.set("blob", blob)
        check(c.get("blob") == blob, "binary value with CRLF inside")
        big = b"x" * (1024 * 1024)
        check(c.set("big", big) is True, "1 MB value (the default -I)")
        check(c.get("big") == big, "1 MB value back")


def test_cas_gets_incr_decr_touch():
    with Server() as srv:
        c = client(srv)
        c.set("c", b"1")
        val, token = c.gets("c")
        check(val == b"1" and token, "gets")
        check(c.cas("c", b"2", token) is True, "cas with fresh token")
        check(c.cas("c", b"3", token) is False, "cas with stale token")
        check(c.cas("nope", b"3", token) is None, "cas on missing key")
        check(c.incr("c", 10) == 12, "incr")
        check(c.decr("c", 100) == 0, "decr floors at 0")
        c.set("w", b"18446744073709551615")
        check(c.incr("w", 1) == 0, "incr wraps at 2^64")
        check(c.incr("missing", 1) is None, "incr missing")
        # 2 s, not 1: the server's clock counts whole seconds, so a 1 s TTL set late in a
        # second can end before a busy (sanitizer) run gets to the touch.
        c.set("t", b"x", expire=2)
        check(c.touch("t", 100) is True, "touch")
        check(c.touch("absent", 100) is False, "touch missing")
        time.sleep(2.5)
        check(c.get("t") == b"x", "touched key outlived its first TTL")


def test_expiry_flags_flush_noreply():
    with Server() as srv:
        c = client(srv)
        c.set("f", b"x", flags=0xFFFFFFFF)
        raw = srv.connect()
        raw.send(b"get f\r\n")
        check(raw.line() == b"VALUE f 4294967295 1", "32-bit flags")
        raw.line(); raw.line()
        c.set("e", b"x", expire=1)
        c.set("neg", b"x", expire=-1)
        check(c.get("neg") is None, "negative TTL is already expired")
        time.sleep(2.1)
        check(c.get("e") is None, "expired after its TTL")
        check(int(srv.stats()["get_expired"]) >= 1, "get_expired counted")
        nr = Client(("127.0.0.1", srv.port), default_noreply=True)
        for i in range(100):
            nr.set("nr%d" % i, b"v")
        nr.version()  # same connection: every noreply set before it has been applied
        check(c.get("nr99") == b"v", "noreply sets applied")
        c.flush_all()
        check(c.get("nr1") is None, "flush_all")
        check(c.version().decode().startswith("0."), "version")


def test_stats_names():
    with Server("-t", "3", "-m", "32") as srv:
        c = client(srv)
        c.set("a", b"1")
        c.get("a")
        c.get("b")
        st = srv.stats()
        for name in ("pid", "uptime", "time", "version", "curr_connections", "total_connections",
                     "cmd_get", "cmd_set", "cmd_touch", "get_hits", "get_misses", "get_expired",
                     "delete_hits", "delete_misses", "incr_hits", "incr_misses", "cas_hits",
                     "cas_misses", "cas_badval", "evictions", "expired_unfetched", "curr_items",
                     "total_items", "bytes", "limit_maxbytes", "threads"):
            check(name in st, "stat %s missing" % name)
        check(st["threads"] == "3", "threads")
        check(st["limit_maxbytes"] == str(32 << 20), "limit_maxbytes")
        check(st["get_hits"] == "1" and st["get_misses"] == "1", "hit/miss counts")
        check(int(st["pid"]) == srv.pid, "pid")
        settings = srv.stats("settings")
        check(settings["maxconns"] == "1024", "stats settings")


def test_meta_commands():
    with Server() as srv:
        c = srv.connect()
        c.send(b"ms mk 5 T0 F3 c\r\nhello\r\n")
        check(c.line().startswith(b"HD c"), "ms with c")
        c.send(b"ms mk 2 MA s k O7\r\nxy\r\n")
        # As memcached 1.6: ms echoes k, O and c only (s means nothing to it).
        check(c.line() == b"HD kmk O7", "ms append echoes key and opaque")
        c.send(b"ms mk 5\r\nhello\r\n")
        check(c.line() == b"HD", "plain ms")
        c.send(b"mg mk v f s k O42\r\n")
        check(c.line() == b"VA 5 f0 s5 kmk O42", "mg flags echo")
        check(c.line() == b"hello", "mg value")
        c.send(b"mg nothere v q\r\nmn\r\n")
        check(c.line() == b"MN", "q hides EN")
        c.send(b"md mk I\r\nmg mk v\r\nmg mk v\r\n")
        check(c.line() == b"HD", "md I")
        check(c.line() == b"VA 5 X W", "stale item: first fetch wins")
        c.line()
        check(c.line() == b"VA 5 Z X", "second fetch sees Z")
        c.line()
        c.send(b"ma cnt N0 J5 v\r\nma cnt D3 v\r\nma cnt MD D100 v\r\n")
        check(c.line() == b"VA 1" and c.line() == b"5", "ma autovivify")
        check(c.line() == b"VA 1" and c.line() == b"8", "ma incr")
        check(c.line() == b"VA 1" and c.line() == b"0", "ma decr floors")


if __name__ == "__main__":
    run([test_basic_round_trips, test_many_and_binary, test_cas_gets_incr_decr_touch,
         test_expiry_flags_flush_noreply, test_stats_names, test_meta_commands])
