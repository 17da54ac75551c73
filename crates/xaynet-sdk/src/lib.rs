//! The participant side of Xaynet's PET protocol.
//!
//! Start with [`Participant`] ([`participant`]): a sans-IO state machine that says which request
//! to make next ([`Action`]) and takes the answers ([`Response`]), the time and randomness as
//! inputs. It detects new rounds, draws its task (sum, update or none), builds, chunks and seals
//! its messages, retries with backoff, and can be [saved and restored](state) mid-round. The
//! same machine runs in the async [`Runner`] (tokio + reqwest, feature `runner`, on by default),
//! in the simulator of `xaynet simulate`, behind the C ABI, in Python and in the browser.
//!
//! # Aggregation weights (scalars)
//!
//! The coordinator publishes `Σ sⱼ·wⱼ / Σ sⱼ`, where `sⱼ` is updater `j`'s scalar. Masking
//! clamps the scalar to the unit bound and every `sⱼ·wⱼ[i]` to the model bound `B` of the
//! round's mask configuration (B0: 1, B2: 100, B4: 10 000, B6: 1 000 000), silently. For
//! federated averaging choose `sⱼ = nⱼ / N`, with `nⱼ` the number of local training samples and
//! `N` a fixed cap every participant knows (clamp `nⱼ` to `N`), and keep the weights within
//! `[−B, B]`: then nothing is clamped and the result is the sample-weighted average. (A scalar
//! of `1/nⱼ`, as once advised for the reference, weights updates *inversely* to their data.)
//!
//! # Compatibility
//!
//! Messages are byte-compatible with Xaynet 0.11 and only the v1 endpoints are used, so a
//! participant works against our coordinator and a reference one alike.

pub mod api;
pub mod participant;
pub mod settings;
pub mod state;

#[cfg(feature = "runner")]
pub mod http;
#[cfg(feature = "runner")]
pub mod runner;
#[cfg(feature = "runner")]
pub mod tick;

pub use api::seeds_path;
pub use participant::{
    Action, LocalModel, Millis, ModelUpdate, Notice, Participant, RequestError, Response,
};
pub use settings::{Settings, SettingsError, DEFAULT_MAX_MESSAGE_SIZE};
pub use state::RestoreError;

#[cfg(feature = "runner")]
pub use http::{HttpClient, Transport};
#[cfg(feature = "runner")]
pub use runner::{App, Runner};
#[cfg(feature = "runner")]
pub use tick::{TickError, TickFlags, TickParticipant};
