"""A multi-host test bed on Linux network namespaces, for the consistency scenarios.

Each "host" (a cache node, a router and its app clients) is its own network namespace with
one interface, eth0, at 10.231.0.N/24. The hosts' eth0s are veth pairs whose other ends sit
on a bridge inside one more namespace, the switch, so nothing is added to the machine's own
namespace and no traffic leaves the namespaces made here. Names resolve through
/etc/netns/NS/hosts, which `ip netns exec` puts in place of /etc/hosts for the programs it
starts.

    bed = Bed(["x", "y", "a"])        # namespaces ctbedPID-x, ..., ctbedPID-sw
    with bed:
        p = bed.spawn("x", [cacheserver, "-p", "11211"])
        with bed.inside("a"):         # this thread's sockets are made in host a
            socket.create_connection(("10.231.0.2", 11211))
        bed.cut("a", "x")             # a and x no longer hear each other; the rest do
        bed.mend("a", "x")

Faults: cut/mend (a partition between two hosts), isolate/heal (a host from every other),
link_down/link_up, throttle/unthrottle (tc tbf both ways; this kernel has no netem, so delay
comes from a paused process or a throttled link), and on processes pause/resume (SIGSTOP,
SIGCONT), kill (SIGKILL) and restart. Partitions drop packets on the receiving side (iptables
INPUT in a chain of our own), so a sender sees silence, as across a real network, not an
immediate local error.

Hygiene: needs root. Everything made carries the tag ctbed<pid>; close() (also run at exit and
on SIGINT/SIGTERM) kills the processes it started by pid, deletes its namespaces (which takes
their links and rules with them), its /etc/netns directories and its log directory (kept when
CTBED_KEEP_LOGS is set). A bed also removes what an
earlier run left behind if that run's process is gone (same prefix, dead pid).
Run with Debian's /usr/bin/python3.
"""
import atexit
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import threading
import time

PREFIX = "ctbed"
SUBNET = "10.231.0."
SUBNET6 = "fd00:231::"  # unique local addresses: never routed off the machine
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class BedError(RuntimeError):
    pass


def sh(*argv, check=True):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise BedError("%s: %s" % (" ".join(argv), (r.stderr or r.stdout).strip()))
    return r.stdout


def require_root():
    if os.geteuid() != 0:
        raise BedError("the test bed needs root (network namespaces, veth, iptables); run as "
                       "root, as CI does")
    for tool in ("ip", "iptables", "ip6tables", "tc"):
        if shutil.which(tool) is None:
            raise BedError("%s is missing: `make deps` installs iproute2 and iptables" % tool)


def remove_leftovers():
    """Deletes namespaces and /etc/netns entries of earlier beds whose process is gone."""
    for name in sh("ip", "netns", "list").split():
        m = re.match(r"%s(\d+)-" % PREFIX, name)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            sh("ip", "netns", "del", name, check=False)
    if os.path.isdir("/etc/netns"):
        for name in os.listdir("/etc/netns"):
            m = re.match(r"%s(\d+)-" % PREFIX, name)
            if m and not os.path.exists("/proc/%s" % m.group(1)):
                shutil.rmtree(os.path.join("/etc/netns", name), ignore_errors=True)


