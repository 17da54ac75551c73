//! The tick-driven participant (what the C ABI and Python wrap) against a live coordinator.
//!
//! The update phase lasts at least 1.5 s, so every participant that draws the update task gets
//! its model in; the global model must then be the average of exactly those models.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use xaynet_core::crypto::SigningKeyPair;
use xaynet_sdk::{LocalModel, Settings, TickFlags, TickParticipant};
use xaynet_test_support::{model, test_settings};

const LEN: usize = 100;

#[test]
fn tick_participants_complete_rounds() {
    let server_rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path(), LEN);
    settings.pet.sum.prob = Some(0.2);
    settings.pet.update.prob = Some(0.8);
    settings.pet.update.time.min = 1.5;
    let running = server_rt
        .block_on(xaynet_server::server::start(settings))
        .unwrap();
    let url = format!("http://{}", running.addr);

    let participant_settings = Settings {
        poll_interval_ms: 50,
        max_message_size: Some(300),
        ..Settings::default()
    };
    let mut ps: Vec<TickParticipant> = (0..14)
        .map(|i| {
            let keys = SigningKeyPair::from_seed(&[i as u8 + 40; 32]);
            TickParticipant::new(&url, keys, participant_settings.clone()).unwrap()
        })
        .collect();
    // Errors before a round is known, and for models that do not fit.
    assert!(ps[0]
        .set_model(LocalModel::F32(vec![0.0; LEN]), None)
        .is_err());
    assert!(TickParticipant::new(
        "not a url",
        SigningKeyPair::from_seed(&[1; 32]),
        Settings::default()
    )
    .is_err());

    // Round seed → models set by updaters in that round.
    // (A restored participant may be asked again; its model replaces the earlier one.)
    let mut submitted: BTreeMap<[u8; 32], BTreeMap<usize, Vec<f32>>> = BTreeMap::new();
    let mut global_flags = 0;
    let mut saves = 0;
    let mut published = running.published.clone();
    let mut models: Vec<(String, Vec<f32>)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while models.len() < 2 {
        assert!(Instant::now() < deadline, "no two rounds in 60 s");
        for (i, p) in ps.iter_mut().enumerate() {
            let flags = p.tick();
            let task_bits = flags.0 & 7;
            assert_eq!(
                task_bits.count_ones(),
                1,
                "exactly one task flag: {flags:?}"
            );
            if flags.has(TickFlags::SHOULD_SET_MODEL) {
                assert!(flags.has(TickFlags::TASK_UPDATE));
                let (_, len) = p.local_model_config().unwrap();
                assert!(
                    p.set_model(LocalModel::F32(vec![0.0; 3]), None).is_err(),
                    "length checked"
                );
                assert!(
                    p.set_model(LocalModel::F64(vec![0.0; len as usize]), None)
                        .is_err(),
                    "type checked"
                );
                let m = model(i as u32, LEN);
                p.set_model(LocalModel::F32(m.clone()), None).unwrap();
                let seed = p.participant().round_params().unwrap().seed.0;
                submitted.entry(seed).or_default().insert(i, m);
            }
            if flags.has(TickFlags::NEW_GLOBAL_MODEL) {
                global_flags += 1;
                let g = p.global_model().unwrap().unwrap();
                assert_eq!(g.len(), LEN);
                assert!(
                    !p.tick().has(TickFlags::NEW_GLOBAL_MODEL),
                    "cleared by global_model()"
                );
            }
            if flags.has(TickFlags::MADE_PROGRESS) && i == 3 {
                // Save and resume, as an app does when it may be suspended.
                let bytes = p.save();
                *p = TickParticipant::restore(&url, &bytes).unwrap();
                saves += 1;
            }
        }
        if let Some(m) = published.borrow_and_update().model.clone() {
            if models.last().map(|(id, _)| id != &m.id).unwrap_or(true) {
                let raw = m.raw().unwrap();
                models.push((m.id.clone(), xaynet_test_support::f32s(&raw)));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(saves > 0);
    for (id, got) in &models {
        let seed_hex = id.split('_').nth(1).unwrap();
        let (_, subs) = submitted
            .iter()
            .find(|(s, _)| s.iter().map(|b| format!("{b:02x}")).collect::<String>() == seed_hex)
            .expect("updates were submitted in this round");
        for (j, g) in got.iter().enumerate() {
            let want = subs.values().map(|m| m[j] as f64).sum::<f64>() / subs.len() as f64;
            assert!(
                (*g as f64 - want).abs() <= 1e-6,
                "weight {j}: {g} vs {want}"
            );
        }
    }
    // Participants see the first global model appear at the second round's start, and no one
    // is told twice about the same model.
    assert!(global_flags >= 1 && global_flags <= ps.len() * models.len());
    server_rt.block_on(running.stop());
}
