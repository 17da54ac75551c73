//! Saving a participant to bytes and restoring it (`Participant::save` / `restore`).
//!
//! The bytes hold everything needed to resume mid-round: the signing key, the settings, the
//! round parameters, the phase with what it has gathered (sum dictionary, ephemeral key) and
//! the sealed message parts not yet delivered. They do **not** hold timers or pending notices:
//! a restored participant first re-reads `/params` and carries on if the round is the same.
//!
//! # Protecting the saved state
//!
//! The bytes contain the participant's **secret signing key** (its identity in every round)
//! and, for a summer, the ephemeral secret key that decrypts the updaters' mask seeds. Treat
//! them like a password: keep them in the platform's protected storage (Android Keystore-backed
//! encrypted files, the iOS Keychain or a file with Data Protection, a file readable only by
//! the service user on servers), never in logs or backups that leave the device. `save`
//! returns a buffer that is wiped when dropped; wipe your copies too.
//!
//! Layout (version 1, integers little-endian): `"XNP" 1`, the 32-byte key seed, settings
//! (scalar f64, max message size u64 with 0 for unlimited, poll, retry min, retry max u64),
//! failures u32, params (u8 present, then u32 length and the `/params` bincode), the phase
//! (u8 tag and its fields, byte strings as u32 length and bytes).

use std::collections::VecDeque;

use bytes::Bytes;
use xaynet_core::crypto::{EncryptKeyPair, SecretEncryptKey, SigningKeyPair};
use xaynet_core::eligibility::{Task, TaskSignatures};
use xaynet_core::message::Tag;
use xaynet_core::rest::{sum_dict_from_bincode, sum_dict_to_bincode};
use xaynet_core::RoundParameters;
use zeroize::Zeroizing;

use crate::participant::{Participant, Phase, Then};
use crate::settings::Settings;

const MAGIC: &[u8; 4] = b"XNP\x01";

/// Why saved bytes could not be restored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// Not a saved participant, or a version this library does not know.
    #[error("not a saved participant state (bad magic or unknown version)")]
    Magic,
    /// The bytes end early.
    #[error("saved state is truncated ({0})")]
    Truncated(&'static str),
    /// A field holds an impossible value.
    #[error("saved state is corrupt: {0}")]
    Corrupt(String),
    /// Bytes are left over after the state.
    #[error("saved state has {0} trailing bytes")]
    Trailing(usize),
}

