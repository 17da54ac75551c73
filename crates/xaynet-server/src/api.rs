//! The HTTP API.
//!
//! v1 (byte-compatible with Xaynet 0.11, SPEC §5.2): `POST /message` (always 200),
//! `GET /params`, `/sums`, `/seeds?pk=`, `/model` (bincode bodies, 204 when absent).
//!
//! Added here: `GET /status` (JSON), `GET /model.bin` (raw little-endian weights),
//! `GET /health`, `GET /ready`, `GET /metrics` (Prometheus). These answer with meaningful
//! status codes and a small JSON error body.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use xaynet_core::crypto::PublicSigningKey;

use crate::engine::Verdict;
use crate::metrics::Metrics;
use crate::pipeline::{self, Processed, RoundContext};
use crate::service::{Cmd, Published};

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub tx: mpsc::Sender<Cmd>,
    pub published: watch::Receiver<Arc<Published>>,
    pub in_flight: Arc<Semaphore>,
    /// One permit per core: pipelines beyond that wait instead of thrashing the caches.
    pub cpu: Arc<Semaphore>,
    /// Messages between arrival and hand-over to the coordinator.
    pub in_pipeline: Arc<std::sync::atomic::AtomicUsize>,
    pub metrics: Arc<Metrics>,
    /// Plaintext buffers for the pipeline.
    pub buffers: Arc<pipeline::BufferPool>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

/// The router with all endpoints.
pub(crate) fn router(state: AppState, max_body_bytes: usize, cors: &[String]) -> Router {
    let mut router = Router::new()
        .route("/message", post(post_message))
        .route("/params", get(get_params))
        .route("/sums", get(get_sums))
        .route("/seeds", get(get_seeds))
        .route("/model", get(get_model))
        .route("/status", get(get_status))
        .route("/model.bin", get(get_model_bin))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(get_ready))
        .route("/metrics", get(get_metrics))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state);
    if !cors.is_empty() {
        use tower_http::cors::{AllowOrigin, Any, CorsLayer};
        let layer = if cors.iter().any(|o| o == "*") {
            CorsLayer::new().allow_origin(Any)
        } else {
            let origins: Vec<HeaderValue> = cors
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect();
            CorsLayer::new().allow_origin(AllowOrigin::list(origins))
        };
        router = router.layer(
            layer
                .allow_methods(Any)
                .allow_headers(Any)
                .expose_headers(Any),
        );
    }
    router
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": code, "message": message })),
    )
        .into_response()
}

fn octets(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}

/// `POST /message`: 200 with an empty body, as in v1; the verdict is logged and counted.
/// Under overload the message is discarded instead of queued. A body over the size limit is
/// refused with 413, before it is read when its length is declared.
async fn post_message(State(st): State<AppState>, headers: HeaderMap, body: Body) -> StatusCode {
    let started = Instant::now();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.max_body_bytes as u64) {
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    let published = st.published.borrow().clone();
    let phase = published.ctx.phase.name();
    let outcome = process_message(&st, body).await;
    // Count refusals made before the engine with the round's statistics (best effort: under
    // overload the count is what gives).
    match outcome {
        Err(TOO_LARGE) => return StatusCode::PAYLOAD_TOO_LARGE,
        Err(BAD_BODY) => return StatusCode::BAD_REQUEST,
        Err(OVERLOAD) => {
            let _ = st.tx.try_send(Cmd::Count(Verdict::Discarded));
        }
        Err(_) => {
            let _ = st.tx.try_send(Cmd::Count(Verdict::Rejected(
                crate::engine::RejectReason::Invalid,
            )));
        }
        Ok(_) => {}
    }
    let (outcome_name, reason) = match &outcome {
        Ok(Verdict::Accepted) => ("accepted", "ok"),
        Ok(Verdict::Rejected(r)) => ("rejected", r.label()),
        Ok(Verdict::Discarded) => ("discarded", "limit"),
        Err(OVERLOAD) => ("discarded", OVERLOAD),
        Err(reason) => ("rejected", *reason),
    };
    st.metrics.message(phase, outcome_name, reason);
    st.metrics.processing_time(started.elapsed().as_secs_f64());
    tracing::debug!(phase, outcome = outcome_name, reason, "message");
    StatusCode::OK
}