class Proc:
    """A program started in a host. Stopped by its pid only."""

    def __init__(self, bed, host, argv, log):
        self.bed, self.host, self.argv, self.log = bed, host, list(argv), log
        self.p = None
        self.start()

    def start(self):
        out = open(self.log, "ab")
        # `ip netns exec` execs argv, so the pid is the program's own.
        self.p = subprocess.Popen(["ip", "netns", "exec", self.bed.ns(self.host)] + self.argv,
                                  stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        out.close()

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def pause(self):
        os.kill(self.p.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.p.pid, signal.SIGCONT)

    def kill(self):
        if self.alive():
            os.kill(self.p.pid, signal.SIGCONT)  # a stopped process dies too
            os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(10)

    def stop(self, timeout=10):
        if self.alive():
            os.kill(self.p.pid, signal.SIGCONT)
            os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(10)

    def restart(self):
        self.kill()
        self.start()

    def output(self):
        with open(self.log, errors="replace") as f:
            return f.read()


class Bed:
    def __init__(self, hosts, logdir=None):
        if len(hosts) > 200 or len(set(hosts)) != len(hosts):
            raise BedError("hosts must be distinct, at most 200")
        self.tag = "%s%d" % (PREFIX, os.getpid())
        self.hosts = list(hosts)
        self.addrs = {h: SUBNET + str(i + 2) for i, h in enumerate(self.hosts)}
        self.addrs6 = {h: SUBNET6 + "%x" % (i + 2) for i, h in enumerate(self.hosts)}
        self.procs = []
        self.made = []  # namespaces, in creation order
        self.throttled = set()
        self.logdir = logdir or "/tmp/%s-logs" % self.tag
        self._closed = False
        self._lock = threading.Lock()

    # ---- names ----
    def ns(self, host):
        return "%s-%s" % (self.tag, host)

    def addr(self, host):
        return self.addrs[host]

    def hosts_path(self, host):
        """The file `ip netns exec` shows as /etc/hosts to the programs of `host`."""
        return os.path.join("/etc/netns", self.ns(host), "hosts")

    def rename(self, host, name, to_host):
        """Points `name` at `to_host`'s address in `host`'s /etc/hosts (rewritten in place, so
        programs already running there see it on their next lookup)."""
        self.set_name(host, name, [to_host])

    def set_name(self, host, name, targets):
        """`name` resolves, in `host`, to the addresses of every host in `targets` (one hosts
        line each, as a headless Service's DNS name lists its pods); none: it is gone."""
        path = self.hosts_path(host)
        with open(path) as f:
            lines = [ln for ln in f.read().splitlines() if ln.split()[1:] != [name]]
        lines += ["%s %s" % (self.addrs[t], name) for t in targets]
        with open(path, "r+") as f:
            f.seek(0)
            f.write("\n".join(lines) + "\n")
            f.truncate()

    def exec(self, host, *argv, check=True):
        return sh("ip", "netns", "exec", self.ns(host), *argv, check=check)

    # ---- life ----
    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def up(self):
        require_root()
        remove_leftovers()
        os.makedirs(self.logdir, exist_ok=True)
        atexit.register(self.close)
        for sig in (signal.SIGINT, signal.SIGTERM):
            prev = signal.getsignal(sig)

            def handler(signum, frame, prev=prev):
                self.close()
                if callable(prev):
                    prev(signum, frame)
                raise SystemExit(128 + signum)
            signal.signal(sig, handler)
        sw = self.ns("sw")
        self._add_ns(sw)
        sh("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", sw, "link", "set", "dev", "br0", "up")
        # NAME is a host's IPv4 address, NAME6 its IPv6 one.
        hosts_file = "127.0.0.1 localhost\n::1 localhost\n" + "".join(
            "%s %s\n%s %s6\n" % (self.addrs[h], h, self.addrs6[h], h) for h in self.hosts)
        for i, h in enumerate(self.hosts):
            ns = self.ns(h)
            self._add_ns(ns)
            peer = "p%d" % i
            sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", peer,
               "netns", sw)
            sh("ip", "-n", sw, "link", "set", "dev", peer, "master", "br0")
            sh("ip", "-n", sw, "link", "set", "dev", peer, "up")
            sh("ip", "-n", ns, "addr", "add", self.addrs[h] + "/24", "dev", "eth0")
            sh("ip", "-n", ns, "addr", "add", self.addrs6[h] + "/64", "dev", "eth0", "nodad")
            sh("ip", "-n", ns, "link", "set", "dev", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "dev", "lo", "up")
            # Our own chain for partitions: cut/mend/isolate/heal only touch it.
            for tool in ("iptables", "ip6tables"):
                self.exec(h, tool, "-N", "CTBED")
                self.exec(h, tool, "-I", "INPUT", "-j", "CTBED")
            d = os.path.join("/etc/netns", ns)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "hosts"), "w") as f:
                f.write(hosts_file)

    def _add_ns(self, name):
        sh("ip", "netns", "add", name)
        self.made.append(name)

    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for p in self.procs:
            try:
                p.kill()
            except (OSError, subprocess.TimeoutExpired):
                pass
        for name in reversed(self.made):
            sh("ip", "netns", "del", name, check=False)
            shutil.rmtree(os.path.join("/etc/netns", name), ignore_errors=True)
        self.made = []
        if not os.environ.get("CTBED_KEEP_LOGS"):  # the programs' output, kept on request
            shutil.rmtree(self.logdir, ignore_errors=True)

    def leftovers(self):
        """What of this bed still exists (for the self-test): namespaces, /etc/netns, pids."""
        left = [n for n in sh("ip", "netns", "list").split() if n.startswith(self.tag + "-")]
        if os.path.isdir("/etc/netns"):
            left += [n for n in os.listdir("/etc/netns") if n.startswith(self.tag + "-")]
        left += ["pid %d" % p.pid for p in self.procs if p.alive()]
        return left

    # ---- programs ----
    def spawn(self, host, argv, name=None):
        name = name or "%s-%s" % (host, os.path.basename(argv[0]))
        p = Proc(self, host, argv, os.path.join(self.logdir, name + ".log"))
        self.procs.append(p)
        return p

    @contextlib.contextmanager
    def inside(self, host):
        """Runs the block with this thread in `host`'s network namespace: sockets made in it
        belong to that host (setns is per thread for network namespaces)."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open("/run/netns/%s" % self.ns(host), os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise BedError("setns into %s: %s" % (host, os.strerror(ctypes.get_errno())))
            try:
                yield
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise BedError("setns back: %s" % os.strerror(ctypes.get_errno()))
        finally:
            os.close(target)
            os.close(own)

    # ---- faults ----
    def cut(self, a, b):
        """a and b stop hearing each other (both drop what the other sends)."""
        self.exec(a, "iptables", "-A", "CTBED", "-s", self.addrs[b], "-j", "DROP")
        self.exec(b, "iptables", "-A", "CTBED", "-s", self.addrs[a], "-j", "DROP")
        self.exec(a, "ip6tables", "-A", "CTBED", "-s", self.addrs6[b], "-j", "DROP")
        self.exec(b, "ip6tables", "-A", "CTBED", "-s", self.addrs6[a], "-j", "DROP")

    def mend(self, a, b):
        self.exec(a, "iptables", "-D", "CTBED", "-s", self.addrs[b], "-j", "DROP")
        self.exec(b, "iptables", "-D", "CTBED", "-s", self.addrs[a], "-j", "DROP")
        self.exec(a, "ip6tables", "-D", "CTBED", "-s", self.addrs6[b], "-j", "DROP")
        self.exec(b, "ip6tables", "-D", "CTBED", "-s", self.addrs6[a], "-j", "DROP")

    def isolate(self, host):
        """host hears nobody and nobody hears it; its processes keep running."""
        for tool in ("iptables", "ip6tables"):
            self.exec(host, tool, "-A", "CTBED", "-i", "eth0", "-j", "DROP")
        for other in self.hosts:
            if other != host:
                self.exec(other, "iptables", "-A", "CTBED", "-s", self.addrs[host], "-j", "DROP")
                self.exec(other, "ip6tables", "-A", "CTBED", "-s", self.addrs6[host], "-j",
                          "DROP")

    def heal(self, host=None):
        """Removes every partition rule (of one host and the rules about it, or all)."""
        for h in self.hosts:
            if host is None or h == host:
                self.exec(h, "iptables", "-F", "CTBED")
                self.exec(h, "ip6tables", "-F", "CTBED")
            else:
                for tool, a in (("iptables", self.addrs[host]), ("ip6tables", self.addrs6[host])):
                    while self._has_rule(h, tool, a):
                        self.exec(h, tool, "-D", "CTBED", "-s", a, "-j", "DROP")

    def _has_rule(self, host, tool, addr):
        return ("-s %s/" % addr) in self.exec(host, tool, "-S", "CTBED")

    def link_down(self, host):
        self.exec(host, "ip", "link", "set", "dev", "eth0", "down")

    def link_up(self, host):
        self.exec(host, "ip", "link", "set", "dev", "eth0", "up")

    def throttle(self, host, kbit):
        """Limits host's link to `kbit` kbit/s each way (tc tbf on both ends of its veth)."""
        peer = "p%d" % self.hosts.index(host)
        burst = str(max(1600, kbit * 1000 // 8 // 50))  # ~20 ms of traffic
        for ns, dev in ((self.ns(host), "eth0"), (self.ns("sw"), peer)):
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
               "rate", "%dkbit" % kbit, "burst", burst, "latency", "200ms")
        self.throttled.add(host)

    def unthrottle(self, host):
        peer = "p%d" % self.hosts.index(host)
        for ns, dev in ((self.ns(host), "eth0"), (self.ns("sw"), peer)):
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)
        self.throttled.discard(host)


def wait_tcp(bed, host, addr, port, timeout=10.0):
    """Waits until a connection from `host` to addr:port succeeds."""
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with bed.inside(host):
            s = socket.socket()
        s.settimeout(0.5)
        try:
            s.connect((addr, port))
            s.close()
            return True
        except OSError:
            s.close()
            time.sleep(0.05)
    return False
