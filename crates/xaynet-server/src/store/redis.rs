//! The Redis store, for production and for sharing one Redis between coordinators.
//!
//! Every key starts with a configurable prefix (default `xaynet:`), so two coordinators can
//! use one Redis without touching each other's data. A batch is checked first (reads, with
//! the batch's own earlier operations taken into account) and then written in one
//! `MULTI`/`EXEC` transaction, so it is all or nothing. The store assumes one coordinator
//! writes under a prefix.
//!
//! Durability is Redis's: run it with `appendonly yes` and `appendfsync always` for an
//! acknowledged message to survive a Redis crash as well.

use std::collections::HashSet;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use super::{encode_round, CheckError, Loaded, Op, RawSnapshot, Store, StoreError};

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("redis: {e}"))
}

/// The Redis store.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisStore {
    /// Connects to `url` (`redis://[user][:password@]host[:port][/db]`); every key starts
    /// with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(backend)?;
        // The driver's default answer timeout (0.5 s) is too short for a commit that writes a
        // large aggregate to a Redis with `appendfsync always` under load; a timed-out commit
        // that Redis did apply would make the coordinator reload a state it did not expect.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_secs(60)))
            .set_connection_timeout(Some(std::time::Duration::from_secs(10)));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(backend)?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// The batch's view of membership: stored state plus the batch's own earlier writes.
#[derive(Default)]
struct Overlay {
    cleared: bool,
    round: Option<bool>,
    /// The round record as this batch last wrote it.
    round_record: Option<Vec<u8>>,
    summers_added: HashSet<Vec<u8>>,
    summer_count: Option<u64>,
    updaters_added: HashSet<Vec<u8>>,
    voters_added: HashSet<Vec<u8>>,
}

