# Multi-stage build of both binaries: the worker and the LangSmith simulator.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bins

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 --no-create-home worker
COPY --from=build /src/target/release/erasure-worker /src/target/release/langsmith-sim /usr/local/bin/
USER 10001
ENTRYPOINT ["erasure-worker"]
