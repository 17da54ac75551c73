//! The Xaynet participant for web pages and Node.js: the SDK's sans-IO state machine compiled
//! to WebAssembly. JavaScript (`js/xaynet.js`) does the I/O with `fetch` and the timers; every
//! decision, every byte sent and every byte decoded is made here, in Rust.
//!
//! The driver loop (what `js/xaynet.js` does): `poll(now)` returns the next action as JSON
//! (`{"kind": "wait", "until": ms}`, `{"kind": "get", "what": "params" | "sums" | "seeds",
//! "path": ...}`, `{"kind": "model"}`, `{"kind": "send", "path": "message"}` with the body from
//! `take_body()`); the answer goes back through `handle_response`, `handle_error` or
//! `handle_model`; `next_notice()` drains what the app may want to know. Randomness comes from
//! the platform's `crypto.getRandomValues`.

use wasm_bindgen::prelude::*;
use xaynet_core::crypto::{OsRng, SigningKeyPair};
use xaynet_core::eligibility::Task;
use xaynet_core::message::Tag;
use xaynet_core::Model;
use xaynet_sdk::api::{decode_model, decode_params, decode_seeds, decode_sums};
use xaynet_sdk::{
    seeds_path, Action, LocalModel, ModelUpdate, Notice, Participant, RequestError, Response,
    Settings,
};

/// A participant (see the crate docs for the driver loop).
#[wasm_bindgen]
pub struct WasmParticipant {
    inner: Participant,
    body: Option<Vec<u8>>,
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn tag_name(tag: Tag) -> &'static str {
    match tag {
        Tag::Sum => "sum",
        Tag::Update => "update",
        Tag::Sum2 => "sum2",
    }
}

fn task_name(task: Task) -> &'static str {
    match task {
        Task::Sum => "sum",
        Task::Update => "update",
        Task::None => "none",
    }
}

#[wasm_bindgen]
impl WasmParticipant {
    /// A participant with a fresh key. `max_message_size` 0 never chunks.
    #[wasm_bindgen(constructor)]
    pub fn new(
        scalar: f64,
        max_message_size: u32,
        poll_interval_ms: u32,
    ) -> Result<WasmParticipant, JsError> {
        let settings = Settings {
            scalar,
            max_message_size: (max_message_size > 0).then_some(max_message_size as usize),
            poll_interval_ms: u64::from(poll_interval_ms),
            retry_min_ms: u64::from(poll_interval_ms).clamp(1, 250),
            ..Settings::default()
        };
        let keys = SigningKeyPair::generate(&mut OsRng);
        Ok(Self {
            inner: Participant::new(keys, settings).map_err(js_err)?,
            body: None,
        })
    }

    /// A participant from `save()` bytes.
    pub fn restore(saved: &[u8]) -> Result<WasmParticipant, JsError> {
        Ok(Self {
            inner: Participant::restore(saved).map_err(js_err)?,
            body: None,
        })
    }

    /// The whole state (contains the secret key: keep it out of reach of other scripts).
    pub fn save(&self) -> Vec<u8> {
        self.inner.save().to_vec()
    }

    /// The participant's public key (32 bytes).
    pub fn public_key(&self) -> Vec<u8> {
        self.inner.public_key().as_bytes().to_vec()
    }

    /// The current round seed (32 bytes), if a round is known.
    pub fn round_seed(&self) -> Option<Vec<u8>> {
        self.inner.round_params().map(|p| p.seed.0.to_vec())
    }

    /// The round's model length, if a round is known.
    pub fn model_length(&self) -> Option<f64> {
        self.inner.round_params().map(|p| p.model_length as f64)
    }

    /// The round's data type (`"F32"`, `"F64"`, `"I32"`, `"I64"`), if a round is known.
    pub fn data_type(&self) -> Option<String> {
        self.inner
            .round_params()
            .map(|p| p.mask_config.vect.data_type.name().to_string())
    }

    /// The task in the current round: `"sum"`, `"update"` or `"none"`.
    pub fn task(&self) -> String {
        task_name(self.inner.task()).to_string()
    }

    /// The next action at time `now` (ms) as JSON.
    pub fn poll(&mut self, now: f64) -> String {
        let action = self.inner.poll(now.max(0.0) as u64);
        let json = match action {
            Action::Wait(until) => serde_json::json!({ "kind": "wait", "until": until }),
            Action::FetchParams => {
                serde_json::json!({ "kind": "get", "what": "params", "path": "params" })
            }
            Action::FetchSums => {
                serde_json::json!({ "kind": "get", "what": "sums", "path": "sums" })
            }
            Action::FetchSeeds(pk) => serde_json::json!({
                "kind": "get",
                "what": "seeds",
                "path": seeds_path(&pk),
            }),
            Action::LoadModel => serde_json::json!({ "kind": "model" }),
            Action::Send(body) => {
                self.body = Some(body.to_vec());
                serde_json::json!({ "kind": "send", "path": "message" })
            }
        };
        json.to_string()
    }

