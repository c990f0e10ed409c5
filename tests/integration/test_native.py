"""cacheserver over the native protocol (msgpack frames), with a python3-msgpack client."""
from harness import Server, check, run
import native_client as nc
from native_client import NativeClient, frame, request


def test_hello_and_every_op():
    with Server("-t", "2") as srv:
        c = NativeClient(srv.port)
        st, r = c.call("hello", proto_version=1, features=["multi"])
        check(st == "OK" and r["proto_version"] == 1, "hello %r" % r)
        check(r["server"].startswith(b"cacheserver") and r["max_frame"] > 1 << 20, "hello fields")
        st, r = c.call("set", key=b"k", value=b"v1", flags=7, ttl=0)
        check(st == "OK" and r["cas"] > 0, "set %r" % r)
        st, r = c.call("get", key=b"k")
        check(st == "OK" and r["value"] == b"v1" and r["flags"] == 7, "get %r" % r)
        cas = r["cas"]
        check(c.call("get", key=b"nope")[0] == "NOT_FOUND", "miss")
        check(c.call("add", key=b"k", value=b"x")[0] == "NOT_STORED", "add existing")
        check(c.call("replace", key=b"zz", value=b"x")[0] == "NOT_STORED", "replace missing")
        check(c.call("append", key=b"k", value=b"+")[0] == "OK", "append")
        check(c.call("prepend", key=b"k", value=b"-")[0] == "OK", "prepend")
        check(c.call("cas", key=b"k", value=b"c", cas=cas)[0] == "EXISTS", "cas with a stale token")
        st, r = c.call("gets", key=b"k")
        check(r["value"] == b"-v1+", "append/prepend result")
        check(c.call("cas", key=b"k", value=b"c", cas=r["cas"])[0] == "OK", "cas")
        st, r = c.call("incr", key=b"n", number=5, initial=10)
        check(st == "OK" and r["number"] == 10, "incr creates with initial: %r" % r)
        st, r = c.call("incr", key=b"n", number=5)
        check(r["number"] == 15, "incr")
        st, r = c.call("decr", key=b"n", number=100)
        check(r["number"] == 0, "decr floors at 0")
        check(c.call("incr", key=b"k", number=1)[0] == "NON_NUMERIC", "incr on text")
        check(c.call("incr", key=b"absent", number=1)[0] == "NOT_FOUND", "incr missing")
        check(c.call("touch", key=b"k", ttl=100)[0] == "OK", "touch")
        st, r = c.call("gat", key=b"k", ttl=200)
        check(st == "OK" and r["value"] == b"c", "gat")
        st, r = c.call("multi_set", items=[[b"a", b"1"], [b"b", b"2", 5], [b"c", b"3", 0, 0]])
        check(r["statuses"] == [0, 0, 0], "multi_set %r" % r)
        st, r = c.call("multi_get", keys=[b"a", b"missing", b"b", b"c"])
        vals = r["values"]
        check(vals[0][0] == b"1" and vals[1] is None and vals[2][0] == b"2" and vals[2][1] == 5,
              "multi_get in key order: %r" % vals)
        st, r = c.call("multi_delete", keys=[b"a", b"missing"])
        check(r["statuses"] == [0, 1], "multi_delete %r" % r)
        check(c.call("delete", key=b"b")[0] == "OK", "delete")
        check(c.call("delete", key=b"b")[0] == "NOT_FOUND", "delete again")
        st, r = c.call("stats")
        check(st == "OK" and int(r["stats"][b"curr_items"]) >= 1, "stats %r" % r)
        check(c.call("noop")[0] == "OK", "noop")
        check(c.call("version")[1]["server"].startswith(b"cacheserver"), "version")
        check(c.call("flush")[0] == "OK", "flush")
        check(c.call("get", key=b"c")[0] == "NOT_FOUND", "flushed")


def test_pipelined_10000_in_one_write():
    with Server("-t", "2") as srv:
        c = NativeClient(srv.port)
        c.call("set", key=b"p", value=b"pv")
        c.send(b"".join(request(i, "get", key=b"p") for i in range(1, 10001)))
        seen = set()
        for _ in range(10000):
            rid, st, r = c.read_reply()
            check(st == "OK" and r["value"] == b"pv", "reply %r" % rid)
            seen.add(rid)
        check(seen == set(range(1, 10001)), "every id answered once")


