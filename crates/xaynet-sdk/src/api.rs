//! The coordinator's v1 REST API as a participant sees it, without any I/O: request paths and
//! the decoding of answers. The reqwest client ([`crate::http`]) and the browser driver
//! (`xaynet-wasm`) both use it, so every transport reads the same bytes the same way.
//!
//! A body is `None` when the coordinator answered 204 (nothing published yet).

use xaynet_core::crypto::PublicSigningKey;
use xaynet_core::rest::{sum_dict_from_bincode, update_seed_dict_from_bincode};
use xaynet_core::{Model, RoundParameters, SumDict, UpdateSeedDict};

use crate::participant::RequestError;

/// The path (relative to the coordinator's base URL) of `GET /seeds` for this summer: the key
/// in standard base64, with `+`, `/` and `=` percent-encoded for the query string.
pub fn seeds_path(pk: &PublicSigningKey) -> String {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .encode(pk.as_bytes())
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    format!("seeds?pk={key}")
}

/// The answer to `GET /params` (which always has a body).
pub fn decode_params(body: Option<&[u8]>) -> Result<RoundParameters, RequestError> {
    let body = body.ok_or_else(|| RequestError("GET /params: no content".into()))?;
    RoundParameters::from_bincode(body)
        .map_err(|e| RequestError(format!("undecodable /params body: {e}")))
}

/// The answer to `GET /sums`.
pub fn decode_sums(body: Option<&[u8]>) -> Result<Option<SumDict>, RequestError> {
    body.map(|b| {
        sum_dict_from_bincode(b).map_err(|e| RequestError(format!("undecodable /sums body: {e}")))
    })
    .transpose()
}

/// The answer to `GET /seeds?pk=`.
pub fn decode_seeds(body: Option<&[u8]>) -> Result<Option<UpdateSeedDict>, RequestError> {
    body.map(|b| {
        update_seed_dict_from_bincode(b)
            .map_err(|e| RequestError(format!("undecodable /seeds body: {e}")))
    })
    .transpose()
}

/// The answer to `GET /model`.
pub fn decode_model(body: Option<&[u8]>) -> Result<Option<Model>, RequestError> {
    body.map(|b| {
        Model::from_bincode(b).map_err(|e| RequestError(format!("undecodable /model body: {e}")))
    })
    .transpose()
}
