"""cacherouter's counters, checked by value after a known sequence of commands, sent once over
memcache text and once over the native protocol: both front ends count the same command the
same way. Real processes on loopback. Run with /usr/bin/python3."""
import time

from harness import Router, Server, check, router_config, run
from native_client import NativeClient

COUNTERS = ["cmd_get", "get_hits", "get_misses", "cmd_set", "cmd_touch", "touch_hits",
            "touch_misses", "delete_hits", "delete_misses", "incr_hits", "incr_misses",
            "decr_hits", "decr_misses", "cas_hits", "cas_misses", "cas_badval", "cmd_flush",
            "client_errors"]

# What the common sequence below leaves, whichever protocol sent it.
EXPECTED = dict(cmd_get=7, get_hits=5, get_misses=2, cmd_set=7, cmd_touch=2, touch_hits=1,
                touch_misses=1, delete_hits=1, delete_misses=1, incr_hits=1, incr_misses=1,
                decr_hits=1, decr_misses=1, cas_hits=1, cas_misses=1, cas_badval=1, cmd_flush=1,
                client_errors=1)


def counters(router):
    st = router.stats()
    return {k: int(st[k]) for k in COUNTERS}


def tier():
    nodes = [Server("-t", "1") for _ in range(4)]
    return nodes, Router(router_config([nodes[0:2], nodes[2:4]]))


def text_sequence(c):
    def say(cmd, lines=1):
        c.send(cmd)
        return [c.line() for _ in range(lines)]

    check(say(b"set a 0 0 1\r\n1\r\n") == [b"STORED"], "set")                  # cmd_set 1
    check(say(b"get a\r\n", 3)[2] == b"END", "get hit")                         # get 1/1
    check(say(b"get b\r\n") == [b"END"], "get miss")                           # get 2, miss 1
    check(say(b"get a b a\r\n", 5)[4] == b"END", "multi-get")                   # get 5, hit 3
    lines = say(b"gets a\r\n", 3)                                               # get 6, hit 4
    token = int(lines[0].split()[4])
    check(say(b"gat 100 a\r\n", 3)[2] == b"END", "gat")                         # get 7, touch 1
    check(say(b"touch b 10\r\n") == [b"NOT_FOUND"], "touch miss")               # touch 2
    check(say(b"add a 0 0 1\r\n2\r\n") == [b"NOT_STORED"], "add")               # cmd_set 2
    check(say(b"cas a 0 0 1 %d\r\n3\r\n" % (token + 1)) == [b"EXISTS"], "cas")  # badval
    check(say(b"cas a 0 0 1 %d\r\n3\r\n" % token) == [b"STORED"], "cas ok")     # cas_hits
    check(say(b"cas zz 0 0 1 5\r\n3\r\n") == [b"NOT_FOUND"], "cas miss")        # cmd_set 5
    check(say(b"delete a\r\n") == [b"DELETED"], "delete")
    check(say(b"delete a\r\n") == [b"NOT_FOUND"], "delete miss")
    check(say(b"incr n 1\r\n") == [b"NOT_FOUND"], "incr miss")
    check(say(b"set n 0 0 1\r\n5\r\n") == [b"STORED"], "set n")                 # cmd_set 6
    check(say(b"incr n 2\r\n") == [b"7"], "incr")
    check(say(b"decr n 1\r\n") == [b"6"], "decr")
    check(say(b"decr m 1\r\n") == [b"NOT_FOUND"], "decr miss")
    check(say(b"set x 0 0 1\r\n1\r\n") == [b"STORED"], "set x")                 # cmd_set 7
    check(say(b"flush_all\r\n") == [b"OK"], "flush")
    check(say(b"bogus\r\n") == [b"ERROR"], "an unknown command")


