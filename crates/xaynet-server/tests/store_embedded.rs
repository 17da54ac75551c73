#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! The embedded store passes the storage conformance suite and survives reopening.
use xaynet_server::store::embedded::EmbeddedStore;
use xaynet_server::store::{conformance, Store};

#[tokio::test]
async fn embedded_store_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let store = EmbeddedStore::open(&path).unwrap();
    conformance::run(&store).await.unwrap();
    drop(store);
    // Everything is still there after reopening the file.
    let reopened = EmbeddedStore::open(&path).unwrap();
    let loaded = reopened.load().await.unwrap();
    assert_eq!(loaded.snapshot.unwrap().round.round_id, 2);
    assert_eq!(loaded.latest_model_id.as_deref(), Some("1_0101"));
}
