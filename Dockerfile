# One image: the streamhut and at-run binaries, the built site, Deno for bundles and
# ffmpeg for VOD's thumbnails and previews. It runs as the non-root user streamhut
# (uid and gid 10001, home /home/streamhut). docs/hosting.md is the operator's guide.
#
# Build: docker build -t streamhut .
# Key:   mkdir at-run-keys && sudo chown 10001:10001 at-run-keys
#        docker run --rm -v "$PWD/at-run-keys:/home/streamhut/.at-run" streamhut at-run keys
# Run:   docker run -p 3000:3000 -v streamhut-data:/data \
#          -v "$PWD/at-run-keys:/home/streamhut/.at-run:ro" streamhut
#
# The runner's key (runner-key.json) is read from ~/.at-run of the image's user,
# /home/streamhut/.at-run: mount it there read-only, readable by uid 10001. To keep it
# elsewhere, set ATRUN_HOME to the directory it is mounted at. Without a mount the server
# creates a key inside the container, lost (with every secret sealed to it) when the
# container is replaced.

FROM rust:1.95-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Debian's own versions within bookworm: pinning them breaks the build at each security
# update, and the base image's tag already fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The same steps as scripts/run.sh: wasm target, wasm-bindgen-cli, npm packages (wasm-opt,
# Deno, hls.js), the site, the server.
RUN source scripts/lib.sh \
 && ensure_build_tools \
 && build_site release \
 && cargo build --release --locked -p server --bins

FROM debian:bookworm-slim
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# ffmpeg makes thumbnails and previews; curl is for the health check; sqlite3 makes
# online backups of /data/streamhut.db. prlimit (util-linux, in every Debian image) caps
# each bundle process's memory. Versions: see the build stage.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl ffmpeg sqlite3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 streamhut \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/streamhut \
      --shell /usr/sbin/nologin streamhut \
 && install -d -o streamhut -g streamhut -m 0700 /home/streamhut/.at-run \
 && install -d -o streamhut -g streamhut -m 0750 /data
COPY --from=build /src/target/release/streamhut /src/target/release/at-run /usr/local/bin/
COPY --from=build /src/node_modules/deno/deno /usr/local/bin/deno
COPY --from=build /src/target/site /srv/streamhut/site
# HOME is set so that ~/.at-run is /home/streamhut/.at-run even under `docker run --user`.
ENV HOME=/home/streamhut \
    STREAMHUT_LISTEN_ADDR=0.0.0.0:3000 \
    STREAMHUT_DATA_DIR=/data \
    STREAMHUT_SITE_ROOT=/srv/streamhut/site \
    DENO_PATH=/usr/local/bin/deno \
    FFMPEG_PATH=/usr/bin/ffmpeg
USER 10001:10001
WORKDIR /data
VOLUME /data
EXPOSE 3000
# GET /healthz answers 200 while the database answers, 503 when it does not. The port is
# the one in STREAMHUT_LISTEN_ADDR, asked on loopback.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/bin/sh", "-c", "curl -fsS -o /dev/null --max-time 4 \"http://127.0.0.1:${STREAMHUT_LISTEN_ADDR##*:}/healthz\""]
CMD ["streamhut"]