def test_same_port_both_protocols():
    with Server() as srv:
        n = NativeClient(srv.port)
        n.call("set", key=b"shared", value=b"from-native", flags=3)
        t = srv.connect()
        t.send(b"get shared\r\n")
        check(t.line() == b"VALUE shared 3 11", "text sees the native write")
        check(t.exact(13) == b"from-native\r\n" and t.line() == b"END", "value")
        t.send(b"set other 0 0 4\r\ntext\r\n")
        check(t.line() == b"STORED", "text set")
        check(n.call("get", key=b"other")[1]["value"] == b"text", "native sees the text write")


def test_dedicated_native_port():
    srv = Server("--native-port", "0")
    try:
        st = srv.stats("settings")
        native_port = int(st["native_port"])
        check(native_port > 0 and native_port != srv.port, "native port %r" % native_port)
        c = NativeClient(native_port)
        check(c.call("noop")[0] == "OK", "native on the dedicated port")
        t = NativeClient(native_port)
        t.send(b"get k\r\n")  # text on a native-only port: not a frame, connection closed
        check(t.closed_by_peer(), "text on the native port is refused")
        check(c.call("noop")[0] == "OK", "the other connection is unaffected")
    finally:
        check(srv.stop() == 0, "exit code")


def test_bad_frames_close_only_that_connection():
    with Server("-t", "2", "--max-frame", "2m") as srv:
        good = NativeClient(srv.port)
        good.call("set", key=b"g", value=b"ok")
        # Unknown op with a readable id: an error reply, the connection stays.
        c = NativeClient(srv.port)
        c.send(request(77, 99))
        rid, st, r = c.read_reply()
        check(rid == 77 and st == "UNKNOWN_OP", "unknown op %r %r" % (rid, st))
        c.send(request(78, "get"))  # no key
        rid, st, r = c.read_reply()
        check(rid == 78 and st == "BAD_REQUEST" and r["message"], "missing key")
        check(c.call("noop")[0] == "OK", "still usable")
        # A frame claiming 4 GB: refused from its header, nothing allocated.
        rss = srv.rss_kb()
        big = NativeClient(srv.port)
        big.send(b"\xfa\xff\xff\xff\xff")
        check(big.closed_by_peer(), "oversized frame closes the connection")
        # Garbage body, and an array claiming 4 billion elements in 9 bytes.
        for body in (b"\xc1", b"\x93\x01\x0e\xdd\xff\xff\xff\xff\x00"):
            bad = NativeClient(srv.port)
            bad.send(frame(body))
            check(bad.closed_by_peer(), "malformed body %r closes the connection" % body)
        check(srv.rss_kb() - rss < 10 * 1024, "no large allocation for lying frames")
        check(good.call("get", key=b"g")[1]["value"] == b"ok", "other connections unaffected")


def test_large_values_and_limits():
    with Server("-I", "256k") as srv:
        c = NativeClient(srv.port)
        v = bytes(range(256)) * 1024  # 256 KiB
        check(c.call("set", key=b"big", value=v)[0] == "OK", "value at the limit")
        check(c.call("get", key=b"big")[1]["value"] == v, "read back")
        check(c.call("set", key=b"big2", value=v + b"x")[0] == "TOO_LARGE", "over the limit")
        st, r = c.call("set", key=b"k" * 251, value=b"x")
        check(st == "BAD_REQUEST", "key over 250 bytes")


def test_versions_and_tombstones():
    with Server() as srv:
        c = NativeClient(srv.port)
        st, r = c.call("hello", proto_version=1)
        check(b"versions" in r["features"], "hello announces versions")
        check(c.call("set", key=b"v", value=b"five", version=5)[0] == "OK", "set v5")
        check(c.call("set", key=b"v", value=b"three", version=3)[0] == "OLDER_VERSION",
              "an older write is refused")
        st, r = c.call("get", key=b"v")
        check(r["value"] == b"five" and r["version"] == 5, "get returns the version: %r" % r)
        check(c.call("delete", key=b"v", version=4)[0] == "OLDER_VERSION", "older delete")
        check(c.call("delete", key=b"v", version=6, ttl=30)[0] == "OK", "versioned delete")
        check(c.call("get", key=b"v")[0] == "NOT_FOUND", "tombstone reads as a miss")
        check(c.call("set", key=b"v", value=b"late", version=5)[0] == "OLDER_VERSION",
              "a late older write does not bring the key back")
        t = srv.connect()
        t.send(b"get v\r\n")
        check(t.line() == b"END", "memcache text sees the delete too")
        check(c.call("set", key=b"v", value=b"seven", version=7)[0] == "OK", "newer write")
        check(c.call("get", key=b"v")[1]["value"] == b"seven", "newer value")


