//! The native part of the `xaynet` Python package: the SDK's tick-driven participant as a
//! Python class. Models cross as raw little-endian bytes plus a data type name; the Python
//! layer (`python/xaynet/`) turns them into numpy arrays and adds the threaded participants.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use xaynet_core::crypto::{OsRng, SecretSigningKey, SigningKeyPair};
use xaynet_core::mask::DataType;
use xaynet_sdk::{LocalModel, Participant as SdkParticipant, Settings, TickFlags, TickParticipant};

create_exception!(
    _native,
    XaynetError,
    PyException,
    "Base class of the package's errors."
);
create_exception!(
    _native,
    ParticipantInit,
    XaynetError,
    "The participant could not be created (URL, key or settings)."
);
create_exception!(
    _native,
    ParticipantRestore,
    XaynetError,
    "Saved state could not be restored."
);
create_exception!(
    _native,
    LocalModelLengthMisMatch,
    XaynetError,
    "The local model's length is not the round's model length (or there is no round yet)."
);
create_exception!(
    _native,
    LocalModelDataTypeMisMatch,
    XaynetError,
    "The local model's data type is not the round's."
);
create_exception!(
    _native,
    GlobalModelUnavailable,
    XaynetError,
    "The global model could not be downloaded."
);
create_exception!(
    _native,
    GlobalModelDataTypeMisMatch,
    XaynetError,
    "A weight of the global model does not fit the data type."
);

fn dtype_name(t: DataType) -> &'static str {
    match t {
        DataType::F32 => "float32",
        DataType::F64 => "float64",
        DataType::I32 => "int32",
        DataType::I64 => "int64",
    }
}

fn width(t: DataType) -> usize {
    match t {
        DataType::F32 | DataType::I32 => 4,
        DataType::F64 | DataType::I64 => 8,
    }
}

/// A participant driven by `tick()` (see the package docs for the threaded helpers).
#[pyclass(module = "xaynet._native")]
struct Participant {
    inner: Option<TickParticipant>,
    flags: TickFlags,
}

impl Participant {
    fn inner(&mut self) -> PyResult<&mut TickParticipant> {
        self.inner
            .as_mut()
            .ok_or_else(|| XaynetError::new_err("the participant was stopped"))
    }
}

#[pymethods]
impl Participant {
    /// Participant(url, scalar=1.0, state=None, secret_key=None, max_message_size=65536,
    /// poll_interval_ms=1000)
    ///
    /// A new participant with a fresh key (or `secret_key`: 64 bytes, libsodium layout), or,
    /// with `state`, one restored from `save()` bytes. `max_message_size=0` never chunks.
    #[new]
    #[pyo3(signature = (url, scalar=1.0, state=None, secret_key=None, max_message_size=65536, poll_interval_ms=1000))]
    fn new(
        url: &str,
        scalar: f64,
        state: Option<&[u8]>,
        secret_key: Option<&[u8]>,
        max_message_size: u64,
        poll_interval_ms: u64,
    ) -> PyResult<Self> {
        let inner = match state {
            Some(bytes) => TickParticipant::restore(url, bytes)
                .map_err(|e| ParticipantRestore::new_err(e.to_string()))?,
            None => {
                let keys = match secret_key {
                    Some(k) => {
                        let secret = SecretSigningKey::from_libsodium_bytes(k)
                            .map_err(|e| ParticipantInit::new_err(format!("secret_key: {e}")))?;
                        SigningKeyPair {
                            public: secret.public_key(),
                            secret,
                        }
                    }
                    None => SigningKeyPair::generate(&mut OsRng),
                };
                let settings = Settings {
                    scalar,
                    max_message_size: match max_message_size {
                        0 => None,
                        n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                    },
                    poll_interval_ms,
                    retry_min_ms: Settings::default()
                        .retry_min_ms
                        .min(poll_interval_ms.max(1)),
                    ..Settings::default()
                };
                let participant = SdkParticipant::new(keys, settings)
                    .map_err(|e| ParticipantInit::new_err(e.to_string()))?;
                TickParticipant::with_participant(url, participant, None)
                    .map_err(|e| ParticipantInit::new_err(e.to_string()))?
            }
        };
        Ok(Self {
            inner: Some(inner),
            flags: TickFlags::default(),
        })
    }

    /// Runs the participant until it has nothing to do right now (HTTP requests included;
    /// the GIL is released meanwhile) and returns the tick flags.
    fn tick(&mut self, py: Python<'_>) -> PyResult<u32> {
        let inner = self.inner()?;
        let flags = py.allow_threads(|| inner.tick());
        self.flags = flags;
        Ok(flags.0)
    }

    /// Whether the last tick changed the state (a good moment to save).
    fn made_progress(&self) -> bool {
        self.flags.has(TickFlags::MADE_PROGRESS)
    }

    /// Whether the participant waits for `set_model`.
    fn should_set_model(&self) -> bool {
        self.flags.has(TickFlags::SHOULD_SET_MODEL)
    }

