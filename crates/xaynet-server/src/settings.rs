//! Coordinator settings: a TOML file with the reference's sections (SPEC §5.3), every key
//! overridable by an environment variable `XAYNET__SECTION__KEY` (e.g.
//! `XAYNET__PET__SUM__PROB=0.01`), and defaults for everything, so that no file at all runs
//! a coordinator on 127.0.0.1:8081 with embedded storage in `./xaynet-data`.
//!
//! Time values are seconds and may be fractional. Unknown keys are ignored, as in the
//! reference. `configs/example.toml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use xaynet_core::mask::{BoundType, DataType, GroupType, MaskConfig, MaskConfigPair, ModelType};

use crate::engine::{PetSettings, PhaseSettings, SettingsError};

/// All coordinator settings.
#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct Settings {
    /// `[api]`
    pub api: ApiSettings,
    /// `[pet]`
    pub pet: PetSection,
    /// `[mask]`
    pub mask: MaskSection,
    /// `[model]`
    pub model: ModelSection,
    /// `[log]`
    pub log: LogSection,
    /// `[storage]`
    pub storage: StorageSection,
    /// `[redis]`
    pub redis: RedisSection,
    /// `[s3]`
    pub s3: S3Section,
    /// `[limits]`
    pub limits: LimitsSection,
}

/// `[api]`: the HTTP server.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ApiSettings {
    /// Address to listen on.
    pub bind_address: SocketAddr,
    /// Largest accepted request body in bytes (a sealed message or chunk).
    pub max_body_bytes: usize,
    /// Origins allowed by CORS for browser participants (`["*"]` for any); empty = no CORS.
    pub cors_allowed_origins: Vec<String>,
    /// PEM certificate chain: with `tls_key`, the API is served over HTTPS.
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key of `tls_certificate`.
    pub tls_key: Option<PathBuf>,
    /// PEM trust anchors: clients must present a certificate they signed (mutual TLS).
    pub tls_client_auth: Option<PathBuf>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            bind_address: SocketAddr::from(([127, 0, 0, 1], 8081)),
            max_body_bytes: 64 << 20,
            cors_allowed_origins: Vec::new(),
            tls_certificate: None,
            tls_key: None,
            tls_client_auth: None,
        }
    }
}

/// `{ min = …, max = … }`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
pub struct Range<T> {
    /// Lower bound.
    pub min: T,
    /// Upper bound.
    pub max: T,
}

/// One message phase: `prob` (not for sum2), `count`, `time` (seconds).
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
pub struct PhaseSection {
    /// Selection probability (sum and update only).
    #[serde(default)]
    pub prob: Option<f64>,
    /// Accepted-message counts.
    pub count: Range<u64>,
    /// Phase duration in seconds.
    pub time: Range<f64>,
}

/// `[pet]`: the protocol's phases.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct PetSection {
    /// `[pet.sum]`
    pub sum: PhaseSection,
    /// `[pet.update]`
    pub update: PhaseSection,
    /// `[pet.sum2]`
    pub sum2: PhaseSection,
}

impl Default for PetSection {
    fn default() -> Self {
        let phase = |prob, min, max, tmin, tmax| PhaseSection {
            prob,
            count: Range { min, max },
            time: Range {
                min: tmin,
                max: tmax,
            },
        };
        Self {
            sum: phase(Some(0.5), 1, 100, 5.0, 3600.0),
            // The reference's dev config allows 10 000 updaters, more than an M3 config can
            // aggregate (1 000); the default here respects the default mask config.
            update: phase(Some(0.9), 3, 1000, 10.0, 3600.0),
            sum2: phase(None, 1, 100, 5.0, 3600.0),
        }
    }
}

/// `[mask]`: the masking configuration (variant names as in the reference).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct MaskSection {
    /// `Integer`, `Prime` or `Power2`.
    pub group_type: String,
    /// `F32`, `F64`, `I32` or `I64`.
    pub data_type: String,
    /// `B0`, `B2`, `B4`, `B6` or `Bmax`.
    pub bound_type: String,
    /// `M3`, `M6`, `M9` or `M12`.
    pub model_type: String,
}

impl Default for MaskSection {
    fn default() -> Self {
        Self {
            group_type: "Prime".into(),
            data_type: "F32".into(),
            bound_type: "B0".into(),
            model_type: "M3".into(),
        }
    }
}

/// `[model]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ModelSection {
    /// Number of model weights.
    pub length: usize,
}

impl Default for ModelSection {
    fn default() -> Self {
        Self { length: 4 }
    }
}

/// `[log]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct LogSection {
    /// `tracing` filter directives (EnvFilter syntax); `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            filter: "info".into(),
        }
    }
}

