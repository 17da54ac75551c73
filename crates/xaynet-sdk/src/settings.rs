//! Participant settings (SPEC §6.2, with timing made explicit).

use xaynet_core::message::MIN_MAX_MESSAGE_SIZE;

/// The default cap on one sealed request: 64 KiB. Large enough that a 100 000-weight update
/// takes about ten requests, small enough that a failed upload on a phone costs little.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// How a participant behaves; `Settings::default()` suits a phone.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Aggregation weight used when the app gives none with its model (default 1).
    pub scalar: f64,
    /// Largest sealed request in bytes; longer messages are sent in chunks. `None` never
    /// splits. At least 194 bytes (the smallest size that leaves room for chunk data).
    pub max_message_size: Option<usize>,
    /// How long to wait before asking again when nothing is ready (a new round, the sum
    /// dictionary, the seeds, the app's model). Default 1000 ms.
    pub poll_interval_ms: u64,
    /// First delay after a failed request; it doubles with every further failure. Default 250 ms.
    pub retry_min_ms: u64,
    /// Cap of the retry delay. Default 30 s.
    pub retry_max_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            scalar: 1.0,
            max_message_size: Some(DEFAULT_MAX_MESSAGE_SIZE),
            poll_interval_ms: 1000,
            retry_min_ms: 250,
            retry_max_ms: 30_000,
        }
    }
}

/// A setting that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The scalar is negative, NaN or infinite.
    #[error("scalar must be a finite number ≥ 0, got {0}")]
    Scalar(String),
    /// The maximum message size leaves no room for data.
    #[error(
        "max_message_size must be at least {MIN_MAX_MESSAGE_SIZE} bytes (or unlimited), got {0}"
    )]
    MaxMessageSize(usize),
    /// A delay of zero would make the participant spin.
    #[error("{0} must be at least 1 ms")]
    ZeroDelay(&'static str),
    /// The retry cap is below the first retry delay.
    #[error("retry_max_ms ({max}) must not be below retry_min_ms ({min})")]
    RetryRange {
        /// `retry_min_ms`.
        min: u64,
        /// `retry_max_ms`.
        max: u64,
    },
}

impl Settings {
    /// Checks that the settings can work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(self.scalar.is_finite() && self.scalar >= 0.0) {
            return Err(SettingsError::Scalar(self.scalar.to_string()));
        }
        if let Some(m) = self.max_message_size {
            if m < MIN_MAX_MESSAGE_SIZE {
                return Err(SettingsError::MaxMessageSize(m));
            }
        }
        if self.poll_interval_ms == 0 {
            return Err(SettingsError::ZeroDelay("poll_interval_ms"));
        }
        if self.retry_min_ms == 0 {
            return Err(SettingsError::ZeroDelay("retry_min_ms"));
        }
        if self.retry_max_ms < self.retry_min_ms {
            return Err(SettingsError::RetryRange {
                min: self.retry_min_ms,
                max: self.retry_max_ms,
            });
        }
        Ok(())
    }
}
