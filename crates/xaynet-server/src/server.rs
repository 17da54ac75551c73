//! Starting and stopping a coordinator: storage, the coordinator task and the HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::api::{router, AppState};
use crate::metrics::Metrics;
use crate::pipeline::BufferPool;
use crate::service::{Coordinator, ModelStore, Published};
use crate::settings::Settings;
use crate::store::embedded::EmbeddedStore;
use crate::store::redis::RedisStore;
use crate::store::Store;

/// A running coordinator.
pub struct Running {
    /// The address the HTTP server listens on.
    pub addr: SocketAddr,
    /// What the coordinator publishes (for in-process observers).
    pub published: watch::Receiver<Arc<Published>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the HTTP server and the coordinator task and waits for them.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Errors starting a coordinator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Invalid settings.
    #[error(transparent)]
    Settings(#[from] crate::settings::LoadError),
    /// Storage could not be opened or read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The TLS files are unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Starts a coordinator with `settings`: the configured store (embedded in
/// `storage.data_dir`, or Redis) and global models in `storage.data_dir/models`.
pub async fn start(settings: Settings) -> Result<Running, StartError> {
    settings.pet_settings()?;
    let dir = &settings.storage.data_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::store::StoreError::Backend(format!("{}: {e}", dir.display())))?;
    let models = if settings.s3.bucket.is_empty() {
        ModelStore::local(&dir.join("models"))?
    } else {
        let m = ModelStore::s3(&settings.s3)?;
        m.ping().await?;
        m
    };
    if settings.storage.backend == "redis" {
        let store = RedisStore::connect(&settings.redis.url, &settings.redis.key_prefix).await?;
        start_with(settings, store, models).await
    } else {
        let store = EmbeddedStore::open(&dir.join("coordinator.redb"))?;
        start_with(settings, store, models).await
    }
}

/// Starts a coordinator on a given store and model store.
pub async fn start_with<S: Store>(
    settings: Settings,
    store: S,
    models: ModelStore,
) -> Result<Running, StartError> {
    let pet = settings.pet_settings()?;
    let metrics = Arc::new(Metrics::default());
    let in_pipeline = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (coordinator, published) = Coordinator::start(
        pet,
        settings.limits.clone(),
        store,
        models,
        metrics.clone(),
        in_pipeline.clone(),
    )
    .await?;
    let (tx, rx) = mpsc::channel(settings.limits.queue_capacity);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let state = AppState {
        tx,
        published: published.clone(),
        in_flight: Arc::new(Semaphore::new(settings.limits.max_in_flight)),
        in_pipeline,
        cpu: Arc::new(Semaphore::new(cores)),
        metrics,
        buffers: Arc::new(BufferPool::new(2 * cores, settings.api.max_body_bytes)),
        max_body_bytes: settings.api.max_body_bytes,
    };
    let app = router(
        state,
        settings.api.max_body_bytes,
        &settings.api.cors_allowed_origins,
    );
    let listener = TcpListener::bind(settings.api.bind_address)
        .await
        .map_err(|source| StartError::Bind {
            addr: settings.api.bind_address,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: settings.api.bind_address,
        source,
    })?;
    let tls = match (&settings.api.tls_certificate, &settings.api.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(
            cert,
            key,
            settings.api.tls_client_auth.as_deref(),
        )?),
        _ => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let coordinator_task = tokio::spawn(coordinator.run(rx));
        let served = match tls {
            None => axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await
                .map_err(|e| e.to_string()),
            Some(config) => {
                let handle = axum_server::Handle::new();
                let h = handle.clone();
                tokio::spawn(async move {
                    let _ = stop_rx.await;
                    h.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
                });
                match listener.into_std() {
                    Ok(std_listener) => {
                        let rustls = axum_server::tls_rustls::RustlsConfig::from_config(config);
                        match axum_server::from_tcp_rustls(std_listener, rustls) {
                            Ok(server) => server
                                .handle(handle)
                                .serve(app.into_make_service())
                                .await
                                .map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server failed");
        }
        // The router (and with it the last request sender) is gone: the coordinator ends.
        let _ = coordinator_task.await;
    });
    tracing::info!(%addr, "coordinator listening");
    Ok(Running {
        addr,
        published,
        shutdown: Some(stop_tx),
        task,
    })
}