impl Store for RedisStore {
    async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let (k_round, k_sums, k_upd, k_seeds, k_votes, k_masks, k_agg, k_aggn, k_model) = (
            self.key("round"),
            self.key("sum_dict"),
            self.key("updaters"),
            self.key("seeds"),
            self.key("votes"),
            self.key("masks"),
            self.key("aggregate"),
            self.key("aggregate_count"),
            self.key("latest_model"),
        );
        let mut ov = Overlay::default();
        let mut tx = redis::pipe();
        tx.atomic();
        for op in ops {
            match op {
                Op::NewRound(r) => {
                    let record = encode_round(&r);
                    tx.del(&[
                        &k_sums, &k_upd, &k_seeds, &k_votes, &k_masks, &k_agg, &k_aggn,
                    ])
                    .ignore();
                    tx.set(&k_round, record.clone()).ignore();
                    ov = Overlay {
                        cleared: true,
                        round: Some(true),
                        round_record: Some(record),
                        summer_count: Some(0),
                        ..Overlay::default()
                    };
                }
                Op::SetPhase { phase, start_ms } => {
                    let current: Option<Vec<u8>> = match ov.round_record.take() {
                        Some(r) => Some(r),
                        None => conn.get(&k_round).await.map_err(backend)?,
                    };
                    let Some(mut round) = current else {
                        return Err(StoreError::Check(CheckError::NoRound));
                    };
                    if round.len() < 17 {
                        return Err(backend("corrupt round record"));
                    }
                    round[8] = phase as u8;
                    round[9..17].copy_from_slice(&start_ms.to_le_bytes());
                    tx.set(&k_round, round.clone()).ignore();
                    ov.round_record = Some(round);
                    ov.round = Some(true);
                }
                Op::AddSummer { pk, ephm_pk } => {
                    if ov.round.is_none() {
                        let exists: bool = conn.exists(&k_round).await.map_err(backend)?;
                        ov.round = Some(exists);
                    }
                    if ov.round != Some(true) {
                        return Err(StoreError::Check(CheckError::NoRound));
                    }
                    let key = pk.as_ref().to_vec();
                    let stored: bool =
                        !ov.cleared && conn.hexists(&k_sums, &key).await.map_err(backend)?;
                    if stored || ov.summers_added.contains(&key) {
                        return Err(StoreError::Check(CheckError::SummerExists));
                    }
                    if ov.summer_count.is_none() {
                        ov.summer_count = Some(conn.hlen(&k_sums).await.map_err(backend)?);
                    }
                    ov.summer_count = ov.summer_count.map(|n| n + 1);
                    ov.summers_added.insert(key.clone());
                    tx.hset(&k_sums, key, ephm_pk.as_ref()).ignore();
                }
                Op::AddUpdate {
                    pk,
                    local_seed_dict,
                } => {
                    if ov.summer_count.is_none() {
                        let n: u64 = if ov.cleared {
                            0
                        } else {
                            conn.hlen(&k_sums).await.map_err(backend)?
                        };
                        ov.summer_count = Some(n);
                    }
                    if ov.summer_count != Some(local_seed_dict.len() as u64) {
                        return Err(StoreError::Check(CheckError::SeedDictLength));
                    }
                    for k in local_seed_dict.keys() {
                        let key = k.as_ref().to_vec();
                        let known = ov.summers_added.contains(&key)
                            || (!ov.cleared
                                && conn.hexists(&k_sums, &key).await.map_err(backend)?);
                        if !known {
                            return Err(StoreError::Check(CheckError::UnknownSummer));
                        }
                    }
                    let key = pk.as_ref().to_vec();
                    let stored: bool =
                        !ov.cleared && conn.sismember(&k_upd, &key).await.map_err(backend)?;
                    if stored || ov.updaters_added.contains(&key) {
                        return Err(StoreError::Check(CheckError::UpdateExists));
                    }
                    ov.updaters_added.insert(key.clone());
                    tx.sadd(&k_upd, key).ignore();
                    for (sum_pk, seed) in &local_seed_dict {
                        tx.hset(
                            &k_seeds,
                            [sum_pk.as_ref(), pk.as_ref()].concat(),
                            seed.as_ref(),
                        )
                        .ignore();
                    }
                }
                Op::AddVote { pk, digest, mask } => {
                    let key = pk.as_ref().to_vec();
                    let summer = ov.summers_added.contains(&key)
                        || (!ov.cleared && conn.hexists(&k_sums, &key).await.map_err(backend)?);
                    if !summer {
                        return Err(StoreError::Check(CheckError::NotASummer));
                    }
                    let voted = ov.voters_added.contains(&key)
                        || (!ov.cleared && conn.hexists(&k_votes, &key).await.map_err(backend)?);
                    if voted {
                        return Err(StoreError::Check(CheckError::VoteExists));
                    }
                    ov.voters_added.insert(key.clone());
                    tx.hset(&k_votes, key, &digest[..]).ignore();
                    tx.hset_nx(&k_masks, &digest[..], mask).ignore();
                }
                Op::SetAggregate { bytes, nb_models } => {
                    if ov.round.is_none() {
                        let exists: bool = conn.exists(&k_round).await.map_err(backend)?;
                        ov.round = Some(exists);
                    }
                    if ov.round != Some(true) {
                        return Err(StoreError::Check(CheckError::NoRound));
                    }
                    tx.set(&k_agg, bytes).ignore();
                    tx.set(&k_aggn, nb_models.to_le_bytes().to_vec()).ignore();
                }
                Op::SetLatestModel { id } => {
                    tx.set(&k_model, id).ignore();
                }
            }
        }
        let () = tx.query_async(&mut conn).await.map_err(backend)?;
        Ok(())
    }

    async fn load(&self) -> Result<Loaded, StoreError> {
        let mut conn = self.conn.clone();
        let round: Option<Vec<u8>> = conn.get(self.key("round")).await.map_err(backend)?;
        let latest: Option<String> = conn.get(self.key("latest_model")).await.map_err(backend)?;
        let mut raw = RawSnapshot {
            round,
            latest_model_id: latest,
            ..RawSnapshot::default()
        };
        let agg: Option<Vec<u8>> = conn.get(self.key("aggregate")).await.map_err(backend)?;
        let aggn: Option<Vec<u8>> = conn
            .get(self.key("aggregate_count"))
            .await
            .map_err(backend)?;
        raw.aggregate = agg.zip(aggn);
        raw.summers = conn.hgetall(self.key("sum_dict")).await.map_err(backend)?;
        raw.seeds = conn.hgetall(self.key("seeds")).await.map_err(backend)?;
        raw.updaters = conn.smembers(self.key("updaters")).await.map_err(backend)?;
        raw.votes = conn.hgetall(self.key("votes")).await.map_err(backend)?;
        raw.masks = conn.hgetall(self.key("masks")).await.map_err(backend)?;
        raw.decode()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
