"""The consistency scenarios of docs/consistency.md, each on a fresh tier on the test bed
(tier.py): a shard of two replicas x and y, routers a, b (and c) on their own hosts, apps on
the router hosts. Each returns its History; test_consistency.py asserts on them and prints
their figures. Keys 0..UPDATED-1 are the ones updated during a fault; the rest are read by a
"busy" router meanwhile."""
import time

from checker import History, readers, writers

UPDATED = 300
OTHER = 1000
READ_SECONDS = 3.0


def prefill(t, h, via="a"):
    failed = h.write_all(t.client(via))
    if failed:
        raise AssertionError("%d prefill writes failed" % failed)


def baseline(t, h, routers):
    h.phase("before")
    r = readers(h, [t.client(x) for x in routers])
    r.start()
    time.sleep(1.0)
    r.stop()


def read_for(t, h, routers, phase, seconds=READ_SECONDS, keys=None):
    h.phase(phase)
    r = readers(h, [t.client(x) for x in routers], keys=keys)
    r.start()
    time.sleep(seconds)
    r.stop()


def paused_write_read(t, busy):
    """1: pause x, update keys through a, resume x, read through b (idle or busy meanwhile)."""
    h = History(UPDATED + OTHER)
    prefill(t, h)
    baseline(t, h, ["a", "b"])
    h.phase("x paused, writes via a")
    meanwhile = readers(h, [t.client("b")], keys=range(UPDATED, UPDATED + OTHER))
    if busy:
        meanwhile.start()
    t.node("x").pause()
    failed = h.write_all(t.client("a"), range(UPDATED))
    time.sleep(0.3)
    t.node("x").resume()
    if busy:
        meanwhile.stop()
    read_for(t, h, ["b"], "x back, reads via b", keys=range(UPDATED))
    return h, failed


def router_killed(t):
    """2: pause x, update through a, kill a, resume x; read through b, then a restarted a."""
    h = History(UPDATED + OTHER)
    prefill(t, h)
    baseline(t, h, ["a", "b"])
    h.phase("x paused, writes via a")
    t.node("x").pause()
    failed = h.write_all(t.client("a"), range(UPDATED))
    t.routers["a"].kill()
    time.sleep(0.3)
    t.node("x").resume()
    read_for(t, h, ["b"], "a dead, x back, via b", keys=range(UPDATED))
    t.routers["a"].start()
    t.wait_router("a")
    read_for(t, h, ["a", "b"], "a restarted, via a+b", keys=range(UPDATED))
    return h, failed


def router_restart_while_down(t):
    """3: one router; x paused, updates, the router restarts, x returns; reads."""
    h = History(UPDATED + OTHER)
    prefill(t, h)
    baseline(t, h, ["a"])
    h.phase("x paused, writes via a")
    t.node("x").pause()
    failed = h.write_all(t.client("a"), range(UPDATED))
    t.restart_router("a")
    h.phase("a restarted, x paused")
    time.sleep(0.5)
    t.node("x").resume()
    read_for(t, h, ["a"], "x back, reads via a", keys=range(UPDATED))
    return h, failed


def cut_off(t, how="isolate"):
    """5: x cut off (isolated from every host, or its link down), updates through a, reads
    through b; then back; reads."""
    fault, undo, label = {"isolate": (t.bed.isolate, t.bed.heal, "isolated"),
                          "link": (t.bed.link_down, t.bed.link_up, "link down")}[how]
    h = History(UPDATED + OTHER)
    prefill(t, h)
    baseline(t, h, ["a", "b"])
    h.phase("x %s, writes via a" % label)
    fault("x")
    meanwhile = readers(h, [t.client("b")])
    meanwhile.start()
    failed = h.write_all(t.client("a"), range(UPDATED))
    meanwhile.stop()
    undo("x")
    read_for(t, h, ["a", "b"], "x back, reads via a+b", keys=range(UPDATED))
    return h, failed


