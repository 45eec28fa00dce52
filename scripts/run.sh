#!/usr/bin/env bash
# Builds Streamhut in release mode and runs it on the embedded libSQL database
# (./data/streamhut.db), at http://127.0.0.1:3000 unless STREAMHUT_LISTEN_ADDR says otherwise.
# Installs what the build needs and is missing. Extra arguments go to the server
# (see `--help`).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# ffmpeg makes thumbnails and previews.
ensure_apt ffmpeg
ensure_build_tools
build_site release
step "building the server (release)"
cargo build --quiet --release -p server --bins

step "starting Streamhut (Ctrl-C stops it)"
export STREAMHUT_SITE_ROOT="${STREAMHUT_SITE_ROOT:-$SITE_DIR}"
export DENO_PATH="${DENO_PATH:-$ROOT/node_modules/.bin/deno}"
exec "$TARGET_DIR/release/streamhut" "$@"
