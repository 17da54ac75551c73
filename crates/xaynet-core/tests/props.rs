#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Property tests: the fixed-width and big-integer paths agree on every configuration, and
//! every decoder survives arbitrary and mutated bytes.
use num_bigint::BigUint;
use proptest::prelude::*;
use xaynet_core::crypto::SigningKeyPair;
use xaynet_core::mask::reference;
use xaynet_core::mask::{
    Aggregation, MaskConfig, MaskConfigPair, MaskObject, MaskSeed, Masker, UnmaskError,
};
use xaynet_core::message::{Chunk, LocalSeedDict, Message, MessageBuffer, Payload, Tag, Update};
use xaynet_core::model::{Model, Scalar, Weights};
use xaynet_core::rest::{sum_dict_from_bincode, update_seed_dict_from_bincode};
use xaynet_core::{PublicEncryptKey, RoundParameters};

fn any_config() -> impl Strategy<Value = MaskConfig> {
    prop::sample::select(MaskConfig::all().collect::<Vec<_>>())
}

fn weight() -> impl Strategy<Value = f64> {
    prop_oneof![
        -2.0f64..2.0,
        -1e7f64..1e7,
        prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
        Just(1.0),
        Just(-1.0),
        Just(1e-11),
    ]
}

fn scalar() -> impl Strategy<Value = f64> {
    prop_oneof![0.0f64..3.0, Just(1.0), Just(0.0), 1e-9f64..1e-3, Just(0.3)]
}

