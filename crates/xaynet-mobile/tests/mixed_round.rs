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
use std::time::{Duration, Instant};

use xaynet_core::crypto::SigningKeyPair;
use xaynet_core::RoundParameters;
use xaynet_sdk::{App, HttpClient, LocalModel, ModelUpdate, Participant, Runner, Settings};
use xaynet_test_support::browser::{
    assert_plain_average, require, serve_page, submit, wasm_pkg, Chromium, Submissions,
};
use xaynet_test_support::{f32s, test_settings};

const LEN: usize = 60;

struct Native {
    i: usize,
    submissions: Submissions,
}

impl App for Native {
    async fn load_model(&mut self, params: &RoundParameters) -> Option<ModelUpdate> {
        let w: Vec<f32> = (0..params.model_length as usize)
            .map(|j| ((j * 7 + self.i * 13) % 100) as f32 / 200.0 - 0.25)
            .collect();
        let seed: String = params
            .seed
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        submit(
            &self.submissions,
            &seed,
            &format!("native-{}", self.i),
            w.clone(),
        );
        Some(ModelUpdate {
            model: LocalModel::F32(w),
            scalar: None,
        })
    }
}

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
    let mut settings = test_settings(dir.path(), LEN);
    settings.api.cors_allowed_origins = vec![page.clone()];
    settings.pet.sum.prob = Some(0.2);
    settings.pet.update.prob = Some(1.0);
    // Every updater of every kind gets its model in.
    settings.pet.update.time.min = 3.0;
    settings.pet.sum.time.max = 4.0;
    settings.pet.sum2.time.max = 4.0;
    let running = runtime
        .block_on(xaynet_server::server::start(settings))
        .unwrap();
    let url = format!("http://{}", running.addr);

    let native_settings = Settings {
        poll_interval_ms: 50,
        ..Settings::default()
    };
    let tasks: Vec<_> = (0..2)
        .map(|i| {
            let keys = SigningKeyPair::from_seed(&[i as u8 + 120; 32]);
            let p = Participant::new(keys, native_settings.clone()).unwrap();
            let app = Native {
                i,
                submissions: submissions.clone(),
            };
            let client = HttpClient::new(&url).unwrap();
            runtime.spawn(async move {
                Runner::new(p, client, app)
                    .run(std::future::pending::<()>())
                    .await
            })
        })
        .collect();
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

    let kinds = |models: &std::collections::HashMap<String, Vec<f32>>| -> BTreeSet<String> {
        models
            .keys()
            .map(|k| k.split('-').next().unwrap().to_string())
            .collect()
    };
    let all: BTreeSet<String> = ["browser", "c", "native", "python"]
        .into_iter()
        .map(String::from)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(140);
    let mut seen = String::new();
    let mut checked = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "no round with all four kinds within 140 s ({checked} rounds checked)"
        );
        std::thread::sleep(Duration::from_millis(100));
        let Some(m) = running.published.borrow().model.clone() else {
            continue;
        };
        if m.id == seen {
            continue;
        }
        seen = m.id.clone();
        let seed = m.id.split('_').nth(1).unwrap();
        let models = submissions
            .lock()
            .unwrap()
            .get(seed)
            .cloned()
            .unwrap_or_default();
        if models.is_empty() {
            continue;
        }
        assert_plain_average(&f32s(&m.raw().unwrap()), &models, m.round_id);
        checked += 1;
        if kinds(&models) == all {
            eprintln!(
                "round {}: {} models from {:?}, global model = their plain average",
                m.round_id,
                models.len(),
                models.keys().collect::<BTreeSet<_>>()
            );
            break;
        }
    }
    drop(chromium);
    for t in tasks {
        t.abort();
    }
    runtime.block_on(running.stop());
}
