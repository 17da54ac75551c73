#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Core benchmarks for a 1,000,000-element f32 model with the default config
//! (Prime/F32/B0/M3), one core. `scripts/bench-report.py` turns the results into the ratios
//! recorded in BENCHMARKS.md.
//!
//! Yardsticks measured in the same run:
//! * (a) `keystream`: generating exactly the ChaCha20 key stream that the compatible sampler
//!   consumes for one mask of 1M elements (the physical floor of mask derivation);
//! * (b) `reference_*`: one big integer / rational per element, as the reference design does.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use rand_chacha::rand_core::block::BlockRngCore;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Core;
use xaynet_core::crypto::{EncryptKeyPair, OsRng, SigningKeyPair};
use xaynet_core::mask::{reference, Aggregation, Group, MaskConfigPair, MaskSeed, Masker};
use xaynet_core::message::{LocalSeedDict, Message, MessageBuffer, Payload, Tag, Update};
use xaynet_core::model::{Scalar, Weights};

const LEN: usize = 1_000_000;

fn model(seed: u32) -> Vec<f32> {
    // A cheap deterministic generator; values in (−1, 1) like typical weights.
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let configs = MaskConfigPair::default();
    let config = configs.vect;
    let group = Group::new(config);
    let masker = Masker::new(configs);
    let scalar = Scalar::unit();
    let weights = model(1);
    let seed = MaskSeed::from_bytes([0x5a; 32]);

    let mut g = c.benchmark_group("core_1m");
    g.sample_size(20);

    // Yardstick (a): the key stream the sampler consumes for one mask.
    let mut rng = seed.rng();
    let mut sink = vec![0u64; LEN];
    let _unit = group.sample(&mut rng, 1);
    rng.fill_u64(&mut sink, 6, 20_000_000_000_020);
    let blocks = rng.words_generated() / 64;
    eprintln!(
        "key stream for one 1M mask: {} words ({:.1} MB)",
        blocks * 64,
        blocks as f64 * 256.0 / 1e6
    );
    g.bench_function("keystream", |b| {
        b.iter(|| {
            let mut core = ChaCha20Core::from_seed(*seed.as_bytes());
            let mut out = Default::default();
            let mut acc = 0u32;
            for _ in 0..blocks {
                core.generate(&mut out);
                acc ^= AsRef::<[u32]>::as_ref(&out)[0];
            }
            black_box(acc)
        })
    });

    g.bench_function("derive_mask", |b| {
        b.iter(|| black_box(seed.derive_mask(LEN, &group, &group)))
    });
    g.bench_function("mask", |b| {
        b.iter(|| black_box(masker.mask(&seed, Weights::F32(&weights), &scalar).unwrap()))
    });

    let objects: Vec<_> = (0..3u8)
        .map(|i| {
            let w = model(i as u32 + 10);
            masker
                .mask(&MaskSeed::from_bytes([i; 32]), Weights::F32(&w), &scalar)
                .unwrap()
        })
        .collect();
    let mut base = Aggregation::new(configs, LEN);
    base.aggregate_ref(&objects[0]).unwrap();
    base.aggregate_ref(&objects[1]).unwrap();
    g.bench_function("aggregate_one", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |agg| agg.aggregate_ref(&objects[2]).unwrap(),
            BatchSize::LargeInput,
        )
    });

    let mut full = base.clone();
    full.aggregate_ref(&objects[2]).unwrap();
    let mut masks = Aggregation::new(configs, LEN);
    for i in 0..3u8 {
        masks
            .aggregate(MaskSeed::from_bytes([i; 32]).derive_mask(LEN, &group, &group))
            .unwrap();
    }
    let mask = masks.sum().unwrap().clone();
    g.bench_function("unmask_to_f32", |b| {
        b.iter(|| black_box(full.unmask(&mask).unwrap().to_f32().unwrap()))
    });

    // An Update message of that size, one summer, signed and sealed.
    let keys = SigningKeyPair::from_seed(&[1; 32]);
    let coordinator = EncryptKeyPair::from_seed(&[2; 32]);
    let summer = SigningKeyPair::from_seed(&[3; 32]);
    let ephm = EncryptKeyPair::from_seed(&[4; 32]);
    let mut dict = LocalSeedDict::new();
    dict.insert(summer.public, seed.encrypt(&ephm.public, &mut OsRng));
    let msg = Message {
        participant_pk: keys.public,
        coordinator_pk: coordinator.public,
        tag: Tag::Update,
        payload: Payload::Update(Update {
            sum_signature: keys.sign(b"sum"),
            update_signature: keys.sign(b"update"),
            masked_model: objects[0].clone(),
            local_seed_dict: dict,
        }),
    };
    let signed = msg.to_signed_bytes(&keys.secret);
    let sealed = coordinator.public.seal(&signed, &mut OsRng);
    eprintln!(
        "update message: {} bytes signed, {} sealed",
        signed.len(),
        sealed.len()
    );
    g.bench_function("parse_verify_update", |b| {
        b.iter(|| {
            let buf = MessageBuffer::new(&signed).unwrap();
            buf.verify_signature().unwrap();
            black_box(Message::from_buffer(&buf).unwrap())
        })
    });
    g.bench_function("open_sealed_update", |b| {
        b.iter(|| black_box(coordinator.open(&sealed).unwrap()))
    });
    g.finish();

    // Yardstick (b): one big integer / rational per element.
    let mut g = c.benchmark_group("reference_1m");
    g.sample_size(10);
    g.bench_function("reference_mask", |b| {
        b.iter(|| {
            black_box(
                reference::mask(config, config, [0x5a; 32], Weights::F32(&weights), &scalar)
                    .unwrap(),
            )
        })
    });
    let big: Vec<_> = objects.iter().map(|o| o.vect.data().to_big_vec()).collect();
    g.bench_function("reference_aggregate_one", |b| {
        b.iter(|| black_box(reference::aggregate(&big[0], &big[1], config.order())))
    });
    let agg_big = full.sum().unwrap().vect.data().to_big_vec();
    let agg_unit = full.sum().unwrap().unit.data().get_big(0);
    let mask_big = mask.vect.data().to_big_vec();
    let mask_unit = mask.unit.data().get_big(0);
    g.bench_function("reference_unmask_to_f32", |b| {
        b.iter(|| {
            let exact = reference::unmask(
                config, config, &agg_big, &agg_unit, &mask_big, &mask_unit, 3,
            )
            .unwrap();
            black_box(xaynet_core::Model(exact).to_f32().unwrap())
        })
    });
    g.finish();
}

criterion_group!(core, benches);
criterion_main!(core);