fn big_vec(obj: &MaskObject) -> (Vec<BigUint>, BigUint) {
    (obj.vect.data().to_big_vec(), obj.unit.data().get_big(0))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Masking with fixed-width integers equals masking with rationals and big integers.
    #[test]
    fn masking_paths_agree(
        vect in any_config(),
        same_unit in any::<bool>(),
        unit in any_config(),
        ws in prop::collection::vec(weight(), 0..6),
        s in scalar(),
        seed in any::<[u8; 32]>(),
        as_f32 in any::<bool>(),
    ) {
        let unit = if same_unit { vect } else { unit };
        let scalar = Scalar::from_f64(s).unwrap();
        let f32s: Vec<f32> = ws.iter().map(|&w| w as f32).filter(|w| w.is_finite()).collect();
        let weights = if as_f32 { Weights::F32(&f32s) } else { Weights::F64(&ws) };
        let ours = Masker::new(MaskConfigPair { vect, unit })
            .mask(&MaskSeed::from_bytes(seed), weights, &scalar)
            .unwrap();
        let theirs = reference::mask(vect, unit, seed, weights, &scalar).unwrap();
        prop_assert_eq!(big_vec(&ours), theirs);
        // And the encoding round-trips.
        prop_assert_eq!(MaskObject::from_bytes(&ours.to_bytes()).unwrap(), ours);
    }

    /// Aggregation and unmasking agree with the big-integer path, weighted average included.
    #[test]
    fn aggregation_and_unmasking_agree(
        config in any_config(),
        models in prop::collection::vec((prop::collection::vec(weight(), 4), scalar(), any::<[u8; 32]>()), 1..4),
    ) {
        let configs = MaskConfigPair::from(config);
        let masker = Masker::new(configs);
        let mut agg = Aggregation::new(configs, 4);
        let mut masks = Aggregation::new(configs, 4);
        let mut ref_agg: Option<(Vec<BigUint>, BigUint)> = None;
        let mut ref_mask: Option<(Vec<BigUint>, BigUint)> = None;
        let groups = (xaynet_core::mask::Group::new(config), xaynet_core::mask::Group::new(config));
        for (ws, s, seed) in &models {
            let seed = MaskSeed::from_bytes(*seed);
            let obj = masker.mask(&seed, Weights::F64(ws), &Scalar::from_f64(*s).unwrap()).unwrap();
            let mask = seed.derive_mask(4, &groups.0, &groups.1);
            for (acc, o) in [(&mut ref_agg, big_vec(&obj)), (&mut ref_mask, big_vec(&mask))] {
                match acc {
                    None => *acc = Some(o),
                    Some((v, u)) => {
                        *v = reference::aggregate(v, &o.0, config.order());
                        *u = reference::aggregate(std::slice::from_ref(u), &[o.1], config.order()).remove(0);
                    }
                }
            }
            agg.aggregate(obj).unwrap();
            masks.aggregate(mask).unwrap();
        }
        let (a, au) = ref_agg.unwrap();
        let (k, ku) = ref_mask.unwrap();
        prop_assert_eq!(big_vec(agg.sum().unwrap()), (a.clone(), au.clone()));
        let expect = reference::unmask(config, config, &a, &au, &k, &ku, models.len() as u64);
        match agg.unmask(masks.sum().unwrap()) {
            Ok(global) => {
                // The fast float conversion agrees with the exact one.
                prop_assert_eq!(global.to_f32(), global.to_model().to_f32());
                // The compact encoding round-trips; truncations are refused.
                let enc = global.encode();
                let decoded = xaynet_core::mask::UnmaskedModel::decode(&enc);
                prop_assert_eq!(decoded.as_ref(), Some(&global));
                prop_assert!(xaynet_core::mask::UnmaskedModel::decode(&enc[..enc.len() - 1]).is_none());
                prop_assert_eq!(Some(global.to_model().0), expect);
            }
            Err(UnmaskError::ZeroScalarSum) => prop_assert!(expect.is_none()),
            Err(e) => prop_assert!(false, "{}", e),
        }
    }

    #[test]
    fn mask_object_decoder_survives(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = MaskObject::decode(&bytes);
        let _ = MaskObject::from_bytes(&bytes);
        let _ = MaskConfig::from_bytes(&bytes);
    }

    #[test]
    fn message_decoders_survive(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(buf) = MessageBuffer::new(&bytes) {
            let _ = buf.verify_signature();
            let _ = Message::from_buffer(&buf);
        }
        let _ = Message::from_signed_bytes(&bytes);
        let _ = Chunk::decode(&bytes);
        for tag in [Tag::Sum, Tag::Update, Tag::Sum2] {
            let _ = Payload::decode(tag, &bytes);
        }
        let _ = xaynet_core::message::decode_seed_dict(&bytes);
    }

    #[test]
    fn rest_decoders_survive(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = xaynet_core::mask::UnmaskedModel::decode(&bytes);
        let _ = RoundParameters::from_bincode(&bytes);
        let _ = sum_dict_from_bincode(&bytes);
        let _ = update_seed_dict_from_bincode(&bytes);
        let _ = Model::from_bincode(&bytes);
    }

    /// Mutations of a valid Update message: decoding never panics, and a message that still
    /// verifies is byte-identical to what was signed.
    #[test]
    fn mutated_update_messages(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let signed = sample_update();
        let mut bytes = signed.clone();
        for (i, x) in &flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x | 1;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let _ = Payload::decode(Tag::Update, bytes.get(136..).unwrap_or(&[]));
        if Message::from_signed_bytes(&bytes).is_ok() {
            // Only flips beyond the length field's end can leave the signature valid.
            prop_assert_eq!(&bytes[..signed.len().min(bytes.len())], &signed[..signed.len().min(bytes.len())]);
        }
    }

    /// The one-pass reader (open + signature over pieces) agrees with opening, then checking
    /// lengths, then verifying, on mutated messages cut into random pieces.
    #[test]
    fn sealed_reader_agrees_with_open_then_verify(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        truncate in prop::option::of(any::<prop::sample::Index>()),
        tamper_box in any::<bool>(),
    ) {
        let signed = sample_update();
        let mut bytes = signed.clone();
        for (i, x) in &flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x | 1;
        }
        if let Some(t) = truncate {
            bytes.truncate(t.index(bytes.len()));
        }
        let coordinator = xaynet_core::EncryptKeyPair::from_seed(&[3; 32]);
        let mut sealed = coordinator.public.seal(&bytes, &mut xaynet_core::crypto::OsRng);
        if tamper_box {
            let i = cuts.first().map_or(0, |c| c.index(sealed.len()));
            sealed[i] ^= 0x40;
        }
        let expected = coordinator.open(&sealed).ok().map(|plain| {
            MessageBuffer::new(&plain).map(|b| b.verify_signature().is_ok())
        });
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(sealed.len() + 1)).collect();
        points.sort_unstable();
        let mut reader = xaynet_core::message::SealedMessageReader::new(&coordinator, vec![1, 2, 3]);
        let mut at = 0;
        for p in points.into_iter().chain([sealed.len()]) {
            reader.update(&sealed[at..p]);
            at = p;
        }
        let got = reader.finish().ok().map(|opened| {
            let plain = opened.bytes().to_vec();
            MessageBuffer::new(&plain).map(|_| opened.verify_signature().is_ok())
        });
        prop_assert_eq!(expected, got);
    }

    /// Flipped bytes never panic; every strict prefix of a valid body is an error.
    #[test]
    fn mutated_rest_bodies(flip in any::<prop::sample::Index>(), x in 1u8.., cut in any::<prop::sample::Index>()) {
        let model = Model::from_f32(&[0.5, -2.25, 0.0, 1e-30]).unwrap();
        let body = model.to_bincode();
        let mut flipped = body.clone();
        let i = flip.index(body.len());
        flipped[i] ^= x;
        let _ = Model::from_bincode(&flipped);
        prop_assert!(Model::from_bincode(&body[..cut.index(body.len())]).is_err());
        let params = RoundParameters {
            pk: PublicEncryptKey::from([1; 32]),
            sum: 0.5,
            update: 0.9,
            seed: xaynet_core::RoundSeed([2; 32]),
            mask_config: MaskConfigPair::default(),
            model_length: 4,
        }
        .to_bincode();
        prop_assert!(RoundParameters::from_bincode(&params[..cut.index(params.len())]).is_err());
        let mut flipped = params.clone();
        let i = flip.index(params.len());
        flipped[i] ^= x;
        let _ = RoundParameters::from_bincode(&flipped);
    }
}

