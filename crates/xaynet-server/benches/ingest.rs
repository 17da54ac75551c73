#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Coordinator ingest of Update messages for a 1,000,000-weight model.
//!
//! `cargo bench -p xaynet-server --bench ingest [-- UPDATES]` starts a coordinator (embedded
//! store in a temporary directory), registers one summer, then POSTs UPDATES (default 24)
//! sealed Update messages over HTTP on 127.0.0.1, two at a time, and reports:
//! * the median time to merely open and verify one such message on one core (the floor);
//! * the ingest time per update per core (wall time × cores / updates), from the first POST
//!   to the last durable acceptance;
//! * their ratio (goal ≤ 1.3) and updates per second per core.

use std::time::Instant;

use xaynet_core::crypto::{OsRng, SigningKeyPair};
use xaynet_core::eligibility::{Task, TaskSignatures};
use xaynet_core::mask::{MaskSeed, Masker};
use xaynet_core::message::{Message, MessageBuffer, Payload, Tag, Update};
use xaynet_core::model::{Scalar, Weights};
use xaynet_core::rest::sum_dict_from_bincode;
use xaynet_test_support::{test_settings, Client, Participant};

const LEN: usize = 1_000_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // Client on this runtime; the coordinator on its own, with named threads, so that its CPU
    // time can be told from the client's.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("xn-client")
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}

