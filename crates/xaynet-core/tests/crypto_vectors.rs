#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! `sealed_box.json`, `eligibility.json` and `round_seed.json`.
mod common;
use common::*;
use xaynet_core::crypto::{EncryptKeyPair, OsRng, SecretEncryptKey, SigningKeyPair};
use xaynet_core::eligibility::{is_eligible, RoundSeed, Task, TaskSignatures};
use xaynet_core::Signature;

#[test]
fn sealed_boxes_open_and_tampered_fail() {
    let v = load("sealed_box.json");
    let cases = arr(&v["cases"]);
    assert!(!cases.is_empty());
    for case in cases {
        let keys = EncryptKeyPair::from_secret(
            SecretEncryptKey::from_slice(&hex(&case["recipient_secret_key"])).unwrap(),
        );
        assert_eq!(
            keys.public.as_bytes().to_vec(),
            hex(&case["recipient_public_key"])
        );
        let ct = hex(&case["ciphertext"]);
        assert_eq!(ct.len() as u64, case["ciphertext_length"].as_u64().unwrap());
        assert_eq!(
            keys.open(&ct).unwrap(),
            hex(&case["plaintext"]),
            "{}",
            case["note"]
        );
        assert!(keys
            .open(&hex(&case["tampered_ciphertext_must_fail"]))
            .is_err());
        // The streaming reader, fed byte by byte, agrees.
        let by_bytes = |sealed: &[u8]| {
            let mut reader = keys.open_reader();
            let mut out = Vec::new();
            for b in sealed.chunks(1) {
                reader.update(b, &mut out);
            }
            reader.finish().map(|()| out)
        };
        assert_eq!(by_bytes(&ct).unwrap(), hex(&case["plaintext"]));
        assert!(by_bytes(&hex(&case["tampered_ciphertext_must_fail"])).is_err());
        let other = EncryptKeyPair::from_seed(&[0x42; 32]);
        assert!(other.open(&ct).is_err());
        // What we seal opens with the same algorithm.
        let plain = hex(&case["plaintext"]);
        let ours = keys.public.seal(&plain, &mut OsRng);
        assert_eq!(ours.len(), plain.len() + 48);
        assert_eq!(keys.open(&ours).unwrap(), plain);
    }
    for kp in arr(&v["x25519_seed_keypairs"]) {
        let pair = EncryptKeyPair::from_seed(&hex32(&kp["seed"]));
        assert_eq!(pair.secret.to_bytes().to_vec(), hex(&kp["secret_key"]));
        assert_eq!(pair.public.as_bytes().to_vec(), hex(&kp["public_key"]));
    }
    for kp in arr(&v["x25519_public_keys"]) {
        let sk = SecretEncryptKey::from_slice(&hex(&kp["secret_key"])).unwrap();
        assert_eq!(sk.public_key().as_bytes().to_vec(), hex(&kp["public_key"]));
    }
}

#[test]
fn eligibility_cases() {
    let v = load("eligibility.json");
    let cases = arr(&v["cases"]);
    assert_eq!(cases.len(), 14);
    for case in cases {
        let keys = SigningKeyPair::from_seed(&hex32(&case["participant_ed25519_seed"]));
        assert_eq!(
            keys.public.as_bytes().to_vec(),
            hex(&case["participant_public_key"])
        );
        assert_eq!(
            keys.secret.to_libsodium_bytes().to_vec(),
            hex(&case["participant_secret_key"])
        );
        let seed = RoundSeed(hex32(&case["round_seed"]));
        assert_eq!(seed.task_message(b"sum"), hex(&case["sum_signed_message"]));
        assert_eq!(
            seed.task_message(b"update"),
            hex(&case["update_signed_message"])
        );
        let sigs = TaskSignatures::sign(&keys.secret, &seed);
        assert_eq!(sigs.sum.as_bytes().to_vec(), hex(&case["sum_signature"]));
        assert_eq!(
            sigs.update.as_bytes().to_vec(),
            hex(&case["update_signature"])
        );
        assert_eq!(
            xaynet_core::crypto::sha256(sigs.sum.as_bytes()).to_vec(),
            hex(&case["sum_signature_sha256"])
        );
        let (ps, pu) = (
            case["sum_prob"].as_f64().unwrap(),
            case["update_prob"].as_f64().unwrap(),
        );
        assert_eq!(
            is_eligible(&sigs.sum, ps),
            case["is_sum_eligible"].as_bool().unwrap()
        );
        assert_eq!(
            is_eligible(&sigs.update, pu),
            case["is_update_eligible"].as_bool().unwrap()
        );
        let role = match sigs.task(ps, pu) {
            Task::Sum => "sum",
            Task::Update => "update",
            Task::None => "none",
        };
        assert_eq!(role, s(&case["role"]));
        // The signatures verify under the participant's key.
        assert!(keys.public.is_valid(&seed.task_message(b"sum"), &sigs.sum));
    }
    let raw = arr(&v["raw_signature_cases"]);
    assert_eq!(raw.len(), 2);
    for case in raw {
        let sig = Signature::from_slice(&hex(&case["signature"])).unwrap();
        let h = num_bigint::BigUint::from_bytes_le(&xaynet_core::crypto::sha256(sig.as_bytes()));
        assert_eq!(h, big(&case["hash_le_integer"]));
        for r in arr(&case["results"]) {
            let p = r["threshold"].as_f64().unwrap();
            assert_eq!(
                is_eligible(&sig, p),
                r["is_eligible"].as_bool().unwrap(),
                "threshold {p}"
            );
        }
    }
}

#[test]
fn round_seed_chain() {
    let v = load("round_seed.json");
    let cases = arr(&v["cases"]);
    assert!(cases.len() >= 2);
    for case in cases {
        let sk =
            SecretEncryptKey::from_slice(&hex(&case["coordinator_x25519_secret_key"])).unwrap();
        assert_eq!(
            sk.public_key().as_bytes().to_vec(),
            hex(&case["coordinator_x25519_public_key"])
        );
        let signer = xaynet_core::crypto::signing_key_from_encrypt_secret(&sk);
        assert_eq!(
            signer.public.as_bytes().to_vec(),
            hex(&case["ed25519_public_key_from_secret_as_seed"])
        );
        let prev = RoundSeed(hex32(&case["previous_seed"]));
        let (ps, pu) = (
            case["sum_prob"].as_f64().unwrap(),
            case["update_prob"].as_f64().unwrap(),
        );
        assert_eq!(
            signer
                .sign(&hex(&case["signed_message"]))
                .as_bytes()
                .to_vec(),
            hex(&case["signature"])
        );
        let next = prev.next(&sk, ps, pu);
        assert_eq!(next.0.to_vec(), hex(&case["new_seed"]));
    }
    // The second case chains from the first.
    assert_eq!(cases[1]["previous_seed"], cases[0]["new_seed"]);
}
