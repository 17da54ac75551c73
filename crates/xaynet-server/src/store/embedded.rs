//! The embedded store: one `redb` file, ACID transactions, no service to run.
//!
//! Each [`Store::commit`] is one write transaction (durable on return); its checks read the
//! transaction's own view, so a batch sees its earlier operations.

use std::path::Path;
use std::sync::Arc;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use super::{encode_round, CheckError, Loaded, Op, RawSnapshot, Row, Store, StoreError};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const SUMMERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("summers");
const SEEDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("seeds");
const UPDATERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("updaters");
const VOTES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("votes");
const MASKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("masks");

const ROUND_TABLES: [TableDefinition<&[u8], &[u8]>; 5] = [SUMMERS, SEEDS, UPDATERS, VOTES, MASKS];

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The embedded (single-file) store.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl EmbeddedStore {
    /// Opens or creates the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(backend)?;
        let txn = db.begin_write().map_err(backend)?;
        txn.open_table(META).map_err(backend)?;
        for t in ROUND_TABLES {
            txn.open_table(t).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        Ok(Self { db: Arc::new(db) })
    }

    fn commit_blocking(db: &Database, ops: Vec<Op>) -> Result<(), StoreError> {
        let txn = db.begin_write().map_err(backend)?;
        for op in ops {
            if let Err(e) = apply(&txn, op) {
                txn.abort().map_err(backend)?;
                return Err(e);
            }
        }
        txn.commit().map_err(backend)
    }

    fn load_blocking(db: &Database) -> Result<Loaded, StoreError> {
        let txn = db.begin_read().map_err(backend)?;
        let meta = txn.open_table(META).map_err(backend)?;
        let get = |k: &str| -> Result<Option<Vec<u8>>, StoreError> {
            Ok(meta.get(k).map_err(backend)?.map(|v| v.value().to_vec()))
        };
        let mut raw = RawSnapshot {
            round: get("round")?,
            latest_model_id: get("latest_model")?.map(|b| String::from_utf8_lossy(&b).into_owned()),
            ..RawSnapshot::default()
        };
        raw.aggregate = get("aggregate")?.zip(get("aggregate_count")?);
        let rows = |table: TableDefinition<&[u8], &[u8]>| -> Result<Vec<Row>, StoreError> {
            let t = txn.open_table(table).map_err(backend)?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                out.push((k.value().to_vec(), v.value().to_vec()));
            }
            Ok(out)
        };
        raw.summers = rows(SUMMERS)?;
        raw.seeds = rows(SEEDS)?;
        raw.updaters = rows(UPDATERS)?.into_iter().map(|(k, _)| k).collect();
        raw.votes = rows(VOTES)?;
        raw.masks = rows(MASKS)?;
        raw.decode()
    }
}

fn apply(txn: &WriteTransaction, op: Op) -> Result<(), StoreError> {
    let has_round = || -> Result<bool, StoreError> {
        Ok(txn
            .open_table(META)
            .map_err(backend)?
            .get("round")
            .map_err(backend)?
            .is_some())
    };
    match op {
        Op::NewRound(record) => {
            for t in ROUND_TABLES {
                txn.delete_table(t).map_err(backend)?;
                txn.open_table(t).map_err(backend)?;
            }
            let mut meta = txn.open_table(META).map_err(backend)?;
            meta.remove("aggregate").map_err(backend)?;
            meta.remove("aggregate_count").map_err(backend)?;
            meta.insert("round", encode_round(&record).as_slice())
                .map_err(backend)?;
        }
        Op::SetPhase { phase, start_ms } => {
            let mut meta = txn.open_table(META).map_err(backend)?;
            let mut round = match meta.get("round").map_err(backend)? {
                Some(v) => v.value().to_vec(),
                None => return Err(StoreError::Check(CheckError::NoRound)),
            };
            round[8] = phase as u8;
            round[9..17].copy_from_slice(&start_ms.to_le_bytes());
            meta.insert("round", round.as_slice()).map_err(backend)?;
        }
        Op::AddSummer { pk, ephm_pk } => {
            if !has_round()? {
                return Err(StoreError::Check(CheckError::NoRound));
            }
            let mut t = txn.open_table(SUMMERS).map_err(backend)?;
            if t.get(pk.as_ref()).map_err(backend)?.is_some() {
                return Err(StoreError::Check(CheckError::SummerExists));
            }
            t.insert(pk.as_ref(), ephm_pk.as_ref()).map_err(backend)?;
        }
        Op::AddUpdate {
            pk,
            local_seed_dict,
        } => {
            let summers = txn.open_table(SUMMERS).map_err(backend)?;
            if summers.len().map_err(backend)? != local_seed_dict.len() as u64 {
                return Err(StoreError::Check(CheckError::SeedDictLength));
            }
            for k in local_seed_dict.keys() {
                if summers.get(k.as_ref()).map_err(backend)?.is_none() {
                    return Err(StoreError::Check(CheckError::UnknownSummer));
                }
            }
            let mut updaters = txn.open_table(UPDATERS).map_err(backend)?;
            if updaters.get(pk.as_ref()).map_err(backend)?.is_some() {
                return Err(StoreError::Check(CheckError::UpdateExists));
            }
            updaters.insert(pk.as_ref(), &[][..]).map_err(backend)?;
            let mut seeds = txn.open_table(SEEDS).map_err(backend)?;
            for (sum_pk, seed) in &local_seed_dict {
                let key = [sum_pk.as_ref(), pk.as_ref()].concat();
                seeds
                    .insert(key.as_slice(), seed.as_ref())
                    .map_err(backend)?;
            }
        }
        Op::AddVote { pk, digest, mask } => {
            let summers = txn.open_table(SUMMERS).map_err(backend)?;
            if summers.get(pk.as_ref()).map_err(backend)?.is_none() {
                return Err(StoreError::Check(CheckError::NotASummer));
            }
            let mut votes = txn.open_table(VOTES).map_err(backend)?;
            if votes.get(pk.as_ref()).map_err(backend)?.is_some() {
                return Err(StoreError::Check(CheckError::VoteExists));
            }
            votes.insert(pk.as_ref(), &digest[..]).map_err(backend)?;
            let mut masks = txn.open_table(MASKS).map_err(backend)?;
            if masks.get(&digest[..]).map_err(backend)?.is_none() {
                masks
                    .insert(&digest[..], mask.as_slice())
                    .map_err(backend)?;
            }
        }
        Op::SetAggregate { bytes, nb_models } => {
            if !has_round()? {
                return Err(StoreError::Check(CheckError::NoRound));
            }
            let mut meta = txn.open_table(META).map_err(backend)?;
            meta.insert("aggregate", bytes.as_slice())
                .map_err(backend)?;
            meta.insert("aggregate_count", &nb_models.to_le_bytes()[..])
                .map_err(backend)?;
        }
        Op::SetLatestModel { id } => {
            let mut meta = txn.open_table(META).map_err(backend)?;
            meta.insert("latest_model", id.as_bytes())
                .map_err(backend)?;
        }
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(backend)?
}

impl Store for EmbeddedStore {
    async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let db = self.db.clone();
        blocking(move || Self::commit_blocking(&db, ops)).await
    }

    async fn load(&self) -> Result<Loaded, StoreError> {
        let db = self.db.clone();
        blocking(move || Self::load_blocking(&db)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        blocking(move || db.begin_read().map(|_| ()).map_err(backend)).await
    }
}