    /// The body of the last `send` action.
    pub fn take_body(&mut self) -> Vec<u8> {
        self.body.take().unwrap_or_default()
    }

    /// The HTTP answer to a `get` (`what` as in the action) or `send` action.
    pub fn handle_response(&mut self, what: &str, status: u16, body: &[u8], now: f64) {
        let body = match status {
            204 => Ok(None),
            200..=299 => Ok(Some(body)),
            s => Err(RequestError(format!("{what}: HTTP {s}"))),
        };
        let response = match what {
            "params" => Response::Params(body.and_then(decode_params)),
            "sums" => Response::Sums(body.and_then(decode_sums)),
            "seeds" => Response::Seeds(body.and_then(decode_seeds)),
            _ => Response::Sent(body.map(|_| ())),
        };
        self.inner.handle(response, now.max(0.0) as u64, &mut OsRng);
    }

    /// A request of kind `what` failed without an HTTP answer (network error).
    pub fn handle_error(&mut self, what: &str, message: &str, now: f64) {
        let e = RequestError(format!("{what}: {message}"));
        let response = match what {
            "params" => Response::Params(Err(e)),
            "sums" => Response::Sums(Err(e)),
            "seeds" => Response::Seeds(Err(e)),
            _ => Response::Sent(Err(e)),
        };
        self.inner.handle(response, now.max(0.0) as u64, &mut OsRng);
    }

    /// The app's local model (f32) for a `model` action, or `undefined` if not ready yet.
    pub fn handle_model(&mut self, weights: Option<Vec<f32>>, scalar: Option<f64>, now: f64) {
        let update = weights.map(|w| ModelUpdate {
            model: LocalModel::F32(w),
            scalar,
        });
        self.inner
            .handle(Response::Model(update), now.max(0.0) as u64, &mut OsRng);
    }

    /// Like `handle_model` for f64 models.
    pub fn handle_model_f64(&mut self, weights: Option<Vec<f64>>, scalar: Option<f64>, now: f64) {
        let update = weights.map(|w| ModelUpdate {
            model: LocalModel::F64(w),
            scalar,
        });
        self.inner
            .handle(Response::Model(update), now.max(0.0) as u64, &mut OsRng);
    }

    /// The next notice as JSON, or `undefined`: `new_round`, `task` (with `task`), `sent`
    /// (with `message`), `seeds_received` (with `count`), `abandoned` (with `reason`),
    /// `retrying` (with `error`, `attempt`, `at`).
    pub fn next_notice(&mut self) -> Option<String> {
        let n = self.inner.next_notice()?;
        let json = match n {
            Notice::NewRound(_) => serde_json::json!({ "kind": "new_round" }),
            Notice::Task(t) => serde_json::json!({ "kind": "task", "task": task_name(t) }),
            Notice::Sent(tag) => serde_json::json!({ "kind": "sent", "message": tag_name(tag) }),
            Notice::SeedsReceived(keys) => {
                serde_json::json!({ "kind": "seeds_received", "count": keys.len() })
            }
            Notice::Abandoned(reason) => {
                serde_json::json!({ "kind": "abandoned", "reason": reason })
            }
            Notice::Retrying { error, attempt, at } => serde_json::json!({
                "kind": "retrying", "error": error.0, "attempt": attempt, "at": at
            }),
        };
        Some(json.to_string())
    }
}

/// Decodes a `GET /model` body (exact rationals) to correctly rounded f32 weights.
#[wasm_bindgen]
pub fn global_model_f32(body: &[u8]) -> Result<Vec<f32>, JsError> {
    global_model(body)?.to_f32().map_err(js_err)
}

/// Decodes a `GET /model` body to correctly rounded f64 weights.
#[wasm_bindgen]
pub fn global_model_f64(body: &[u8]) -> Result<Vec<f64>, JsError> {
    global_model(body)?.to_f64().map_err(js_err)
}

fn global_model(body: &[u8]) -> Result<Model, JsError> {
    decode_model(Some(body))
        .map_err(js_err)?
        .ok_or_else(|| JsError::new("empty model body"))
}