    /// Whether a new (changed) global model is available.
    fn new_global_model(&self) -> bool {
        self.flags.has(TickFlags::NEW_GLOBAL_MODEL)
    }

    /// The task in the current round: 0 none, 1 sum, 2 update.
    fn task(&self) -> u8 {
        if self.flags.has(TickFlags::TASK_SUM) {
            1
        } else if self.flags.has(TickFlags::TASK_UPDATE) {
            2
        } else {
            0
        }
    }

    /// (dtype name, length) the current round expects, or None before the first round.
    fn local_model_config(&mut self) -> PyResult<Option<(&'static str, u64)>> {
        Ok(self
            .inner()?
            .local_model_config()
            .map(|(t, len)| (dtype_name(t), len)))
    }

    /// The current round seed (32 bytes), or None before the first round.
    fn round_seed<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(self
            .inner()?
            .participant()
            .round_params()
            .map(|p| PyBytes::new(py, &p.seed.0)))
    }

    /// Hands over the local model: raw little-endian values of `dtype` ("float32", "float64",
    /// "int32", "int64"), with an optional aggregation weight.
    #[pyo3(signature = (data, dtype, scalar=None))]
    fn set_model_bytes(&mut self, data: &[u8], dtype: &str, scalar: Option<f64>) -> PyResult<()> {
        let inner = self.inner()?;
        let Some((want, len)) = inner.local_model_config() else {
            return Err(LocalModelLengthMisMatch::new_err(
                "no round yet: tick first",
            ));
        };
        if dtype != dtype_name(want) {
            return Err(LocalModelDataTypeMisMatch::new_err(format!(
                "the round expects {}, got {dtype}",
                dtype_name(want)
            )));
        }
        let w = width(want);
        if !data.len().is_multiple_of(w) || (data.len() / w) as u64 != len {
            return Err(LocalModelLengthMisMatch::new_err(format!(
                "the round expects {len} weights, got {}",
                data.len() as f64 / w as f64
            )));
        }
        let model = match want {
            DataType::F32 => LocalModel::F32(
                data.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            DataType::I32 => LocalModel::I32(
                data.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            DataType::F64 => LocalModel::F64(
                data.chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            DataType::I64 => LocalModel::I64(
                data.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
        };
        inner
            .set_model(model, scalar)
            .map_err(|e| LocalModelLengthMisMatch::new_err(e.to_string()))
    }

    /// The latest global model as (dtype name, raw little-endian bytes), or None before the
    /// first one. Clears the new-global-model flag.
    fn global_model_bytes<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<Option<(&'static str, Bound<'py, PyBytes>)>> {
        let inner = self.inner()?;
        let dtype = inner
            .local_model_config()
            .map(|(t, _)| t)
            .unwrap_or(DataType::F32);
        let model = py
            .allow_threads(|| inner.global_model())
            .map_err(|e| GlobalModelUnavailable::new_err(e.to_string()))?;
        self.flags = TickFlags(self.flags.0 & !TickFlags::NEW_GLOBAL_MODEL);
        let Some(model) = model else { return Ok(None) };
        let convert = |e: xaynet_core::model::ConversionError| {
            GlobalModelDataTypeMisMatch::new_err(e.to_string())
        };
        let bytes: Vec<u8> = match dtype {
            DataType::F32 => model
                .to_f32()
                .map_err(convert)?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            DataType::F64 => model
                .to_f64()
                .map_err(convert)?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            DataType::I32 => model
                .to_i32()
                .map_err(convert)?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            DataType::I64 => model
                .to_i64()
                .map_err(convert)?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        };
        Ok(Some((dtype_name(dtype), PyBytes::new(py, &bytes))))
    }

    /// The whole state as bytes (they contain the secret key: store them safely).
    fn save<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let saved = self.inner()?.save();
        Ok(PyBytes::new(py, &saved))
    }

    /// Saves the state and stops the participant (later calls raise `XaynetError`).
    fn stop<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let saved = self.save(py)?;
        self.inner = None;
        Ok(saved)
    }

    /// The participant's public key (32 bytes).
    fn public_key<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let pk = self.inner()?.participant().public_key();
        Ok(PyBytes::new(py, pk.as_bytes()))
    }
}

/// The native module `xaynet._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Participant>()?;
    m.add("XaynetError", py.get_type::<XaynetError>())?;
    m.add("ParticipantInit", py.get_type::<ParticipantInit>())?;
    m.add("ParticipantRestore", py.get_type::<ParticipantRestore>())?;
    m.add(
        "LocalModelLengthMisMatch",
        py.get_type::<LocalModelLengthMisMatch>(),
    )?;
    m.add(
        "LocalModelDataTypeMisMatch",
        py.get_type::<LocalModelDataTypeMisMatch>(),
    )?;
    m.add(
        "GlobalModelUnavailable",
        py.get_type::<GlobalModelUnavailable>(),
    )?;
    m.add(
        "GlobalModelDataTypeMisMatch",
        py.get_type::<GlobalModelDataTypeMisMatch>(),
    )?;
    Ok(())
}
