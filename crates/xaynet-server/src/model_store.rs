//! Where global models are kept: a local directory or an S3-compatible bucket, through
//! `object_store`. Each model is one object named by its id (`<round>_<hex seed>`), holding
//! the exact model's compact encoding (`UnmaskedModel::encode`).

use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

use crate::store::StoreError;

/// Stores global models as objects named by their id.
#[derive(Clone)]
pub struct ModelStore {
    store: Arc<dyn ObjectStore>,
}

impl ModelStore {
    /// Models as files in `dir` (created if missing).
    pub fn local(dir: &std::path::Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(Self {
            store: Arc::new(fs),
        })
    }

    /// Any `object_store` back end.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Models in an S3-compatible bucket (which must exist).
    pub fn s3(s: &crate::settings::S3Section) -> Result<Self, StoreError> {
        let mut b = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&s.bucket)
            .with_region(if s.region.is_empty() {
                "us-east-1"
            } else {
                &s.region
            })
            .with_access_key_id(&s.access_key)
            .with_secret_access_key(&s.secret_access_key);
        if !s.endpoint.is_empty() {
            b = b
                .with_endpoint(&s.endpoint)
                .with_allow_http(s.endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = b
            .build()
            .map_err(|e| StoreError::Backend(format!("s3: {e}")))?;
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// Checks that the store answers (lists the bucket).
    pub async fn ping(&self) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        let mut listing = self.store.list(None);
        match listing.next().await {
            Some(Err(e)) => Err(StoreError::Backend(format!("model store: {e}"))),
            _ => Ok(()),
        }
    }

    pub(crate) async fn put(&self, id: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.store
            .put(&ObjectPath::from(id), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Backend(format!("storing model {id}: {e}")))
    }

    pub(crate) async fn get(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        let r = self
            .store
            .get(&ObjectPath::from(id))
            .await
            .map_err(|e| StoreError::Backend(format!("reading model {id}: {e}")))?;
        r.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| StoreError::Backend(format!("reading model {id}: {e}")))
    }
}
