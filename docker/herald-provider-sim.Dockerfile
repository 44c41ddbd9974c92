# syntax=docker/dockerfile:1
# herald-provider-sim: the SendGrid/Twilio simulator. For development and test clusters only.
#   docker build -f docker/herald-provider-sim.Dockerfile -t herald-provider-sim .
# Build context: the repository root (see .dockerignore).

# Both images are build arguments so that a mirror or an internal registry can stand in, e.g.
#   --build-arg RUNTIME_IMAGE=registry.example.com/distroless/cc-debian12:nonroot
# The builder's Debian release must match the runtime's (glibc): bookworm <-> cc-debian12.
ARG BUILDER_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILDER_IMAGE} AS builder
ENV CARGO_TERM_COLOR=never \
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
    cargo build --release --locked -p herald-provider-sim --bin herald-provider-sim \
 && install -D -m 0755 target/release/herald-provider-sim /out/herald-provider-sim \
 && objcopy --compress-debug-sections=zlib /out/herald-provider-sim

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="herald-provider-sim" \
      org.opencontainers.image.description="SendGrid and Twilio simulator for Herald development clusters" \
      org.opencontainers.image.licenses="MIT"
COPY --from=builder /out/herald-provider-sim /usr/local/bin/herald-provider-sim
# Every flag has a HERALD_SIM_* variable (herald-provider-sim --help).
ENV HERALD_SIM_LISTEN=0.0.0.0:9090 \
    HERALD_LOG_FORMAT=json
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/herald-provider-sim"]
