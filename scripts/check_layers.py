#!/usr/bin/env python3
"""The layering rules of docs/design.md, checked on every #include of the project's own headers:
each folder may include only the folders below it. Run by ctest (test `layering`) and by
`make check-layers`; exits 1 and names every offending line. Standard library only.

    common                      <- everything
    protocol                    -> common
    cacheserver/engine          -> common                (never protocol)
    cacheserver/process         -> common, protocol, engine
    cacheserver/server          -> common, protocol, engine, process
    client                      -> common, protocol      (and its public <cachetier/client.h>)
    router                      -> common, protocol, client   (never cacheserver)
    bench                       -> common, protocol, client   (micro/engine_bench: the engine)
    tools                       -> common
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')

CLIENT_API = ["cachetier/"]  # <cachetier/client.h>, the installed public header
# (folder or file prefix, includes it may use), the most specific first.
RULES = [
    ("common/", ["common/"]),
    ("protocol/", ["common/", "protocol/"]),
    ("cacheserver/engine/", ["common/", "cacheserver/engine/"]),
    ("cacheserver/process/", ["common/", "protocol/", "cacheserver/engine/",
                              "cacheserver/process/"]),
    ("cacheserver/server/", ["common/", "protocol/", "cacheserver/"]),
    ("client/", ["common/", "protocol/", "client/"] + CLIENT_API),
    ("router/", ["common/", "protocol/", "client/", "router/"] + CLIENT_API),
    ("bench/micro/engine_bench.cc", ["common/", "cacheserver/engine/"]),
    ("bench/", ["common/", "protocol/", "client/", "bench/"] + CLIENT_API),
    ("tools/", ["common/", "tools/"]),
    # Tests see what they test.
    ("tests/unit/common/", ["common/"]),
    ("tests/unit/protocol/", ["common/", "protocol/"]),
    ("tests/unit/engine/", ["common/", "cacheserver/engine/"]),
    ("tests/unit/client/", ["common/", "protocol/", "client/"] + CLIENT_API),
    ("tests/unit/router/", ["common/", "protocol/", "client/", "router/"] + CLIENT_API),
    ("tests/unit/bench/", ["common/", "bench/"]),
    ("tests/unit/main.cc", []),
    ("tests/integration/", ["common/", "protocol/", "client/", "router/"] + CLIENT_API),
    ("tests/fuzz/", ["common/", "protocol/", "cacheserver/", "client/", "router/"] + CLIENT_API),
    ("tests/install/", CLIENT_API),
]


def rule_for(path):
    for prefix, allowed in RULES:
        if path.startswith(prefix):
            return allowed
    return None


def sources():
    for top in ("common", "protocol", "cacheserver", "client", "router", "bench", "tools",
                "tests"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith((".cc", ".h", ".cpp")):
                    yield os.path.relpath(os.path.join(dirpath, f), ROOT)


def main():
    problems = []
    checked = 0
    for path in sorted(sources()):
        allowed = rule_for(path)
        if allowed is None:
            problems.append("%s: no layering rule covers this file" % path)
            continue
        here = os.path.dirname(path)
        with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                inc = m.group(1)
                checked += 1
                if "/" not in inc and os.path.exists(os.path.join(ROOT, here, inc)):
                    continue  # a header beside the file
                if not any(inc.startswith(a) for a in allowed):
                    problems.append("%s:%d: includes \"%s\", outside its layers (%s)" % (
                        path, n, inc, ", ".join(allowed) or "none"))
    for p in problems:
        print(p)
    print("layering: %d includes checked, %d problems" % (checked, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