def test_meta_options():
    """What cacherouter asks of the nodes for the memcache meta commands (docs/protocol.md,
    "Meta options"): item meta, leases, vivify, invalidation, explicit CAS."""
    with Server("-t", "1") as srv:
        c = NativeClient(srv.port)
        check(c.call("set", key=b"k", value=b"v", ttl=100, new_cas=777)[1]["cas"] == 777,
              "new_cas sets the CAS")
        st, r = c.call("get", key=b"k", options=nc.ITEM_META)
        check(st == "OK" and r["fetched"] == 0 and r["idle"] >= 0 and 99 <= r["prior_ttl"] <= 100,
              "item meta on a first read: %r" % r)
        st, r = c.call("gat", key=b"k", ttl=5, options=nc.ITEM_META | nc.NO_BUMP)
        check(r["fetched"] == 1 and 99 <= r["prior_ttl"] <= 100, "gat reports the TTL before: %r" % r)
        st, r = c.call("get", key=b"lease", vivify=30, options=nc.LEASES | nc.ITEM_META)
        check(st == "OK" and r["lease"] == nc.WON | nc.CREATED and r["value"] == b"",
              "vivify wins: %r" % r)
        st, r = c.call("get", key=b"lease", options=nc.LEASES | nc.ITEM_META)
        check(r.get("lease") == nc.WIN_SENT, "the next reader sees the win sent: %r" % r)
        check(c.call("delete", key=b"k", options=nc.INVALIDATE, touch_ttl=50)[0] == "OK",
              "invalidate")
        st, r = c.call("get", key=b"k", options=nc.LEASES | nc.ITEM_META)
        check(r["lease"] == nc.WON | nc.STALE and r["value"] == b"v" and r["prior_ttl"] <= 50,
              "a stale item hands out one win: %r" % r)
        st, r = c.call("get", key=b"k")
        check(st == "OK" and "lease" not in r, "a plain get leaves leases alone: %r" % r)
        st, r = c.call("set", key=b"k", value=b"older", cas=r["cas"] - 1, options=nc.INVALIDATE)
        check(st == "OK" and r["lease"] == nc.STALE, "an older CAS stores stale: %r" % r)
        check(c.call("delete", key=b"k", cas=1)[0] == "EXISTS", "delete compares a CAS")
        check(c.call("append", key=b"k", value=b"+", cas=1)[0] == "EXISTS", "append compares")
        st, r = c.call("incr", key=b"n", number=1, initial=5, ttl=0, options=nc.ITEM_META)
        check(r["number"] == 5 and r["lease"] == nc.CREATED, "incr vivifies: %r" % r)
        st, r = c.call("incr", key=b"n", number=1, cas=r["cas"], touch_ttl=60,
                       options=nc.ITEM_META)
        check(st == "OK" and r["number"] == 6 and r["prior_ttl"] == -1, "incr with CAS: %r" % r)
        check(c.call("get", key=b"n", options=nc.ITEM_META)[1]["prior_ttl"] >= 59, "touch_ttl")


def test_oversized_multi_get_is_an_error_and_the_connection_goes_on():
    """A reply over --max-conn-output is answered with TOO_LARGE, not by closing: the connection
    may be cacherouter's, shared by every client of a worker."""
    with Server("-t", "1", "--max-conn-output", "1m") as srv:
        c = NativeClient(srv.port)
        check(c.call("set", key=b"v", value=b"x" * 100000)[0] == "OK", "set")
        st, r = c.call("multi_get", keys=[b"v"] * 30)  # 3 MB > 1 MB
        check(st == "TOO_LARGE" and b"output limit" in r["message"], "too large: %s" % st)
        check(c.call("get", key=b"v")[1]["value"] == b"x" * 100000, "the connection goes on")


if __name__ == "__main__":
    run([test_hello_and_every_op, test_pipelined_10000_in_one_write, test_same_port_both_protocols,
         test_dedicated_native_port, test_bad_frames_close_only_that_connection,
         test_large_values_and_limits, test_versions_and_tombstones, test_meta_options,
         test_oversized_multi_get_is_an_error_and_the_connection_goes_on])
