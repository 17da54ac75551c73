//! The wasm participant in Node.js against a live coordinator on 127.0.0.1. Needs the
//! wasm-bindgen output in `$XAYNET_WASM_PKG` (`scripts/build-wasm.sh` makes it; the test
//! script sets the variable) and `node`; without them the test fails under `CI=true` and is
//! skipped (with a message) elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use xaynet_test_support::browser::{require, wasm_pkg};
use xaynet_test_support::every_updater_settings;

#[test]
fn wasm_participants_in_node_complete_rounds() {
    let Some(pkg) = wasm_pkg() else {
        return require("the wasm package (XAYNET_WASM_PKG)");
    };
    if Command::new("node").arg("--version").output().is_err() {
        return require("node");
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = every_updater_settings(dir.path(), 200, 1.5);
    let running = runtime
        .block_on(xaynet_server::server::start(settings))
        .unwrap();
    let url = format!("http://{}", running.addr);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node_participants.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(&url)
        .arg(&pkg)
        .arg("8")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("global model 2 verified"), "{stdout}");
    runtime.block_on(running.stop());
}