impl Participant {
    /// The whole state as bytes, for [`Participant::restore`]. Contains secret keys: see the
    /// [module docs](crate::state) on how to keep them.
    pub fn save(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(256));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.keys.secret.seed()[..]);
        let s = &self.settings;
        out.extend_from_slice(&s.scalar.to_le_bytes());
        out.extend_from_slice(&(s.max_message_size.unwrap_or(0) as u64).to_le_bytes());
        for v in [s.poll_interval_ms, s.retry_min_ms, s.retry_max_ms] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.failures.to_le_bytes());
        match &self.params {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                put_bytes(&mut out, &p.to_bincode());
            }
        }
        match &self.phase {
            Phase::Idle => out.push(0),
            Phase::AwaitSums => out.push(1),
            Phase::AwaitModel(sums) => {
                out.push(2);
                put_bytes(&mut out, &sum_dict_to_bincode(sums));
            }
            Phase::AwaitSeeds(ephm) => {
                out.push(3);
                out.extend_from_slice(&ephm.secret.to_bytes()[..]);
            }
            Phase::Sending { tag, parts, then } => {
                out.push(4);
                out.push(*tag as u8);
                match then {
                    Then::Idle => out.push(0),
                    Then::AwaitSeeds(ephm) => {
                        out.push(1);
                        out.extend_from_slice(&ephm.secret.to_bytes()[..]);
                    }
                }
                out.extend_from_slice(&(parts.len() as u32).to_le_bytes());
                for part in parts {
                    put_bytes(&mut out, part);
                }
            }
        }
        out
    }

    /// A participant from [`Participant::save`] bytes. It re-reads the round parameters
    /// before anything else; in the same round it resumes where it was saved.
    pub fn restore(bytes: &[u8]) -> Result<Participant, RestoreError> {
        let mut r = Reader(bytes);
        if r.take(4, "magic")? != MAGIC {
            return Err(RestoreError::Magic);
        }
        let seed = Zeroizing::new(r.array::<32>("signing key")?);
        let keys = SigningKeyPair::from_seed(&seed);
        let scalar = f64::from_le_bytes(r.array("scalar")?);
        let max = r.u64("max message size")?;
        let max_message_size = match max {
            0 => None,
            m => Some(usize::try_from(m).map_err(|_| corrupt("max message size"))?),
        };
        let settings = Settings {
            scalar,
            max_message_size,
            poll_interval_ms: r.u64("poll interval")?,
            retry_min_ms: r.u64("retry min")?,
            retry_max_ms: r.u64("retry max")?,
        };
        settings
            .validate()
            .map_err(|e| RestoreError::Corrupt(e.to_string()))?;
        let failures = u32::from_le_bytes(r.array("failures")?);
        let params = match r.u8("params flag")? {
            0 => None,
            1 => Some(
                RoundParameters::from_bincode(r.bytes("params")?)
                    .map_err(|e| RestoreError::Corrupt(format!("round parameters: {e}")))?,
            ),
            _ => return Err(corrupt("params flag")),
        };
        let phase = match r.u8("phase")? {
            0 => Phase::Idle,
            1 => Phase::AwaitSums,
            2 => Phase::AwaitModel(
                sum_dict_from_bincode(r.bytes("sum dictionary")?)
                    .map_err(|e| RestoreError::Corrupt(format!("sum dictionary: {e}")))?,
            ),
            3 => Phase::AwaitSeeds(r.encrypt_keys()?),
            4 => {
                let tag = Tag::from_byte(r.u8("tag")?).map_err(|_| corrupt("message tag"))?;
                let then = match r.u8("next phase")? {
                    0 => Then::Idle,
                    1 => Then::AwaitSeeds(r.encrypt_keys()?),
                    _ => return Err(corrupt("next phase")),
                };
                let n = u32::from_le_bytes(r.array("part count")?) as usize;
                // Every part takes at least its 4-byte length: no allocation beyond the input.
                if n > r.0.len() / 4 {
                    return Err(RestoreError::Truncated("message parts"));
                }
                let mut parts = VecDeque::with_capacity(n);
                for _ in 0..n {
                    parts.push_back(Bytes::copy_from_slice(r.bytes("message part")?));
                }
                if parts.is_empty() {
                    return Err(corrupt("no message parts to send"));
                }
                Phase::Sending { tag, parts, then }
            }
            _ => return Err(corrupt("phase")),
        };
        if params.is_none() && !matches!(phase, Phase::Idle) {
            return Err(corrupt("a task without round parameters"));
        }
        if !r.0.is_empty() {
            return Err(RestoreError::Trailing(r.0.len()));
        }
        let task = params.as_ref().map_or(Task::None, |p| {
            TaskSignatures::sign(&keys.secret, &p.seed).task(p.sum, p.update)
        });
        Ok(Participant {
            keys,
            settings,
            params,
            task,
            phase,
            failures,
            params_due: true,
            wake_at: 0,
            notices: VecDeque::new(),
        })
    }
}

fn corrupt(what: &str) -> RestoreError {
    RestoreError::Corrupt(what.to_string())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RestoreError> {
        if self.0.len() < n {
            return Err(RestoreError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RestoreError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, RestoreError> {
        Ok(self.take(1, what)?[0])
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, RestoreError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], RestoreError> {
        let n = u32::from_le_bytes(self.array(what)?) as usize;
        self.take(n, what)
    }

    fn encrypt_keys(&mut self) -> Result<EncryptKeyPair, RestoreError> {
        let secret = Zeroizing::new(self.array::<32>("ephemeral key")?);
        Ok(EncryptKeyPair::from_secret(SecretEncryptKey::from_bytes(
            *secret,
        )))
    }
}
