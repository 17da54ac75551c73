//! Compiles `tests/ffi_test.c` against the checked-in header and the library (with the
//! system's C compiler, `cc` or `$CC`) and runs it against a live coordinator on 127.0.0.1.
//! Without a C compiler the test fails under `CI=true` and is skipped (with a message)
//! elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use xaynet_test_support::every_updater_settings;

/// The directory cargo put this crate's freshly built libraries in for this test run
/// (`target/<profile>/deps`, next to this test's executable).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().to_path_buf()
}

fn compiler() -> Option<String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let found = Command::new(&cc).arg("--version").output().is_ok();
    if found {
        Some(cc)
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("no C compiler ({cc}) found; the test script installs gcc");
    } else {
        eprintln!("skipping: no C compiler ({cc}) found");
        None
    }
}

#[test]
fn c_program_drives_participants_through_rounds() {
    let Some(cc) = compiler() else { return };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let libs = library_dir();
    let so = libs.join("libxaynet_mobile.so");
    assert!(so.exists(), "{} not built", so.display());
    let out = tempfile::tempdir().unwrap();
    let exe = out.path().join("ffi_test");
    let status = Command::new(&cc)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-D_POSIX_C_SOURCE=199309L",
            "-o",
        ])
        .arg(&exe)
        .arg(crate_dir.join("tests/ffi_test.c"))
        .arg("-I")
        .arg(crate_dir)
        .arg("-L")
        .arg(&libs)
        .arg(format!("-Wl,-rpath,{}", libs.display()))
        .args(["-lxaynet_mobile", "-lm"])
        .status()
        .unwrap();
    assert!(status.success(), "the C test program does not compile");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = every_updater_settings(dir.path(), 300, 1.5);
    let running = runtime
        .block_on(xaynet_server::server::start(settings))
        .unwrap();
    let url = format!("http://{}", running.addr);

    let output = Command::new(&exe).arg(&url).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("global model 2 verified"), "{stdout}");
    let published = running.published.borrow().model.clone();
    assert!(
        published.is_some(),
        "the coordinator published global models"
    );
    runtime.block_on(running.stop());
}
