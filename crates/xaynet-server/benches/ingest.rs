#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Coordinator ingest of Update messages for a 1,000,000-weight model.
//!
//! `cargo bench -p xaynet-server --bench ingest [-- UPDATES]` runs `XAYNET_BENCH_RUNS`
//! (default 5) times: start a coordinator with the default settings (embedded store in a
//! temporary directory), register one summer, then POST UPDATES (default 24) sealed Update
//! messages over HTTP on 127.0.0.1 from `XAYNET_BENCH_SENDERS` (default 8) concurrent senders,
//! each sending its next message once the previous one is answered. Each run reports:
//! * the floor: opening and verifying the same messages on all cores and nothing else, the
//!   fastest way we have (one pass, one reused buffer per thread);
//! * the ingest: from the first POST until every update is durably accepted and answered;
//! * their ratio in CPU time (the coordinator's threads during the ingest against the
//!   floor's) and in wall-clock time (the bench's HTTP client shares the cores);
//! * the wall-clock ratio to a bare HTTP server that receives the same bodies from the same
//!   client and opens and verifies them, nothing else (what any server must do);
//! * updates per second per core.
//!
//! The medians over the runs close the report.

use std::time::Instant;

use xaynet_core::crypto::{OsRng, SigningKeyPair};
use xaynet_core::eligibility::{Task, TaskSignatures};
use xaynet_core::mask::{MaskObject, MaskSeed, Masker};
use xaynet_core::message::{Message, MessageBuffer, Payload, SealedMessageReader, Tag, Update};
use xaynet_core::model::{Scalar, Weights};
use xaynet_core::rest::sum_dict_from_bincode;
use xaynet_core::EncryptKeyPair;
use xaynet_server::pipeline::BufferPool;
use xaynet_server::settings::Settings;
use xaynet_test_support::{Client, Participant};

/// The allocator of the `xaynet` binary, so that the bench measures what users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LEN: usize = 1_000_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run's figures.
struct Run {
    floor_wall: f64,
    floor_cpu: f64,
    bare_wall: f64,
    bare_cpu: f64,
    wall: f64,
    coord_cpu: f64,
    client_cpu: f64,
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(24);
    let runs = env_number("XAYNET_BENCH_RUNS", 5).max(1);
    let senders = env_number("XAYNET_BENCH_SENDERS", 8).max(1);
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    // The coordinator on its own runtime with named threads (its blocking threads carry the
    // name too), so that its CPU time can be told from the client's.
    let coordinator = named_runtime("xn-coord");
    // The bare HTTP server of the baseline gets a runtime of its own, alike.
    let bare = named_runtime("xn-bare");
    let client = named_runtime("xn-client");
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);

    // The masked model is the participants' work and the same for every run.
    let weights: Vec<f32> = (0..LEN)
        .map(|i| ((i % 2000) as f32 / 1000.0) - 1.0)
        .collect();
    let seed = MaskSeed::generate(&mut OsRng);
    let masked = Masker::new(Default::default())
        .mask(&seed, Weights::F32(&weights), &Scalar::unit())
        .unwrap();

    println!(
        "coordinator ingest, {n} Update messages of {LEN} f32 weights, {cores} cores, {senders} concurrent senders, embedded store, {runs} runs"
    );
    let setup = Setup {
        coordinator: &coordinator,
        bare: &bare,
        n,
        senders,
        cores,
        masked: &masked,
        seed: &seed,
    };
    let mut results = Vec::new();
    for run in 1..=runs {
        let r = client.block_on(one_run(&setup, run == 1));
        println!(
            "  run {run}: open + verify {:.2} s (CPU {:.2} s); over HTTP {:.2} s (server CPU {:.2} s); coordinator ingest {:.2} s (CPU {:.2} s, client CPU {:.2} s): CPU ratio {:.2}, wall ratio {:.2}, over HTTP {:.2}; {:.1} updates/s/core",
            r.floor_wall,
            r.floor_cpu,
            r.bare_wall,
            r.bare_cpu,
            r.wall,
            r.coord_cpu,
            r.client_cpu,
            r.coord_cpu / r.floor_cpu,
            r.wall / r.floor_wall,
            r.wall / r.bare_wall,
            n as f64 / r.wall / cores as f64
        );
        results.push(r);
    }
    let wall_ratio = median(results.iter().map(|r| r.wall / r.floor_wall).collect());
    let cpu_ratio = median(results.iter().map(|r| r.coord_cpu / r.floor_cpu).collect());
    let per_core = median(
        results
            .iter()
            .map(|r| n as f64 / r.wall / cores as f64)
            .collect(),
    );
    let http_ratio = median(results.iter().map(|r| r.wall / r.bare_wall).collect());
    println!("  median over {runs} runs: updates per second per core {per_core:.1}");
    println!("  median ratio ingest / (open + verify), CPU time of the coordinator: {cpu_ratio:.2} (goal <= 1.3)");
    println!("  median ratio ingest / (open + verify), wall clock (client on the same cores): {wall_ratio:.2}");
    println!(
        "  median ratio ingest / (receive over HTTP + open + verify), wall clock: {http_ratio:.2}"
    );
}