/// The refusal label of a message shed under overload (too many in flight, queue full).
const OVERLOAD: &str = "overload";
/// The body grew beyond `api.max_body_bytes` (answered with 413, not counted).
const TOO_LARGE: &str = "too_large";
/// The body could not be read (the client went away; answered with 400, not counted).
const BAD_BODY: &str = "bad_body";

/// Receives a message, then runs the pipeline on it on a blocking thread once one of the
/// cores is free.
async fn process_message(st: &AppState, body: Body) -> Result<Verdict, &'static str> {
    // The body is read as the pieces it arrived in: they are never copied into one buffer.
    let pieces = read_pieces(body, st.max_body_bytes).await?;
    let Ok(permit) = st.in_flight.clone().try_acquire_owned() else {
        return Err(OVERLOAD);
    };
    let in_pipeline = PipelineGuard::enter(&st.in_pipeline);
    let Ok(cpu) = st.cpu.clone().acquire_owned().await else {
        return Err(OVERLOAD);
    };
    // The round may have moved on while this message waited for a core.
    let ctx = st.published.borrow().ctx.clone();
    let round_pk = ctx.keys.public;
    let buffers = st.buffers.clone();
    let processed = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let result = run_pipeline(&pieces, &ctx, &buffers);
        drop(cpu);
        drop(permit);
        tracing::debug!(took = ?t.elapsed(), "pipeline");
        result
    })
    .await
    .map_err(|_| "internal")?
    .map_err(|e| e.label())?;
    let (reply, verdict) = oneshot::channel();
    let cmd = match processed {
        Processed::Request(request) => Cmd::Request {
            round_pk,
            request,
            reply,
        },
        Processed::Chunk { pk, tag, chunk } => Cmd::Chunk {
            round_pk,
            pk,
            tag,
            chunk,
            reply,
        },
    };
    let sent = st.tx.try_send(cmd);
    // Handed over (or shed): the coordinator no longer needs to wait for this one.
    drop(in_pipeline);
    if sent.is_err() {
        return Err(OVERLOAD);
    }
    verdict.await.map_err(|_| "shutdown")
}

/// Reads a body as the pieces it arrived in, refusing it once it grows beyond `limit`.
async fn read_pieces(body: Body, limit: usize) -> Result<Vec<Bytes>, &'static str> {
    use futures_util::StreamExt;
    let mut pieces = Vec::new();
    let mut total = 0usize;
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|_| BAD_BODY)?;
        total += piece.len();
        if total > limit {
            return Err(TOO_LARGE);
        }
        if !piece.is_empty() {
            pieces.push(piece);
        }
    }
    Ok(pieces)
}

/// The pipeline on a received body, with a plaintext buffer from the pool.
fn run_pipeline(
    pieces: &[Bytes],
    ctx: &RoundContext,
    buffers: &pipeline::BufferPool,
) -> Result<Processed, pipeline::PipelineError> {
    let total = pieces.iter().map(Bytes::len).sum();
    let mut ingest = pipeline::Ingest::new(ctx, buffers.take(), total);
    for piece in pieces {
        if let Err(e) = ingest.update(piece) {
            buffers.give(ingest.into_buffer());
            return Err(e);
        }
    }
    let (result, buffer) = ingest.finish();
    if let Some(buffer) = buffer {
        buffers.give(buffer);
    }
    result
}

/// Counts a message as "in the pipeline" until it is handed to the coordinator or dropped.
struct PipelineGuard(Arc<std::sync::atomic::AtomicUsize>);

