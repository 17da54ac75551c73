#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! `messages.json` and `rest_bincode.json`.
mod common;
use common::*;
use serde_json::Value;
use xaynet_core::crypto::{
    EncryptKeyPair, OsRng, SecretEncryptKey, SecretSigningKey, SigningKeyPair,
};
use xaynet_core::eligibility::{verify_sum_task, verify_update_task, RoundSeed};
use xaynet_core::mask::{Aggregation, EncryptedMaskSeed, MaskConfigPair, MaskSeed, Masker};
use xaynet_core::message::{
    encode, split, Chunk, LocalSeedDict, Message, MessageBuffer, Payload, Reassembler, Sum, Sum2,
    Tag, Update,
};
use xaynet_core::model::{Model, Scalar, Weights};
use xaynet_core::rest::{
    sum_dict_from_bincode, sum_dict_to_bincode, update_seed_dict_from_bincode,
    update_seed_dict_to_bincode,
};
use xaynet_core::{PublicEncryptKey, PublicSigningKey, RoundParameters, SumDict, UpdateSeedDict};

struct Scenario {
    v: Value,
    coordinator: EncryptKeyPair,
    params: RoundParameters,
}

fn scenario() -> Scenario {
    let v = load("messages.json");
    let rp = &v["inputs"]["round_parameters"];
    let coordinator = EncryptKeyPair::from_secret(
        SecretEncryptKey::from_slice(&hex(&rp["coordinator_secret_key"])).unwrap(),
    );
    assert_eq!(
        coordinator.public.as_bytes().to_vec(),
        hex(&rp["coordinator_pk"])
    );
    let params = RoundParameters {
        pk: coordinator.public,
        sum: rp["sum"].as_f64().unwrap(),
        update: rp["update"].as_f64().unwrap(),
        seed: RoundSeed(hex32(&rp["seed"])),
        mask_config: MaskConfigPair::from(config(&rp["mask_config"])),
        model_length: rp["model_length"].as_u64().unwrap(),
    };
    Scenario {
        v,
        coordinator,
        params,
    }
}

fn keys(person: &Value) -> SigningKeyPair {
    let k = SigningKeyPair::from_seed(&hex32(&person["keys"]["ed25519_seed"]));
    assert_eq!(
        k.public.as_bytes().to_vec(),
        hex(&person["keys"]["public_key"])
    );
    assert_eq!(
        SecretSigningKey::from_libsodium_bytes(&hex(&person["keys"]["secret_key"]))
            .unwrap()
            .public_key(),
        k.public
    );
    k
}

fn ephm(person: &Value) -> EncryptKeyPair {
    let e = EncryptKeyPair::from_secret(
        SecretEncryptKey::from_slice(&hex(&person["ephm_secret_key"])).unwrap(),
    );
    assert_eq!(e.public.as_bytes().to_vec(), hex(&person["ephm_pk"]));
    e
}

/// Checks a message record: our encoding is byte-identical, the header decodes as stated and
/// the sealed copy opens and parses to the same message.
fn check_record(sc: &Scenario, record: &Value, message: &Message, signer: &SigningKeyPair) {
    let signed = hex(&record["signed_message"]);
    assert_eq!(message.to_signed_bytes(&signer.secret), signed);
    assert_eq!(
        signed.len() as u64,
        record["total_length"].as_u64().unwrap()
    );
    let buf = MessageBuffer::new(&signed).unwrap();
    let h = &record["header"];
    assert_eq!(buf.signature().as_bytes().to_vec(), hex(&h["signature"]));
    assert_eq!(
        buf.participant_pk().as_bytes().to_vec(),
        hex(&h["participant_pk"])
    );
    assert_eq!(
        buf.coordinator_pk().as_bytes().to_vec(),
        hex(&h["coordinator_pk"])
    );
    assert_eq!(buf.length() as u64, h["length"].as_u64().unwrap());
    assert_eq!(buf.tag() as u64, h["tag"].as_u64().unwrap());
    assert_eq!(buf.flags() as u64, h["flags"].as_u64().unwrap());
    buf.verify_signature().unwrap();
    assert_eq!(&Message::from_buffer(&buf).unwrap(), message);
    let opened = Message::open(&hex(&record["sealed_message"]), &sc.coordinator).unwrap();
    assert_eq!(&opened, message);
    // A flipped bit anywhere in the signed part breaks the signature.
    let mut bad = signed.clone();
    bad[200] ^= 1;
    assert!(Message::from_signed_bytes(&bad).is_err());
}

