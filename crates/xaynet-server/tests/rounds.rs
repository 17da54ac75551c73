#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Full rounds over real HTTP on 127.0.0.1 with many in-process participants.
use xaynet_core::Model;
use xaynet_test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_rounds_with_embedded_storage() {
    full_rounds_with_many_participants(None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_rounds_with_redis_storage_and_s3_models() {
    let Some(redis) = xaynet_test_support::process::RedisServer::start() else {
        return;
    };
    let Some(s3) = xaynet_test_support::process::S3Server::start() else {
        return;
    };
    full_rounds_with_many_participants(Some(&redis.url), Some(&s3)).await;
}

async fn full_rounds_with_many_participants(
    redis: Option<&str>,
    s3: Option<&xaynet_test_support::process::S3Server>,
) {
    let dir = tempfile::tempdir().unwrap();
    let len = 20;
    let mut settings = test_settings(dir.path(), len);
    if let Some(url) = redis {
        settings.storage.backend = "redis".into();
        settings.redis.url = url.into();
    }
    if let Some(s3) = s3 {
        settings.s3 = s3.settings();
    }
    let restart_settings = settings.clone();
    let running = xaynet_server::server::start(settings).await.unwrap();
    let c = Client::new(running.addr);
    assert_eq!(
        c.get("/model").await.0,
        204,
        "no model before the first round"
    );
    assert_eq!(c.get("/model.bin").await.0, 404);
    assert_eq!(c.get("/health").await.0, 200);
    assert_eq!(c.get("/ready").await.0, 200);
    let ps: Vec<Participant> = (0..30)
        .map(|i| Participant::new(i, model(i, len)))
        .collect();

    for round in 1..=2u64 {
        c.wait_phase(round, "sum").await;
        let p = c.params().await;
        let (summers, updaters) = roles(&ps, &p);
        assert!(
            !summers.is_empty() && updaters.len() >= 3,
            "{} summers, {} updaters",
            summers.len(),
            updaters.len()
        );
        c.post_all(summers.iter().map(|s| s.sum_message(&p)).collect())
            .await;
        c.wait_phase(round, "update").await;
        // Half of the updaters chunk their message into ~1 kB requests.
        let mut sequences = Vec::new();
        for (i, u) in updaters.iter().enumerate() {
            let max = if i % 2 == 0 { Some(1000) } else { None };
            sequences.push(u.update_messages(&c, &p, max).await);
        }
        c.post_sequences(sequences).await;
        c.wait_phase(round, "sum2").await;
        // One summer's mask is enough; the others may drop out.
        let summers = accepted_summers(&c, &summers).await;
        let updaters = accepted_updaters(&c, summers[0], &updaters).await;
        assert!(updaters.len() >= 3);
        let body = summers[0].sum2_message(&c, &p).await;
        assert_eq!(c.post(body).await, 200);
        let status = c
            .wait_for("next round", |s| s["round_id"] == round + 1)
            .await;
        assert_eq!(status["global_model_round_id"], round, "{status}");
        let (code, raw) = c.get("/model.bin").await;
        assert_eq!(code, 200);
        assert_average(&raw, &updaters);
        let got = f32s(&raw);
        let (code, body) = c.get("/model").await;
        assert_eq!(code, 200);
        let exact = Model::from_bincode(&body).unwrap().to_f32().unwrap();
        assert_eq!(exact, got);
    }
    let metrics = String::from_utf8(c.get("/metrics").await.1).unwrap();
    assert!(
        metrics.contains("xaynet_rounds_total{result=\"completed\"} 2"),
        "{metrics}"
    );
    let model = c.get("/model").await.1;
    running.stop().await;
    if let Some(s3) = s3 {
        // The model is an object in the bucket, not a local file.
        assert!(!dir.path().join("models").exists());
        let listing = reqwest::get(format!("{}/{}", s3.endpoint, s3.bucket))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(listing.contains("<Key>2_"), "{listing}");
    }
    // A restarted coordinator serves the last model from the model store.
    let running = xaynet_server::server::start(restart_settings)
        .await
        .unwrap();
    let c = Client::new(running.addr);
    assert_eq!(c.get("/model").await.1, model);
    running.stop().await;
}
