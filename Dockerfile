# syntax=docker/dockerfile:1
# The operator image: `serin` on distroless (no shell, no package manager),
# as the non-root user 65532 of the :nonroot base; the Helm chart runs it as
# 10001 with a read-only root filesystem. Probes are HTTP GETs on /healthz,
# so the image needs no wget.
#
#   docker build -t ghcr.io/serin-dev/serin:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin serin \
 && install -D -m 0755 target/release/serin /out/serin

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/serin /usr/local/bin/serin
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/serin"]