/// What every run shares.
struct Setup<'a> {
    coordinator: &'a tokio::runtime::Runtime,
    bare: &'a tokio::runtime::Runtime,
    n: usize,
    senders: usize,
    cores: usize,
    masked: &'a MaskObject,
    seed: &'a MaskSeed,
}

/// Starts a coordinator, ingests `n` updates, and measures the floor and the bare HTTP
/// server on the same messages.
async fn one_run(setup: &Setup<'_>, details: bool) -> Run {
    let &Setup {
        coordinator,
        bare,
        n,
        senders,
        cores,
        masked,
        seed,
    } = setup;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let running = coordinator
        .spawn(xaynet_server::server::start(settings))
        .await
        .unwrap()
        .unwrap();
    let c = Client::new(running.addr);
    c.wait_phase(1, "sum").await;
    let p = c.params().await;
    assert_eq!(p.mask_config, masked.configs(), "the default mask config");

    // One summer.
    let summer = (0..10_000u32)
        .map(|i| Participant::new(i, Vec::new()))
        .find(|x| x.task(&p) == Task::Sum)
        .expect("a summer");
    c.post(summer.sum_message(&p)).await;
    c.wait_phase(1, "update").await;
    let sums = sum_dict_from_bincode(&c.get("/sums").await.1).unwrap();

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
    let keys = running.published.borrow().ctx.keys.clone();

    // The floor, the fastest way we have: one pass into one reused buffer per thread.
    let (floor_wall, floor_cpu) = open_verify_all(&bodies, &keys, cores, true);
    if details {
        let (two_pass, two_pass_cpu) = open_verify_all(&bodies, &keys, cores, false);
        println!(
            "  (first run) the floor the two-pass way (open, then verify): {two_pass:.2} s, CPU {two_pass_cpu:.2} s"
        );
        print_stages(&bodies[0], &signed_one, &keys, masked);
        let (transport, _) = bare_server(bare, &bodies, senders, cores, &keys, false).await;
        println!(
            "  (first run) HTTP transfer alone (same client and bodies, a handler that only reads them): {transport:.2} s"
        );
    }
    // The same over HTTP: a bare server that receives, opens and verifies, nothing else.
    let (bare_wall, bare_cpu) = bare_server(bare, &bodies, senders, cores, &keys, true).await;

    // Ingest.
    let coord_cpu_start = cpu("xn-coord");
    let client_cpu_start = cpu("xn-client");
    let start = Instant::now();
    post_all(format!("{}/message", c.base), bodies, senders).await;
    let wall = start.elapsed().as_secs_f64();
    let coord_cpu = cpu("xn-coord") - coord_cpu_start;
    let client_cpu = cpu("xn-client") - client_cpu_start;
    let status = c.status().await;
    let accepted = status["counts"]["update"]["accepted"].as_u64().unwrap();
    assert_eq!(accepted as usize, n, "every update accepted: {status}");
    running.stop().await;
    Run {
        floor_wall,
        floor_cpu,
        bare_wall,
        bare_cpu,
        wall,
        coord_cpu,
        client_cpu,
    }
}

/// The coordinator's settings: the defaults, with the round held in its Update phase.
fn settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.api.bind_address = "127.0.0.1:0".parse().unwrap();
    s.storage.data_dir = dir.to_path_buf();
    s.model.length = LEN;
    s.pet.sum.prob = Some(0.05);
    s.pet.update.prob = Some(1.0);
    s.pet.sum.count.min = 1;
    s.pet.sum.time.min = 0.2;
    s.pet.update.count.max = 1000;
    s.pet.update.time.min = 3600.0;
    s.pet.update.time.max = 7200.0;
    s
}

/// Opens and verifies every body on `cores` threads; (wall, process CPU) seconds.
fn open_verify_all(
    bodies: &[Vec<u8>],
    keys: &EncryptKeyPair,
    cores: usize,
    one_pass: bool,
) -> (f64, f64) {
    let cpu_start = cpu("");
    let start = Instant::now();
    std::thread::scope(|scope| {
        for part in bodies.chunks(bodies.len().div_ceil(cores)) {
            scope.spawn(move || {
                let mut buffer = Vec::new();
                for body in part {
                    if one_pass {
                        buffer = open_and_verify(keys, [&body[..]], buffer);
                    } else {
                        let plain = keys.open(body).unwrap();
                        MessageBuffer::new(&plain)
                            .unwrap()
                            .verify_signature()
                            .unwrap();
                    }
                }
            });
        }
    });
    (start.elapsed().as_secs_f64(), cpu("") - cpu_start)
}

