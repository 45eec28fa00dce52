# One image: the streamhut and at-run binaries, the built site, Deno for bundles and
# ffmpeg for VOD's thumbnails and previews.
# Build: docker build -t streamhut .
# Run:   docker run -p 3000:3000 -v streamhut-data:/data -v ~/.at-run:/keys:ro streamhut
# The runner's key (runner-key.json, made with `at-run keys`) is mounted read-only.

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
 && cargo build --release --locked -p server --bins

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 streamhut \
 && mkdir /data && chown streamhut /data
COPY --from=build /src/target/release/streamhut /src/target/release/at-run /usr/local/bin/
COPY --from=build /src/node_modules/deno/deno /usr/local/bin/deno
COPY --from=build /src/target/site /srv/streamhut/site
# prlimit (util-linux, in every Debian image) caps each bundle process's memory.
ENV STREAMHUT_LISTEN_ADDR=0.0.0.0:3000 \
    STREAMHUT_DATA_DIR=/data \
    STREAMHUT_SITE_ROOT=/srv/streamhut/site \
    ATRUN_HOME=/keys \
    DENO_PATH=/usr/local/bin/deno \
    FFMPEG_PATH=/usr/bin/ffmpeg
USER streamhut
WORKDIR /data
VOLUME /data
EXPOSE 3000
CMD ["streamhut"]
