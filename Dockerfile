# syntax=docker/dockerfile:1.7
#
# One Dockerfile, one target per image (build from the repository root):
#   docker build --target controller -t tugboat-controller .
#   docker build --target backend    -t tugboat-backend .
#   docker build --target inference  -t tugboat-inference .
#
# Stages: `builder` compiles all three binaries once (release, --locked); `runtime`
# is the small shared base (debian slim, CA roots for AWS over TLS, curl for the
# HEALTHCHECK as in the seed, a non-root user); each target adds one binary.
# workloads/service-kit/tests/dockerfile.rs checks that every binary and path named
# here exists in the workspace.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# Only what the build needs: the training venv, target/ and models stay out of the
# builder's context layers.
COPY Cargo.toml Cargo.lock ./
COPY controller ./controller
COPY workloads/service-kit ./workloads/service-kit
COPY workloads/backend ./workloads/backend
COPY workloads/inference/Cargo.toml ./workloads/inference/Cargo.toml
COPY workloads/inference/src ./workloads/inference/src
COPY workloads/inference/benches ./workloads/inference/benches
# The caches keep registry downloads and compiled dependencies across builds; the
# binaries are copied out of the cached target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p tugboat -p tugboat-backend -p tugboat-inference --bins \
 && mkdir -p /out \
 && cp target/release/tugboat target/release/backend target/release/inference /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /app \
 && chown app:app /app
WORKDIR /app
ENV LOG_LEVEL=info
USER 10001:10001

# The controller (`tugboat run --source URI`). Its HTTP endpoint (/healthz, /readyz,
# /metrics, /status) listens on TUGBOAT_HTTP_ADDR (`tugboat run --http-addr`); in a
# container it must listen beyond loopback so Prometheus can scrape it.
FROM runtime AS controller
COPY --from=builder /out/tugboat /usr/local/bin/tugboat
ENV TUGBOAT_HTTP_ADDR=0.0.0.0:9090
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD curl -f http://localhost:9090/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/tugboat"]

# The backend API (seed: backend-api). ML_SERVICE_URL as in the seed's task definition.
FROM runtime AS backend
COPY --from=builder /out/backend /usr/local/bin/backend
ENV PORT=8000 \
    ML_SERVICE_URL=http://ml-model-service:8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 \
    CMD curl -f http://localhost:8000/ready || exit 1
ENTRYPOINT ["/usr/local/bin/backend"]

# The inference service (seed: ml-model-service). The committed models are baked in
# so the image serves models/v1 with no configuration; in ECS the controller sets
# MODEL_URI (s3://...), MODEL_VERSION and MODEL_SHA256 instead.
FROM runtime AS inference
COPY --from=builder /out/inference /usr/local/bin/inference
COPY --chown=10001:10001 workloads/inference/models ./models
ENV PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD curl -f http://localhost:8000/ready || exit 1
ENTRYPOINT ["/usr/local/bin/inference"]
