"""Differential testing of the memcache text protocol: the same seeded random stream of classic
and meta commands goes to several servers (stock memcached, cacheserver, cacherouter), and the
replies must match byte for byte once CAS values are normalized.

How a stream runs
- Commands go in pipelined batches of 1..40. Every command is followed by `mn`, so the reply
  of each command is exactly the units before its `MN` (quiet and noreply commands included:
  their reply may be empty).
- CAS values differ between servers, so they are compared by identity, not by number: per key,
  the first CAS value a server shows becomes #1, the next distinct one #2, and so on. A command
  that sends a CAS (`cas`, `ms C`, `md C`, `ma C`) names it the same way (the newest one seen
  for that key, or a bogus one) and each server gets its own number for it.
- Clock-derived numbers (`t` remaining TTL and `l` seconds since last access) may differ by one
  second: every server ticks its own clock, at its own phase.

Standard library only (run with /usr/bin/python3). `python3 differential.py --help` runs a
stream against servers that are already up."""
import argparse
import base64
import random
import re
import socket
import time

PLAIN_KEYS = ["k%d" % i for i in range(24)] + ["a" * 250]
BINARY_KEYS = [base64.b64encode(b"\x00bin%d\xff\x10" % i).decode() for i in range(4)]
META_END = b"MN"


class CasRef:
    """A CAS value to send, named by what the sender saw: the newest for `key`, or bogus."""

    def __init__(self, key, kind):
        self.key, self.kind = key, kind


class Command:
    """One request: `parts` are bytes and CasRef placeholders; `key` names the CAS space of the
    reply (None: the reply's own VALUE lines say); `extended` marks features memcached 1.6.18
    lacks (sent only to servers that all have them)."""

    def __init__(self, parts, key=None, sleep=0.0, keys=None):
        self.parts = parts
        head = parts[0][:5] if isinstance(parts[0], bytes) else b""
        self.arith = head.startswith((b"incr ", b"decr ", b"ma "))
        self.reads = head.startswith((b"get ", b"gets ", b"gat ", b"gats ", b"mg "))
        self.key = key
        self.keys = keys if keys is not None else ([key] if key is not None else [])
        self.sleep = sleep

    def render(self, cas_seen):
        """The bytes for one server; `cas_seen` maps a key to the CAS values it showed for it,
        oldest first. "previous" is the one before the newest (older, for the I flag); "bogus"
        is larger than any CAS a server gives."""
        out = []
        for p in self.parts:
            if isinstance(p, CasRef):
                seen = cas_seen.get(p.key, [])
                if p.kind == "latest" and seen:
                    out.append(str(seen[-1]).encode())
                elif p.kind == "previous" and len(seen) > 1:
                    out.append(str(seen[-2]).encode())
                elif p.kind == "zero":
                    out.append(b"0")
                else:
                    out.append(b"18446744073709551615")
            else:
                out.append(p)
        return b"".join(out)

    def text(self):
        """The command for a report (the 250-byte key shortened)."""
        t = b"".join(p if isinstance(p, bytes) else b"<cas:%s>" % p.kind.encode()
                     for p in self.parts)
        return t.replace(PLAIN_KEYS[-1].encode(), b"<a*250>")


