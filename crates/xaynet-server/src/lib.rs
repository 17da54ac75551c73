//! # xaynet-server
//!
//! The Xaynet coordinator. Start reading at [`engine`], the sans-IO PET state machine; the
//! rest is the IO around it:
//! * [`pipeline`]: decrypt, check, verify and parse one message (off the async reactor);
//! * [`service`]: the coordinator task — batches of requests through the engine, group
//!   commits to the store, what is published;
//! * [`store`]: the storage contract, the embedded (`redb`) and Redis back ends and their
//!   conformance suite; [`model_store`]: global models in a directory or an S3 bucket;
//! * [`server`]: starting and stopping a coordinator (HTTP API, optional TLS via [`tls`]);
//! * [`settings`]: the TOML / environment settings; [`metrics`]: Prometheus text.

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