#[test]
fn sum_message() {
    let sc = scenario();
    let a = &sc.v["inputs"]["summer_a"];
    let (k, e) = (keys(a), ephm(a));
    let sigs = xaynet_core::TaskSignatures::sign(&k.secret, &sc.params.seed);
    assert!(verify_sum_task(
        &k.public,
        &sc.params.seed,
        &sigs.sum,
        sc.params.sum
    ));
    let rec = &sc.v["sum"];
    assert_eq!(
        sigs.sum.as_bytes().to_vec(),
        hex(&rec["payload"]["sum_signature"])
    );
    let msg = Message {
        participant_pk: k.public,
        coordinator_pk: sc.params.pk,
        tag: Tag::Sum,
        payload: Payload::Sum(Sum {
            sum_signature: sigs.sum,
            ephm_pk: e.public,
        }),
    };
    check_record(&sc, rec, &msg, &k);
    // What we seal opens.
    let sealed = msg.seal(&k.secret, &mut OsRng);
    assert_eq!(sealed.len(), 280);
    assert_eq!(Message::open(&sealed, &sc.coordinator).unwrap(), msg);
}

fn update_message(sc: &Scenario) -> (Message, SigningKeyPair) {
    let inputs = &sc.v["inputs"];
    let u = &inputs["updater_u"];
    let k = keys(u);
    let sigs = xaynet_core::TaskSignatures::sign(&k.secret, &sc.params.seed);
    assert!(verify_update_task(
        &k.public,
        &sc.params.seed,
        &sigs.sum,
        &sigs.update,
        sc.params.sum,
        sc.params.update
    ));
    let bits: Vec<f32> = arr(&u["model"]["bits"])
        .iter()
        .map(|b| f32::from_bits(u32::from_str_radix(s(b), 16).unwrap()))
        .collect();
    let masked = Masker::new(sc.params.mask_config)
        .mask(
            &MaskSeed::from_bytes(hex32(&u["mask_seed"])),
            Weights::F32(&bits),
            &Scalar::unit(),
        )
        .unwrap();
    let mut dict = LocalSeedDict::new();
    for e in arr(&inputs["encrypted_mask_seeds"])
        .iter()
        .filter(|e| s(&e["from"]) == "updater_u")
    {
        dict.insert(
            PublicSigningKey::from_slice(&hex(&e["sum_pk"])).unwrap(),
            EncryptedMaskSeed::from_slice(&hex(&e["encrypted_mask_seed"])).unwrap(),
        );
    }
    let msg = Message {
        participant_pk: k.public,
        coordinator_pk: sc.params.pk,
        tag: Tag::Update,
        payload: Payload::Update(Update {
            sum_signature: sigs.sum,
            update_signature: sigs.update,
            masked_model: masked,
            local_seed_dict: dict,
        }),
    };
    (msg, k)
}

#[test]
fn update_message_and_seeds() {
    let sc = scenario();
    let (msg, k) = update_message(&sc);
    let rec = &sc.v["update"];
    if let Payload::Update(u) = &msg.payload {
        assert_eq!(
            u.masked_model.to_bytes(),
            hex(&rec["payload"]["masked_model"]["bytes"])
        );
        let mut dict_bytes = Vec::new();
        xaynet_core::message::Payload::Update(u.clone()).write_to(&mut dict_bytes);
        assert!(dict_bytes.ends_with(&hex(&rec["payload"]["local_seed_dict"]["bytes"])));
    }
    check_record(&sc, rec, &msg, &k);
    // The encrypted seeds open with the summers' ephemeral keys.
    for e in arr(&sc.v["inputs"]["encrypted_mask_seeds"]) {
        let summer = &sc.v["inputs"][s(&e["to"])];
        let seed = EncryptedMaskSeed::from_slice(&hex(&e["encrypted_mask_seed"]))
            .unwrap()
            .decrypt(&ephm(summer))
            .unwrap();
        assert_eq!(seed.as_bytes().to_vec(), hex(&e["mask_seed"]));
    }
}