/// Where one message's CPU time goes, on one core (medians of 5).
fn print_stages(sealed: &[u8], signed: &[u8], keys: &EncryptKeyPair, masked: &MaskObject) {
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
    let mut buffer = Vec::new();
    let one_pass = time(&mut || {
        buffer = open_and_verify(keys, [sealed], std::mem::take(&mut buffer));
    });
    let open = time(&mut || {
        keys.open(sealed).unwrap();
    });
    let verify = time(&mut || {
        MessageBuffer::new(signed)
            .unwrap()
            .verify_signature()
            .unwrap()
    });
    let parse = time(&mut || {
        Message::from_buffer(&MessageBuffer::new(signed).unwrap()).unwrap();
    });
    let mut agg = xaynet_core::mask::Aggregation::new(masked.configs(), LEN);
    agg.aggregate_ref(masked).unwrap();
    let add = time(&mut || {
        let mut a = agg.clone();
        a.aggregate_ref(masked).unwrap();
    });
    let encode = time(&mut || {
        agg.sum().unwrap().to_bytes();
    });
    println!("  (first run) one message on one core: open + verify in one pass {one_pass:.1} ms (open {open:.1} ms, verify {verify:.1} ms as separate passes), parse {parse:.1} ms, add to the aggregate (with an 8 MB clone) {add:.1} ms, encode the aggregate {encode:.1} ms");
}

/// The same client, bodies and senders against a bare HTTP server (on `runtime`, threads
/// named `xn-bare`) whose handler reads each body and, with `open_verify`, opens and verifies it in
/// one pass on a blocking thread, one message per core at a time; nothing else (no engine, no
/// storage). Returns (wall, CPU of the server's threads) seconds.
async fn bare_server(
    runtime: &tokio::runtime::Runtime,
    bodies: &[Vec<u8>],
    senders: usize,
    cores: usize,
    keys: &EncryptKeyPair,
    open_verify: bool,
) -> (f64, f64) {
    use std::sync::Arc;
    let keys = Arc::new(keys.clone());
    let permits = Arc::new(tokio::sync::Semaphore::new(cores));
    // Like the coordinator, it reads the body as the pieces it arrived in and opens it into
    // a reused buffer; unlike it, it does nothing with the message.
    let buffers = Arc::new(BufferPool::new(2 * cores, 64 << 20));
    let sink = axum::Router::new().route(
        "/message",
        axum::routing::post(move |body: axum::body::Body| {
            let (keys, permits, buffers) = (keys.clone(), permits.clone(), buffers.clone());
            async move {
                use futures_util::StreamExt;
                let mut pieces = Vec::new();
                let mut stream = body.into_data_stream();
                while let Some(piece) = stream.next().await {
                    pieces.push(piece.unwrap());
                }
                if open_verify {
                    let core = permits.acquire_owned().await.unwrap();
                    tokio::task::spawn_blocking(move || {
                        let pieces = pieces.iter().map(|p| &p[..]);
                        buffers.give(open_and_verify(&keys, pieces, buffers.take()));
                        drop(core);
                    })
                    .await
                    .unwrap();
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = listener.local_addr().unwrap();
    let server = runtime.spawn(async move { axum::serve(listener, sink).await.unwrap() });
    let bodies = bodies.to_vec();
    let cpu_start = cpu("xn-bare");
    let start = Instant::now();
    post_all(format!("http://{sink_addr}/message"), bodies, senders).await;
    let took = (start.elapsed().as_secs_f64(), cpu("xn-bare") - cpu_start);
    server.abort();
    took
}

/// A two-thread runtime whose threads (blocking ones included) are named `name`.
fn named_runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .thread_keep_alive(std::time::Duration::from_secs(3600))
        .enable_all()
        .build()
        .unwrap()
}

/// POSTs `bodies` to `url` from `senders` concurrent senders, each sending its share one
/// after the other, the next once the previous is answered.
async fn post_all(url: String, bodies: Vec<Vec<u8>>, senders: usize) {
    let share = bodies.len().div_ceil(senders).max(1);
    let mut pending = bodies.into_iter();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let part: Vec<Vec<u8>> = pending.by_ref().take(share).collect();
        let (http, url) = (reqwest::Client::new(), url.clone());
        tasks.push(tokio::spawn(async move {
            for body in part {
                let r = http.post(&url).body(body).send().await.unwrap();
                assert!(r.status().is_success(), "{}", r.status());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Opens and verifies one sealed message given in pieces, in one pass into `buffer`;
/// returns the buffer.
fn open_and_verify<'p>(
    keys: &EncryptKeyPair,
    pieces: impl IntoIterator<Item = &'p [u8]>,
    buffer: Vec<u8>,
) -> Vec<u8> {
    let mut reader = SealedMessageReader::new(keys, buffer);
    for piece in pieces {
        reader.update(piece);
    }
    let opened = reader.finish().unwrap();
    MessageBuffer::new(opened.bytes()).unwrap();
    opened.verify_signature().unwrap();
    opened.into_buffer()
}

/// CPU seconds of this process's threads named `prefix…` (all for "").
fn cpu(prefix: &str) -> f64 {
    xaynet_server::metrics::thread_cpu_seconds(prefix).unwrap_or(f64::NAN)
}
