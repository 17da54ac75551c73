//! A browser participant (the wasm build in real headless Chromium) completes rounds together
//! with native Rust participants; the coordinator's global model must be the plain average of
//! all their submitted models, the browser's included.
//!
//! The test serves `tests/browser/` and the wasm package (`$XAYNET_WASM_PKG`) on 127.0.0.1,
//! starts a coordinator that allows that origin (CORS), five native SDK participants and
//! headless Chromium. Without Chromium or the package the test fails under `CI=true` and is
//! skipped (with a message) elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use xaynet_test_support::browser::{
    check_rounds_until, require, serve_page, spawn_natives, wasm_pkg, Chromium, Submissions,
};
use xaynet_test_support::every_updater_settings;

#[test]
fn browser_participant_joins_native_ones() {
    let Some(pkg) = wasm_pkg() else {
        return require("the wasm package (XAYNET_WASM_PKG)");
    };
    let Some(browser) = Chromium::binary() else {
        return require("chromium");
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let submissions = Submissions::default();
    let page = runtime.block_on(serve_page(pkg, submissions.clone()));

    let dir = tempfile::tempdir().unwrap();
    let mut settings = every_updater_settings(dir.path(), 100, 2.0);
    settings.api.cors_allowed_origins = vec![page.clone()];
    let running = runtime
        .block_on(xaynet_server::server::start(settings))
        .unwrap();
    let url = format!("http://{}", running.addr);
    let natives = spawn_natives(&runtime, &url, 5, &submissions);
    let chromium = Chromium::open(browser, &format!("{page}/index.html?coordinator={url}"));

    // Every global model is checked; stop at the first round the browser contributed to.
    check_rounds_until(
        &running.published,
        &submissions,
        Duration::from_secs(120),
        |models| models.contains_key("browser"),
    );
    drop(chromium);
    for t in natives {
        t.abort();
    }
    runtime.block_on(running.stop());
}
