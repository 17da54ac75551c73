//! Whole rounds driven with a simulated clock.

use super::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use xaynet_core::crypto::SigningKeyPair;
use xaynet_core::mask::{Group, MaskConfigPair, MaskSeed, Masker};
use xaynet_core::model::{Scalar, Weights};

fn phase(min_count: u64, max_count: u64) -> PhaseSettings {
    PhaseSettings {
        min_count,
        max_count,
        min_time_ms: 100,
        max_time_ms: 1000,
    }
}

fn settings() -> PetSettings {
    PetSettings {
        sum_prob: 0.5,
        update_prob: 0.9,
        sum: phase(1, 10),
        update: phase(3, 10),
        sum2: phase(1, 10),
        mask: MaskConfigPair::default(),
        model_length: 4,
    }
}

struct Summer {
    keys: SigningKeyPair,
    ephm: EncryptKeyPair,
}

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([42; 32])
}

fn summers(n: u8) -> Vec<Summer> {
    (0..n)
        .map(|i| Summer {
            keys: SigningKeyPair::from_seed(&[100 + i; 32]),
            ephm: EncryptKeyPair::from_seed(&[200 + i; 32]),
        })
        .collect()
}

fn update_request(engine: &Engine, i: u8, model: &[f32]) -> Request {
    let keys = SigningKeyPair::from_seed(&[i; 32]);
    let seed = MaskSeed::from_bytes([i; 32]);
    let masked = Masker::new(engine.settings().mask)
        .mask(&seed, Weights::F32(model), &Scalar::unit())
        .unwrap();
    let mut rng = rng();
    let local_seed_dict = engine
        .published_sum_dict()
        .unwrap()
        .iter()
        .map(|(pk, epk)| (*pk, seed.encrypt(epk, &mut rng)))
        .collect();
    Request::Update {
        pk: keys.public,
        local_seed_dict,
        masked_model: masked,
    }
}

fn sum2_request(engine: &Engine, s: &Summer) -> Request {
    let cfg = engine.settings().mask;
    let (vg, ug) = (Group::new(cfg.vect), Group::new(cfg.unit));
    let len = engine.settings().model_length;
    let mut agg = Aggregation::new(cfg, len);
    for enc in engine.published_seeds(&s.keys.public).unwrap().values() {
        let seed = enc.decrypt(&s.ephm).unwrap();
        agg.aggregate(seed.derive_mask(len, &vg, &ug)).unwrap();
    }
    Request::Sum2 {
        pk: s.keys.public,
        model_mask: agg.sum().unwrap().clone(),
    }
}

fn sum_request(s: &Summer) -> Request {
    Request::Sum {
        pk: s.keys.public,
        ephm_pk: s.ephm.public,
    }
}

/// Runs Sum and Update with the given models; returns the engine in Sum2.
fn through_update(models: &[[f32; 4]], summers: &[Summer]) -> (Engine, ChaCha20Rng) {
    let mut rng = rng();
    let (mut e, changes) = Engine::new(settings(), 0, RoundSeed::ZERO, 0, &mut rng);
    assert!(matches!(changes.as_slice(), [Change::NewRound(r)] if r.round_id == 1));
    assert_eq!(e.phase(), Phase::Sum);
    let pk = e.round().keys.public;
    for s in summers {
        assert_eq!(e.handle(&pk, sum_request(s)).0, Verdict::Accepted);
    }
    assert!(e.tick(50, &mut rng).is_empty(), "min time not over");
    assert!(matches!(
        e.tick(100, &mut rng).as_slice(),
        [Change::Phase {
            phase: Phase::Update,
            ..
        }]
    ));
    for (i, m) in models.iter().enumerate() {
        let req = update_request(&e, i as u8 + 1, m);
        assert_eq!(e.handle(&pk, req).0, Verdict::Accepted);
    }
    assert!(e.take_aggregate_dirty());
    assert!(matches!(
        e.tick(200, &mut rng).as_slice(),
        [Change::Phase {
            phase: Phase::Sum2,
            ..
        }]
    ));
    (e, rng)
}

