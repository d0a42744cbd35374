//! What the integration tests share: an API server on 127.0.0.1:0 over a temporary data
//! directory, and a kube-rs client that reaches it through the kubeconfig the server writes.

// Every test binary compiles this module and each uses only part of it.
#![allow(dead_code)]

use kube::{Client, Config};
use nodeless_apiserver::server::Limits;
use nodeless_apiserver::Running;
use std::net::SocketAddr;
use std::path::Path;

/// A server listening on a free loopback port, storing under `data_dir`.
pub fn config(data_dir: &Path, limits: Limits) -> nodeless_apiserver::Config {
    nodeless_apiserver::Config {
        data_dir: data_dir.to_path_buf(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        limits,
    }
}

/// A kube-rs client built from the kubeconfig `running` wrote, as a user's would be.
pub async fn client_for(running: &Running) -> anyhow::Result<Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&running.kubeconfig)?;
    let cfg = Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(Client::try_from(cfg)?)
}

/// A server with default limits and a client for it; dropping it shuts the server down.
pub struct Cluster {
    pub client: Client,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

pub async fn cluster() -> anyhow::Result<Cluster> {
    let dir = tempfile::tempdir()?;
    let running = nodeless_apiserver::start(config(dir.path(), Limits::default())).await?;
    let client = client_for(&running).await?;
    Ok(Cluster {
        client,
        running: Some(running),
        _dir: dir,
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            drop(tokio::spawn(r.shutdown()));
        }
    }
}
