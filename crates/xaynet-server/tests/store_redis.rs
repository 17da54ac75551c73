#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The Redis store passes the storage conformance suite against a real redis-server, and two
//! prefixes in one Redis do not see each other.
use xaynet_server::store::redis::RedisStore;
use xaynet_server::store::{conformance, Store};
use xaynet_test_support::process::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_conformance_and_prefixes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = RedisStore::connect(&redis.url, "coordinator-a:")
        .await
        .unwrap();
    conformance::run(&a).await.unwrap();
    let b = RedisStore::connect(&redis.url, "coordinator-b:")
        .await
        .unwrap();
    conformance::run(&b).await.unwrap();
    let fresh = RedisStore::connect(&redis.url, "coordinator-c:")
        .await
        .unwrap();
    assert!(
        fresh.load().await.unwrap().snapshot.is_none(),
        "prefixes are separate"
    );
    // A new connection sees what was committed.
    let again = RedisStore::connect(&redis.url, "coordinator-a:")
        .await
        .unwrap();
    assert_eq!(
        again.load().await.unwrap().snapshot.unwrap().round.round_id,
        2
    );
}