class Generator:
    """Seeded random commands over a small key space, so that hits, misses, CAS conflicts,
    counters and expirations all happen. `extended` adds flags newer than memcached 1.6.18."""

    def __init__(self, seed, extended=False, sleeps=True):
        self.r = random.Random(seed)
        self.extended = extended
        self.sleeps = sleeps
        self.e_counter = 0

    def key(self):
        r = self.r
        return PLAIN_KEYS[min(int(r.expovariate(0.15)), len(PLAIN_KEYS) - 1)] \
            if r.random() < 0.97 else PLAIN_KEYS[-1]

    def value(self):
        r = self.r
        x = r.random()
        if x < 0.35:
            return str(r.choice([0, 1, 7, 9, 10, 99, 100, 12345, 2 ** 64 - 1, 2 ** 64 - 2])).encode()
        if x < 0.40:
            return b""
        if x < 0.43:
            return bytes(r.choice(b"abcdefghij") for _ in range(r.randint(1500, 3000)))
        if x < 0.45:
            return r.choice([b" 12", b"12 ", b"1 2", b"-5", b"3x", b"00007"])
        n = r.randint(1, 16)
        return bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))

    def exptime(self):
        r = self.r
        x = r.random()
        if x < 0.55:
            return b"0"
        if x < 0.75:
            return str(r.randint(200, 5000)).encode()
        if x < 0.85:
            return b"-1"
        # (No TTL of a second or two: when such an item dies depends on the phase of each
        # server's clock. The pauses still move every t and l.)
        return str(int(time.time()) + r.randint(1000, 9000)).encode()

    def flags(self):
        return str(self.r.choice([0, 0, 0, 1, 5, 65535, 4294967295])).encode()

    def explicit_cas(self):
        """An E flag. Its values grow and stay above every CAS a server picks itself, so that
        whether one CAS is older than another (the I flag) is the same on every server."""
        self.e_counter += self.r.randint(1, 1000)
        return b"E%d" % ((1 << 62) + self.e_counter)

    def opaque(self):
        r = self.r
        return b"O" + bytes(r.choice(b"abcxyz0123456789") for _ in range(r.randint(1, 12)))

    def noreply(self, p=0.12):
        return b" noreply" if self.r.random() < p else b""

    def cas_ref(self, key):
        return CasRef(key, self.r.choice(["latest"] * 5 + ["previous", "bogus", "zero"]))

    # ---- classic ----

    def retrieval(self):
        r = self.r
        cmd = r.choice([b"get"] * 5 + [b"gets"] * 3 + [b"gat", b"gats"])
        n = 1 if r.random() < 0.7 else r.randint(2, 6)
        keys = [self.key().encode() for _ in range(n)]
        head = cmd
        if cmd in (b"gat", b"gats"):
            head += b" " + self.exptime()
        return Command([head + b" " + b" ".join(keys) + b"\r\n"],
                       keys=sorted(set(k.decode() for k in keys)))

    def storage(self):
        r = self.r
        cmd = r.choice([b"set"] * 6 + [b"add", b"replace", b"append", b"prepend"] * 2 +
                       [b"cas"] * 3)
        k = self.key()
        v = self.value()
        parts = [b"%s %s %s %s %d" % (cmd, k.encode(), self.flags(), self.exptime(), len(v))]
        if cmd == b"cas":
            parts += [b" ", self.cas_ref(k)]
        parts.append(self.noreply() + b"\r\n" + v + b"\r\n")
        return Command(parts, key=k)

    def other_classic(self):
        r = self.r
        key = self.key()
        k = key.encode()
        x = r.random()
        if x < 0.30:
            return Command([b"delete " + k + self.noreply() + b"\r\n"], keys=[key])
        if x < 0.62:
            cmd = r.choice([b"incr", b"decr"])
            delta = r.choice([b"1", b"1", b"5", b"100", b"18446744073709551615", b"0"])
            return Command([cmd + b" " + k + b" " + delta + self.noreply() + b"\r\n"],
                           keys=[key])
        if x < 0.80:
            return Command([b"touch " + k + b" " + self.exptime() + self.noreply() + b"\r\n"],
                           keys=[key])
        if x < 0.84:
            return Command([b"verbosity 1" + self.noreply(0.3) + b"\r\n"])
        if x < 0.87:
            return Command([r.choice([b"flush_all", b"flush_all 0", b"flush_all noreply"]) +
                            b"\r\n"])
        # malformed requests: each gets an error line, the connection stays up
        return Command([r.choice([
            b"bogus\r\n", b"get\r\n", b"set " + k + b" 0 0 notanumber\r\n",
            b"incr " + k + b" abc\r\n", b"incr " + k + b" -1\r\n", b"touch " + k + b"\r\n",
            b"delete " + k + b" 5\r\n", b"delete " + k + b" 0\r\n",
            b"get " + b"z" * 251 + b"\r\n", b"set " + k + b" 0 0 2\r\nabc\r\n",
            b"decr " + k + b"\r\n", b"set " + k + b" 0 0 -1\r\n",
        ])])

    # ---- meta ----

    def meta_key(self, flags, binary_ok=True):
        """A key for a meta command; now and then a base64 one (the b flag). memcached 1.6.18
        forgets that a key was base64 when an item is vivified (mg N, ma N) or rebuilt (append,
        prepend, an incr that grows): a later k flag returns the raw bytes. So base64 keys go
        only with commands that keep the mark."""
        if binary_ok and self.r.random() < 0.12:
            flags.append(b"b")
            return self.r.choice(BINARY_KEYS)
        return self.key()

    def ttl_token(self):
        return self.r.choice([b"0", b"-1", b"30", b"300", b"5000"])

    def recache_token(self):
        """An R flag's token: never near a TTL this generator sets (ttl_token, exptime), so
        whether an item's remaining TTL is below it does not depend on when each server's
        clock ticked (R30 on an item just given T30 wins on a server whose second has turned
        and not on one whose has not)."""
        return self.r.choice([b"10", b"100", b"20000"])

    def pick(self, letters, lo=0, hi=6):
        chosen = self.r.sample(letters, self.r.randint(lo, min(hi, len(letters))))
        return chosen

    def mg(self):
        flags = []
        k = self.meta_key(flags)
        letters = list("cfhklqstuv") + ["O", "R", "T"]
        # memcached 1.6.18 forgets that a key it vivified was base64 (a later k flag returns
        # the raw bytes), so base64 keys are not vivified here.
        if not flags:
            letters.append("N")
        if self.extended:
            letters.append("E")
        for f in self.pick(letters, 0, 7):
            if f == "O":
                flags.append(self.opaque())
            elif f == "R":
                flags.append(b"R" + self.recache_token())
            elif f in "NT":
                flags.append(f.encode() + self.ttl_token())
            elif f == "E":
                flags.append(self.explicit_cas())
            else:
                flags.append(f.encode())
        self.r.shuffle(flags)
        return Command([b"mg " + k.encode() + b"".join(b" " + f for f in flags) + b"\r\n"], key=k)

    def ms(self):
        flags = []
        k = self.meta_key(flags)
        v = self.value()
        parts = []
        letters = list("ckqIs") + ["O", "F", "T", "M", "C"]
        if self.extended:
            letters += ["E", "N"]  # N: append/prepend vivify, newer than memcached 1.6.18
        for f in self.pick(letters, 0, 6):
            if f == "O":
                flags.append(self.opaque())
            elif f == "F":
                flags.append(b"F" + self.flags())
            elif f in "TN":
                flags.append(f.encode() + self.ttl_token())
            elif f == "M":
                modes = b"ERS" if b"b" in flags else b"EAPRS"
                flags.append(b"M" + self.r.choice(modes * 4 + b"aX").to_bytes(1, "big"))
            elif f == "C":
                flags.append(None)  # a CAS reference, placed below
            elif f == "E":
                flags.append(self.explicit_cas())
            else:
                flags.append(f.encode())
        self.r.shuffle(flags)
        parts.append(b"ms %s %d" % (k.encode(), len(v)))
        for f in flags:
            if f is None:
                parts += [b" C", self.cas_ref(k)]
            else:
                parts.append(b" " + f)
        parts.append(b"\r\n" + v + b"\r\n")
        return Command(parts, key=k)

    def md(self):
        flags = []
        k = self.meta_key(flags)
        letters = list("kqI") + ["O", "T", "C"]
        if self.extended:
            letters += ["E", "x"]
        for f in self.pick(letters, 0, 4):
            if f == "O":
                flags.append(self.opaque())
            elif f == "T":
                flags.append(b"T" + self.ttl_token())
            elif f == "C":
                flags.append(None)
            elif f == "E":
                flags.append(self.explicit_cas())
            else:
                flags.append(f.encode())
        self.r.shuffle(flags)
        parts = [b"md " + k.encode()]
        for f in flags:
            parts += [b" C", self.cas_ref(k)] if f is None else [b" " + f]
        parts.append(b"\r\n")
        return Command(parts, key=k)

    def ma(self):
        flags = []
        k = self.meta_key(flags, binary_ok=False)
        # T is sent only to servers that all apply it: memcached 1.6.18 drops ma's T when the
        # number grows a digit (it sets the TTL of the item the result replaced).
        letters = list("ctkqv") + ["O", "C", "N", "J", "D", "M"] + (["T"] if self.extended else [])
        for f in self.pick(letters, 0, 6):
            if f == "O":
                flags.append(self.opaque())
            elif f in "TN":
                flags.append(f.encode() + self.ttl_token())
            elif f == "C":
                flags.append(None)
            elif f == "J":
                flags.append(b"J" + self.r.choice([b"0", b"13", b"18446744073709551615"]))
            elif f == "D":
                flags.append(b"D" + self.r.choice([b"1", b"7", b"1000"]))
            elif f == "M":
                flags.append(b"M" + self.r.choice([b"I", b"D", b"+", b"-", b"i", b"d"]))
            else:
                flags.append(f.encode())
        self.r.shuffle(flags)
        parts = [b"ma " + k.encode()]
        for f in flags:
            parts += [b" C", self.cas_ref(k)] if f is None else [b" " + f]
        parts.append(b"\r\n")
        return Command(parts, key=k)

    def meta_error(self):
        k = self.key().encode()
        return Command([self.r.choice([
            b"mg " + k + b" v v\r\n", b"mg " + k + b" Y\r\n", b"ms " + k + b"\r\n",
            b"ms " + k + b" abc\r\n", b"md " + k + b" q q\r\n", b"ma " + k + b" Dabc\r\n",
            b"mg\r\n", b"ms " + k + b" 2 MZ\r\nhi\r\n", b"mg " + k + b" Tabc v\r\n",
            b"ma " + k + b" Jx\r\n",
            # (memcached checks the opaque's length after the lookup, so the key is one that
            # is never stored: the lookup's side effects would differ)
            b"mg nokey O" + b"x" * 40 + b"\r\n",
        ])], key=k.decode())

    def command(self):
        r = self.r
        x = r.random()
        if x < 0.20:
            return self.retrieval()
        if x < 0.40:
            return self.storage()
        if x < 0.50:
            return self.other_classic()
        if x < 0.68:
            return self.mg()
        if x < 0.80:
            return self.ms()
        if x < 0.86:
            return self.md()
        if x < 0.95:
            return self.ma()
        return self.meta_error()  # (mn is the delimiter after every command)

    def batches(self, n_ops):
        """Yields lists of Commands, n_ops in all; now and then a pause (expirations).

        memcached changes a counter in place only when no reply still waiting to be written
        holds the item; otherwise it makes a new item (which forgets that it was fetched, and
        is not padded with spaces). That depends on its output buffering, not on the protocol,
        so a batch ends before an incr/decr/ma on a key that a read earlier in the batch hit."""
        done = 0
        pending = None
        while done < n_ops:
            size = min(n_ops - done, self.r.choice([1, 1, 2, 3, 5, 8, 13, 20, 40]))
            batch, read = [], set()
            while len(batch) < size:
                cmd = pending if pending is not None else self.command()
                pending = None
                if cmd.arith and read.intersection(cmd.keys) and batch:
                    pending = cmd
                    break
                batch.append(cmd)
                if cmd.reads:
                    read.update(cmd.keys)
            if self.sleeps and self.r.random() < 0.004:
                batch[-1].sleep = 2.2
            done += len(batch)
            yield batch


