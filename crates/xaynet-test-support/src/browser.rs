//! What the browser and mixed-language tests need: native SDK participants that record what they
//! submit, a server for the test page and the wasm package on 127.0.0.1
//! that collects the models the page submits, headless Chromium, and the check that a global
//! model is the plain average of a round's submissions.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

/// Round seed (hex) → participant name → the model it submitted in that round.
pub type Submissions = Arc<Mutex<BTreeMap<String, HashMap<String, Vec<f32>>>>>;

/// Records a submission.
pub fn submit(submissions: &Submissions, seed: &str, who: &str, model: Vec<f32>) {
    submissions
        .lock()
        .unwrap()
        .entry(seed.to_string())
        .or_default()
        .insert(who.to_string(), model);
}

/// Fails the test under `CI=true` (a required piece is missing), otherwise prints why it is
/// skipped.
pub fn require(what: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is missing; scripts/test.sh provides it");
    }
    eprintln!("skipping: {what} is missing (scripts/test.sh provides it)");
}

/// The wasm package built by `scripts/build-wasm.sh` (`$XAYNET_WASM_PKG`).
pub fn wasm_pkg() -> Option<PathBuf> {
    std::env::var_os("XAYNET_WASM_PKG")
        .map(PathBuf::from)
        .filter(|p| p.join("xaynet.js").exists())
}

/// The test page's directory.
pub fn page_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../xaynet-wasm/tests/browser")
}

#[derive(Clone)]
struct PageState {
    pkg: PathBuf,
    submissions: Submissions,
}

async fn page_file(Path(name): Path<String>) -> impl IntoResponse {
    let (file, kind) = match name.as_str() {
        "index.html" => ("index.html", "text/html"),
        "page.mjs" => ("page.mjs", "text/javascript"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    match std::fs::read(page_dir().join(file)) {
        Ok(body) => ([(header::CONTENT_TYPE, kind)], body).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn pkg_file(State(st): State<PageState>, Path(name): Path<String>) -> impl IntoResponse {
    if name.contains('/') || name.contains("..") {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let kind = if name.ends_with(".wasm") {
        "application/wasm"
    } else {
        "text/javascript"
    };
    match std::fs::read(st.pkg.join(&name)) {
        Ok(body) => ([(header::CONTENT_TYPE, kind)], body).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn submitted(State(st): State<PageState>, Json(v): Json<serde_json::Value>) {
    let seed = v["seed"].as_str().unwrap_or_default();
    let w: Vec<f32> = v["weights"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_f64())
                .map(|x| x as f32)
                .collect()
        })
        .unwrap_or_default();
    submit(&st.submissions, seed, "browser", w);
}

async fn log(body: String) {
    eprintln!("page: {body}");
}

/// Serves `index.html` and `page.mjs` of the test page and the wasm package under `/pkg/`;
/// the page's submissions land in `submissions` as participant `"browser"`. Returns the
/// origin (`http://127.0.0.1:PORT`).
pub async fn serve_page(pkg: PathBuf, submissions: Submissions) -> String {
    let state = PageState { pkg, submissions };
    let app = Router::new()
        .route("/{name}", get(page_file))
        .route("/pkg/{name}", get(pkg_file))
        .route("/submitted", post(submitted))
        .route("/log", post(log))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// Headless Chromium showing one page; killed when dropped.
pub struct Chromium {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// The installed Chromium's command, if any.
    pub fn binary() -> Option<&'static str> {
        ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find(|c| Command::new(c).arg("--version").output().is_ok())
    }

    /// Opens `url` in a fresh headless Chromium.
    pub fn open(binary: &str, url: &str) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            _profile: profile,
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts that `got` is the plain average of `models` within the masking precision.
pub fn assert_plain_average(got: &[f32], models: &HashMap<String, Vec<f32>>, round: u64) {
    for (j, g) in got.iter().enumerate() {
        let want = models.values().map(|w| f64::from(w[j])).sum::<f64>() / models.len() as f64;
        assert!(
            (f64::from(*g) - want).abs() <= 1e-6,
            "round {round}: weight {j} is {g}, the average of {} models is {want}",
            models.len()
        );
    }
}

/// A native SDK participant that submits a fixed model per participant and records it.
struct Native {
    name: String,
    i: usize,
    submissions: Submissions,
}

impl xaynet_sdk::App for Native {
    async fn load_model(
        &mut self,
        params: &xaynet_core::RoundParameters,
    ) -> Option<xaynet_sdk::ModelUpdate> {
        let w: Vec<f32> = (0..params.model_length as usize)
            .map(|j| ((j * 7 + self.i * 13) % 100) as f32 / 200.0 - 0.25)
            .collect();
        let seed: String = params
            .seed
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        submit(&self.submissions, &seed, &self.name, w.clone());
        Some(xaynet_sdk::ModelUpdate {
            model: xaynet_sdk::LocalModel::F32(w),
            scalar: None,
        })
    }
}

/// Spawns `n` native participants (`native-0`, …) against `url` on `runtime`, recording their
/// submissions.
pub fn spawn_natives(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    n: usize,
    submissions: &Submissions,
) -> Vec<tokio::task::JoinHandle<()>> {
    let settings = xaynet_sdk::Settings {
        poll_interval_ms: 50,
        max_message_size: Some(1000),
        ..xaynet_sdk::Settings::default()
    };
    (0..n)
        .map(|i| {
            let keys = xaynet_core::SigningKeyPair::from_seed(&[i as u8 + 90; 32]);
            let p = xaynet_sdk::Participant::new(keys, settings.clone()).unwrap();
            let app = Native {
                name: format!("native-{i}"),
                i,
                submissions: submissions.clone(),
            };
            let client = xaynet_sdk::HttpClient::new(url).unwrap();
            runtime.spawn(async move {
                xaynet_sdk::Runner::new(p, client, app)
                    .run(std::future::pending::<()>())
                    .await
            })
        })
        .collect()
}

/// Checks every global model the coordinator publishes against the plain average of the
/// submissions of its round, until `done` holds for a round's submissions; returns how many
/// rounds were checked. Panics after `timeout`.
pub fn check_rounds_until(
    published: &tokio::sync::watch::Receiver<std::sync::Arc<xaynet_server::service::Published>>,
    submissions: &Submissions,
    timeout: std::time::Duration,
    done: impl Fn(&HashMap<String, Vec<f32>>) -> bool,
) -> usize {
    let deadline = std::time::Instant::now() + timeout;
    let mut seen = String::new();
    let mut checked = 0;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no round as wanted within {timeout:?} ({checked} rounds checked)"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
        let Some(m) = published.borrow().model.clone() else {
            continue;
        };
        if m.id == seen {
            continue;
        }
        seen = m.id.clone();
        let seed = m.id.split('_').nth(1).unwrap_or_default();
        let models = submissions
            .lock()
            .unwrap()
            .get(seed)
            .cloned()
            .unwrap_or_default();
        if models.is_empty() {
            continue;
        }
        assert_plain_average(&crate::f32s(&m.raw().unwrap()), &models, m.round_id);
        checked += 1;
        if done(&models) {
            let mut names: Vec<&String> = models.keys().collect();
            names.sort();
            eprintln!(
                "round {}: global model = plain average of {} models from {names:?}",
                m.round_id,
                models.len()
            );
            return checked;
        }
    }
}
