#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Bad messages are rejected without changing the round, and rounds survive dropouts and
//! fail cleanly when too few participants take part.
use xaynet_core::crypto::{EncryptKeyPair, OsRng};
use xaynet_core::eligibility::Task;
use xaynet_test_support::*;

fn counts(s: &serde_json::Value, phase: &str) -> (u64, u64, u64) {
    let c = &s["counts"][phase];
    (
        c["accepted"].as_u64().unwrap(),
        c["rejected"].as_u64().unwrap(),
        c["discarded"].as_u64().unwrap(),
    )
}

/// Runs `f` with settings on the embedded store, then on a real redis-server.
macro_rules! both_backends {
    ($embedded:ident, $redis:ident, $body:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $embedded() {
            $body(None).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $redis() {
            let Some(redis) = xaynet_test_support::process::RedisServer::start() else {
                return;
            };
            $body(Some(&redis.url)).await;
        }
    };
}

fn settings_for(
    dir: &std::path::Path,
    len: usize,
    redis: Option<&str>,
) -> xaynet_server::settings::Settings {
    let mut s = test_settings(dir, len);
    if let Some(url) = redis {
        s.storage.backend = "redis".into();
        s.redis.url = url.into();
    }
    s
}

both_backends!(
    bad_messages_embedded,
    bad_messages_redis,
    bad_messages_are_rejected_without_changing_state
);
both_backends!(
    dropouts_embedded,
    dropouts_redis,
    dropouts_and_too_few_updaters
);

async fn bad_messages_are_rejected_without_changing_state(redis: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let len = 8;
    let mut settings = settings_for(dir.path(), len, redis);
    settings.api.max_body_bytes = 64 * 1024;
    settings.pet.sum.time.min = 1.0;
    settings.pet.update.time.min = 1.0;
    let running = xaynet_server::server::start(settings).await.unwrap();
    let c = Client::new(running.addr);
    let ps: Vec<Participant> = (0..40)
        .map(|i| Participant::new(i, model(i, len)))
        .collect();
    c.wait_phase(1, "sum").await;
    let p = c.params().await;
    let (summers, updaters) = roles(&ps, &p);
    let outsider = ps.iter().find(|x| x.task(&p) == Task::None);

    // Sum phase.
    let good = summers[0].sum_message(&p);
    assert_eq!(c.post(good.clone()).await, 200);
    assert_eq!(c.post(good).await, 200, "replay");
    assert_eq!(c.post(summers[0].sum_message(&p)).await, 200, "duplicate");
    assert_eq!(c.post(vec![0u8; 300]).await, 200, "garbage");
    assert_eq!(c.post(Vec::new()).await, 200, "empty");
    assert_eq!(
        c.post(updaters[0].sum_message(&p)).await,
        200,
        "forged eligibility: an updater claims sum"
    );
    let mut other_round = p.clone();
    other_round.pk = EncryptKeyPair::generate(&mut OsRng).public;
    assert_eq!(
        c.post(summers[0].sum_message(&other_round)).await,
        200,
        "wrong round key"
    );
    let oversized = c
        .http
        .post(format!("{}/message", c.base))
        .body(vec![0u8; 65 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status().as_u16(), 413);
    // Pipeline rejections are counted asynchronously: wait for them.
    let s = c.wait_for("sum counts", |s| counts(s, "sum").1 >= 6).await;
    assert_eq!(counts(&s, "sum"), (1, 6, 0), "{s}");
    if let Some(o) = outsider {
        c.post(o.sum_message(&p)).await;
        assert_eq!(
            counts(&c.status().await, "sum").0,
            1,
            "a participant with no task is refused"
        );
    }
    c.post_all(summers[1..].iter().map(|s| s.sum_message(&p)).collect())
        .await;
    c.wait_phase(1, "update").await;
    let sums = c.get("/sums").await.1;
    assert_eq!(
        xaynet_core::rest::sum_dict_from_bincode(&sums)
            .unwrap()
            .len(),
        summers.len()
    );

    // Update phase: a Sum message now is the wrong phase; replays and summers are refused.
    c.post(summers[0].sum_message(&p)).await;
    let bodies = updaters[0].update_messages(&c, &p, None).await;
    c.post(bodies[0].clone()).await;
    c.post(bodies[0].clone()).await;
    let from_summer = summers[0].update_messages(&c, &p, None).await;
    c.post(from_summer[0].clone()).await;
    let s = c
        .wait_for("update counts", |s| counts(s, "update").1 >= 3)
        .await;
    let (accepted, rejected, _) = counts(&s, "update");
    assert_eq!(accepted, 1, "{s}");
    assert_eq!(rejected, 3, "{s}");
    // Seeds are only served in Sum2; a bad key is a 400.
    assert_eq!(c.get("/seeds?pk=AAAA").await.0, 400);
    assert_eq!(c.get("/seeds").await.0, 400);
    assert_eq!(c.get("/nothing").await.0, 404);
    running.stop().await;
}

async fn dropouts_and_too_few_updaters(redis: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let len = 8;
    let mut settings = settings_for(dir.path(), len, redis);
    settings.pet.update.time.max = 1.5;
    // Long enough for every concurrently sent Sum message to be taken.
    settings.pet.sum.time.min = 1.0;
    let running = xaynet_server::server::start(settings).await.unwrap();
    let c = Client::new(running.addr);
    let ps: Vec<Participant> = (0..60)
        .map(|i| Participant::new(i, model(i, len)))
        .collect();

    // Round 1: only two updaters send; the Update phase times out and round 2 starts.
    c.wait_phase(1, "sum").await;
    let p = c.params().await;
    let (summers, updaters) = roles(&ps, &p);
    c.post_all(summers.iter().map(|s| s.sum_message(&p)).collect())
        .await;
    c.wait_phase(1, "update").await;
    for u in &updaters[..2] {
        for b in u.update_messages(&c, &p, None).await {
            c.post(b).await;
        }
    }
    let s = c.wait_for("round 2", |s| s["round_id"] == 2).await;
    assert!(
        s["last_failure"]
            .as_str()
            .unwrap()
            .contains("update phase timed out"),
        "{s}"
    );
    assert_ne!(c.params().await.pk, p.pk, "a new round key");
    assert_eq!(
        c.get("/model").await.0,
        204,
        "a failed round publishes no model"
    );

    // Round 2: at least two summers register, only one sends Sum2; the round still completes.
    let p = c.params().await;
    let (summers, updaters) = roles(&ps, &p);
    assert!(
        summers.len() >= 2,
        "need two summers, have {}",
        summers.len()
    );
    c.post_all(summers.iter().map(|s| s.sum_message(&p)).collect())
        .await;
    c.wait_phase(2, "update").await;
    let mut sequences = Vec::new();
    for u in &updaters {
        sequences.push(u.update_messages(&c, &p, None).await);
    }
    c.post_sequences(sequences).await;
    c.wait_phase(2, "sum2").await;
    let accepted = accepted_summers(&c, &summers).await;
    assert!(accepted.len() >= 2, "two summers registered");
    let updaters = accepted_updaters(&c, accepted[0], &updaters).await;
    // Only one of them sends Sum2: the others dropped out after Sum.
    let body = accepted[0].sum2_message(&c, &p).await;
    c.post(body).await;
    let s = c.wait_for("round 3", |s| s["round_id"] == 3).await;
    assert_eq!(s["global_model_round_id"], 2, "{s}");
    assert_average(&c.get("/model.bin").await.1, &updaters);
    running.stop().await;
}

/// Under overload messages are shed (counted as discarded), nothing queues without bound,
/// and the coordinator keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_sheds_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path(), 8);
    settings.limits.max_in_flight = 1;
    settings.limits.queue_capacity = 1;
    let running = xaynet_server::server::start(settings).await.unwrap();
    let c = Client::new(running.addr);
    // Large bodies keep the single pipeline slot busy while the others arrive.
    let bodies: Vec<Vec<u8>> = (0..16).map(|_| vec![7u8; 4 << 20]).collect();
    c.post_all(bodies).await;
    let metrics = String::from_utf8(c.get("/metrics").await.1).unwrap();
    let shed: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("xaynet_messages_total") && l.contains("reason=\"overload\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    let refused: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("xaynet_messages_total") && l.contains("outcome=\"rejected\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(shed > 0, "some messages were shed: {metrics}");
    assert_eq!(shed + refused, 16, "every message got a verdict: {metrics}");
    assert_eq!(c.get("/health").await.0, 200);
    assert_eq!(c.get("/params").await.0, 200);
    running.stop().await;
}

/// POSTs `body` to `/message` with `Transfer-Encoding: chunked` in pieces of `piece` bytes,
/// over a raw socket (no Content-Length, so the server cannot refuse by the declared size);
/// returns the response's status code.
async fn post_chunked(addr: std::net::SocketAddr, body: &[u8], piece: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /message HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut out = head.into_bytes();
    for chunk in body.chunks(piece) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    // The server may answer (413) before it has read everything; a failed write is fine.
    let _ = s.write_all(&out).await;
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

/// Bodies sent in pieces (chunked transfer encoding) go through the same pipeline: a valid
/// message in small pieces is accepted, one for the wrong phase is refused, and a body that
/// grows past the limit is refused with 413 without being counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let len = 8;
    let mut settings = test_settings(dir.path(), len);
    settings.api.max_body_bytes = 64 * 1024;
    settings.pet.sum.time.min = 5.0;
    let running = xaynet_server::server::start(settings).await.unwrap();
    let c = Client::new(running.addr);
    let ps: Vec<Participant> = (0..40)
        .map(|i| Participant::new(i, model(i, len)))
        .collect();
    c.wait_phase(1, "sum").await;
    let p = c.params().await;
    let (summers, _) = roles(&ps, &p);
    assert_eq!(
        post_chunked(running.addr, &summers[0].sum_message(&p), 7).await,
        200
    );
    // An Update during the Sum phase, in pieces: refused.
    let keys = xaynet_core::crypto::SigningKeyPair::from_seed(&[9; 32]);
    let masked = xaynet_core::mask::Masker::new(p.mask_config)
        .mask(
            &xaynet_core::mask::MaskSeed::generate(&mut OsRng),
            xaynet_core::model::Weights::F32(&model(9, len)),
            &xaynet_core::model::Scalar::unit(),
        )
        .unwrap();
    let update = xaynet_core::message::Message {
        participant_pk: keys.public,
        coordinator_pk: p.pk,
        tag: xaynet_core::message::Tag::Update,
        payload: xaynet_core::message::Payload::Update(xaynet_core::message::Update {
            sum_signature: keys.sign(b"sum"),
            update_signature: keys.sign(b"update"),
            masked_model: masked,
            local_seed_dict: Default::default(),
        }),
    }
    .seal(&keys.secret, &mut OsRng);
    assert_eq!(post_chunked(running.addr, &update, 50).await, 200);
    let too_big = vec![1u8; 70 * 1024];
    assert_eq!(post_chunked(running.addr, &too_big, 4096).await, 413);
    let s = c.wait_for("sum counts", |s| counts(s, "sum").1 >= 1).await;
    assert_eq!(counts(&s, "sum"), (1, 1, 0), "{s}");
    let metrics = String::from_utf8(c.get("/metrics").await.1).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("xaynet_messages_total") && l.contains("wrong_phase")),
        "{metrics}"
    );
    assert_eq!(c.get("/health").await.0, 200);
    running.stop().await;
}