/// `[storage]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct StorageSection {
    /// `embedded` (default) or `redis` (see `[redis]`).
    pub backend: String,
    /// Directory of the embedded database and of the global models.
    pub data_dir: PathBuf,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            backend: "embedded".into(),
            data_dir: PathBuf::from("xaynet-data"),
        }
    }
}

/// `[redis]`: the Redis back end (with `storage.backend = "redis"`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct RedisSection {
    /// `redis://[user][:password@]host[:port][/db]`.
    pub url: String,
    /// Prefix of every key this coordinator writes.
    pub key_prefix: String,
}

impl Default for RedisSection {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1/".into(),
            key_prefix: "xaynet:".into(),
        }
    }
}

/// `[s3]`: store global models in an S3-compatible bucket instead of `data_dir/models`.
#[derive(Clone, Debug, Deserialize, Serialize, Default)]
#[serde(default)]
pub struct S3Section {
    /// Bucket name; empty keeps models in the local directory. The bucket must exist.
    pub bucket: String,
    /// Endpoint URL, e.g. `http://127.0.0.1:9000` for MinIO; empty means AWS.
    pub endpoint: String,
    /// Region.
    pub region: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_access_key: String,
}

/// `[limits]`: bounds on what outsiders can make the coordinator hold.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct LimitsSection {
    /// Messages waiting for the round engine; beyond this, new messages are shed.
    pub queue_capacity: usize,
    /// Messages being decrypted and verified at once; beyond this, new messages are shed.
    pub max_in_flight: usize,
    /// Seconds an incomplete multipart message is kept.
    pub multipart_ttl: f64,
    /// Incomplete multipart messages per participant.
    pub multipart_per_participant: usize,
    /// Incomplete multipart messages in total.
    pub multipart_total: usize,
    /// Seconds accepted messages may wait to be committed together (group commit); their
    /// senders are answered after the commit. 0 commits every batch at once.
    pub commit_interval: f64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            max_in_flight: 64,
            multipart_ttl: 300.0,
            multipart_per_participant: 2,
            multipart_total: 1024,
            commit_interval: 0.1,
        }
    }
}

/// An error loading settings.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file or an environment variable could not be parsed.
    #[error("{0}")]
    Parse(String),
    /// A value breaks a rule.
    #[error(transparent)]
    Invalid(#[from] SettingsError),
}

fn invalid(key: &'static str, rule: impl Into<String>) -> LoadError {
    LoadError::Invalid(SettingsError {
        key,
        rule: rule.into(),
    })
}

impl Settings {
    /// Loads defaults, then `file` (if given), then `XAYNET__…` environment variables, and
    /// validates the result.
    pub fn load(file: Option<&Path>) -> Result<Settings, LoadError> {
        // Defaults first, so that a file or a variable can set a single key of a section.
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(LoadError::Parse(format!(
                    "settings file {} does not exist",
                    path.display()
                )));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig = fig.merge(Env::prefixed("XAYNET__").split("__"));
        let settings: Settings = fig.extract().map_err(|e| LoadError::Parse(e.to_string()))?;
        settings.pet_settings()?;
        settings.validate_rest()?;
        Ok(settings)
    }

