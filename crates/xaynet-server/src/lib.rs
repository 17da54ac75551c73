//! # xaynet-server
//!
//! The Xaynet coordinator. Start reading at [`engine`], the sans-IO PET state machine; the
//! rest is the IO around it: the message pipeline, the storage back ends, the HTTP API and
//! the settings.

mod api;
pub mod engine;
pub mod metrics;
pub mod model_store;
mod multipart;
pub mod pipeline;
pub mod server;
pub mod service;
pub mod settings;
pub mod store;
pub mod tls;
