//! The Kubernetes-compatible API server of nodeless.
//!
//! A request flows: [`server`] (TLS, auth, limits) → [`handlers`] (path and verb) →
//! [`rest::Api`] (object semantics: decoding, defaulting, validation, preconditions,
//! finalizers) → `nodeless_store` (the watch cache for reads, the durable backend for writes).
//! [`controllers`] keep CRDs served, namespaces' lifecycle, and garbage collection going.

mod billing;
pub mod controllers;
pub mod discovery;
pub mod handlers;
pub mod openapi;
mod openapi_cache;
pub mod pki;
mod proxy;
pub mod registry;
pub mod request;
pub mod respond;
pub mod rest;
mod reviews;
pub mod server;
pub mod services;
pub mod strategy;
mod subresources;
mod tables;
pub mod version;
mod versions;
mod watch;

use nodeless_store::{Backend, Cache, SqliteBackend};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch as tokio_watch;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the store: {0}")]
    Store(#[from] nodeless_store::StoreError),
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare the cluster: {0}")]
    Bootstrap(nodeless_core::StatusError),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub limits: server::Limits,
}

/// A running API server.
pub struct Running {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub api: rest::Api,
    shutdown: tokio_watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting requests and waits for the server and its controllers to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Opens the store in `data_dir`, serves it on `listen`, and writes `data_dir/kubeconfig`.
pub async fn start(config: Config) -> Result<Running, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let backend: Arc<dyn Backend> = Arc::new(SqliteBackend::open_sqlite(
        &config.data_dir.join("state.db"),
    )?);
    let cache = Cache::start(backend.clone()).await?;
    let api = rest::Api::new(registry::Registry::with_builtins(), backend.clone(), cache);
    controllers::crd::reconcile(&api)
        .await
        .map_err(StartError::Bootstrap)?;
    controllers::namespace::ensure_builtin(&api)
        .await
        .map_err(StartError::Bootstrap)?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen,
        source,
    })?;
    let creds = pki::Credentials::load_or_create(&config.data_dir, addr)?;
    let kubeconfig = config.data_dir.join("kubeconfig");
    let display = server::socket_display(addr);
    creds.write_kubeconfig(&kubeconfig, &format!("https://{display}"))?;
    let tls = creds.server_config()?;

    let (shutdown, rx) = tokio_watch::channel(false);
    let state = Arc::new(server::State::new(
        api.clone(),
        creds.admin_token.clone(),
        display,
        config.limits,
    ));
    let tasks = vec![
        tokio::spawn(server::serve(listener, tls, state, rx.clone())),
        tokio::spawn(controllers::crd::run(api.clone(), rx.clone())),
        tokio::spawn(controllers::namespace::run(api.clone(), rx.clone())),
        tokio::spawn(controllers::gc::run(api.clone(), rx.clone())),
        tokio::spawn(compactor(backend, rx)),
    ];
    Ok(Running {
        addr,
        kubeconfig,
        api,
        shutdown,
        tasks,
    })
}

/// Compacts the store's history every five minutes to what was current five minutes ago,
/// as kube-apiserver asks etcd to.
async fn compactor(backend: Arc<dyn Backend>, mut shutdown: tokio_watch::Receiver<bool>) {
    let mut previous = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(300)) => {}
            _ = shutdown.changed() => return,
        }
        let Ok(now) = backend.current_revision().await else {
            continue;
        };
        if let Some(rev) = previous {
            if let Err(e) = backend.compact(rev).await {
                tracing::warn!(error = %e, "compaction failed");
            }
        }
        previous = Some(now);
    }
}
