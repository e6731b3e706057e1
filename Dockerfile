# Multi-stage build: compile in the Rust image, ship only the binary on a slim base.
FROM rust:1-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libssl-dev && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN cargo build --release --locked --bin lanyard

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/lanyard --create-home lanyard
COPY --from=build /src/target/release/lanyard /usr/local/bin/lanyard
USER lanyard
WORKDIR /var/lib/lanyard
ENV LANYARD_BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/lanyard"]
CMD ["serve"]
