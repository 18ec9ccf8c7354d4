# llm-sidecar container image.
#
#   docker build -t llm-sidecar:0.1.0 .
#   docker run --rm llm-sidecar:0.1.0 --version
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.
# The image runs as the distroless `nonroot` user (uid/gid 65532), needs no capabilities and works
# with a read-only root filesystem; it writes only where the config says (the request log).

ARG RUST_VERSION=1.95

# ---- build -------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder

# cmake: Pingora's zlib-ng is built by a cmake build script. gcc, g++ and make are in the image.
# TLS is rustls with ring, so no OpenSSL is needed.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the build reads (benches/ because Cargo.toml declares a [[bench]] target).
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY src ./src

# The release profile keeps line tables (debug = "line-tables-only"), which makes the binary
# about five times larger; they are stripped here unless KEEP_DEBUG_INFO=true. Symbols stay, so
# backtraces still name functions.
ARG KEEP_DEBUG_INFO=false
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin llm-sidecar \
 && install -D -m 0755 target/release/llm-sidecar /out/llm-sidecar \
 && if [ "${KEEP_DEBUG_INFO}" != "true" ]; then strip --strip-debug /out/llm-sidecar; fi \
 && /out/llm-sidecar --version

# ---- runtime -----------------------------------------------------------------------------------
# glibc (same Debian release as the builder), CA certificates, tzdata; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="llm-sidecar" \
      org.opencontainers.image.description="A sidecar reverse proxy for LLM APIs, built on Pingora" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/llm-sidecar /usr/local/bin/llm-sidecar
# A default config so `docker run` starts; in Kubernetes a ConfigMap is mounted over this directory.
# It listens on 127.0.0.1 (reachable only from the same pod or network namespace).
COPY conf/minimal.yaml /etc/llm-sidecar/sidecar.yaml

# The distroless `nonroot` user, numerically, so that Kubernetes can verify runAsNonRoot.
USER 65532:65532
# 8080: the proxy (apps in the same pod), 9901: admin (/healthz, /readyz, /metrics).
EXPOSE 8080 9901
ENTRYPOINT ["/usr/local/bin/llm-sidecar"]
CMD ["run", "--config", "/etc/llm-sidecar/sidecar.yaml"]