    fn validate_rest(&self) -> Result<(), LoadError> {
        if !matches!(self.storage.backend.as_str(), "embedded" | "redis") {
            return Err(invalid(
                "storage.backend",
                format!(
                    "must be \"embedded\" or \"redis\", is {:?}",
                    self.storage.backend
                ),
            ));
        }
        let url = &self.redis.url;
        if self.storage.backend == "redis"
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(invalid(
                "redis.url",
                "must start with redis:// or rediss://",
            ));
        }
        match (
            &self.api.tls_certificate,
            &self.api.tls_key,
            &self.api.tls_client_auth,
        ) {
            (Some(_), None, _) => {
                return Err(invalid(
                    "api.tls_key",
                    "is required with api.tls_certificate",
                ))
            }
            (None, Some(_), _) => {
                return Err(invalid(
                    "api.tls_certificate",
                    "is required with api.tls_key",
                ))
            }
            (None, None, Some(_)) => {
                return Err(invalid(
                    "api.tls_client_auth",
                    "needs api.tls_certificate and api.tls_key",
                ))
            }
            _ => {}
        }
        for (key, path) in [
            ("api.tls_certificate", &self.api.tls_certificate),
            ("api.tls_key", &self.api.tls_key),
            ("api.tls_client_auth", &self.api.tls_client_auth),
        ] {
            if let Some(p) = path {
                if !p.is_file() {
                    return Err(invalid(
                        key,
                        format!("{} is not a readable file", p.display()),
                    ));
                }
            }
        }
        if self.api.max_body_bytes < 1024 {
            return Err(invalid("api.max_body_bytes", "must be at least 1024"));
        }
        if self.limits.queue_capacity == 0 {
            return Err(invalid("limits.queue_capacity", "must be at least 1"));
        }
        if self.limits.max_in_flight == 0 {
            return Err(invalid("limits.max_in_flight", "must be at least 1"));
        }
        let ci = self.limits.commit_interval;
        if !(ci.is_finite() && (0.0..=10.0).contains(&ci)) {
            return Err(invalid(
                "limits.commit_interval",
                "must be between 0 and 10 seconds",
            ));
        }
        if self.limits.multipart_ttl.is_nan() || self.limits.multipart_ttl <= 0.0 {
            return Err(invalid("limits.multipart_ttl", "must be positive"));
        }
        Ok(())
    }

    /// The mask configuration.
    pub fn mask_config(&self) -> Result<MaskConfig, LoadError> {
        let m = &self.mask;
        let bad = |key, v: &str, allowed: &str| {
            invalid(key, format!("must be one of {allowed}, is {v:?}"))
        };
        Ok(MaskConfig {
            group_type: GroupType::from_name(&m.group_type)
                .ok_or_else(|| bad("mask.group_type", &m.group_type, "Integer, Prime, Power2"))?,
            data_type: DataType::from_name(&m.data_type)
                .ok_or_else(|| bad("mask.data_type", &m.data_type, "F32, F64, I32, I64"))?,
            bound_type: BoundType::from_name(&m.bound_type)
                .ok_or_else(|| bad("mask.bound_type", &m.bound_type, "B0, B2, B4, B6, Bmax"))?,
            model_type: ModelType::from_name(&m.model_type)
                .ok_or_else(|| bad("mask.model_type", &m.model_type, "M3, M6, M9, M12"))?,
        })
    }

    /// The engine's settings, validated.
    pub fn pet_settings(&self) -> Result<PetSettings, LoadError> {
        let ms = |key: &'static str, secs: f64| -> Result<u64, LoadError> {
            if !(secs.is_finite() && secs >= 0.0) {
                return Err(invalid(key, "must be a non-negative number of seconds"));
            }
            Ok((secs * 1000.0).round() as u64)
        };
        let phase =
            |p: &PhaseSection, keys: [&'static str; 2]| -> Result<PhaseSettings, LoadError> {
                Ok(PhaseSettings {
                    min_count: p.count.min,
                    max_count: p.count.max,
                    min_time_ms: ms(keys[0], p.time.min)?,
                    max_time_ms: ms(keys[1], p.time.max)?,
                })
            };
        let pet = PetSettings {
            sum_prob: self
                .pet
                .sum
                .prob
                .ok_or_else(|| invalid("pet.sum.prob", "is required"))?,
            update_prob: self
                .pet
                .update
                .prob
                .ok_or_else(|| invalid("pet.update.prob", "is required"))?,
            sum: phase(&self.pet.sum, ["pet.sum.time.min", "pet.sum.time.max"])?,
            update: phase(
                &self.pet.update,
                ["pet.update.time.min", "pet.update.time.max"],
            )?,
            sum2: phase(&self.pet.sum2, ["pet.sum2.time.min", "pet.sum2.time.max"])?,
            mask: MaskConfigPair::from(self.mask_config()?),
            model_length: self.model.length,
        };
        pet.validate()?;
        Ok(pet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let s = Settings::default();
        let pet = s.pet_settings().unwrap();
        assert_eq!(pet.sum.min_time_ms, 5000);
        assert_eq!(s.api.bind_address.to_string(), "127.0.0.1:8081");
    }

    #[test]
    fn file_and_env_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[pet.sum]\nprob = 0.2\ncount = { min = 2, max = 100 }\ntime = { min = 0.5, max = 10 }\n[model]\nlength = 10\n[mask]\nbound_type = \"B2\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        let pet = s.pet_settings().unwrap();
        assert_eq!(pet.sum_prob, 0.2);
        assert_eq!(pet.sum.min_time_ms, 500);
        assert_eq!(pet.sum.max_time_ms, 10_000);
        assert_eq!(pet.model_length, 10);
        assert_eq!(pet.mask.vect.bound_type, BoundType::B2);
        // A single key of a section; the rest comes from the defaults.
        std::fs::write(&path, "[pet.update.count]\nmin = 1\n").unwrap();
        let e = Settings::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("pet.update.count.min"), "{e}");
        std::fs::write(&path, "[mask]\ngroup_type = \"Prim\"\n").unwrap();
        let e = Settings::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("mask.group_type"), "{e}");
        std::fs::write(&path, "[model]\nlength = \"x\"\n").unwrap();
        assert!(Settings::load(Some(&path)).is_err());
        assert!(Settings::load(Some(&dir.path().join("missing.toml"))).is_err());
    }
}
