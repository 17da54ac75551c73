#!/usr/bin/env bash
# The whole test suite (the README's test command; CI runs exactly this).
#
# Installs what is missing (the wasm32 target, rustfmt, clippy), then runs every check:
# formatting, clippy with warnings as errors, all tests, the docs, and the wasm32 build of
# xaynet-core. With CI=true a missing tool is an error, never a skip.
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

step "cargo test"
cargo test --workspace --locked

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "xaynet-core builds for wasm32-unknown-unknown"
cargo build -p xaynet-core --target wasm32-unknown-unknown --locked --quiet

step "all checks passed"
