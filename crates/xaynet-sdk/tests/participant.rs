//! The sans-IO participant driven by hand: every answer and every clock tick is chosen by the
//! test, and the coordinator's side is played with xaynet-core.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use xaynet_core::crypto::{EncryptKeyPair, SigningKeyPair};
use xaynet_core::eligibility::{RoundSeed, Task};
use xaynet_core::mask::{Aggregation, MaskConfig, MaskConfigPair};
use xaynet_core::message::{Message, Payload, Reassembler, Tag};
use xaynet_core::{RoundParameters, SumDict, UpdateSeedDict};
use xaynet_sdk::{
    Action, LocalModel, ModelUpdate, Notice, Participant, RequestError, Response, RestoreError,
    Settings,
};

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(7)
}

fn params(coordinator: &EncryptKeyPair, sum: f64, update: f64, seed: u8) -> RoundParameters {
    RoundParameters {
        pk: coordinator.public,
        sum,
        update,
        seed: RoundSeed([seed; 32]),
        mask_config: MaskConfigPair::from(MaskConfig::default()),
        model_length: 1000,
    }
}

fn participant(i: u8, settings: Settings) -> Participant {
    Participant::new(SigningKeyPair::from_seed(&[i; 32]), settings).unwrap()
}

fn notices(p: &mut Participant) -> Vec<Notice> {
    std::iter::from_fn(|| p.next_notice()).collect()
}

fn expect_send(p: &mut Participant, now: u64) -> Vec<u8> {
    match p.poll(now) {
        Action::Send(body) => body.to_vec(),
        other => panic!("expected a send, got {other:?}"),
    }
}

/// A summer: Sum message, then waits for seeds, then a Sum2 with the aggregated masks; the
/// coordinator's side checks every message.
#[test]
fn summer_sends_sum_then_sum2() {
    let coord = EncryptKeyPair::from_seed(&[9; 32]);
    let round = params(&coord, 1.0, 0.0, 1);
    let mut rng = rng();
    let mut p = participant(1, Settings::default());
    assert_eq!(p.poll(0), Action::FetchParams);
    p.handle(Response::Params(Ok(round.clone())), 0, &mut rng);
    let n = notices(&mut p);
    assert_eq!(n[0], Notice::NewRound(round.clone()));
    assert_eq!(n[1], Notice::Task(Task::Sum));
    let sum = Message::open(&expect_send(&mut p, 0), &coord).unwrap();
    assert_eq!(sum.tag, Tag::Sum);
    assert_eq!(sum.participant_pk, p.public_key());
    let Payload::Sum(s) = sum.payload else {
        panic!("not a sum payload")
    };
    p.handle(Response::Sent(Ok(())), 5, &mut rng);
    assert_eq!(notices(&mut p), vec![Notice::Sent(Tag::Sum)]);
    // Nothing is ready right after the Sum: wait one poll interval, re-read the round.
    assert_eq!(p.poll(5), Action::Wait(1005));
    assert_eq!(p.poll(1005), Action::FetchParams);
    p.handle(Response::Params(Ok(round.clone())), 1005, &mut rng);
    assert!(notices(&mut p).is_empty(), "same round: no notice");
    assert_eq!(p.poll(1005), Action::FetchSeeds(p.public_key()));
    p.handle(Response::Seeds(Ok(None)), 1010, &mut rng);
    assert_eq!(p.poll(1010), Action::Wait(2010));

    // Two updaters' seeds, sealed to the summer's ephemeral key.
    let seeds: Vec<_> = (0..2)
        .map(|_| xaynet_core::mask::MaskSeed::generate(&mut rng))
        .collect();
    let dict: UpdateSeedDict = seeds
        .iter()
        .enumerate()
        .map(|(i, seed)| {
            let updater = SigningKeyPair::from_seed(&[100 + i as u8; 32]).public;
            (updater, seed.encrypt(&s.ephm_pk, &mut rng))
        })
        .collect();
    assert_eq!(p.poll(2010), Action::FetchParams);
    p.handle(Response::Params(Ok(round.clone())), 2010, &mut rng);
    p.handle(Response::Seeds(Ok(Some(dict.clone()))), 2011, &mut rng);
    assert_eq!(
        notices(&mut p),
        vec![Notice::SeedsReceived(dict.keys().copied().collect())]
    );
    // The Sum2 (about 6 kB for 1000 weights) goes out in one piece with the default size.
    let sum2 = Message::open(&expect_send(&mut p, 2011), &coord).unwrap();
    let Payload::Sum2(s2) = sum2.payload else {
        panic!("not a sum2 payload")
    };
    let mut want = Aggregation::new(round.mask_config, 1000);
    for seed in &seeds {
        let (v, u) = (
            xaynet_core::mask::Group::new(round.mask_config.vect),
            xaynet_core::mask::Group::new(round.mask_config.unit),
        );
        want.aggregate(seed.derive_mask(1000, &v, &u)).unwrap();
    }
    assert_eq!(&s2.model_mask, want.sum().unwrap());
    p.handle(Response::Sent(Ok(())), 2020, &mut rng);
    assert_eq!(notices(&mut p), vec![Notice::Sent(Tag::Sum2)]);
    assert!(!p.is_busy());
}