async fn bench() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(24);
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path(), LEN);
    settings.pet.sum.prob = Some(0.05);
    settings.pet.update.prob = Some(1.0);
    settings.pet.sum.time.min = 0.2;
    settings.pet.update.count.max = 1000;
    settings.pet.update.time.min = 3600.0;
    settings.pet.update.time.max = 7200.0;
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let running = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("xn-coord")
            .thread_keep_alive(std::time::Duration::from_secs(3600))
            .enable_all()
            .build()
            .unwrap();
        let running = rt.block_on(xaynet_server::server::start(settings)).unwrap();
        // The coordinator's tasks live on this runtime until the process ends.
        std::mem::forget(rt);
        running
    })
    .join()
    .unwrap();
    let c = Client::new(running.addr);
    c.wait_phase(1, "sum").await;
    let p = c.params().await;

    // One summer.
    let summer = (0..10_000u32)
        .map(|i| Participant::new(i, Vec::new()))
        .find(|x| x.task(&p) == Task::Sum)
        .expect("a summer");
    c.post(summer.sum_message(&p)).await;
    c.wait_phase(1, "update").await;
    let sums = sum_dict_from_bincode(&c.get("/sums").await.1).unwrap();

    // N updaters with the same masked model (masking is the participants' work, not measured).
    eprintln!("preparing {n} sealed Update messages of {LEN} weights ...");
    let weights: Vec<f32> = (0..LEN)
        .map(|i| ((i % 2000) as f32 / 1000.0) - 1.0)
        .collect();
    let seed = MaskSeed::generate(&mut OsRng);
    let masked = Masker::new(p.mask_config)
        .mask(&seed, Weights::F32(&weights), &Scalar::unit())
        .unwrap();
    let mut bodies = Vec::new();
    let mut signed_one = Vec::new();
    let mut i = 20_000u32;
    while bodies.len() < n {
        i += 1;
        let mut s = [0u8; 32];
        s[..4].copy_from_slice(&i.to_le_bytes());
        let keys = SigningKeyPair::from_seed(&s);
        let sigs = TaskSignatures::sign(&keys.secret, &p.seed);
        if sigs.task(p.sum, p.update) != Task::Update {
            continue;
        }
        let msg = Message {
            participant_pk: keys.public,
            coordinator_pk: p.pk,
            tag: Tag::Update,
            payload: Payload::Update(Update {
                sum_signature: sigs.sum,
                update_signature: sigs.update,
                masked_model: masked.clone(),
                local_seed_dict: sums
                    .iter()
                    .map(|(k, e)| (*k, seed.encrypt(e, &mut OsRng)))
                    .collect(),
            }),
        };
        let signed = msg.to_signed_bytes(&keys.secret);
        bodies.push(p.pk.seal(&signed, &mut OsRng));
        signed_one = signed;
    }
    let size = bodies[0].len();

    // The floor: opening and verifying all the messages, on all cores, nothing else.
    let keys = running.published.borrow().ctx.keys.clone();
    let floor_cpu_start = cpu("");
    let floor_start = Instant::now();
    std::thread::scope(|scope| {
        for part in bodies.chunks(n.div_ceil(cores)) {
            let keys = &keys;
            scope.spawn(move || {
                for body in part {
                    let plain = keys.open(body).unwrap();
                    MessageBuffer::new(&plain)
                        .unwrap()
                        .verify_signature()
                        .unwrap();
                }
            });
        }
    });
    let floor = floor_start.elapsed().as_secs_f64();
    let floor_cpu = cpu("") - floor_cpu_start;

    // Where a message's CPU time goes, on one core (medians of 5).
    let time = |f: &mut dyn FnMut()| {
        median(
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect(),
        )
    };
    let open_ms = time(&mut || {
        keys.open(&bodies[0]).unwrap();
    });
    let verify_ms = time(&mut || {
        MessageBuffer::new(&signed_one)
            .unwrap()
            .verify_signature()
            .unwrap()
    });
    let parse_ms = time(&mut || {
        Message::from_buffer(&MessageBuffer::new(&signed_one).unwrap()).unwrap();
    });
    let mut agg = xaynet_core::mask::Aggregation::new(p.mask_config, LEN);
    agg.aggregate_ref(&masked).unwrap();
    let add_ms = time(&mut || {
        let mut a = agg.clone();
        a.aggregate_ref(&masked).unwrap();
    });
    let encode_ms = time(&mut || {
        agg.sum().unwrap().to_bytes();
    });
    eprintln!("one core: open {open_ms:.1} ms, verify {verify_ms:.1} ms, parse {parse_ms:.1} ms, add to aggregate (incl. a 8 MB clone) {add_ms:.1} ms, encode aggregate {encode_ms:.1} ms");

    // Transport alone: the same client and bodies against a handler that only reads them.
    let sink = axum::Router::new()
        .route(
            "/message",
            axum::routing::post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, sink).await.unwrap() });
    let senders_t: usize = std::env::var("XAYNET_BENCH_SENDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let transport_start = Instant::now();
    let mut tasks = Vec::new();
    for part in bodies.chunks(n.div_ceil(senders_t)) {
        let part = part.to_vec();
        let client = reqwest::Client::new();
        let url = format!("http://{sink_addr}/message");
        tasks.push(tokio::spawn(async move {
            for body in part {
                client.post(&url).body(body).send().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let transport = transport_start.elapsed().as_secs_f64();

    // Ingest: `senders` requests in flight, as many participants would keep it.
    let senders: usize = std::env::var("XAYNET_BENCH_SENDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    eprintln!("ingesting with {senders} concurrent senders ...");
    let coord_cpu_start = cpu("xn-coord");
    let start = Instant::now();
    let mut pending = bodies.into_iter();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let chunk: Vec<Vec<u8>> = pending.by_ref().take(n.div_ceil(senders)).collect();
        let client = reqwest::Client::new();
        let url = format!("{}/message", c.base);
        tasks.push(tokio::spawn(async move {
            for body in chunk {
                client.post(&url).body(body).send().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let wall = start.elapsed().as_secs_f64();
    let coord_cpu = cpu("xn-coord") - coord_cpu_start;
    let status = c.status().await;
    let accepted = status["counts"]["update"]["accepted"].as_u64().unwrap();
    assert_eq!(accepted as usize, n, "every update accepted: {status}");
    println!("coordinator ingest, {n} Update messages of {LEN} f32 weights ({:.1} MB sealed), {cores} cores, {senders} concurrent senders, embedded store", size as f64 / 1e6);
    println!(
        "  open + verify all messages, {cores} threads, nothing else: {:.2} s",
        floor
    );
    println!(
        "  ingest over HTTP until every update is durably accepted: {:.2} s",
        wall
    );
    println!(
        "  updates per second per core: {:.1}",
        n as f64 / wall / cores as f64
    );
    println!(
        "  ratio ingest / (open + verify): {:.2} (goal <= 1.3)",
        wall / floor
    );
    println!(
        "  CPU: coordinator during ingest {coord_cpu:.2} s, open + verify alone {floor_cpu:.2} s, ratio {:.2}",
        coord_cpu / floor_cpu
    );
    println!(
        "  HTTP transfer alone (same client and bodies, a handler that only reads them): {:.2} s",
        transport
    );
    running.stop().await;
}

/// CPU seconds of this process's threads named `prefix…` (all for "").
fn cpu(prefix: &str) -> f64 {
    xaynet_server::metrics::thread_cpu_seconds(prefix).unwrap_or(f64::NAN)
}