class Target:
    """One server under test: a connection, and the CAS values it has shown."""

    def __init__(self, name, port, host="127.0.0.1"):
        self.name, self.port = name, port
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.cas_seen = {}      # key -> the distinct raw CAS values shown, oldest first
        self.cas_names = {}     # (key, raw) -> ordinal name

    def close(self):
        self.sock.close()

    def _fill(self):
        d = self.sock.recv(1 << 20)
        if not d:
            raise EOFError("%s closed the connection" % self.name)
        self.buf += d

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def unit(self):
        """One reply unit: a line, with its data block for VALUE and VA."""
        line = self._line()
        tok = line.split(b" ")
        data = None
        if tok[0] == b"VALUE" and len(tok) >= 4:
            data = self._exact(int(tok[3]) + 2)
        elif tok[0] == b"VA" and len(tok) >= 2:
            data = self._exact(int(tok[1]) + 2)
        return line, data

    def run(self, batch):
        """Sends a batch (each command followed by mn), returns one list of units per command."""
        self.sock.sendall(b"".join(c.render(self.cas_seen) + b"mn\r\n" for c in batch))
        replies = []
        for _ in batch:
            units = []
            while True:
                u = self.unit()
                if u[0] == META_END and u[1] is None:
                    break
                units.append(u)
            replies.append(units)
        return replies

    def name_cas(self, key, raw):
        """The ordinal name of a CAS value of `key`, remembering it as the newest seen."""
        seen = self.cas_seen.setdefault(key, [])
        if raw in seen:
            seen.remove(raw)
        seen.append(raw)
        k = (key, raw)
        if k not in self.cas_names:
            self.cas_names[k] = "#%d" % (1 + sum(1 for (kk, _) in self.cas_names if kk == key))
        return self.cas_names[k]