/// An updater: waits for the sum dictionary, asks for the model, sends it in chunks that the
/// coordinator's reassembler puts back together; the masked model unmasks to the model.
#[test]
fn updater_sends_chunked_update() {
    let coord = EncryptKeyPair::from_seed(&[9; 32]);
    let round = params(&coord, 0.0, 1.0, 2);
    let mut rng = rng();
    let settings = Settings {
        max_message_size: Some(1000),
        ..Settings::default()
    };
    let mut p = participant(2, settings);
    p.handle(Response::Params(Ok(round.clone())), 0, &mut rng);
    assert_eq!(notices(&mut p)[1], Notice::Task(Task::Update));
    assert_eq!(p.poll(0), Action::FetchSums);
    p.handle(Response::Sums(Ok(None)), 1, &mut rng);
    assert_eq!(p.poll(1), Action::Wait(1001));
    let summer = EncryptKeyPair::from_seed(&[3; 32]);
    let sums: SumDict = [(SigningKeyPair::from_seed(&[4; 32]).public, summer.public)].into();
    assert_eq!(p.poll(1001), Action::FetchParams);
    p.handle(Response::Params(Ok(round.clone())), 1001, &mut rng);
    assert_eq!(p.poll(1001), Action::FetchSums);
    p.handle(Response::Sums(Ok(Some(sums))), 1002, &mut rng);
    assert_eq!(p.poll(1002), Action::LoadModel);
    p.handle(Response::Model(None), 1003, &mut rng);
    assert_eq!(p.poll(1003), Action::Wait(2003));
    assert_eq!(p.poll(2003), Action::FetchParams);
    p.handle(Response::Params(Ok(round.clone())), 2003, &mut rng);
    let model: Vec<f32> = (0..1000).map(|i| (i as f32 / 1000.0) - 0.5).collect();
    p.handle(
        Response::Model(Some(ModelUpdate {
            model: LocalModel::F32(model.clone()),
            scalar: Some(0.5),
        })),
        2004,
        &mut rng,
    );
    let mut reassembler = Reassembler::new(Tag::Update, 1 << 20);
    let mut parts = 0;
    let update = loop {
        let body = expect_send(&mut p, 2005);
        assert!(body.len() <= 1000, "part of {} bytes", body.len());
        let msg = Message::open(&body, &coord).unwrap();
        p.handle(Response::Sent(Ok(())), 2005, &mut rng);
        parts += 1;
        let Payload::Chunk(chunk) = msg.payload else {
            panic!("expected chunks")
        };
        if let Some(payload) = reassembler.add(chunk).unwrap() {
            break payload;
        }
    };
    assert!(parts > 5, "{parts} parts");
    assert_eq!(notices(&mut p), vec![Notice::Sent(Tag::Update)]);
    let Payload::Update(u) = update else {
        panic!("not an update")
    };
    let seed = u
        .local_seed_dict
        .values()
        .next()
        .unwrap()
        .decrypt(&summer)
        .unwrap();
    let mut agg = Aggregation::new(round.mask_config, 1000);
    agg.aggregate(u.masked_model).unwrap();
    let (v, un) = (
        xaynet_core::mask::Group::new(round.mask_config.vect),
        xaynet_core::mask::Group::new(round.mask_config.unit),
    );
    let unmasked = agg.unmask(&seed.derive_mask(1000, &v, &un)).unwrap();
    for (got, want) in unmasked.to_f32().unwrap().iter().zip(&model) {
        assert!((got - want).abs() < 1e-6);
    }
}