#[test]
fn full_round_produces_the_average() {
    let models = [
        [0.1, 0.2, 0.3, 0.4],
        [0.3, 0.2, 0.1, 0.0],
        [0.5, 0.5, 0.5, -0.5],
    ];
    let summers = summers(2);
    let (mut e, mut rng) = through_update(&models, &summers);
    let pk = e.round().keys.public;
    for s in &summers {
        let req = sum2_request(&e, s);
        assert_eq!(e.handle(&pk, req).0, Verdict::Accepted);
    }
    let changes = e.tick(300, &mut rng);
    let Some(Change::GlobalModel(g)) = changes.first() else {
        panic!("no global model: {changes:?}")
    };
    assert_eq!(g.round_id, 1);
    let avg = g.model.to_f32().unwrap();
    for i in 0..4 {
        let expect = models.iter().map(|m| m[i]).sum::<f32>() / 3.0;
        assert!(
            (avg[i] - expect).abs() < 1e-6,
            "{i}: {} vs {expect}",
            avg[i]
        );
    }
    assert!(matches!(changes.last(), Some(Change::NewRound(r)) if r.round_id == 2));
    assert_eq!(e.phase(), Phase::Sum);
    assert_ne!(e.round().keys.public, pk, "new round key");
}

#[test]
fn too_few_updaters_fail_the_round_and_a_new_one_starts() {
    let mut rng = rng();
    let (mut e, _) = Engine::new(settings(), 0, RoundSeed::ZERO, 0, &mut rng);
    let pk = e.round().keys.public;
    let s = summers(1);
    e.handle(&pk, sum_request(&s[0]));
    e.tick(100, &mut rng);
    let req = update_request(&e, 1, &[0.0; 4]);
    assert_eq!(e.handle(&pk, req).0, Verdict::Accepted);
    assert!(e.tick(1099, &mut rng).is_empty());
    let changes = e.tick(1100, &mut rng);
    assert!(matches!(
        changes.first(),
        Some(Change::RoundFailed { round_id: 1, .. })
    ));
    assert!(matches!(changes.last(), Some(Change::NewRound(r)) if r.round_id == 2));
    assert!(e.last_failure().unwrap().contains("update phase timed out"));
    // The old round's key is now rejected.
    assert_eq!(
        e.handle(&pk, sum_request(&s[0])).0,
        Verdict::Rejected(RejectReason::WrongRound)
    );
}

#[test]
fn duplicates_wrong_phase_and_limits() {
    let mut rng = rng();
    let mut st = settings();
    st.sum.max_count = 2;
    let (mut e, _) = Engine::new(st, 0, RoundSeed::ZERO, 0, &mut rng);
    let pk = e.round().keys.public;
    let s = summers(3);
    assert_eq!(e.handle(&pk, sum_request(&s[0])).0, Verdict::Accepted);
    assert_eq!(
        e.handle(&pk, sum_request(&s[0])).0,
        Verdict::Rejected(RejectReason::Duplicate)
    );
    assert_eq!(e.handle(&pk, sum_request(&s[1])).0, Verdict::Accepted);
    assert_eq!(e.handle(&pk, sum_request(&s[2])).0, Verdict::Discarded);
    let c = e.counts(Phase::Sum);
    assert_eq!((c.accepted, c.rejected, c.discarded), (2, 1, 1));
    let sum2 = Request::Sum2 {
        pk: s[0].keys.public,
        model_mask: Masker::new(MaskConfigPair::default())
            .mask(
                &MaskSeed::from_bytes([0; 32]),
                Weights::F32(&[0.0; 4]),
                &Scalar::unit(),
            )
            .unwrap(),
    };
    assert_eq!(
        e.handle(&pk, sum2).0,
        Verdict::Rejected(RejectReason::WrongPhase("sum2"))
    );
    e.tick(100, &mut rng);
    // An update whose seed dict misses a summer.
    let mut req = update_request(&e, 1, &[0.0; 4]);
    if let Request::Update {
        local_seed_dict, ..
    } = &mut req
    {
        let first = *local_seed_dict.keys().next().unwrap();
        local_seed_dict.remove(&first);
    }
    assert_eq!(
        e.handle(&pk, req).0,
        Verdict::Rejected(RejectReason::SeedDictMismatch)
    );
    // A masked model of the wrong length.
    let mut req = update_request(&e, 2, &[0.0; 4]);
    if let Request::Update { masked_model, .. } = &mut req {
        *masked_model = Masker::new(MaskConfigPair::default())
            .mask(
                &MaskSeed::from_bytes([0; 32]),
                Weights::F32(&[0.0; 3]),
                &Scalar::unit(),
            )
            .unwrap();
    }
    assert!(matches!(
        e.handle(&pk, req).0,
        Verdict::Rejected(RejectReason::InvalidMaskObject(_))
    ));
    assert!(
        !e.take_aggregate_dirty(),
        "rejected updates leave the aggregate alone"
    );
}

