#!/bin/bash
# make image: builds the Dockerfile into cachetier:VERSION with buildah, without a registry and
# without a container runtime (podman here cannot start containers: crun's setrlimit is not
# permitted). The base images come from debootstrap (the Debian mirror is the only source),
# RUN steps run with --isolation chroot, and the result is smoke-tested by running its
# binaries in a chroot of the image's file system. Root only. Work files: $IMAGE_WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(sed -n 's/.*CACHETIER_VERSION "\(.*\)".*/\1/p' common/version.h)
WORK=${IMAGE_WORK:-/var/tmp/cachetier-image}
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
B="buildah --storage-driver $STORAGE_DRIVER"

missing=$(for p in buildah debootstrap; do dpkg -s $p >/dev/null 2>&1 || echo $p; done)
if [ -n "$missing" ]; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# Base images: one minbase bookworm root file system, tagged as both bases.
if ! $B inspect --type image docker.io/library/debian:bookworm >/dev/null 2>&1; then
  mkdir -p "$WORK"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian
  ctr=$($B from scratch)
  mnt=$($B mount "$ctr")
  cp -a "$WORK/rootfs/." "$mnt/"
  $B umount "$ctr" >/dev/null
  $B commit -q "$ctr" docker.io/library/debian:bookworm >/dev/null
  $B tag docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim
  $B rm "$ctr" >/dev/null
  rm -rf "$WORK/rootfs"
fi

# Docker's image format: OCI has no HEALTHCHECK.
$B bud --isolation chroot --pull-never --format docker -t "cachetier:$VERSION" -f Dockerfile .

# Smoke test: the image's binaries, as its user, in a chroot of its file system.
ctr=$($B from "cachetier:$VERSION")
mnt=$($B mount "$ctr")
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  $B umount "$ctr" >/dev/null 2>&1 || true
  $B rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
for b in cacheserver cacherouter cachebench tierctl; do
  chroot --userspec=10001:10001 "$mnt" "/usr/local/bin/$b" --version >/dev/null 2>&1 ||
    chroot --userspec=10001:10001 "$mnt" "/usr/local/bin/$b" --help >/dev/null
  echo "image: $b runs"
done
for tool in gcc g++ cc cmake ninja make; do
  if chroot "$mnt" sh -c "command -v $tool" >/dev/null 2>&1; then
    echo "image: build tool $tool in the final image"
    exit 1
  fi
done
echo "image: no build tools (gcc, g++, cc, cmake, ninja, make)"
[ "$(chroot "$mnt" id -un 10001)" = cachetier ] && echo "image: user 10001 is cachetier"
out=$(mktemp)
chroot --userspec=10001:10001 "$mnt" /usr/local/bin/cacheserver -p 0 -l 127.0.0.1 -m 64 \
  --metrics-port 0 >"$out" 2>/dev/null &
pid=$!
for _ in $(seq 50); do grep -q "listening on" "$out" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$out")
[ -n "$port" ] || { echo "image: cacheserver did not start"; exit 1; }
# STORED, VALUE k 0 2, ok, END: 30 bytes.
reply=$(timeout 10 chroot --userspec=10001:10001 "$mnt" bash -c \
  "exec 3<>/dev/tcp/127.0.0.1/$port && printf 'set k 0 0 2\r\nok\r\nget k\r\n' >&3 && head -c 30 <&3")
case "$reply" in
  *STORED*"VALUE k 0 2"*ok*) echo "image: cacheserver serves (set/get over TCP)" ;;
  *) echo "image: unexpected reply: $reply"; exit 1 ;;
esac
# The image's HEALTHCHECK command, as Docker would run it.
check=$($B inspect --type image "cachetier:$VERSION" | /usr/bin/python3 -c \
  'import json, sys; print(json.load(sys.stdin)["Docker"]["config"]["Healthcheck"]["Test"][-1])')
echo "image: HEALTHCHECK $check"
timeout 10 chroot --userspec=10001:10001 "$mnt" env CACHETIER_HEALTH_PORT="$port" bash -c "$check"
echo "image: its HEALTHCHECK passes against that node"
$B images "cachetier:$VERSION"
