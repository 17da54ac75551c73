//! A browser participant (the wasm build in real headless Chromium) completes rounds together
//! with native Rust participants; the coordinator's global model must be the plain average of
//! all their submitted models, the browser's included.
//!
//! The test serves `tests/browser/` and the wasm package (`$XAYNET_WASM_PKG`) on 127.0.0.1,
//! starts a coordinator that allows that origin (CORS), five native SDK participants and
//! `chromium --headless`. Without Chromium or the package the test fails under `CI=true` and
//! is skipped (with a message) elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use xaynet_core::crypto::SigningKeyPair;
use xaynet_core::RoundParameters;
use xaynet_sdk::{App, HttpClient, LocalModel, ModelUpdate, Participant, Runner, Settings};
use xaynet_test_support::{f32s, test_settings};

const LEN: usize = 100;
const BROWSER: usize = usize::MAX;

/// Round seed (hex) → participant → submitted model.
type Submissions = Arc<Mutex<BTreeMap<String, HashMap<usize, Vec<f32>>>>>;

fn requirement(what: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is missing; scripts/test.sh provides it");
    }
    eprintln!("skipping: {what} is missing (scripts/test.sh provides it)");
}

fn chromium() -> Option<String> {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c).arg("--version").output().is_ok() {
            return Some(c.to_string());
        }
    }
    None
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Native {
    i: usize,
    submitted: Submissions,
}

impl App for Native {
    async fn load_model(&mut self, params: &RoundParameters) -> Option<ModelUpdate> {
        let w: Vec<f32> = (0..params.model_length as usize)
            .map(|j| ((j * 7 + self.i * 13) % 100) as f32 / 200.0 - 0.25)
            .collect();
        self.submitted
            .lock()
            .unwrap()
            .entry(hex(params.seed.as_bytes()))
            .or_default()
            .insert(self.i, w.clone());
        Some(ModelUpdate {
            model: LocalModel::F32(w),
            scalar: None,
        })
    }
}

#[derive(Clone)]
struct PageState {
    pkg: PathBuf,
    submitted: Submissions,
}

async fn page_file(Path(name): Path<String>) -> impl IntoResponse {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let (body, kind) = match name.as_str() {
        "" | "index.html" => (std::fs::read(dir.join("index.html")).unwrap(), "text/html"),
        "page.mjs" => (
            std::fs::read(dir.join("page.mjs")).unwrap(),
            "text/javascript",
        ),
        _ => return (axum::http::StatusCode::NOT_FOUND, "not found").into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

async fn pkg_file(State(st): State<PageState>, Path(name): Path<String>) -> impl IntoResponse {
    if name.contains('/') || name.contains("..") {
        return (axum::http::StatusCode::NOT_FOUND, "not found").into_response();
    }
    let kind = if name.ends_with(".wasm") {
        "application/wasm"
    } else {
        "text/javascript"
    };
    match std::fs::read(st.pkg.join(&name)) {
        Ok(body) => ([(header::CONTENT_TYPE, kind)], body).into_response(),
        Err(_) => (axum::http::StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn submitted(State(st): State<PageState>, Json(v): Json<serde_json::Value>) {
    let seed = v["seed"].as_str().unwrap().to_string();
    let w: Vec<f32> = v["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    st.submitted
        .lock()
        .unwrap()
        .entry(seed)
        .or_default()
        .insert(BROWSER, w);
}

async fn log(body: String) {
    eprintln!("page: {body}");
}

#[test]
fn browser_participant_joins_native_ones() {
    let Some(pkg) = std::env::var_os("XAYNET_WASM_PKG").map(PathBuf::from) else {
        return requirement("the wasm package (XAYNET_WASM_PKG)");
    };
    let Some(browser) = chromium() else {
        return requirement("chromium");
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let submissions: Submissions = Arc::default();

    // The page's server.
    let state = PageState {
        pkg,
        submitted: submissions.clone(),
    };
    let app = Router::new()
        .route("/", get(|| page_file(Path(String::new()))))
        .route("/{name}", get(page_file))
        .route("/pkg/{name}", get(pkg_file))
        .route("/submitted", post(submitted))
        .route("/log", post(log))
        .with_state(state);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let page_origin = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(async move { axum::serve(listener, app).await });

    // The coordinator, which allows the page's origin.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path(), LEN);
    settings.api.cors_allowed_origins = vec![page_origin.clone()];
    settings.pet.sum.prob = Some(0.25);
    settings.pet.update.prob = Some(1.0);
    settings.pet.update.time.min = 2.0;
    settings.pet.sum.time.max = 3.0;
    settings.pet.sum2.time.max = 3.0;
    let running = runtime
        .block_on(xaynet_server::server::start(settings))
        .unwrap();
    let url = format!("http://{}", running.addr);

    // Five native participants.
    let native_settings = Settings {
        poll_interval_ms: 50,
        max_message_size: Some(1000),
        ..Settings::default()
    };
    let tasks: Vec<_> = (0..5)
        .map(|i| {
            let keys = SigningKeyPair::from_seed(&[i as u8 + 90; 32]);
            let p = Participant::new(keys, native_settings.clone()).unwrap();
            let app = Native {
                i,
                submitted: submissions.clone(),
            };
            let client = HttpClient::new(&url).unwrap();
            runtime.spawn(async move {
                Runner::new(p, client, app)
                    .run(std::future::pending::<()>())
                    .await
            })
        })
        .collect();

    let profile = tempfile::tempdir().unwrap();
    let mut chrome = Command::new(&browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{page_origin}/index.html?coordinator={url}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Wait for a global model of a round the browser contributed to.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut checked = 0;
    let mut seen = String::new();
    let verdict = loop {
        if Instant::now() > deadline {
            break Err("no round with the browser's update within 120 s".to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
        let Some(m) = running.published.borrow().model.clone() else {
            continue;
        };
        if m.id == seen {
            continue;
        }
        seen = m.id.clone();
        let seed = m.id.split('_').nth(1).unwrap().to_string();
        let got = f32s(&m.raw().unwrap());
        let subs = submissions
            .lock()
            .unwrap()
            .get(&seed)
            .cloned()
            .unwrap_or_default();
        if subs.is_empty() {
            continue;
        }
        for (j, g) in got.iter().enumerate() {
            let want = subs.values().map(|w| f64::from(w[j])).sum::<f64>() / subs.len() as f64;
            assert!(
                (f64::from(*g) - want).abs() <= 1e-6,
                "round {}: weight {j} {g} vs average {want} of {} models",
                m.round_id,
                subs.len()
            );
        }
        checked += 1;
        if subs.contains_key(&BROWSER) {
            break Ok(checked);
        }
    };
    let _ = chrome.kill();
    let _ = chrome.wait();
    for t in tasks {
        t.abort();
    }
    runtime.block_on(running.stop());
    let checked = verdict.unwrap();
    assert!(checked >= 1);
}
