# cachetier's image: cacheserver, cacherouter, cachebench and tierctl on debian:bookworm-slim,
# built on debian:bookworm. No build tools in the final image; it runs as user 10001.
#   docker build -t cachetier:0.1.0 .
#   docker run --rm -p 11211:11211 cachetier:0.1.0                       # a cache node
#   docker run --rm -p 22122:22122 -v $PWD/router.yaml:/etc/cachetier/router.yaml \
#       -e CACHETIER_HEALTH_PORT=22122 cachetier:0.1.0 cacherouter -c /etc/cachetier/router.yaml
# Kubernetes: deploy/kubernetes (docs/kubernetes.md).

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libuv1-dev libxxhash-dev libmsgpack-dev libcli11-dev libspdlog-dev libfmt-dev \
      libyaml-cpp-dev libssl-dev nettle-dev prometheus-cpp-dev libbenchmark-dev \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCACHETIER_BUILD_TESTS=OFF \
 && cmake --build /build --target cacheserver cacherouter tierctl cachebench \
 && mkdir -p /out \
 && cp /build/cacheserver/cacheserver /build/router/cacherouter /build/tools/tierctl/tierctl \
       /build/bench/cachebench /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libuv1 libxxhash0 libssl3 libyaml-cpp0.7 libnettle8 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 cachetier \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin cachetier
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
EXPOSE 11211 22122 9150 9151
# Healthy when the process answers `version` on its port (11211 for a node; set
# CACHETIER_HEALTH_PORT=22122 for a router). bash's /dev/tcp: no extra tools in the image.
ENV CACHETIER_HEALTH_PORT=11211
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${CACHETIER_HEALTH_PORT} && printf 'version\\r\\n' >&3 && IFS= read -r -t 2 line <&3 && [[ $line == VERSION* ]]"]
CMD ["cacheserver", "-p", "11211", "-l", "0.0.0.0", "-m", "1024", "--metrics-port", "9150", "--metrics-listen", "0.0.0.0"]
