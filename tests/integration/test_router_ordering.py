"""Order through the router: a compare-and-swap reaches the shard's primary first and its
siblings only once the primary has answered, so the router holds back a client's later requests
that the sibling copies must precede. Checked on each replica directly, over a router on one
shard of two replicas. Run with /usr/bin/python3. Every loop here is bounded in count."""
from harness import Router, Server, check, router_config, run

ROUNDS = 200


def gets_cas(conn, key):
    conn.send(b"gets " + key + b"\r\n")
    line = conn.line()
    check(line.startswith(b"VALUE "), "gets %r: %r" % (key, line))
    cas = int(line.split()[4])
    conn.exact(int(line.split()[3]) + 2)
    check(conn.line() == b"END", "one value")
    return cas


def test_flush_all_after_a_cas_empties_every_replica():
    """`cas` then `flush_all noreply` in one write: without the hold-back, the flush reaches
    the sibling before the cas's copy does, and the copy outlives the flush there."""
    nodes = [Server("-t", "1") for _ in range(2)]
    try:
        with Router(router_config([nodes])) as r:
            c = r.connect()
            direct = [n.connect() for n in nodes]
            for i in range(ROUNDS):
                key = b"ord:%d" % i
                c.send(b"set " + key + b" 0 0 1\r\nA\r\n")
                check(c.line() == b"STORED", "stored")
                cas = gets_cas(c, key)
                c.send(b"cas " + key + b" 0 0 1 %d\r\nB\r\nflush_all noreply\r\nmn\r\n" % cas)
                check(c.line() == b"STORED", "the cas holds")
                check(c.line() == b"MN", "flush_all noreply answers nothing")
                for n, d in zip(nodes, direct):
                    got = d.get(key)
                    check(got is None, "round %d: replica %d kept %r after flush_all" %
                          (i, n.port, got))
            print("  %d rounds: cas then flush_all, both replicas empty after each" % ROUNDS)
    finally:
        for n in nodes:
            n.stop()


def test_a_request_after_a_cas_sees_its_change_on_every_replica():
    """`cas` then a pipelined `get`, reads spread round robin: the get goes out only once the
    siblings have the change queued, so whichever replica answers has the new value."""
    nodes = [Server("-t", "1") for _ in range(2)]
    try:
        with Router(router_config([nodes], read_policy="round_robin")) as r:
            c = r.connect()
            for i in range(ROUNDS):
                key = b"seq:%d" % i
                c.send(b"set " + key + b" 0 0 1\r\nA\r\n")
                check(c.line() == b"STORED", "stored")
                cas = gets_cas(c, key)
                c.send(b"cas " + key + b" 0 0 1 %d\r\nB\r\nget " % cas + key + b"\r\n" +
                       b"get " + key + b"\r\n")
                check(c.line() == b"STORED", "the cas holds")
                for _ in range(2):
                    line = c.line()
                    check(line.startswith(b"VALUE "), "round %d: %r" % (i, line))
                    check(c.exact(3)[:1] == b"B", "round %d: a replica answered the old value" % i)
                    check(c.line() == b"END", "end")
            print("  %d rounds: cas then two gets, every get saw the change" % ROUNDS)
    finally:
        for n in nodes:
            n.stop()


if __name__ == "__main__":
    run([test_flush_all_after_a_cas_empties_every_replica,
         test_a_request_after_a_cas_sees_its_change_on_every_replica])
