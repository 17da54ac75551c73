#!/usr/bin/env bash
# Builds the browser/Node participant: xaynet-wasm for wasm32-unknown-unknown, the wasm-bindgen
# glue (--target web: an ES module for pages and Node >= 20) and js/xaynet.js, into OUT_DIR
# (default: target/xaynet-wasm-pkg). Installs wasm-bindgen-cli in the version of the
# wasm-bindgen crate when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="${1:-$target_dir/xaynet-wasm-pkg}"
version="$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')"
# Installed next to the build cache (kept between CI runs), not into ~/.cargo.
tools="$target_dir/tools"
bindgen="$(command -v wasm-bindgen || true)"
if [ "$("${bindgen:-false}" --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  bindgen="$tools/bin/wasm-bindgen"
  if [ "$("$bindgen" --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
    echo "installing wasm-bindgen-cli $version (about a minute, once)" >&2
    # A debug build: it compiles in a minute instead of eight on two cores, and processes
    # our module in a third of a second, with byte-identical output.
    cargo install --quiet --debug --root "$tools" wasm-bindgen-cli --version "$version" >&2
  fi
fi
cargo build -p xaynet-wasm --target wasm32-unknown-unknown --release --locked --quiet >&2
mkdir -p "$out"
"$bindgen" --target web --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/release/xaynet_wasm.wasm"
cp crates/xaynet-wasm/js/xaynet.js "$out/"
echo "$out"
