//! The conformance suite every [`Store`] back end must pass.
//!
//! [`run`] exercises each operation and each check of the storage contract on an empty store
//! and reports the first deviation. Back ends call it from their tests.

use xaynet_core::crypto::{EncryptKeyPair, PublicEncryptKey, SigningKeyPair};
use xaynet_core::eligibility::RoundSeed;
use xaynet_core::mask::{EncryptedMaskSeed, MaskConfigPair, MaskSeed, Masker};
use xaynet_core::message::LocalSeedDict;
use xaynet_core::model::{Scalar, Weights};

use super::{CheckError, Op, Store, StoreError};
use crate::engine::{Phase, RoundRecord};

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn round(id: u64, secret: u8) -> RoundRecord {
    let keys = EncryptKeyPair::from_seed(&[secret; 32]);
    RoundRecord {
        round_id: id,
        params: xaynet_core::RoundParameters {
            pk: keys.public,
            sum: 0.5,
            update: 0.9,
            seed: RoundSeed([id as u8; 32]),
            mask_config: MaskConfigPair::default(),
            model_length: 3,
        },
        keys,
        phase: Phase::Sum,
        phase_start_ms: 1_000 * id,
    }
}

fn pk(i: u8) -> xaynet_core::PublicSigningKey {
    SigningKeyPair::from_seed(&[i; 32]).public
}

fn epk(i: u8) -> PublicEncryptKey {
    EncryptKeyPair::from_seed(&[i; 32]).public
}

fn seeds(summers: &[u8]) -> LocalSeedDict {
    summers
        .iter()
        .map(|&s| (pk(s), EncryptedMaskSeed([s; 80])))
        .collect()
}

async fn expect_check<S: Store>(store: &S, ops: Vec<Op>, want: CheckError) -> Result<(), String> {
    match store.commit(ops).await {
        Err(StoreError::Check(got)) if got == want => Ok(()),
        other => Err(format!("expected check error {want:?}, got {other:?}")),
    }
}

