#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Nothing accepted is lost: SIGKILL the coordinator process mid-round and after a round.
use std::path::Path;

use xaynet_test_support::process::{test_config, RedisServer, ServeProcess};
use xaynet_test_support::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &Path, port: u16, len: usize, redis: Option<&str>) -> ServeProcess {
    let config = dir.join("coordinator.toml");
    let text = test_config(&dir.join("data"), &format!("127.0.0.1:{port}"), len, redis);
    std::fs::write(&config, text).unwrap();
    ServeProcess::start(Path::new(env!("CARGO_BIN_EXE_xaynet")), &config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_embedded_storage() {
    sigkill_mid_update_loses_nothing_and_a_finished_round_is_served_after_restart(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_redis_storage() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    sigkill_mid_update_loses_nothing_and_a_finished_round_is_served_after_restart(Some(&redis.url))
        .await;
}

async fn sigkill_mid_update_loses_nothing_and_a_finished_round_is_served_after_restart(
    redis: Option<&str>,
) {
    let dir = tempfile::tempdir().unwrap();
    let (port, len) = (free_port(), 16);
    let server = start(dir.path(), port, len, redis);
    let c = Client::new(server.addr);
    let ps: Vec<Participant> = (0..30)
        .map(|i| Participant::new(i, model(i, len)))
        .collect();

    c.wait_phase(1, "sum").await;
    let p = c.params().await;
    let (summers, updaters) = roles(&ps, &p);
    assert!(!summers.is_empty() && updaters.len() >= 4);
    c.post_all(summers.iter().map(|s| s.sum_message(&p)).collect())
        .await;
    c.wait_phase(1, "update").await;
    // Two updates are accepted (below the minimum of three), then the process dies.
    for u in &updaters[..2] {
        for body in u.update_messages(&c, &p, None).await {
            c.post(body).await;
        }
    }
    let before = c.status().await;
    assert_eq!(before["counts"]["update"]["accepted"], 2, "{before}");
    server.kill();

    let server = start(dir.path(), port, len, redis);
    let after = c.status().await;
    assert_eq!(after["round_id"], 1, "the same round continues: {after}");
    assert_eq!(after["phase"], "update");
    assert_eq!(
        after["counts"]["update"]["accepted"], 2,
        "accepted updates survived: {after}"
    );
    assert_eq!(c.params().await, p, "same round parameters and key");
    let mut sequences = Vec::new();
    for u in &updaters[2..] {
        sequences.push(u.update_messages(&c, &p, Some(700)).await);
    }
    c.post_sequences(sequences).await;
    c.wait_phase(1, "sum2").await;
    let summers = accepted_summers(&c, &summers).await;
    let accepted = accepted_updaters(&c, summers[0], &updaters).await;
    for before_kill in &updaters[..2] {
        assert!(
            accepted
                .iter()
                .any(|u| u.keys.public == before_kill.keys.public),
            "an update accepted before the kill is still in the round"
        );
    }
    let body = summers[0].sum2_message(&c, &p).await;
    c.post(body).await;
    c.wait_for("round 2", |s| s["round_id"] == 2).await;
    let (code, raw) = c.get("/model.bin").await;
    assert_eq!(code, 200);
    // Every accepted update, before and after the kill, is in the model.
    assert_average(&raw, &accepted);
    let v1 = c.get("/model").await.1;

    // Killed after the round: the restarted coordinator serves the same model.
    server.kill();
    let _server = start(dir.path(), port, len, redis);
    let status = c.status().await;
    assert_eq!(status["global_model_round_id"], 1, "{status}");
    assert_eq!(c.get("/model.bin").await.1, raw);
    assert_eq!(c.get("/model").await.1, v1);

    // `xaynet model get` prints the same weights, from either endpoint.
    let url = format!("http://{}", c.base.trim_start_matches("http://"));
    for v1_flag in [false, true] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xaynet"));
        cmd.args(["model", "get", "--url", &url]);
        if v1_flag {
            cmd.arg("--v1");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: Vec<f64> = serde_json::from_slice(&out.stdout).unwrap();
        let served = f32s(&raw);
        assert_eq!(printed.len(), served.len());
        for (p, s) in printed.iter().zip(&served) {
            assert!((p - *s as f64).abs() <= 1e-6, "{p} vs {s}");
        }
    }
}

#[test]
fn keygen_writes_a_private_key_file_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.hex");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_xaynet"))
            .args(["keygen", "--out"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = std::fs::read_to_string(&path).unwrap();
    let secret = hex::decode(secret.trim()).unwrap();
    let key = xaynet_core::SecretSigningKey::from_libsodium_bytes(&secret).unwrap();
    assert!(stdout.contains(&format!(
        "public_key {}",
        hex::encode(key.public_key().as_bytes())
    )));
    assert!(
        !stdout.contains(&hex::encode(&secret)),
        "the secret is not printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = run();
    assert!(
        !again.status.success(),
        "an existing key file is never overwritten"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        format!("{}\n", hex::encode(&secret)).into_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_get_before_any_round_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let running = xaynet_server::server::start(test_settings(dir.path(), 4))
        .await
        .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_xaynet"))
        .args(["model", "get", "--url", &format!("http://{}", running.addr)])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no global model yet"));
    running.stop().await;
}

#[test]
fn example_config_is_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/example.toml");
    let from_file = xaynet_server::settings::Settings::load(Some(&path)).unwrap();
    let defaults = xaynet_server::settings::Settings::default();
    assert_eq!(format!("{from_file:?}"), format!("{defaults:?}"));
}

#[test]
fn invalid_settings_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[pet.sum]\nprob = 1.5\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xaynet"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pet.sum.prob"), "{err}");
    // Environment variables override the file, key by key.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xaynet"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("XAYNET__PET__SUM__PROB", "0.4")
        .env("XAYNET__MODEL__LENGTH", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("model.length"),
        "the sum prob was fixed by the variable: {err}"
    );
}
