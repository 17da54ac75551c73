//! The wasm participant in Node.js against a live coordinator on 127.0.0.1. Needs the
//! wasm-bindgen output in `$XAYNET_WASM_PKG` (`scripts/build-wasm.sh` makes it; the test
//! script sets the variable) and `node`; without them the test fails under `CI=true` and is
//! skipped (with a message) elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use xaynet_test_support::test_settings;

fn requirement(what: &str) -> Option<()> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is missing; scripts/test.sh provides it");
    }
    eprintln!("skipping: {what} is missing (scripts/test.sh provides it)");
    None
}

fn pkg_dir() -> Option<PathBuf> {
    match std::env::var_os("XAYNET_WASM_PKG").map(PathBuf::from) {
        Some(p) if p.join("xaynet.js").exists() => Some(p),
        _ => requirement("the wasm package (XAYNET_WASM_PKG)").map(|_| PathBuf::new()),
    }
    .filter(|p| !p.as_os_str().is_empty())
}

#[test]
fn wasm_participants_in_node_complete_rounds() {
    let Some(pkg) = pkg_dir() else { return };
    if Command::new("node").arg("--version").output().is_err() {
        requirement("node");
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path(), 200);
    settings.pet.sum.prob = Some(0.25);
    settings.pet.update.prob = Some(1.0);
    settings.pet.update.time.min = 1.5;
    settings.pet.sum.time.max = 3.0;
    settings.pet.sum2.time.max = 3.0;
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