fn sample_update() -> Vec<u8> {
    let keys = SigningKeyPair::from_seed(&[5; 32]);
    let configs = MaskConfigPair::default();
    let masked = Masker::new(configs)
        .mask(
            &MaskSeed::from_bytes([1; 32]),
            Weights::F32(&[0.1, 0.2, 0.3]),
            &Scalar::unit(),
        )
        .unwrap();
    let mut dict = LocalSeedDict::new();
    let summer = SigningKeyPair::from_seed(&[6; 32]);
    let epk = xaynet_core::EncryptKeyPair::from_seed(&[7; 32]);
    dict.insert(
        summer.public,
        MaskSeed::from_bytes([1; 32]).encrypt(&epk.public, &mut xaynet_core::crypto::OsRng),
    );
    Message {
        participant_pk: keys.public,
        coordinator_pk: PublicEncryptKey::from([9; 32]),
        tag: Tag::Update,
        payload: Payload::Update(Update {
            sum_signature: keys.sign(b"a"),
            update_signature: keys.sign(b"b"),
            masked_model: masked,
            local_seed_dict: dict,
        }),
    }
    .to_signed_bytes(&keys.secret)
}

/// Length fields that claim far more than the input holds are errors, not allocations.
#[test]
fn huge_length_claims_are_rejected() {
    // MaskObject: count = u32::MAX on a 20-byte buffer.
    let mut obj = vec![1, 0, 0, 3, 0xff, 0xff, 0xff, 0xff];
    obj.extend_from_slice(&[0; 12]);
    assert!(MaskObject::decode(&obj).is_err());
    // Seed dict: total length 4 GiB − 12.
    assert!(xaynet_core::message::decode_seed_dict(&[0xff, 0xff, 0xff, 0xf4, 0, 0]).is_err());
    // Model: 2^62 elements; big integer with 2^60 digits.
    let mut m = (1u64 << 62).to_le_bytes().to_vec();
    m.extend_from_slice(&[0; 100]);
    assert!(Model::from_bincode(&m).is_err());
    let mut m = 1u64.to_le_bytes().to_vec();
    m.push(1);
    m.extend_from_slice(&(1u64 << 60).to_le_bytes());
    m.extend_from_slice(&[1; 40]);
    assert!(Model::from_bincode(&m).is_err());
    // Sum dict with 2^40 entries.
    let mut d = (1u64 << 40).to_le_bytes().to_vec();
    d.extend_from_slice(&[0; 200]);
    assert!(sum_dict_from_bincode(&d).is_err());
    // Header claiming 4 GiB.
    let mut h = vec![0u8; 200];
    h[128..132].copy_from_slice(&u32::MAX.to_be_bytes());
    h[132] = 1;
    assert!(MessageBuffer::new(&h).is_err());
}

#[test]
fn unmasking_zero_scalars_is_an_error() {
    let configs = MaskConfigPair::default();
    let mut agg = Aggregation::new(configs, 2);
    let mut masks = Aggregation::new(configs, 2);
    let group = xaynet_core::mask::Group::new(configs.vect);
    for i in 0..3u8 {
        let seed = MaskSeed::from_bytes([i; 32]);
        let zero = Scalar::from_f64(0.0).unwrap();
        agg.aggregate(
            Masker::new(configs)
                .mask(&seed, Weights::F32(&[0.5, 0.5]), &zero)
                .unwrap(),
        )
        .unwrap();
        masks
            .aggregate(seed.derive_mask(2, &group, &group))
            .unwrap();
    }
    assert_eq!(
        agg.unmask(masks.sum().unwrap()),
        Err(UnmaskError::ZeroScalarSum)
    );
    let empty = Aggregation::new(configs, 2);
    assert_eq!(
        empty.unmask(masks.sum().unwrap()),
        Err(UnmaskError::NoModels)
    );
}

/// Encoding into a buffer sized by `buffer_len` fills it exactly and never grows it (a 6 MB
/// object used to be reallocated, i.e. copied, on every encode).
#[test]
fn encoding_fits_buffer_len_exactly() {
    for len in [0usize, 1, 3, 1000] {
        let weights: Vec<f32> = (0..len).map(|i| i as f32 / 1000.0).collect();
        let obj = Masker::new(MaskConfigPair::default())
            .mask(
                &MaskSeed::from_bytes([2; 32]),
                Weights::F32(&weights),
                &Scalar::unit(),
            )
            .unwrap();
        let mut out = Vec::with_capacity(obj.buffer_len());
        obj.write_to(&mut out);
        assert_eq!(out.len(), obj.buffer_len());
        assert_eq!(out.capacity(), obj.buffer_len(), "len {len}");
    }
}
