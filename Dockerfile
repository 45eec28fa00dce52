# One image: the streamhut binary and the built site.
# Build: docker build -t streamhut .   Run: docker run -p 3000:3000 -v streamhut-data:/data streamhut

FROM rust:1.95-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The same steps as scripts/run.sh: wasm target, wasm-bindgen-cli, wasm-opt, site, server.
RUN source scripts/lib.sh \
 && ensure_build_tools \
 && build_site release \
 && cargo build --release --locked -p server --bin streamhut

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 streamhut \
 && mkdir /data && chown streamhut /data
COPY --from=build /src/target/release/streamhut /usr/local/bin/streamhut
COPY --from=build /src/target/site /srv/streamhut/site
ENV STREAMHUT_LISTEN_ADDR=0.0.0.0:3000 \
    STREAMHUT_DATA_DIR=/data \
    STREAMHUT_SITE_ROOT=/srv/streamhut/site
USER streamhut
WORKDIR /data
VOLUME /data
EXPOSE 3000
CMD ["streamhut"]
