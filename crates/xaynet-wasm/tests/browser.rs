//! A browser participant (the wasm build in real headless Chromium) completes rounds together
//! with native Rust participants; the coordinator's global model must be the plain average of
//! all their submitted models, the browser's included.
//!
//! The test serves `tests/browser/` and the wasm package (`$XAYNET_WASM_PKG`) on 127.0.0.1,
//! starts a coordinator that allows that origin (CORS), five native SDK participants and
//! headless Chromium. Without Chromium or the package the test fails under `CI=true` and is
//! skipped (with a message) elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use xaynet_core::crypto::SigningKeyPair;
use xaynet_core::RoundParameters;
use xaynet_sdk::{App, HttpClient, LocalModel, ModelUpdate, Participant, Runner, Settings};
use xaynet_test_support::browser::{
    assert_plain_average, require, serve_page, submit, wasm_pkg, Chromium, Submissions,
};
use xaynet_test_support::{f32s, test_settings};

const LEN: usize = 100;

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
    let mut settings = test_settings(dir.path(), LEN);
    settings.api.cors_allowed_origins = vec![page.clone()];
    settings.pet.sum.prob = Some(0.25);
    settings.pet.update.prob = Some(1.0);
    settings.pet.update.time.min = 2.0;
    settings.pet.sum.time.max = 3.0;
    settings.pet.sum2.time.max = 3.0;
    let running = runtime
        .block_on(xaynet_server::server::start(settings))
        .unwrap();
    let url = format!("http://{}", running.addr);

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
    let chromium = Chromium::open(browser, &format!("{page}/index.html?coordinator={url}"));

    // Every global model is checked; stop at the first round the browser contributed to.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = String::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no round with the browser's update within 120 s"
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
        if models.contains_key("browser") {
            break;
        }
    }
    drop(chromium);
    for t in tasks {
        t.abort();
    }
    runtime.block_on(running.stop());
}
