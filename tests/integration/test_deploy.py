"""The container image and Kubernetes manifests (Dockerfile, deploy/kubernetes), checked here
since this machine cannot pull images or run containers: every manifest parses; names, labels,
ports, probes and resources agree with each other, with the Dockerfile and with the router
config; the ConfigMap's DNS names are the ones the StatefulSets' headless Services create; the
router config passes --check-config; and a tier is started from those same values (the
ConfigMap's router.yaml as is, its names answered by a hosts file in a private mount namespace,
the nodes with the StatefulSets' arguments on loopback addresses). Root only (unshare -m).
Run with Debian's /usr/bin/python3."""
import os
import random
import re
import shlex
import subprocess
import tempfile
import time

import yaml

from harness import BIN, ROUTER_BIN, Conn, check, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(ROOT, "deploy", "kubernetes")
TIERCTL = os.environ.get("TIERCTL_BIN", "tierctl")


def load_all():
    """{(kind, name): document} of every manifest, and the kustomization."""
    docs = {}
    for sub in ("base", "examples"):
        for f in sorted(os.listdir(os.path.join(K8S, sub))):
            if not f.endswith(".yaml") or f == "kustomization.yaml":
                continue
            with open(os.path.join(K8S, sub, f)) as fh:
                for d in yaml.safe_load_all(fh):
                    if d is None:
                        continue
                    for k in ("apiVersion", "kind", "metadata"):
                        check(k in d, "%s/%s: a document without %s" % (sub, f, k))
                    key = (d["kind"], d["metadata"]["name"])
                    check(key not in docs, "%s twice" % (key,))
                    d["_file"] = "%s/%s" % (sub, f)
                    docs[key] = d
    with open(os.path.join(K8S, "base", "kustomization.yaml")) as fh:
        kust = yaml.safe_load(fh)
    return docs, kust


def of_kind(docs, kind):
    return [d for (k, _), d in sorted(docs.items()) if k == kind]


def mebibytes(q):
    m = re.fullmatch(r"(\d+)(Mi|Gi)", q)
    check(m, "memory quantity %r" % q)
    return int(m.group(1)) * (1024 if m.group(2) == "Gi" else 1)


def flag(args, name):
    i = args.index(name)
    return args[i + 1]


def subset(small, big):
    return all(big.get(k) == v for k, v in small.items())


def router_yaml(docs):
    return yaml.safe_load(docs[("ConfigMap", "cacherouter")]["data"]["router.yaml"])


