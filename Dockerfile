# Lanyard's container image. Two ways to build it:
#
#   docker build -t lanyard .                       from source, in the Rust image (the final stage)
#   cargo build --release --bin lanyard \
#     && docker build --target prebuilt -t lanyard .  packs the binary built on the host (what CI does)
#
# The stages are ordered so that `--target prebuilt` never needs the Rust image: the legacy
# builder builds every stage up to its target, so `runtime` and `prebuilt` come first.
# Settings are LANYARD_* variables or flags after the image name; README "Containers".

ARG DEBIAN_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1-bookworm

# What every variant runs on: Debian with OpenSSL (josekit signs with it), no shell tools
# beyond the base, a non-root user, and the SQLite file on a volume.
FROM ${DEBIAN_IMAGE} AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/lanyard --create-home \
        --shell /usr/sbin/nologin lanyard
# In a container the server must listen on every interface to be reachable through a
# published port; the issuer stays http://localhost:8080, the browser's URL on the host.
ENV LANYARD_BIND=0.0.0.0:8080 \
    LANYARD_DATABASE_URL=sqlite:///var/lib/lanyard/lanyard.db
VOLUME /var/lib/lanyard
WORKDIR /var/lib/lanyard
USER lanyard
EXPOSE 8080
# `lanyard healthcheck` GETs /readyz on LANYARD_BIND (the image has no curl).
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/lanyard", "healthcheck", "--timeout", "3"]
ENTRYPOINT ["/usr/local/bin/lanyard"]
CMD ["serve"]

# The binary from the build context: `cargo build --release --bin lanyard` first.
# The legacy builder builds this stage on the way to the final one too, so it must not fail
# in a clean clone: the pattern `lanyar[d]` may match nothing (Cargo.toml keeps the COPY
# valid, and is removed), and then the image gets a stub that says what is missing.
FROM runtime AS prebuilt
USER root
COPY Cargo.toml target/release/lanyar[d] /usr/local/bin/
RUN rm /usr/local/bin/Cargo.toml \
    && if [ ! -f /usr/local/bin/lanyard ]; then \
        printf '#!/bin/sh\necho "lanyard: no binary in this image: run cargo build --release --bin lanyard before docker build --target prebuilt" >&2\nexit 1\n' \
            > /usr/local/bin/lanyard && chmod 0755 /usr/local/bin/lanyard; \
    fi
USER lanyard

# From source. Dependencies are compiled in their own layer against stub sources, so that
# changing Lanyard's code recompiles only Lanyard; the layer is rebuilt when Cargo.toml or
# Cargo.lock change.
FROM ${RUST_IMAGE} AS build
WORKDIR /src
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock ./
# The patched actix-http ([patch.crates-io] in Cargo.toml) is a dependency like the others.
COPY vendor ./vendor
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin lanyard \
    && rm -rf src target/release/lanyard* target/release/deps/lanyard* target/release/.fingerprint/lanyard*
COPY build.rs ./
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
COPY src ./src
RUN cargo build --release --locked --bin lanyard

# The default target: the runtime with the binary built above.
FROM runtime
COPY --from=build /src/target/release/lanyard /usr/local/bin/lanyard