def native_sequence(n):
    def st(op, **f):
        return n.call(op, **f)

    check(st("set", key=b"a", value=b"1")[0] == "OK", "set")
    check(st("get", key=b"a")[0] == "OK", "get hit")
    check(st("get", key=b"b")[0] == "NOT_FOUND", "get miss")
    vals = st("multi_get", keys=[b"a", b"b", b"a"])[1]["values"]
    check(vals[0] is not None and vals[1] is None and vals[2] is not None, "multi-get")
    token = st("gets", key=b"a")[1]["cas"]
    check(st("gat", key=b"a", ttl=100)[0] == "OK", "gat")
    check(st("touch", key=b"b", ttl=10)[0] == "NOT_FOUND", "touch miss")
    check(st("add", key=b"a", value=b"2")[0] == "NOT_STORED", "add")
    check(st("cas", key=b"a", value=b"3", cas=token + 1)[0] == "EXISTS", "cas")
    check(st("cas", key=b"a", value=b"3", cas=token)[0] == "OK", "cas ok")
    check(st("cas", key=b"zz", value=b"3", cas=5)[0] == "NOT_FOUND", "cas miss")
    check(st("delete", key=b"a")[0] == "OK", "delete")
    check(st("delete", key=b"a")[0] == "NOT_FOUND", "delete miss")
    check(st("incr", key=b"n", number=1)[0] == "NOT_FOUND", "incr miss")
    check(st("set", key=b"n", value=b"5")[0] == "OK", "set n")
    check(st("incr", key=b"n", number=2)[1]["number"] == 7, "incr")
    check(st("decr", key=b"n", number=1)[1]["number"] == 6, "decr")
    check(st("decr", key=b"m", number=1)[0] == "NOT_FOUND", "decr miss")
    check(st("multi_set", items=[[b"x", b"1"]])[1]["statuses"] == [0], "multi_set")
    check(st("flush")[0] == "OK", "flush")
    check(n.call(99)[0] == "UNKNOWN_OP", "an unknown op")


def test_counters_by_value_over_text():
    nodes, router = tier()
    try:
        c = router.connect()
        text_sequence(c)
        got = counters(router)
        check(got == EXPECTED, "text: %s" % {k: (got[k], EXPECTED[k]) for k in COUNTERS
                                             if got[k] != EXPECTED[k]})
        for _ in range(50):  # (a closed stats connection is counted once its close is seen)
            st = router.stats()
            if st["curr_connections"] == "2":
                break
            time.sleep(0.02)
        check(st["curr_connections"] == "2", "the sequence's and the stats' connections open")
        check(int(st["total_connections"]) >= 3, "every connection counted")
        c.close()
    finally:
        router.stop()
        for n in nodes:
            n.stop()


def test_counters_by_value_over_native():
    nodes, router = tier()
    try:
        native_sequence(NativeClient(router.port))
        got = counters(router)
        check(got == EXPECTED, "native: %s" % {k: (got[k], EXPECTED[k]) for k in COUNTERS
                                               if got[k] != EXPECTED[k]})
    finally:
        router.stop()
        for n in nodes:
            n.stop()


def test_meta_commands_count_as_their_classic_ones():
    nodes, router = tier()
    try:
        c = router.connect()
        for cmd in (b"ms a 1\r\n1\r\n", b"mg a v\r\n", b"mg b v\r\n", b"mg a T30\r\n",
                    b"mg zz T30\r\n", b"ma a\r\n", b"ma q\r\n", b"ma a MD\r\n", b"md a\r\n",
                    b"md a\r\n"):
            c.send(cmd + b"mn\r\n")
            while c.line() != b"MN":
                pass
        got = counters(router)
        want = dict(EXPECTED, cmd_get=2, get_hits=1, get_misses=1, cmd_set=1, cmd_touch=2,
                    touch_hits=1, touch_misses=1, delete_hits=1, delete_misses=1, incr_hits=1,
                    incr_misses=1, decr_hits=1, decr_misses=0, cas_hits=0, cas_misses=0,
                    cas_badval=0, cmd_flush=0, client_errors=0)
        check(got == want, "meta: %s" % {k: (got[k], want[k]) for k in COUNTERS
                                         if got[k] != want[k]})
        st = router.stats()
        per_node = sum(int(v) for k, v in st.items() if k.endswith(":requests")
                       and k.startswith("node:"))
        per_shard = sum(int(v) for k, v in st.items() if k.endswith(":requests")
                        and k.startswith("shard:"))
        check(per_shard >= 10 and per_node >= per_shard, "shard %d / node %d requests" % (
            per_shard, per_node))
    finally:
        router.stop()
        for n in nodes:
            n.stop()


if __name__ == "__main__":
    run([test_counters_by_value_over_text, test_counters_by_value_over_native,
         test_meta_commands_count_as_their_classic_ones])
