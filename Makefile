# cachetier: the two commands of the README, plus their parts.
#   make demo   deps + build + a local tier (3 shards x 2 replicas + router) under load, a node
#               killed and restarted and a shard added on a cachebench --scenario timeline,
#               availability per phase (scripts/tier.py)
#   make test   deps + release, ASan+UBSan and TSan builds + every test in each, then each
#               libFuzzer target for FUZZ_SECONDS
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
JOBS ?= $(shell nproc)

# Every Debian package the build, the tests and the demo need.
DEB_PACKAGES := build-essential cmake ninja-build pkg-config git \
	libuv1-dev libxxhash-dev libmsgpack-dev catch2 libbenchmark-dev \
	libcli11-dev libspdlog-dev libfmt-dev libyaml-cpp-dev \
	memcached libmemcached-tools python3 python3-pymemcache python3-msgpack \
	clang clang-format clang-tidy libclang-rt-14-dev valgrind \
	nutcracker nettle-dev redis-server iproute2 iptables libssl-dev openssl \
	prometheus-cpp-dev prometheus python3-yaml chromium \
	redis-tools python3-redis

.PHONY: deps build build-asan build-tsan build-fuzz test test-release test-asan test-tsan test-fuzz demo bench image format check-layers clean

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$(echo ' '$$missing)"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	else echo "make deps: all packages present"; fi

build: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

build-asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)

build-tsan: deps
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)

test-release: build
	ctest --preset release -j 2

test-asan: build-asan
	CACHETIER_SANITIZED=asan ctest --preset asan -j 2

build-fuzz: deps
	cmake --preset fuzz >/dev/null
	cmake --build --preset fuzz -j $(JOBS)

# Each fuzz target runs FUZZ_SECONDS (default 30) under ctest, two at a time.
FUZZ_SECONDS ?= 30
test-fuzz: build-fuzz
	cmake --preset fuzz -DCACHETIER_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	ctest --preset fuzz -j 2

test-tsan: build-tsan
	CACHETIER_SANITIZED=tsan ctest --preset tsan -j 2

test: test-release test-asan test-tsan test-fuzz

demo: build
	/usr/bin/python3 scripts/tier.py demo

# The side-by-side comparison (memcached, redis-server, nutcracker vs cacheserver, cacherouter);
# BENCH_WRITE=1 appends the table to bench/RESULTS.md.
# The container image (Dockerfile) with buildah, bases from debootstrap; root (scripts/build_image.sh).
image:
	$(SUDO) scripts/build_image.sh

bench: build
	/usr/bin/python3 bench/compare/compare_all.py $(if $(BENCH_WRITE),--write,)

format:
	clang-format -i $$(git ls-files --cached --others --exclude-standard '*.cc' '*.h')

# The layering rules of docs/design.md (also a ctest test, `layering`).
check-layers:
	/usr/bin/python3 scripts/check_layers.py

clean:
	rm -rf build