#[test]
fn ambiguous_masks_fail_the_round() {
    let models = [[0.1; 4], [0.2; 4], [0.3; 4]];
    let s = summers(2);
    let (mut e, mut rng) = through_update(&models, &s);
    let pk = e.round().keys.public;
    let good = sum2_request(&e, &s[0]);
    e.handle(&pk, good);
    let bad = Request::Sum2 {
        pk: s[1].keys.public,
        model_mask: MaskSeed::from_bytes([9; 32]).derive_mask(
            4,
            &Group::new(MaskConfigPair::default().vect),
            &Group::new(MaskConfigPair::default().unit),
        ),
    };
    assert_eq!(e.handle(&pk, bad).0, Verdict::Accepted);
    assert_eq!(e.distinct_masks(), 2);
    let changes = e.tick(300, &mut rng);
    assert!(matches!(changes.first(), Some(Change::RoundFailed { .. })));
    assert!(e.last_failure().unwrap().contains("ambiguous"));
}

fn snapshot_of(e: &Engine) -> Snapshot {
    Snapshot {
        round: e.round().clone(),
        sum_dict: e.sum_dict.clone(),
        seed_dict: e.seed_dict.clone(),
        updaters: e.updaters.clone(),
        aggregate: e
            .aggregation()
            .sum()
            .map(|s| (s.clone(), e.aggregation().nb_models())),
        votes: HashMap::new(),
        masks: HashMap::new(),
    }
}

#[test]
fn restore_mid_round_continues_or_fails_after_the_deadline() {
    let models = [
        [0.1, 0.2, 0.3, 0.4],
        [0.3, 0.2, 0.1, 0.0],
        [0.5, 0.5, 0.5, -0.5],
    ];
    let s = summers(1);
    let (e, _) = through_update(&models, &s);
    let snap = snapshot_of(&e);
    // Within the deadline: the same round continues and completes.
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let (mut restored, changes) = Engine::restore(settings(), snap.clone(), 250, &mut rng);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(restored.round().round_id, 1);
    assert_eq!(restored.phase(), Phase::Sum2);
    let pk = restored.round().keys.public;
    let req = sum2_request(&restored, &s[0]);
    assert_eq!(restored.handle(&pk, req).0, Verdict::Accepted);
    let changes = restored.tick(400, &mut rng);
    assert!(matches!(changes.first(), Some(Change::GlobalModel(_))));
    // After the deadline: the round fails and a new one starts.
    let (late, changes) = Engine::restore(settings(), snap.clone(), 5000, &mut rng);
    assert!(matches!(
        changes.first(),
        Some(Change::RoundFailed { round_id: 1, .. })
    ));
    assert_eq!(late.round().round_id, 2);
    // Changed settings abandon the round.
    let mut other = settings();
    other.model_length = 5;
    let (changed, changes) = Engine::restore(other, snap, 250, &mut rng);
    assert!(matches!(changes.first(), Some(Change::RoundFailed { .. })));
    assert_eq!(changed.round().round_id, 2);
}

