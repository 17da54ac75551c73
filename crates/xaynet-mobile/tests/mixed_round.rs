//! One coordinator, four kinds of participants: native Rust (the SDK's runner), C (through this
//! crate's ABI, `tests/ffi_participants.c`), Python (the `xaynet` package,
//! `crates/xaynet-python/tests/mixed_participants.py`) and a browser (the wasm build in
//! headless Chromium). The test waits for a round to which all four kinds contributed and
//! checks that its global model is the plain average of all models submitted in it.
//!
//! Needs a C compiler, `$XAYNET_PYTHON` (a Python with the `xaynet` package),
//! `$XAYNET_WASM_PKG` and Chromium; `scripts/test.sh` provides them. Without them the test
//! fails under `CI=true` and is skipped (with a message) elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use xaynet_test_support::browser::{
    check_rounds_until, require, serve_page, spawn_natives, submit, wasm_pkg, Chromium, Submissions,
};
use xaynet_test_support::every_updater_settings;

const LEN: usize = 60;

/// Reads `SUBMIT <seed> <who> <weights…>` lines of a child's stdout into `submissions`.
fn collect(child: &mut Child, submissions: &Submissions) {
    let stdout = child.stdout.take().unwrap();
    let submissions = submissions.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let mut parts = line.split_whitespace();
            if parts.next() != Some("SUBMIT") {
                continue;
            }
            let (Some(seed), Some(who)) = (parts.next(), parts.next()) else {
                continue;
            };
            let w: Vec<f32> = parts.map(|v| v.parse().unwrap()).collect();
            submit(&submissions, seed, who, w);
        }
    });
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn compile_c(out: &Path) -> bool {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    if Command::new(&cc).arg("--version").output().is_err() {
        require("a C compiler");
        return false;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let libs: PathBuf = std::env::current_exe().unwrap().parent().unwrap().into();
    let status = Command::new(&cc)
        .args([
            "-std=c11",
            "-Wall",
            "-Werror",
            "-D_POSIX_C_SOURCE=199309L",
            "-o",
        ])
        .arg(out)
        .arg(crate_dir.join("tests/ffi_participants.c"))
        .arg("-I")
        .arg(crate_dir)
        .arg("-L")
        .arg(&libs)
        .arg(format!("-Wl,-rpath,{}", libs.display()))
        .arg("-lxaynet_mobile")
        .status()
        .unwrap();
    assert!(status.success(), "ffi_participants.c does not compile");
    true
}

#[test]
fn c_python_browser_and_rust_participants_share_a_round() {
    let Some(pkg) = wasm_pkg() else {
        return require("the wasm package (XAYNET_WASM_PKG)");
    };
    let Some(browser) = Chromium::binary() else {
        return require("chromium");
    };
    let Some(python) = std::env::var_os("XAYNET_PYTHON") else {
        return require("a Python with the xaynet package (XAYNET_PYTHON)");
    };
    let bin = tempfile::tempdir().unwrap();
    let c_program = bin.path().join("ffi_participants");
    if !compile_c(&c_program) {
        return;
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let submissions = Submissions::default();
    let page = runtime.block_on(serve_page(pkg, submissions.clone()));
    let dir = tempfile::tempdir().unwrap();
    // Every updater of every kind gets its model in: the update phase lasts at least 3 s.
    let mut settings = every_updater_settings(dir.path(), LEN, 3.0);
    settings.api.cors_allowed_origins = vec![page.clone()];
    let running = runtime
        .block_on(xaynet_server::server::start(settings))
        .unwrap();
    let url = format!("http://{}", running.addr);
    let natives = spawn_natives(&runtime, &url, 2, &submissions);
    let mut c = Command::new(&c_program)
        .args([url.as_str(), "2", "150"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    collect(&mut c, &submissions);
    let _c = Killed(c);
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../xaynet-python/tests/mixed_participants.py");
    let mut py = Command::new(&python)
        .arg(&script)
        .args([url.as_str(), "2", "150"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    collect(&mut py, &submissions);
    let _py = Killed(py);
    let chromium = Chromium::open(browser, &format!("{page}/index.html?coordinator={url}"));

    let all: BTreeSet<&str> = ["browser", "c", "native", "python"].into();
    check_rounds_until(
        &running.published,
        &submissions,
        Duration::from_secs(140),
        |models| {
            let kinds: BTreeSet<&str> = models.keys().filter_map(|k| k.split('-').next()).collect();
            kinds == all
        },
    );
    drop(chromium);
    for t in natives {
        t.abort();
    }
    runtime.block_on(running.stop());
}
