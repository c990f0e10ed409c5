#!/usr/bin/env bash
# make bench: the cacheserver vs memcached side-by-side (see memcached_compare.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 bench/compare/memcached_compare.py "$@"