#[test]
fn wrong_model_is_abandoned_with_a_reason() {
    let coord = EncryptKeyPair::from_seed(&[9; 32]);
    let round = params(&coord, 0.0, 1.0, 2);
    let mut rng = rng();
    let mut p = participant(2, Settings::default());
    p.handle(Response::Params(Ok(round)), 0, &mut rng);
    let sums: SumDict = [(
        SigningKeyPair::from_seed(&[4; 32]).public,
        EncryptKeyPair::from_seed(&[3; 32]).public,
    )]
    .into();
    p.handle(Response::Sums(Ok(Some(sums))), 0, &mut rng);
    notices(&mut p);
    for (model, needle) in [
        (LocalModel::F32(vec![0.0; 10]), "10 weights"),
        (LocalModel::F64(vec![0.0; 1000]), "F64"),
    ] {
        let mut q = Participant::restore(&p.save()).unwrap();
        q.handle(
            Response::Params(Ok(p.round_params().unwrap().clone())),
            0,
            &mut rng,
        );
        q.handle(
            Response::Model(Some(ModelUpdate {
                model,
                scalar: None,
            })),
            0,
            &mut rng,
        );
        match notices(&mut q).as_slice() {
            [Notice::Abandoned(reason)] => assert!(reason.contains(needle), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(!q.is_busy());
    }
}

#[test]
fn failed_posts_back_off_and_a_new_round_abandons_the_rest() {
    let coord = EncryptKeyPair::from_seed(&[9; 32]);
    let round = params(&coord, 1.0, 0.0, 1);
    let mut rng = rng();
    let mut p = participant(1, Settings::default());
    p.handle(Response::Params(Ok(round.clone())), 0, &mut rng);
    let mut now = 0;
    let mut delays = Vec::new();
    for _ in 0..12 {
        let body = expect_send(&mut p, now);
        assert!(!body.is_empty());
        p.handle(
            Response::Sent(Err(RequestError("down".into()))),
            now,
            &mut rng,
        );
        let Action::Wait(until) = p.poll(now) else {
            panic!("expected a wait")
        };
        delays.push(until - now);
        now = until;
        // After a failure the round is checked first.
        assert_eq!(p.poll(now), Action::FetchParams);
        p.handle(Response::Params(Ok(round.clone())), now, &mut rng);
    }
    // 250 ms doubling (with jitter between half and all), capped at 30 s.
    assert!((125..=250).contains(&delays[0]), "{delays:?}");
    assert!((250..=500).contains(&delays[1]), "{delays:?}");
    assert!(delays.iter().all(|&d| d <= 30_000), "{delays:?}");
    assert!(delays[11] >= 15_000, "{delays:?}");
    // The coordinator moved on: the unsent Sum is dropped, the new round starts.
    p.handle(
        Response::Sent(Err(RequestError("down".into()))),
        now,
        &mut rng,
    );
    let next = params(&coord, 0.0, 0.0, 2);
    p.handle(Response::Params(Ok(next.clone())), now + 1, &mut rng);
    assert!(notices(&mut p).contains(&Notice::NewRound(next)));
    assert!(!p.is_busy());
}

#[test]
fn save_and_restore_in_every_phase() {
    let coord = EncryptKeyPair::from_seed(&[9; 32]);
    let mut rng = rng();
    let summer = EncryptKeyPair::from_seed(&[3; 32]);
    let sums: SumDict = [(SigningKeyPair::from_seed(&[4; 32]).public, summer.public)].into();
    let mut p = participant(5, Settings::default());
    let mut saved = vec![p.save()];
    p.handle(
        Response::Params(Ok(params(&coord, 0.0, 1.0, 1))),
        0,
        &mut rng,
    );
    saved.push(p.save()); // awaiting sums
    p.handle(Response::Sums(Ok(Some(sums))), 0, &mut rng);
    saved.push(p.save()); // awaiting model
    p.handle(
        Response::Model(Some(ModelUpdate {
            model: LocalModel::F32(vec![0.25; 1000]),
            scalar: None,
        })),
        0,
        &mut rng,
    );
    saved.push(p.save()); // sending update
    let mut s = participant(6, Settings::default());
    s.handle(
        Response::Params(Ok(params(&coord, 1.0, 0.0, 1))),
        0,
        &mut rng,
    );
    saved.push(s.save()); // sending sum
    s.handle(Response::Sent(Ok(())), 0, &mut rng);
    saved.push(s.save()); // awaiting seeds
    let phases: Vec<_> = saved
        .iter()
        .map(|bytes| {
            let r = Participant::restore(bytes).unwrap();
            assert_eq!(&r.save()[..], &bytes[..], "save ∘ restore is the identity");
            r.phase_name()
        })
        .collect();
    assert_eq!(
        phases,
        [
            "idle",
            "awaiting_sums",
            "awaiting_model",
            "sending_update",
            "sending_sum",
            "awaiting_seeds"
        ]
    );
    // A restored participant re-reads the round first.
    let mut r = Participant::restore(&saved[3]).unwrap();
    assert_eq!(r.poll(0), Action::FetchParams);
    r.handle(
        Response::Params(Ok(params(&coord, 0.0, 1.0, 1))),
        0,
        &mut rng,
    );
    assert_eq!(r.poll(0), p.poll(0), "resumes with the same part");
    assert!(format!("{r:?}").contains("sending_update"));
    assert!(!format!("{r:?}").contains("secret"));
}

#[test]
fn restore_rejects_damaged_bytes() {
    let coord = EncryptKeyPair::from_seed(&[9; 32]);
    let mut p = participant(6, Settings::default());
    p.handle(
        Response::Params(Ok(params(&coord, 1.0, 0.0, 1))),
        0,
        &mut rng(),
    );
    let good = p.save().to_vec();
    assert_eq!(
        Participant::restore(b"nope").err(),
        Some(RestoreError::Magic)
    );
    for cut in 0..good.len() {
        assert!(Participant::restore(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        Participant::restore(&long).err(),
        Some(RestoreError::Trailing(1))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary and mutated bytes never panic and never allocate beyond the input.
    #[test]
    fn restore_survives_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    ) {
        let _ = Participant::restore(&bytes);
        let coord = EncryptKeyPair::from_seed(&[9; 32]);
        let mut p = participant(6, Settings::default());
        p.handle(Response::Params(Ok(params(&coord, 1.0, 0.0, 1))), 0, &mut rng());
        let mut good = p.save().to_vec();
        for (i, b) in flips {
            let n = good.len();
            good[i % n] ^= b;
        }
        let _ = Participant::restore(&good);
    }

    /// Random answers in random order: the participant never panics, and after any sequence
    /// it can be saved and restored to the same bytes.
    #[test]
    fn random_answers_keep_the_machine_consistent(
        steps in proptest::collection::vec(0u8..9, 1..60),
    ) {
        let coord = EncryptKeyPair::from_seed(&[9; 32]);
        let summer = EncryptKeyPair::from_seed(&[3; 32]);
        let sums: SumDict = [(SigningKeyPair::from_seed(&[4; 32]).public, summer.public)].into();
        let seeds: UpdateSeedDict = BTreeMap::from([(
            SigningKeyPair::from_seed(&[8; 32]).public,
            xaynet_core::mask::MaskSeed::generate(&mut rng()).encrypt(&summer.public, &mut rng()),
        )]);
        let mut rng = rng();
        let mut p = participant(7, Settings { max_message_size: Some(2000), ..Settings::default() });
        let mut now = 0;
        for step in steps {
            now += 100;
            let _ = p.poll(now);
            let response = match step {
                0 => Response::Params(Ok(params(&coord, 0.5, 0.5, 1))),
                1 => Response::Params(Ok(params(&coord, 0.5, 0.5, 2))),
                2 => Response::Params(Err(RequestError("x".into()))),
                3 => Response::Sums(Ok(Some(sums.clone()))),
                4 => Response::Seeds(Ok(Some(seeds.clone()))),
                5 => Response::Model(Some(ModelUpdate { model: LocalModel::F32(vec![0.1; 1000]), scalar: None })),
                6 => Response::Sent(Ok(())),
                7 => Response::Sent(Err(RequestError("x".into()))),
                _ => Response::Sums(Ok(None)),
            };
            p.handle(response, now, &mut rng);
            let _ = notices(&mut p);
            let saved = p.save();
            let restored = Participant::restore(&saved).unwrap();
            prop_assert_eq!(&restored.save()[..], &saved[..]);
        }
    }
}
