#!/usr/bin/env bash
# The whole test suite (the README's test command; CI runs exactly this).
#
# Installs what is missing (the wasm32 target, rustfmt, clippy, redis-server, a C compiler,
# Chromium, wasm-bindgen-cli, moto's S3 server, Python's maturin/numpy/pytest in a virtual environment), then runs every
# check: formatting, clippy with warnings as errors, all tests (Rust, the C program, pytest), the
# docs, and the wasm32 build of xaynet-core and the SDK's state machine. Tests start the servers they need (coordinators,
# redis-server, an S3-compatible server) on free loopback ports and stop them. With CI=true a
# missing tool is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

step "toolchain"
cargo --version
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component" || fail "could not install $component"
  fi
done
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown || fail "could not install the wasm32-unknown-unknown target"
fi

step "services used by the tests"
apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  fi
}
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server >/dev/null || fail "could not install redis-server"
  # The package starts a system instance; the tests run their own on free ports.
  (service redis-server stop || systemctl stop redis-server) >/dev/null 2>&1 || true
fi
redis-server --version
if ! command -v cc >/dev/null 2>&1; then
  # The C test program of the mobile crate's ABI is compiled with it.
  apt_install gcc libc6-dev >/dev/null || fail "could not install a C compiler (gcc)"
fi
cc --version | head -n 1
if ! command -v moto_server >/dev/null 2>&1; then
  # moto's server is the S3-compatible HTTP server the model-store tests run against.
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]" || fail "could not install moto[server]"
  hash -r
fi
command -v moto_server >/dev/null 2>&1 || fail "moto_server is not on PATH after installing moto[server]"
echo "moto_server: $(command -v moto_server)"

step "test vectors match ../shared/testvectors (when present)"
if [ -d ../shared/testvectors ]; then
  diff -r ../shared/testvectors testvectors || fail "testvectors/ differs from ../shared/testvectors"
  echo "identical"
else
  echo "no ../shared beside this checkout; using the vendored copy"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "browser participant: the wasm package, Node.js and Chromium"
command -v node >/dev/null 2>&1 || apt_install nodejs >/dev/null || fail "could not install node"
node --version
if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium >/dev/null || fail "could not install chromium"
fi
chromium --version
XAYNET_WASM_PKG="$(scripts/build-wasm.sh | tail -n 1)" || fail "could not build the wasm package"
export XAYNET_WASM_PKG
echo "wasm package: $XAYNET_WASM_PKG"

step "Python package: built into a virtual environment"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target_dir/python-venv"
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv python3-pip >/dev/null || fail "could not install python3"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv >/dev/null && python3 -m venv "$venv"; } || fail "could not create a Python virtual environment"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.5,<2" numpy pytest || fail "could not install maturin, numpy and pytest"
(cd crates/xaynet-python && VIRTUAL_ENV="$venv" CARGO_TARGET_DIR="$target_dir" "$venv/bin/maturin" develop --quiet) || fail "could not build the Python package"
export XAYNET_PYTHON="$venv/bin/python"

step "cargo test"
cargo test --workspace --locked

step "Python package: pytest against a live coordinator"
cargo build -p xaynet --locked --quiet
XAYNET_BIN="$target_dir/debug/xaynet" "$venv/bin/python" -m pytest -q -p no:cacheprovider crates/xaynet-python/tests

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "xaynet-core and the SDK's state machine build for wasm32-unknown-unknown"
cargo build -p xaynet-core -p xaynet-sdk --no-default-features --target wasm32-unknown-unknown --locked --quiet

step "all checks passed"
