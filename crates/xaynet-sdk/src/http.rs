//! The coordinator's v1 REST API as seen by a participant, over HTTP with reqwest (rustls).
//!
//! Only the endpoints of Xaynet 0.11 are used (`/params`, `/sums`, `/seeds?pk=`, `/model`,
//! `/message`), so the same client talks to our coordinator and to a reference one. Paths are
//! appended to the base URL, so a coordinator behind a path prefix works.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use xaynet_core::crypto::PublicSigningKey;
use xaynet_core::{Model, RoundParameters, SumDict, UpdateSeedDict};

use crate::api::{decode_model, decode_params, decode_seeds, decode_sums, seeds_path};
use crate::participant::{Action, RequestError, Response};

/// The requests a participant makes. [`HttpClient`] is the real one; a load generator may put
/// a cache in front of it (many simulated devices sharing one `/params` poller).
pub trait Transport: Send + Sync {
    /// `GET /params`.
    fn params(&self) -> impl Future<Output = Result<RoundParameters, RequestError>> + Send;
    /// `GET /sums`; `None` on 204 (not published yet).
    fn sums(&self) -> impl Future<Output = Result<Option<SumDict>, RequestError>> + Send;
    /// `GET /seeds?pk=`; `None` on 204.
    fn seeds(
        &self,
        pk: PublicSigningKey,
    ) -> impl Future<Output = Result<Option<UpdateSeedDict>, RequestError>> + Send;
    /// `POST /message`.
    fn send(&self, body: Bytes) -> impl Future<Output = Result<(), RequestError>> + Send;
    /// `GET /model`: the latest global model, `None` before the first one.
    fn model(&self) -> impl Future<Output = Result<Option<Model>, RequestError>> + Send;
}

/// Largest response body the client reads by default (a seed dictionary of a million
/// updaters is 120 MB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// An HTTP client for one coordinator.
#[derive(Clone, Debug)]
pub struct HttpClient {
    http: reqwest::Client,
    base: String,
    max_response_bytes: usize,
}

impl HttpClient {
    /// A client for the coordinator at `base_url` (e.g. `http://127.0.0.1:8081` or
    /// `https://fl.example.com/xaynet`), with a 60 s timeout per request.
    pub fn new(base_url: &str) -> Result<Self, RequestError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| RequestError(format!("cannot build the HTTP client: {e}")))?;
        Self::with_client(http, base_url)
    }

    /// A client using a configured `reqwest::Client` (own TLS roots, client certificates,
    /// proxies).
    pub fn with_client(http: reqwest::Client, base_url: &str) -> Result<Self, RequestError> {
        let url = reqwest::Url::parse(base_url)
            .map_err(|e| RequestError(format!("invalid coordinator URL {base_url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RequestError(format!(
                "coordinator URL {base_url:?} must start with http:// or https://"
            )));
        }
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Caps the size of the response bodies the client reads.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET` a path; `None` on 204.
    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, RequestError> {
        let url = format!("{}/{path}", self.base);
        let mut response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| RequestError(format!("GET {url}: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(RequestError(format!("GET {url}: HTTP {status}")));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.max_response_bytes as u64)
        {
            return Err(RequestError(format!(
                "GET {url}: response larger than {} bytes",
                self.max_response_bytes
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| RequestError(format!("GET {url}: {e}")))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(RequestError(format!(
                    "GET {url}: response larger than {} bytes",
                    self.max_response_bytes
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }
}

impl Transport for HttpClient {
    async fn params(&self) -> Result<RoundParameters, RequestError> {
        decode_params(self.get("params").await?.as_deref())
    }

    async fn sums(&self) -> Result<Option<SumDict>, RequestError> {
        decode_sums(self.get("sums").await?.as_deref())
    }

    async fn seeds(&self, pk: PublicSigningKey) -> Result<Option<UpdateSeedDict>, RequestError> {
        decode_seeds(self.get(&seeds_path(&pk)).await?.as_deref())
    }

    async fn model(&self) -> Result<Option<Model>, RequestError> {
        decode_model(self.get("model").await?.as_deref())
    }

    async fn send(&self, body: Bytes) -> Result<(), RequestError> {
        let url = format!("{}/message", self.base);
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| RequestError(format!("POST {url}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(RequestError(format!("POST {url}: HTTP {status}")))
        }
    }
}

/// Makes the request a network action asks for (`FetchParams`, `FetchSums`, `FetchSeeds`,
/// `Send`) and wraps the answer for [`crate::Participant::handle`]; `None` for `Wait` and
/// `LoadModel`, which are the driver's to answer.
pub async fn perform<T: Transport>(transport: &T, action: Action) -> Option<Response> {
    Some(match action {
        Action::FetchParams => Response::Params(transport.params().await),
        Action::FetchSums => Response::Sums(transport.sums().await),
        Action::FetchSeeds(pk) => Response::Seeds(transport.seeds(pk).await),
        Action::Send(body) => Response::Sent(transport.send(body).await),
        Action::Wait(_) | Action::LoadModel => return None,
    })
}
