//! Incomplete multipart messages: bounded in number, per participant and in time.

use std::collections::HashMap;

use xaynet_core::crypto::{PublicEncryptKey, PublicSigningKey};
use xaynet_core::message::{Chunk, Payload, Reassembler, Tag};

use crate::settings::LimitsSection;

/// Incomplete multipart messages, bounded in number, per participant and in time.
pub(crate) struct Multipart {
    buffers: HashMap<(PublicSigningKey, u16), (Reassembler, u64, PublicEncryptKey)>,
    ttl_ms: u64,
    per_participant: usize,
    total: usize,
}

impl Multipart {
    pub(crate) fn new(limits: &LimitsSection) -> Self {
        Self {
            buffers: HashMap::new(),
            ttl_ms: (limits.multipart_ttl * 1000.0) as u64,
            per_participant: limits.multipart_per_participant,
            total: limits.multipart_total,
        }
    }

    fn expire(&mut self, now: u64, round_pk: &PublicEncryptKey) {
        let ttl = self.ttl_ms;
        self.buffers
            .retain(|_, (_, created, pk)| now.saturating_sub(*created) < ttl && pk == round_pk);
    }

    /// Adds a chunk: `Ok(Some(payload bytes))` when complete, `Ok(None)` while incomplete.
    pub(crate) fn add(
        &mut self,
        now: u64,
        round_pk: PublicEncryptKey,
        pk: PublicSigningKey,
        tag: Tag,
        chunk: Chunk,
        max_bytes: usize,
    ) -> Result<Option<Payload>, &'static str> {
        self.expire(now, &round_pk);
        let key = (pk, chunk.message_id);
        if !self.buffers.contains_key(&key) {
            if self.buffers.len() >= self.total {
                return Err("multipart_full");
            }
            if self.buffers.keys().filter(|(p, _)| *p == pk).count() >= self.per_participant {
                return Err("multipart_per_participant");
            }
            self.buffers
                .insert(key, (Reassembler::new(tag, max_bytes), now, round_pk));
        }
        let Some((re, _, _)) = self.buffers.get_mut(&key) else {
            return Err("multipart_full");
        };
        match re.add(chunk) {
            Ok(Some(payload)) => {
                self.buffers.remove(&key);
                Ok(Some(payload))
            }
            Ok(None) => Ok(None),
            Err(_) => {
                self.buffers.remove(&key);
                Err("multipart_invalid")
            }
        }
    }
}
