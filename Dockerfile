# syntax=docker/dockerfile:1
# One image with every landsby binary; each Deployment picks its command (deploy/base).
#
# One image, not one per service: the five binaries are one workspace and share almost all their
# code, so one build makes them all at once; one image is one thing to scan, sign, pin by digest
# and roll back, and the migration Job and the sweep CronJob always run the same version as the
# services. The binaries are statically linked to everything but glibc (TLS is rustls on aws-lc),
# so the runtime image is distroless: no shell, no package manager, user 65532.
#
#   docker build -t landsby:0.1.0 .

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/landsby \
       target/release/landsby-case \
       target/release/landsby-visitation \
       target/release/landsby-notification \
       target/release/landsby-worker \
       /out/

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# gRPC (mutual TLS): case, visitation, notification, the worker's admin API; plain-text health.
EXPOSE 50051 50052 50053 50054 8081
ENTRYPOINT ["/usr/local/bin/landsby"]
CMD ["--help"]