def test_manifests_agree():
    docs, kust = load_all()
    base = {f for f in os.listdir(os.path.join(K8S, "base")) if f != "kustomization.yaml"}
    check(set(kust["resources"]) == base, "kustomization lists every base file: %s vs %s" % (
        kust["resources"], sorted(base)))
    ns = kust["namespace"]
    check(("Namespace", ns) in docs, "the namespace is created")
    sts = of_kind(docs, "StatefulSet")
    check(len(sts) >= 1, "cache nodes as StatefulSets")
    services = {d["metadata"]["name"]: d for d in of_kind(docs, "Service")}
    pdbs = of_kind(docs, "PodDisruptionBudget")
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        uid = int(re.search(r"^USER (\d+)", f.read(), re.M).group(1))
    shard_services = {}
    for s in sts:
        name, spec = s["metadata"]["name"], s["spec"]
        pod = spec["template"]
        labels = pod["metadata"]["labels"]
        check(subset(spec["selector"]["matchLabels"], labels), "%s: selector matches" % name)
        shard = labels["cachetier.io/shard"]
        svc = services[spec["serviceName"]]
        check(svc["spec"].get("clusterIP") == "None", "%s: its Service is headless" % name)
        check(svc["spec"].get("publishNotReadyAddresses") is True,
              "%s: DNS lists pods before they are ready (the router warms them)" % name)
        check(subset(svc["spec"]["selector"], labels), "%s: the Service selects its pods" % name)
        shard_services[shard] = svc
        (c,) = pod["spec"]["containers"]
        args = c["args"]
        check(args[0] == "cacheserver", "%s runs cacheserver" % name)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        check(ports["memcache"] == int(flag(args, "-p")), "%s: memcache port = -p" % name)
        check(ports["metrics"] == int(flag(args, "--metrics-port")), "%s: metrics port" % name)
        for p in svc["spec"]["ports"]:
            check(p["targetPort"] in ports, "%s: Service port %s names a container port" % (
                name, p["targetPort"]))
        ann = pod["metadata"]["annotations"]
        check(ann["prometheus.io/scrape"] == "true" and
              int(ann["prometheus.io/port"]) == ports["metrics"], "%s: scrape annotations" % name)
        m = int(flag(args, "-m"))
        res = c["resources"]
        check(res["requests"]["memory"] == res["limits"]["memory"], "%s: memory guaranteed" % name)
        limit = mebibytes(res["limits"]["memory"])
        check(limit >= m * 1.1 + 64, "%s: memory limit %d Mi for -m %d" % (name, limit, m))
        check(limit <= m * 1.5 + 256, "%s: memory limit %d Mi far above -m %d" % (name, limit, m))
        for probe in ("readinessProbe", "livenessProbe"):
            p = c[probe]
            port = (p.get("tcpSocket") or p.get("httpGet"))["port"]
            check(port in ports, "%s: %s on a named port" % (name, probe))
        anti = pod["spec"]["affinity"]["podAntiAffinity"]
        term = anti["requiredDuringSchedulingIgnoredDuringExecution"][0]
        check(subset(term["labelSelector"]["matchLabels"], labels) and
              term["topologyKey"] == "kubernetes.io/hostname",
              "%s: replicas of a shard on different machines" % name)
        check(pod["spec"]["securityContext"]["runAsNonRoot"] is True and
              pod["spec"]["securityContext"]["runAsUser"] == uid, "%s: the image's user" % name)
        covering = [p for p in pdbs if subset(p["spec"]["selector"]["matchLabels"], labels)]
        check(len(covering) == 1 and covering[0]["spec"]["maxUnavailable"] == 1,
              "%s: one PodDisruptionBudget, one pod at a time" % name)

    # The router's config: the names the headless Services create, the ports the Deployment has.
    cfg = router_yaml(docs)
    check([s["name"] for s in cfg["shards"]] == sorted(shard_services),
          "one router shard per StatefulSet: %s" % [s["name"] for s in cfg["shards"]])
    for s in cfg["shards"]:
        svc = shard_services[s["name"]]
        port = [p["port"] for p in svc["spec"]["ports"] if p["name"] == "memcache"][0]
        want = "%s.%s.svc.cluster.local:%d" % (svc["metadata"]["name"], ns, port)
        check(s.get("discover") == want, "shard %s discovers %r, want %r" % (
            s["name"], s.get("discover"), want))
    dep = docs[("Deployment", "cacherouter")]
    pod = dep["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    check(int(cfg["listen"].rsplit(":", 1)[1]) == ports["memcache"], "router listen port")
    check(int(cfg["metrics_listen"].rsplit(":", 1)[1]) == ports["metrics"], "router metrics")
    check(int(pod["metadata"]["annotations"]["prometheus.io/port"]) == ports["metrics"],
          "router scrape annotation")
    conf_path = flag(c["args"], "-c")
    (mount,) = c["volumeMounts"]
    (vol,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    check(vol["configMap"]["name"] == "cacherouter" and
          os.path.join(mount["mountPath"], "router.yaml") == conf_path,
          "the Deployment mounts the ConfigMap where -c looks")
    rsvc = services["cacherouter"]
    check(subset(rsvc["spec"]["selector"], pod["metadata"]["labels"]), "router Service selects")
    for p in rsvc["spec"]["ports"]:
        check(p["targetPort"] in ports, "router Service port %s" % p["targetPort"])
    # The ServiceMonitor scrapes every Service it selects on a port they all have.
    (sm,) = of_kind(docs, "ServiceMonitor")
    chosen = [s for s in services.values()
              if subset(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
    check(len(chosen) == len(services), "the ServiceMonitor selects every Service")
    for ep in sm["spec"]["endpoints"]:
        for s in chosen:
            check(ep["port"] in [p["name"] for p in s["spec"]["ports"]],
                  "%s has port %s" % (s["metadata"]["name"], ep["port"]))
    # The same settings as the demo tier, addresses aside.
    with open(os.path.join(ROOT, "deploy", "demo", "tier.yaml")) as f:
        demo = yaml.safe_load(f)
    skip = {"listen", "metrics_listen", "shards", "dns_refresh_ms"}
    check({k: v for k, v in cfg.items() if k not in skip} ==
          {k: v for k, v in demo.items() if k not in skip}, "router settings = the demo's")
    check([s["name"] for s in cfg["shards"]] == [s["name"] for s in demo["shards"]] and
          all(len(s["replicas"]) == st["spec"]["replicas"] for s, st in zip(demo["shards"], sts)),
          "shards and replicas per shard = the demo's")
    # --check-config on the ConfigMap's file (names resolve only in the cluster).
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(docs[("ConfigMap", "cacherouter")]["data"]["router.yaml"])
    try:
        p = subprocess.run([ROUTER_BIN, "-c", f.name, "--check-config", "--no-resolve"],
                           capture_output=True, text=True, timeout=30)
        check(p.returncode == 0, "check-config: %s" % p.stderr)
        p = subprocess.run([ROUTER_BIN, "-c", f.name, "--check-config"], capture_output=True,
                           text=True, timeout=60)
        check(p.returncode == 2 and "shards[0].discover[0]" in p.stderr,
              "without --no-resolve the cluster names are checked: %s" % p.stderr)
    finally:
        os.unlink(f.name)
    print("  %d manifests, %d shards x %s replicas, namespace %s" % (
        len(docs), len(sts), sts[0]["spec"]["replicas"], ns))


def test_dockerfile():
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = f.read()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    check(len(stages) == 2, "two stages")
    check(stages[0].startswith("debian:bookworm AS build"), "built on debian:bookworm")
    check(stages[1].startswith("debian:bookworm-slim"), "runs on debian:bookworm-slim")
    final = stages[1]
    installs = " ".join(re.findall(r"apt-get install[^&]*", final))
    for tool in ("build-essential", "cmake", "ninja", "-dev", "gcc", "g++"):
        check(tool not in installs, "no %s in the final image" % tool)
    for b in ("cacheserver", "cacherouter", "tierctl", "cachebench"):
        check(re.search(r"/%s\b" % b, stages[0]), "%s built and collected" % b)
    check("COPY --from=build /out/ /usr/local/bin/" in final, "binaries copied from the build")
    check(re.search(r"^USER 10001", final, re.M), "non-root user")
    check(re.search(r"^HEALTHCHECK ", final, re.M), "a healthcheck")
    # The runtime packages cover the shared libraries the binaries link.
    sonames = {"libuv.so": "libuv1", "libxxhash.so": "libxxhash0", "libssl.so": "libssl3",
               "libyaml-cpp.so": "libyaml-cpp0.7", "libnettle.so": "libnettle8",
               "libprometheus-cpp-core.so": "libprometheus-cpp-core1.0",
               "libprometheus-cpp-pull.so": "libprometheus-cpp-pull1.0",
               "libcivetweb.so": "libcivetweb1"}
    linked = set()
    for b in (BIN, ROUTER_BIN, TIERCTL):
        out = subprocess.run(["ldd", b], capture_output=True, text=True, timeout=30).stdout
        linked |= {lib for lib in sonames if lib in out}
    check(len(linked) >= 5, "ldd found the libraries: %s" % linked)
    for lib in sorted(linked):
        check(sonames[lib] in installs, "%s is linked: %s must be in the image" % (
            lib, sonames[lib]))
    print("  two stages, runtime packages for %s" % ", ".join(sorted(linked)))


def test_tier_from_the_manifests():
    """The ConfigMap's router.yaml, unchanged but for the ports, over nodes started with the
    StatefulSets' arguments; the cluster DNS names come from a hosts file."""
    docs, kust = load_all()
    cfg_text = docs[("ConfigMap", "cacherouter")]["data"]["router.yaml"]
    cfg = yaml.safe_load(cfg_text)
    net = "127.%d.%d." % (random.randint(100, 250), random.randint(1, 250))
    hosts, procs, files = ["127.0.0.1 localhost"], [], []
    try:
        n = 0
        for st in of_kind(docs, "StatefulSet"):
            (c,) = st["spec"]["template"]["spec"]["containers"]
            shard = st["spec"]["template"]["metadata"]["labels"]["cachetier.io/shard"]
            name = [s["discover"] for s in cfg["shards"] if s["name"] == shard][0]
            for _ in range(st["spec"]["replicas"]):
                n += 1
                addr = net + str(n)
                args = list(c["args"][1:])
                args[args.index("-l") + 1] = addr
                args[args.index("--metrics-listen") + 1] = addr
                args[args.index("-t") + 1] = "1"  # 2 cores here, 6 nodes
                p = subprocess.Popen([BIN, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
                procs.append(p)
                line = p.stdout.readline()
                check("listening on %s:" % addr in line, "node up: %r" % line)
                hosts.append("%s %s" % (addr, name.rsplit(":", 1)[0]))
        hosts_file = tempfile.NamedTemporaryFile("w", delete=False)
        hosts_file.write("\n".join(hosts) + "\n")
        hosts_file.close()
        files.append(hosts_file.name)
        local = cfg_text.replace(cfg["metrics_listen"], "127.0.0.1:0")
        local = local.replace(cfg["listen"], "127.0.0.1:0")
        conf = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        conf.write(local)
        conf.close()
        files.append(conf.name)
        router = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", "mount --bind %s /etc/hosts && exec %s -c %s" % (
                shlex.quote(hosts_file.name), shlex.quote(ROUTER_BIN), shlex.quote(conf.name))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(router)
        line = router.stdout.readline()
        m = re.search(r"listening on [^ ]*:(\d+)", line)
        check(m, "router up: %r %r" % (line, router.stderr.read() if router.poll() else ""))
        port = int(m.group(1))
        import socket
        c = Conn(socket.create_connection(("127.0.0.1", port), timeout=10))
        for i in range(300):
            c.send(b"set k%d 0 0 2\r\nv%d\r\n" % (i, i % 10))
            check(c.line() == b"STORED", "set through the tier")
        hits = 0
        for i in range(300):
            c.send(b"get k%d\r\n" % i)
            if c.line() != b"END":
                c.exact(4)
                c.line()
                hits += 1
        check(hits == 300, "every key read back: %d" % hits)
        deadline = time.time() + 10
        while time.time() < deadline:
            t = subprocess.run([TIERCTL, "-r", "127.0.0.1:%d" % port], capture_output=True,
                               text=True, timeout=30)
            if len(re.findall(r"^  s\d+ +\S+ +up +", t.stdout, re.M)) == n:
                break
            time.sleep(0.2)
        up = len(re.findall(r"^  s\d+ +\S+ +up +", t.stdout, re.M))
        check(t.returncode == 0 and up == n and "all nodes up and in sync" in t.stdout,
              "tierctl: %s" % t.stdout)
        print("  %d nodes from the StatefulSets' arguments behind the ConfigMap's router; "
              "300 keys written and read" % n)
        c.sock.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in files:
            os.unlink(f)


if __name__ == "__main__":
    run([test_manifests_agree, test_dockerfile, test_tier_from_the_manifests])
