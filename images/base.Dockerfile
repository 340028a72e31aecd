# knext-launch base layer: Node 24 on Debian bookworm with knext-launch as the ENTRYPOINT.
# Build from the repository root:
#   docker build -f images/base.Dockerfile -t registry.example.com/knext-node:24 .
#
# NODE_IMAGE: the runtime base. Pin it by digest in production so a rebuild gets the same node
# (the --prewarm bake matches node's binary by path, size and mtime), e.g.
#   --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:<digest>
# It must be Debian bookworm (the builder stage compiles against its glibc) with node in PATH.
ARG NODE_IMAGE=node:24-bookworm-slim

# Builder: the Debian packages of the README's "Building by hand" (and cmake: meson finds doctest
# through its CMake config), on the same distribution as the runtime, so the binary needs nothing
# newer than the runtime's glibc.
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      meson ninja-build g++ pkg-config libuv1-dev libspdlog-dev libfmt-dev libcxxopts-dev \
      libcurl4-openssl-dev doctest-dev libboost1.81-dev libfuse3-dev cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The sources meson needs (.dockerignore at the repository root lists them): one layer.
COPY . .
# Only the launcher is built (meson configures the tests, ninja skips them); the bench
# (knext-bench, knext-slowfs) is a development tool and not shipped: `--bench` says so and exits 2.
RUN meson setup /build /src --buildtype=release --prefix=/usr/local \
 && ninja -C /build -j"$(nproc)" knext-launch \
 && install -D -m 0755 /build/knext-launch /out/usr/local/bin/knext-launch \
 && install -D -m 0644 runtime/knext-hook.cjs /out/usr/local/share/knext-launch/knext-hook.cjs \
 && install -D -m 0644 runtime/knext-postwarm.cjs /out/usr/local/share/knext-launch/knext-postwarm.cjs

FROM ${NODE_IMAGE}
# Run time: knext-launch links only libc and libm (libstdc++, libuv, spdlog and fmt are built in).
# libcurl is dlopen'ed by the short-lived warm-up worker (never by PID 1): libcurl4 and its
# libraries are the only packages this layer adds.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libcurl4 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log
# knext-launch finds the hook in ../share/knext-launch beside its binary.
COPY --from=build /out/ /
ENTRYPOINT ["knext-launch"]
# No CMD: knext-launch runs `node server.js` in the working directory (node's image sets CMD node).
CMD []