def flapping(t, cycles=3):
    """6: three routers write and read all along while x is paused 1 s, back 2 s, repeatedly."""
    h = History(UPDATED + OTHER)
    prefill(t, h)
    baseline(t, h, ["a", "b", "c"])
    w = writers(h, [t.client(x) for x in ("a", "b", "c")], keys=range(UPDATED), pause_s=0.002)
    r = readers(h, [t.client(x) for x in ("a", "b", "c")], keys=range(UPDATED))
    w.start()
    r.start()
    for i in range(cycles):
        h.phase("flap %d: x paused" % i)
        t.node("x").pause()
        time.sleep(1.0)
        h.phase("flap %d: x back" % i)
        t.node("x").resume()
        time.sleep(2.0)
    w.stop()
    r.stop()
    read_for(t, h, ["a", "b", "c"], "after, reads via a+b+c", seconds=1.0, keys=range(UPDATED))
    return h, 0


def sibling_killed_after_return(t):
    """7: x paused, updates through a, x back; 3 s later y is killed -9; reads via a and b."""
    h = History(UPDATED + OTHER)
    prefill(t, h)
    baseline(t, h, ["a", "b"])
    h.phase("x paused, writes via a")
    t.node("x").pause()
    failed = h.write_all(t.client("a"), range(UPDATED))
    t.node("x").resume()
    read_for(t, h, ["a", "b"], "x back", seconds=3.0, keys=range(UPDATED))
    t.node("y").kill()
    read_for(t, h, ["a", "b"], "y killed, via a+b", keys=range(UPDATED))
    lost = h.lost_keys(t.client("b"))
    return h, failed, lost


def partial_partition(t):
    """4: a cannot reach x, b can; updates through a, reads through b; then mended."""
    h = History(UPDATED + OTHER)
    prefill(t, h)
    baseline(t, h, ["a", "b"])
    h.phase("a -/- x, writes via a")
    t.bed.cut("a", "x")
    r = readers(h, [t.client("b")], keys=range(UPDATED))
    r.start()
    failed = h.write_all(t.client("a"), range(UPDATED))
    time.sleep(1.0)
    r.stop()
    t.bed.mend("a", "x")
    read_for(t, h, ["a", "b"], "mended, reads via a+b", keys=range(UPDATED))
    return h, failed


def throttled(t, kbit=64):
    """A throttled link (tc tbf): x answers slowly while a and b write and read all along."""
    h = History(UPDATED + OTHER)
    prefill(t, h)
    baseline(t, h, ["a", "b"])
    w = writers(h, [t.client("a"), t.client("b")], keys=range(UPDATED), pause_s=0.002)
    r = readers(h, [t.client("a"), t.client("b")], keys=range(UPDATED))
    w.start()
    r.start()
    time.sleep(0.5)
    h.phase("x throttled to %d kbit/s" % kbit)
    t.bed.throttle("x", kbit)
    time.sleep(3.0)
    h.phase("x unthrottled")
    t.bed.unthrottle("x")
    time.sleep(2.0)
    w.stop()
    r.stop()
    read_for(t, h, ["a", "b"], "after, reads via a+b", seconds=1.0, keys=range(UPDATED))
    return h, 0


def overflow(t):
    """More missed keys than x's hint list can hold on y: x is emptied and warms instead."""
    h = History(UPDATED + OTHER)
    prefill(t, h)
    baseline(t, h, ["a", "b"])
    h.phase("x paused, all keys via a")
    t.node("x").pause()
    failed = h.write_all(t.client("a"))
    t.node("x").resume()
    read_for(t, h, ["a", "b"], "x back, reads via a+b")
    return h, failed


def flush_missed(t):
    """flush_all through a while x is paused: x missed it, so once back it must serve none of
    what the flush removed, through a (which saw the flush fail on x) or b (which did not)."""
    h = History(UPDATED)
    prefill(t, h)
    baseline(t, h, ["a", "b"])
    t.node("x").pause()
    time.sleep(0.3)  # the routers see x late
    reply = t.client("a").flush_all()
    time.sleep(0.3)
    t.node("x").resume()
    return h, reply