/// Runs the suite against an empty store.
pub async fn run<S: Store>(store: &S) -> Result<(), String> {
    let err = |e: StoreError| e.to_string();
    store.ping().await.map_err(err)?;
    let loaded = store.load().await.map_err(err)?;
    ensure!(loaded.snapshot.is_none(), "a new store holds no round");
    ensure!(
        loaded.latest_model_id.is_none(),
        "a new store holds no model"
    );
    expect_check(
        store,
        vec![Op::AddSummer {
            pk: pk(1),
            ephm_pk: epk(1),
        }],
        CheckError::NoRound,
    )
    .await?;

    let r1 = round(1, 7);
    store
        .commit(vec![Op::NewRound(Box::new(r1.clone()))])
        .await
        .map_err(err)?;
    let snap = store
        .load()
        .await
        .map_err(err)?
        .snapshot
        .ok_or("round not stored")?;
    ensure!(
        snap.round.round_id == 1 && snap.round.params == r1.params,
        "round record round-trips"
    );
    ensure!(
        snap.round.keys.public == r1.keys.public,
        "round key round-trips"
    );
    ensure!(
        snap.round.phase == Phase::Sum && snap.round.phase_start_ms == 1000,
        "phase round-trips"
    );

    // Summers, with a duplicate inside a batch: the whole batch is refused.
    store
        .commit(vec![
            Op::AddSummer {
                pk: pk(1),
                ephm_pk: epk(1),
            },
            Op::AddSummer {
                pk: pk(2),
                ephm_pk: epk(2),
            },
        ])
        .await
        .map_err(err)?;
    expect_check(
        store,
        vec![
            Op::AddSummer {
                pk: pk(3),
                ephm_pk: epk(3),
            },
            Op::AddSummer {
                pk: pk(1),
                ephm_pk: epk(9),
            },
        ],
        CheckError::SummerExists,
    )
    .await?;
    let snap = store
        .load()
        .await
        .map_err(err)?
        .snapshot
        .ok_or("round lost")?;
    ensure!(
        snap.sum_dict.len() == 2,
        "a refused batch writes nothing (have {} summers)",
        snap.sum_dict.len()
    );
    ensure!(
        snap.sum_dict.get(&pk(1)) == Some(&epk(1)),
        "first registration wins"
    );

    store
        .commit(vec![Op::SetPhase {
            phase: Phase::Update,
            start_ms: 5000,
        }])
        .await
        .map_err(err)?;

    // Updates and the §5.4 checks.
    expect_check(
        store,
        vec![Op::AddUpdate {
            pk: pk(10),
            local_seed_dict: seeds(&[1]),
        }],
        CheckError::SeedDictLength,
    )
    .await?;
    expect_check(
        store,
        vec![Op::AddUpdate {
            pk: pk(10),
            local_seed_dict: seeds(&[1, 3]),
        }],
        CheckError::UnknownSummer,
    )
    .await?;
    let masked = Masker::new(MaskConfigPair::default())
        .mask(
            &MaskSeed::from_bytes([1; 32]),
            Weights::F32(&[0.1, 0.2, 0.3]),
            &Scalar::unit(),
        )
        .map_err(|e| e.to_string())?;
    store
        .commit(vec![
            Op::AddUpdate {
                pk: pk(10),
                local_seed_dict: seeds(&[1, 2]),
            },
            Op::AddUpdate {
                pk: pk(11),
                local_seed_dict: seeds(&[2, 1]),
            },
            Op::SetAggregate {
                bytes: masked.to_bytes(),
                nb_models: 2,
            },
        ])
        .await
        .map_err(err)?;
    expect_check(
        store,
        vec![Op::AddUpdate {
            pk: pk(10),
            local_seed_dict: seeds(&[1, 2]),
        }],
        CheckError::UpdateExists,
    )
    .await?;
    let snap = store
        .load()
        .await
        .map_err(err)?
        .snapshot
        .ok_or("round lost")?;
    ensure!(
        snap.round.phase == Phase::Update && snap.round.phase_start_ms == 5000,
        "phase updated"
    );
    ensure!(snap.updaters.len() == 2, "two updaters");
    ensure!(snap.seed_dict.len() == 2, "seeds for two summers");
    ensure!(
        snap.seed_dict.get(&pk(1)).and_then(|d| d.get(&pk(11)))
            == Some(&EncryptedMaskSeed([1; 80])),
        "seed dict is indexed by summer, then updater"
    );
    ensure!(
        snap.aggregate == Some((masked.clone(), 2)),
        "aggregate round-trips"
    );

    // Votes.
    expect_check(
        store,
        vec![Op::AddVote {
            pk: pk(10),
            digest: [1; 32],
            mask: masked.to_bytes(),
        }],
        CheckError::NotASummer,
    )
    .await?;
    store
        .commit(vec![
            Op::AddVote {
                pk: pk(1),
                digest: [1; 32],
                mask: masked.to_bytes(),
            },
            Op::AddVote {
                pk: pk(2),
                digest: [1; 32],
                mask: masked.to_bytes(),
            },
        ])
        .await
        .map_err(err)?;
    expect_check(
        store,
        vec![Op::AddVote {
            pk: pk(1),
            digest: [2; 32],
            mask: masked.to_bytes(),
        }],
        CheckError::VoteExists,
    )
    .await?;
    let snap = store
        .load()
        .await
        .map_err(err)?
        .snapshot
        .ok_or("round lost")?;
    ensure!(
        snap.votes.len() == 2 && snap.masks.len() == 1,
        "two votes for one mask"
    );
    ensure!(
        snap.masks.get(&[1; 32]) == Some(&masked),
        "mask round-trips"
    );

    // A new round clears the round data but keeps the latest model id.
    store
        .commit(vec![
            Op::SetLatestModel {
                id: "1_0101".into(),
            },
            Op::NewRound(Box::new(round(2, 8))),
        ])
        .await
        .map_err(err)?;
    let loaded = store.load().await.map_err(err)?;
    ensure!(
        loaded.latest_model_id.as_deref() == Some("1_0101"),
        "latest model id kept"
    );
    let snap = loaded.snapshot.ok_or("round lost")?;
    ensure!(snap.round.round_id == 2, "second round stored");
    ensure!(
        snap.sum_dict.is_empty() && snap.seed_dict.is_empty() && snap.updaters.is_empty(),
        "dictionaries cleared"
    );
    ensure!(
        snap.aggregate.is_none() && snap.votes.is_empty() && snap.masks.is_empty(),
        "aggregate and votes cleared"
    );
    Ok(())
}