META_CODES = {b"HD", b"VA", b"EN", b"NS", b"EX", b"NF", b"MN"}
NUMBER = re.compile(rb"^-?\d+$")


def normalize(target, cmd, units):
    """Replies as comparable tokens: CAS values named per key, t/l kept as numbers (compared
    within one second by `same`)."""
    out = []
    for line, data in units:
        tok = line.split(b" ")
        if tok[0] == b"VALUE" and len(tok) == 5:
            key = tok[1].decode(errors="replace")
            tok[4] = target.name_cas(key, int(tok[4])).encode()
        elif tok[0] in META_CODES and cmd.key is not None:
            for i in range(1, len(tok)):
                t = tok[i]
                if t[:1] == b"c" and NUMBER.match(t[1:]):
                    raw = int(t[1:])
                    tok[i] = b"c" + (target.name_cas(cmd.key, raw).encode() if raw else b"0")
        out.append((tok, data))
    return out


def same(a, b, slept=False):
    """Two normalized replies match: the same tokens, except t and l numbers within 1. Once a
    stream has paused (`slept`), l is only checked to be a number: memcached's access time moves
    when its LRU maintainer thread re-activates an item, on that thread's schedule."""
    if len(a) != len(b):
        return False
    for (ta, da), (tb, db) in zip(a, b):
        if da != db or len(ta) != len(tb):
            return False
        meta = ta and ta[0] in META_CODES
        for x, y in zip(ta, tb):
            if x == y:
                continue
            if meta and x[:1] == y[:1] and x[:1] in (b"t", b"l") and \
                    NUMBER.match(x[1:]) and NUMBER.match(y[1:]):
                xi, yi = int(x[1:]), int(y[1:])
                if xi >= 0 and yi >= 0 and (abs(xi - yi) <= 1 or (slept and x[:1] == b"l")):
                    continue
                # memcached prints the TTL of an item a T or N flag just expired (T-1) as a
                # negative number cast to unsigned 32 bits; cachetier prints t0.
                if x[:1] == b"t" and min(xi, yi) == 0 and max(xi, yi) >= 2 ** 31:
                    continue
            return False
    return True


