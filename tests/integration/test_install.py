"""cmake --install, then build the client example in a separate project two ways (find_package
and pkg-config) and run both against a real cacheserver."""
import os
import shutil
import subprocess
import tempfile

from harness import Server, check, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ["CACHETIER_BUILD_DIR"]
EXAMPLE = os.path.join(ROOT, "client", "examples", "basic.cc")


def sh(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)
    check(p.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(argv), p.stdout, p.stderr))
    return p.stdout


def test_installed_package_builds_and_runs():
    tmp = tempfile.mkdtemp(prefix="cachetier-install-")
    try:
        prefix = os.path.join(tmp, "prefix")
        sh(["cmake", "--install", BUILD, "--prefix", prefix])
        for f in ("include/cachetier/client.h", "lib/libcachetier_client.a",
                  "lib/cmake/cachetier/cachetierConfig.cmake", "lib/pkgconfig/cachetier.pc"):
            check(os.path.exists(os.path.join(prefix, f)), "installed %s" % f)

        # 1. CMake: find_package(cachetier) -> cachetier::client
        consumer = os.path.join(tmp, "consumer")
        sh(["cmake", "-S", os.path.join(ROOT, "tests", "install"), "-B", consumer,
            "-DCMAKE_PREFIX_PATH=" + prefix, "-DEXAMPLE_SOURCE=" + EXAMPLE])
        sh(["cmake", "--build", consumer])
        # 2. pkg-config
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
        flags = sh(["pkg-config", "--cflags", "--libs", "cachetier"], env=env).split()
        pc_bin = os.path.join(tmp, "basic-pc")
        sh(["c++", "-std=c++20", EXAMPLE, "-o", pc_bin] + flags)

        with Server() as srv:
            for binary in (os.path.join(consumer, "basic"), pc_bin):
                out = sh([binary, "127.0.0.1:%d" % srv.port])
                check("greeting = hello, cache (flags 1)" in out, "%s printed %r" % (binary, out))
                check("visits = 3" in out and "no-such-key: miss" in out, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run([test_installed_package_builds_and_runs])
