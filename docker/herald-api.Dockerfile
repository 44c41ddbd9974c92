# syntax=docker/dockerfile:1
# herald-api: the ingest API, also the operator CLI (migrate, create-topics, create-tenant, ...).
#   docker build -f docker/herald-api.Dockerfile -t herald-api .
# Build context: the repository root (see .dockerignore).

# Both images are build arguments so that a mirror or an internal registry can stand in, e.g.
#   --build-arg RUNTIME_IMAGE=registry.example.com/distroless/cc-debian12:nonroot
# The builder's Debian release must match the runtime's (glibc): bookworm <-> cc-debian12.
ARG BUILDER_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILDER_IMAGE} AS builder
# rdkafka builds librdkafka from source (CMake, with zstd, and a static libcurl for OAUTHBEARER's
# OIDC tokens); libz-sys builds zlib and links it statically (LIBZ_SYS_STATIC). librdkafka links the
# system's OpenSSL (TLS and SASL to the brokers; Cargo.toml says why not a static copy): the runtime
# image needs glibc, libgcc and libssl3, all in distroless/cc-debian12 (with its CA bundle).
# Unpinned (DL3008): the builder image's Debian release fixes these, and none of them ships.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make cmake pkg-config libssl-dev python3 \
 && rm -rf /var/lib/apt/lists/*
ENV LIBZ_SYS_STATIC=1 \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY config ./config
COPY migrations ./migrations
COPY services ./services
COPY load-tests ./load-tests
# The release profile keeps line tables (readable backtraces); compressing them in place takes the
# binary from about 130 MB to 48 MB, where stripping them would leave 22 MB and no line numbers.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p herald-api --bin herald-api \
 && install -D -m 0755 target/release/herald-api /out/herald-api \
 && objcopy --compress-debug-sections=zlib /out/herald-api

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="herald-api" \
      org.opencontainers.image.description="Herald notification API (and operator CLI)" \
      org.opencontainers.image.licenses="MIT"
COPY --from=builder /out/herald-api /usr/local/bin/herald-api
COPY docker/herald.toml /etc/herald/herald.toml
ENV HERALD_CONFIG_FILE=/etc/herald/herald.toml \
    HERALD_LOG_FORMAT=json
# distroless "nonroot", numeric so that Kubernetes can check runAsNonRoot.
USER 65532:65532
# The API (server.port), and /metrics and profiles on a port of their own (server.metrics_port).
EXPOSE 8080 9465
ENTRYPOINT ["/usr/local/bin/herald-api"]
CMD ["serve"]