def show(units):
    return b" | ".join(line + (b" <%d bytes>" % (len(d) - 2) if d is not None else b"")
                       for line, d in units).replace(PLAIN_KEYS[-1].encode(), b"<a*250>").decode(
                           errors="replace")


def run_stream(targets, seed, n_ops, extended=False, sleeps=True, max_report=10, log=print):
    """Runs one stream against every target; the first is the reference. Returns
    (operations, mismatches). Prints the first mismatches with their commands."""
    gen = Generator(seed, extended=extended, sleeps=sleeps)
    for t in targets:  # every stream starts from an empty cache
        t.sock.sendall(b"flush_all\r\n")
        line = t.unit()[0]
        if line != b"OK":
            raise RuntimeError("%s: flush_all answered %r" % (t.name, line))
    ops = 0
    mismatches = 0
    slept = False
    history = {}  # key -> the last commands on it, for reports
    for batch in gen.batches(n_ops):
        results = [t.run(batch) for t in targets]
        for i, cmd in enumerate(batch):
            ref = normalize(targets[0], cmd, results[0][i])
            for key in cmd.keys:
                history.setdefault(key, []).append(
                    (ops + i, cmd.text()[:120], [show(r[i])[:120] for r in results]))
                del history[key][:-8]
            for t, res in zip(targets[1:], results[1:]):
                got = normalize(t, cmd, res[i])
                if not same(ref, got, slept):
                    mismatches += 1
                    if mismatches <= max_report:
                        log("MISMATCH seed %d op %d: %r\n  %s: %s\n  %s: %s\n  normalized: %s / %s" % (
                            seed, ops + i, cmd.text()[:300], targets[0].name,
                            show(results[0][i]), t.name, show(res[i]),
                            b" ".join(b" ".join(x) + (b" [%r]" % d[:40] if d else b"")
                                      for x, d in ref)[:300],
                            b" ".join(b" ".join(x) + (b" [%r]" % d[:40] if d else b"")
                                      for x, d in got)[:300]))
                        for key in cmd.keys[:2]:
                            for op, text, shown in history.get(key, [])[:-1]:
                                log("    before, op %d: %r -> %s" % (op, text, " / ".join(shown)))
        ops += len(batch)
        pause = max(c.sleep for c in batch)
        if pause:
            time.sleep(pause)
            slept = True
    return ops, mismatches


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ports", nargs="+", type=int, help="servers on 127.0.0.1; the first is "
                    "the reference")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ops", type=int, default=5000)
    ap.add_argument("--extended", action="store_true", help="flags newer than memcached 1.6.18")
    ap.add_argument("--no-sleep", action="store_true")
    args = ap.parse_args()
    targets = [Target("port%d" % p, p) for p in args.ports]
    ops, bad = run_stream(targets, args.seed, args.ops, extended=args.extended,
                          sleeps=not args.no_sleep, max_report=30)
    print("%d operations, %d mismatches" % (ops, bad))
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
