# Multi-stage build: dependencies are compiled in their own layer, so a source change
# rebuilds only Tocsin itself.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
# 1. Dependency layer: manifests with stub sources. Cargo reads every workspace member
#    (the load harness too) and every target a manifest names (the criterion benches, the
#    SDK's CLI) before it builds any, so each gets a stub.
COPY Cargo.toml Cargo.lock ./
COPY sdk/Cargo.toml sdk/Cargo.toml
COPY benches/load/Cargo.toml benches/load/Cargo.toml
COPY testkit/Cargo.toml testkit/Cargo.toml
RUN mkdir -p src sdk/src/bin benches/load/src testkit/src \
    && echo 'fn main() {}' > src/main.rs && echo 'fn main() {}' > sdk/src/bin/tocsin-cli.rs \
    && echo 'fn main() {}' > benches/load/src/main.rs \
    && touch src/lib.rs sdk/src/lib.rs testkit/src/lib.rs benches/crypto.rs benches/store.rs \
    && cargo build --release --locked --bin tocsin \
    && rm -rf src sdk/src testkit/src benches
# 2. The real sources.
COPY . .
RUN touch src/main.rs src/lib.rs sdk/src/lib.rs && cargo build --release --locked --bin tocsin

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/tocsin --shell /usr/sbin/nologin tocsin \
    && mkdir -p /var/lib/tocsin/data && chown -R tocsin /var/lib/tocsin
COPY --from=build /src/target/release/tocsin /usr/local/bin/tocsin
COPY config /etc/tocsin/config
WORKDIR /var/lib/tocsin
# production.toml binds 0.0.0.0:8080, where plain HTTP is refused unless a TLS-terminating
# proxy or ingress is in front of the container, as this image assumes. To have Tocsin
# serve HTTPS itself, mount a certificate chain and key and set
# TOCSIN__SERVER__TLS_CERT_FILE and TOCSIN__SERVER__TLS_KEY_FILE (then this has no effect).
ENV TOCSIN_CONFIG_DIR=/etc/tocsin/config \
    TOCSIN_ENV=production \
    TOCSIN__SERVER__ALLOW_PLAIN_HTTP=true \
    TOCSIN__STORAGE__DATA_DIR=/var/lib/tocsin/data
USER tocsin
VOLUME ["/var/lib/tocsin/data"]
# /metrics is on loopback in production; to scrape it from outside the container, set
# TOCSIN__SERVER__METRICS_ADDR=0.0.0.0:9090 and TOCSIN__SERVER__METRICS_TOKEN.
EXPOSE 8080 9090
ENTRYPOINT ["tocsin"]
CMD ["serve"]
