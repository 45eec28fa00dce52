#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy, the Rust tests (some against a real local
# PDS and PLC from npm), and the Playwright suite in Debian's Chromium against a freshly
# built server. Installs what is missing first (Debian packages, the wasm target,
# wasm-bindgen-cli, npm packages); never downloads a browser.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

# chromium for Playwright; a C++ toolchain and Python for the PDS's better-sqlite3;
# ffmpeg for VOD's thumbnails and previews (and the test fixtures).
ensure_apt chromium g++ make python3 ffmpeg
ensure_build_tools
ensure_npm "$ROOT/end2end"
ensure_sqld
ensure_hadolint
ensure_cargo_deny
ensure_feedparser

step "checking that the browser build links no server-only crate"
server_only="$(cargo tree -p app -e normal --no-default-features --features hydrate \
  --target wasm32-unknown-unknown --prefix none | sed 's/ v.*//' | sort -u \
  | grep -xE 'axum|hyper|tokio|tower|tower-http|libsql|reqwest|leptos_axum' || true)"
if [ -n "$server_only" ]; then
  echo "app with only 'hydrate' depends on server-only crates: $server_only" >&2
  exit 1
fi

step "cargo fmt --check"
cargo fmt --all --check

step "hadolint Dockerfile"
"$HADOLINT" Dockerfile

check_advisories

step "cargo clippy (server and app, all targets; then the browser crates for wasm32)"
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet -p frontend --target wasm32-unknown-unknown -- -D warnings

step "Rust tests (with Deno at node_modules/.bin/deno, a local PDS from end2end/, sqld)"
export DENO_PATH="${DENO_PATH:-$ROOT/node_modules/.bin/deno}"
cargo test --quiet

build_site dev
step "building the server for the browser tests"
cargo build --quiet -p server --bin streamhut

step "Playwright suite (Chromium at /usr/bin/chromium)"
E2E_DATA_DIR="$(mktemp -d -t streamhut-e2e-XXXXXX)"
trap 'rm -rf "$E2E_DATA_DIR"' EXIT
E2E_PORT="$(free_port)"
(
  cd end2end
  STREAMHUT_E2E_DATA_DIR="$E2E_DATA_DIR" STREAMHUT_E2E_PORT="$E2E_PORT" \
    STREAMHUT_BIN="$TARGET_DIR/debug/streamhut" npx playwright test
)

step "all checks passed"