impl PipelineGuard {
    fn enter(counter: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Self(counter.clone())
    }
}

impl Drop for PipelineGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

async fn get_params(State(st): State<AppState>) -> Response {
    octets(st.published.borrow().params_bincode.clone())
}

async fn get_sums(State(st): State<AppState>) -> Response {
    match st.published.borrow().sum_dict.clone() {
        Some(b) => octets(b),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

#[derive(Deserialize)]
struct SeedsQuery {
    pk: Option<String>,
}

async fn get_seeds(State(st): State<AppState>, Query(q): Query<SeedsQuery>) -> Response {
    let Some(pk) = q.pk else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Some(pk) = base64::engine::general_purpose::STANDARD
        .decode(pk.as_bytes())
        .ok()
        .and_then(|b| PublicSigningKey::from_slice(&b).ok())
    else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let seeds = st.published.borrow().seeds.clone();
    match seeds.and_then(|s| s.get(&pk).cloned()) {
        Some(b) => octets(b),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn get_model(State(st): State<AppState>) -> Response {
    let Some(model) = st.published.borrow().model.clone() else {
        return StatusCode::NO_CONTENT.into_response();
    };
    match tokio::task::spawn_blocking(move || model.v1_bincode()).await {
        Ok(b) => octets(b),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn get_model_bin(State(st): State<AppState>) -> Response {
    let Some(model) = st.published.borrow().model.clone() else {
        return json_error(
            StatusCode::NOT_FOUND,
            "no_global_model",
            "no global model has been published yet",
        );
    };
    let m = model.clone();
    let raw = match tokio::task::spawn_blocking(move || m.raw()).await {
        Ok(Some(raw)) => raw,
        Ok(None) => {
            return json_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "out_of_range",
                "a weight does not fit the model's data type",
            )
        }
        Err(_) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "conversion failed",
            )
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert("x-xaynet-round-id", HeaderValue::from(model.round_id));
    if let Ok(v) = HeaderValue::from_str(&model.id) {
        headers.insert("x-xaynet-model-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&model.data_type.name().to_lowercase()) {
        headers.insert("x-xaynet-data-type", v);
    }
    (headers, raw).into_response()
}

async fn get_status(State(st): State<AppState>) -> Response {
    let p = st.published.borrow().clone();
    let json = |c: crate::engine::Counts| serde_json::json!({ "accepted": c.accepted, "rejected": c.rejected, "discarded": c.discarded });
    let counts = |i: usize| json(p.counts[i]);
    let previous_round = p.previous_counts.map(|(round_id, c)| {
        serde_json::json!({
            "round_id": round_id,
            "counts": { "sum": json(c[0]), "update": json(c[1]), "sum2": json(c[2]) },
        })
    });
    let params = &p.ctx.params;
    Json(serde_json::json!({
        "round_id": p.round_id,
        "phase": p.ctx.phase.name(),
        "phase_started_ms": p.phase_start_ms,
        "phase_deadline_ms": p.phase_deadline_ms,
        "counts": { "sum": counts(0), "update": counts(1), "sum2": counts(2) },
        "model_length": params.model_length,
        "mask_config": params.mask_config.vect.to_string(),
        "sum_probability": params.sum,
        "update_probability": params.update,
        "global_model_round_id": p.model.as_ref().map(|m| m.round_id),
        "last_failure": p.last_failure,
        "previous_round": previous_round,
    }))
    .into_response()
}

async fn get_ready(State(st): State<AppState>) -> Response {
    let (reply, rx) = oneshot::channel();
    let ready = st.tx.try_send(Cmd::Ready(reply)).is_ok()
        && tokio::time::timeout(std::time::Duration::from_secs(5), rx)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
    if ready {
        Json(serde_json::json!({ "ready": true })).into_response()
    } else {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "storage is not answering or the coordinator is overloaded",
        )
    }
}

async fn get_metrics(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}