#[test]
fn sum2_message() {
    let sc = scenario();
    let inputs = &sc.v["inputs"];
    let a = &inputs["summer_a"];
    let (k, e) = (keys(a), ephm(a));
    let mut agg = Aggregation::new(sc.params.mask_config, sc.params.model_length as usize);
    let groups = (
        xaynet_core::mask::Group::new(sc.params.mask_config.vect),
        xaynet_core::mask::Group::new(sc.params.mask_config.unit),
    );
    for enc in arr(&inputs["encrypted_mask_seeds"])
        .iter()
        .filter(|x| s(&x["to"]) == "summer_a")
    {
        let seed = EncryptedMaskSeed::from_slice(&hex(&enc["encrypted_mask_seed"]))
            .unwrap()
            .decrypt(&e)
            .unwrap();
        agg.aggregate(seed.derive_mask(sc.params.model_length as usize, &groups.0, &groups.1))
            .unwrap();
    }
    let sigs = xaynet_core::TaskSignatures::sign(&k.secret, &sc.params.seed);
    let msg = Message {
        participant_pk: k.public,
        coordinator_pk: sc.params.pk,
        tag: Tag::Sum2,
        payload: Payload::Sum2(Sum2 {
            sum_signature: sigs.sum,
            model_mask: agg.sum().unwrap().clone(),
        }),
    };
    check_record(&sc, &sc.v["sum2"], &msg, &k);
}

#[test]
fn multipart_update() {
    let sc = scenario();
    let (msg, k) = update_message(&sc);
    let mp = &sc.v["multipart_update"];
    let max = mp["max_message_size"].as_u64().unwrap() as usize;
    let id = mp["message_id"].as_u64().unwrap() as u16;
    let payload = msg.payload.to_bytes();
    assert_eq!(payload, hex(&mp["reassembled_payload"]));
    assert_eq!(payload.len() as u64, mp["payload_length"].as_u64().unwrap());
    let signed = encode(&msg, &k.secret, Some(max), id).unwrap();
    let chunks = arr(&mp["chunks"]);
    assert_eq!(signed.len(), chunks.len());
    let mut re = Reassembler::new(Tag::Update, 1 << 20);
    let mut done = None;
    for (ours, rec) in signed.iter().zip(chunks) {
        assert_eq!(ours, &hex(&rec["signed_message"]));
        assert!(ours.len() + 48 <= max);
        let m = Message::from_signed_bytes(ours).unwrap();
        let Payload::Chunk(c) = m.payload else {
            panic!("not a chunk")
        };
        assert_eq!(c.id as u64, rec["chunk"]["id"].as_u64().unwrap());
        assert_eq!(c.last, rec["chunk"]["last"].as_bool().unwrap());
        assert_eq!(c.data, hex(&rec["chunk"]["data"]));
        done = re.add(c).unwrap();
    }
    assert_eq!(done, Some(msg.payload.clone()));
    // Out of order and duplicated chunks reassemble too.
    let mut pieces = split(&payload, Some(max), id).unwrap().unwrap();
    pieces.reverse();
    let mut re = Reassembler::new(Tag::Update, 1 << 20);
    let dup = pieces[1].clone();
    assert_eq!(re.add(dup).unwrap(), None);
    let mut result = None;
    for p in pieces {
        result = re.add(p).unwrap().or(result);
    }
    assert_eq!(result, Some(msg.payload));
}

#[test]
fn chunk_limits() {
    let payload = vec![7u8; 1000];
    assert!(split(&payload, Some(193), 1).is_err());
    assert!(split(&payload, Some(194), 1).unwrap().is_some());
    assert!(split(&payload, None, 1).unwrap().is_none());
    assert!(split(&payload, Some(5000), 1).unwrap().is_none());
    let mut re = Reassembler::new(Tag::Sum, 10);
    assert!(re
        .add(Chunk {
            id: 0,
            message_id: 1,
            last: false,
            data: vec![0; 11]
        })
        .is_err());
    let mut re = Reassembler::new(Tag::Sum, 1000);
    re.add(Chunk {
        id: 1,
        message_id: 1,
        last: true,
        data: vec![0; 3],
    })
    .unwrap();
    assert!(re
        .add(Chunk {
            id: 2,
            message_id: 1,
            last: false,
            data: vec![]
        })
        .is_err());
    assert!(re
        .add(Chunk {
            id: 0,
            message_id: 1,
            last: true,
            data: vec![]
        })
        .is_err());
}