#[test]
fn settings_validation_names_the_key() {
    let mut s = settings();
    s.update.min_count = 2;
    assert_eq!(s.validate().unwrap_err().key, "pet.update.count.min");
    let mut s = settings();
    s.sum_prob = 1.0;
    assert_eq!(s.validate().unwrap_err().key, "pet.sum.prob");
    let mut s = settings();
    s.sum2.max_count = 11;
    assert_eq!(s.validate().unwrap_err().key, "pet.sum2.count.max");
    assert!(settings().validate().is_ok());
}

mod random_sequences {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Step {
        Sum(u8),
        Update(u8, bool),
        Sum2(u8, bool),
        Tick(u16),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..4).prop_map(Step::Sum),
            (0u8..8, any::<bool>()).prop_map(|(i, ok)| Step::Update(i, ok)),
            (0u8..4, any::<bool>()).prop_map(|(i, ok)| Step::Sum2(i, ok)),
            (0u16..400).prop_map(Step::Tick),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any sequence of requests and clock ticks keeps the engine consistent: it never
        /// panics, counts match what was accepted, rounds only move forward and every round
        /// that ends either publishes a model or records a failure.
        #[test]
        fn engine_stays_consistent(steps in prop::collection::vec(step(), 1..60)) {
            let mut rng = rng();
            let (mut e, _) = Engine::new(settings(), 0, RoundSeed::ZERO, 0, &mut rng);
            let summers = summers(4);
            let mut now = 0u64;
            let mut last_round = e.round().round_id;
            for s in steps {
                let pk = e.round().keys.public;
                let (verdict, changes) = match s {
                    Step::Sum(i) => e.handle(&pk, sum_request(&summers[i as usize])),
                    Step::Update(i, ok) => {
                        if e.published_sum_dict().is_none() {
                            continue;
                        }
                        let mut req = update_request(&e, i + 1, &[0.1, -0.2, 0.3, 0.4]);
                        if !ok {
                            if let Request::Update { local_seed_dict, .. } = &mut req {
                                local_seed_dict.clear();
                            }
                        }
                        e.handle(&pk, req)
                    }
                    Step::Sum2(i, ok) => {
                        let s = &summers[i as usize];
                        if e.published_seeds(&s.keys.public).is_none() {
                            continue;
                        }
                        let req = if ok {
                            sum2_request(&e, s)
                        } else {
                            let cfg = e.settings().mask;
                            Request::Sum2 {
                                pk: s.keys.public,
                                model_mask: MaskSeed::from_bytes([i; 32]).derive_mask(
                                    3,
                                    &Group::new(cfg.vect),
                                    &Group::new(cfg.unit),
                                ),
                            }
                        };
                        e.handle(&pk, req)
                    }
                    Step::Tick(dt) => {
                        now += dt as u64;
                        let changes = e.tick(now, &mut rng);
                        let new_rounds = changes.iter().filter(|c| matches!(c, Change::NewRound(_))).count();
                        let ends = changes
                            .iter()
                            .filter(|c| matches!(c, Change::GlobalModel(_) | Change::RoundFailed { .. }))
                            .count();
                        prop_assert_eq!(new_rounds, ends, "every new round follows a model or a failure");
                        (Verdict::Discarded, Vec::new())
                    }
                };
                if verdict == Verdict::Accepted {
                    prop_assert_eq!(changes.len(), 1);
                } else {
                    prop_assert!(changes.is_empty());
                }
                prop_assert!(e.round().round_id >= last_round);
                last_round = e.round().round_id;
                let phase = e.phase();
                prop_assert!(matches!(phase, Phase::Sum | Phase::Update | Phase::Sum2));
                prop_assert_eq!(e.counts(phase).accepted, e.accepted_in(phase));
            }
        }
    }
}
