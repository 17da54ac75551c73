//! Masked objects and their wire layout (SPEC §3.8).
//!
//! ```text
//! MaskVect   = config(4) ‖ count: u32 BE ‖ count × element (bpn bytes, little-endian)
//! MaskUnit   = config(4) ‖ element (bpn bytes, little-endian)
//! MaskObject = MaskVect ‖ MaskUnit
//! ```
//!
//! Decoding checks every length against the buffer before allocating and rejects elements
//! that are not below the group order, so a decoded object is always valid for its config.

use super::config::{ConfigError, MaskConfig, MaskConfigPair, MASK_CONFIG_LEN};
use super::group::{Elements, Group};

/// Errors decoding a masked object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskObjectError {
    /// The buffer ends before the object does.
    #[error("mask object truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the header says the object needs.
        needed: usize,
        /// Bytes in the buffer.
        available: usize,
    },
    /// An invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An element is not below the group order.
    #[error("mask element out of range for the group order")]
    OutOfRange,
    /// Bytes left over after a complete object.
    #[error("{0} unexpected bytes after the mask object")]
    TrailingBytes(usize),
}

/// A masked (or mask) vector in the group of its config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskVect {
    config: MaskConfig,
    data: Elements,
    /// Every element is known to be below `config.order()` (the formula's order), so an
    /// aggregation over the standard group need not scan the elements again.
    standard_range: bool,
}

/// A masked (or mask) scalar in the group of its config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskUnit {
    config: MaskConfig,
    data: Elements,
}

/// A masked model with its masked scalar; also the shape of an aggregated mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskObject {
    /// The vector part.
    pub vect: MaskVect,
    /// The scalar part.
    pub unit: MaskUnit,
}

impl MaskVect {
    /// A vector of `group`'s elements. Returns `None` if `data` is not of the group's width or
    /// has an element not below its order.
    pub fn new(group: &Group, data: Elements) -> Option<Self> {
        (group.matches(&data) && group.all_below_order(&data))
            .then(|| Self::from_group(group, data))
    }

    /// Wraps elements that are already known to be valid for `group`.
    pub(crate) fn from_group(group: &Group, data: Elements) -> Self {
        Self {
            config: group.config(),
            data,
            standard_range: group.is_standard(),
        }
    }

    /// Whether every element is known to be below the config's standard order.
    pub(crate) fn in_standard_range(&self) -> bool {
        self.standard_range
    }

    /// The configuration.
    pub fn config(&self) -> MaskConfig {
        self.config
    }

    /// The elements.
    pub fn data(&self) -> &Elements {
        &self.data
    }

    pub(crate) fn data_mut(&mut self) -> &mut Elements {
        &mut self.data
    }

    pub(crate) fn into_data(self) -> Elements {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Serialised length for a group with `bpn` bytes per number.
    pub fn buffer_len_with(&self, bpn: usize) -> usize {
        MASK_CONFIG_LEN + 4 + bpn * self.len()
    }
}

impl MaskUnit {
    /// A scalar of `group`. Returns `None` if `data` is not one valid element.
    pub fn new(group: &Group, data: Elements) -> Option<Self> {
        (data.len() == 1 && group.matches(&data) && group.all_below_order(&data))
            .then(|| Self::from_group(group, data))
    }

    pub(crate) fn from_group(group: &Group, data: Elements) -> Self {
        Self {
            config: group.config(),
            data,
        }
    }

    /// The configuration.
    pub fn config(&self) -> MaskConfig {
        self.config
    }

    /// The element (a one-element vector).
    pub fn data(&self) -> &Elements {
        &self.data
    }

    pub(crate) fn data_mut(&mut self) -> &mut Elements {
        &mut self.data
    }

    pub(crate) fn into_data(self) -> Elements {
        self.data
    }
}

impl MaskObject {
    /// Both configs.
    pub fn configs(&self) -> MaskConfigPair {
        MaskConfigPair {
            vect: self.vect.config,
            unit: self.unit.config,
        }
    }

    /// Serialised length in bytes.
    pub fn buffer_len(&self) -> usize {
        self.vect
            .buffer_len_with(self.vect.config.bytes_per_number())
            + MASK_CONFIG_LEN
            + self.unit.config.bytes_per_number()
    }

    /// Appends the wire encoding to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let vbpn = self.vect.config.bytes_per_number();
        out.reserve(self.buffer_len());
        out.extend_from_slice(&self.vect.config.to_bytes());
        // A vector longer than u32::MAX cannot be produced by this crate's decoders or
        // maskers for any realistic model; saturate rather than panic.
        let count = u32::try_from(self.vect.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        self.vect.data.write_le(vbpn, out);
        out.extend_from_slice(&self.unit.config.to_bytes());
        self.unit
            .data
            .write_le(self.unit.config.bytes_per_number(), out);
    }

    /// The wire encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.write_to(&mut out);
        out
    }

    /// Decodes an object from the start of `bytes`; returns it and the bytes it used.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), MaskObjectError> {
        Self::decode_with(bytes, Group::new)
    }

    /// Like [`MaskObject::decode`] with a custom group per config (e.g. explicit orders).
    pub fn decode_with(
        bytes: &[u8],
        group_of: impl Fn(MaskConfig) -> Group,
    ) -> Result<(Self, usize), MaskObjectError> {
        let truncated = |needed: usize| MaskObjectError::Truncated {
            needed,
            available: bytes.len(),
        };
        if bytes.len() < MASK_CONFIG_LEN + 4 {
            return Err(truncated(MASK_CONFIG_LEN + 4));
        }
        let vconfig = MaskConfig::from_bytes(bytes)?;
        let vgroup = group_of(vconfig);
        let mut count = [0u8; 4];
        count.copy_from_slice(&bytes[MASK_CONFIG_LEN..MASK_CONFIG_LEN + 4]);
        let count = u32::from_be_bytes(count) as usize;
        let vstart = MASK_CONFIG_LEN + 4;
        let vlen = count
            .checked_mul(vgroup.bytes_per_number())
            .ok_or(truncated(usize::MAX))?;
        let vend = vstart.checked_add(vlen).ok_or(truncated(usize::MAX))?;
        let ustart = vend;
        if bytes.len() < ustart + MASK_CONFIG_LEN {
            return Err(truncated(ustart.saturating_add(MASK_CONFIG_LEN)));
        }
        let uconfig = MaskConfig::from_bytes(&bytes[ustart..])?;
        let ugroup = group_of(uconfig);
        let uend = ustart + MASK_CONFIG_LEN + ugroup.bytes_per_number();
        if bytes.len() < uend {
            return Err(truncated(uend));
        }
        let vdata = Elements::read_le(&vgroup, &bytes[vstart..vend], count)
            .ok_or(MaskObjectError::OutOfRange)?;
        let udata = Elements::read_le(&ugroup, &bytes[ustart + MASK_CONFIG_LEN..uend], 1)
            .ok_or(MaskObjectError::OutOfRange)?;
        Ok((
            MaskObject {
                vect: MaskVect::from_group(&vgroup, vdata),
                unit: MaskUnit::from_group(&ugroup, udata),
            },
            uend,
        ))
    }

    /// Decodes an object that fills `bytes` exactly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MaskObjectError> {
        let (obj, used) = Self::decode(bytes)?;
        if used != bytes.len() {
            return Err(MaskObjectError::TrailingBytes(bytes.len() - used));
        }
        Ok(obj)
    }
}