#[test]
fn rest_bodies() {
    let v = load("rest_bincode.json");
    for rp in arr(&v["round_parameters"]) {
        let body = hex(&rp["bincode"]);
        assert_eq!(body.len() as u64, rp["bincode_length"].as_u64().unwrap());
        let concat: String = arr(&rp["annotated"])
            .iter()
            .map(|p| s(&p[0]).to_string())
            .collect();
        assert_eq!(concat, s(&rp["bincode"]));
        let params = RoundParameters::from_bincode(&body).unwrap();
        assert_eq!(params.pk.as_bytes().to_vec(), hex(&rp["pk"]));
        assert_eq!(params.sum, rp["sum"].as_f64().unwrap());
        assert_eq!(params.update, rp["update"].as_f64().unwrap());
        assert_eq!(params.seed.0.to_vec(), hex(&rp["seed"]));
        assert_eq!(
            params.mask_config.vect,
            config_name(&rp["mask_config"]["vect"])
        );
        assert_eq!(
            params.mask_config.unit,
            config_name(&rp["mask_config"]["unit"])
        );
        assert_eq!(params.model_length, rp["model_length"].as_u64().unwrap());
        assert_eq!(params.to_bincode(), body);
    }
    let sd = &v["sum_dict"];
    let mut dict = SumDict::new();
    for e in arr(&sd["entries"]) {
        dict.insert(
            PublicSigningKey::from_slice(&hex(&e["sum_pk"])).unwrap(),
            PublicEncryptKey::from_slice(&hex(&e["ephm_pk"])).unwrap(),
        );
    }
    let body = hex(&sd["bincode"]);
    assert_eq!(sum_dict_to_bincode(&dict), body);
    assert_eq!(sum_dict_from_bincode(&body).unwrap(), dict);
    // Any entry order decodes.
    let swapped = [&body[..8], &body[8 + 80..], &body[8..8 + 80]].concat();
    assert_eq!(sum_dict_from_bincode(&swapped).unwrap(), dict);

    let ud = &v["update_seed_dict"];
    let mut dict = UpdateSeedDict::new();
    for e in arr(&ud["entries"]) {
        dict.insert(
            PublicSigningKey::from_slice(&hex(&e["update_pk"])).unwrap(),
            EncryptedMaskSeed::from_slice(&hex(&e["encrypted_mask_seed"])).unwrap(),
        );
    }
    let body = hex(&ud["bincode"]);
    assert_eq!(update_seed_dict_to_bincode(&dict), body);
    assert_eq!(update_seed_dict_from_bincode(&body).unwrap(), dict);

    let models = arr(&v["models"]);
    assert_eq!(models.len(), 4);
    for m in models {
        let body = hex(&m["bincode"]);
        let concat: String = arr(&m["annotated"])
            .iter()
            .map(|p| s(&p[0]).to_string())
            .collect();
        assert_eq!(concat, s(&m["bincode"]));
        let exact = Model(arr(&m["elements"]).iter().map(rat).collect());
        assert_eq!(exact.to_bincode(), body, "{}", m["note"]);
        assert_eq!(Model::from_bincode(&body).unwrap(), exact);
        if let Some(b) = m.get("built_from") {
            let bits = arr(&b["bits"]);
            let built = match s(&b["type"]) {
                "f32" => Model::from_f32(
                    &bits
                        .iter()
                        .map(|x| f32::from_bits(u32::from_str_radix(s(x), 16).unwrap()))
                        .collect::<Vec<_>>(),
                )
                .unwrap(),
                _ => Model::from_f64(
                    &bits
                        .iter()
                        .map(|x| f64::from_bits(u64::from_str_radix(s(x), 16).unwrap()))
                        .collect::<Vec<_>>(),
                )
                .unwrap(),
            };
            assert_eq!(built.to_bincode(), body);
        }
    }
}
