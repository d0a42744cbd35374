//! What the integration tests share: an API server on 127.0.0.1:0 over a temporary data
//! directory, and a kube-rs client that reaches it through the kubeconfig the server writes.

// Every test binary compiles this module and each uses only part of it.
#![allow(dead_code)]

pub mod node;

use kube::{Client, Config};
use nodeless_apiserver::server::Limits;
use nodeless_apiserver::Running;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

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

impl Cluster {
    fn running(&self) -> &Running {
        self.running.as_ref().expect("running until dropped")
    }

    /// The admin bearer token the server wrote into its data directory.
    pub fn admin_token(&self) -> anyhow::Result<String> {
        let path = self._dir.path().join("pki").join("admin.token");
        Ok(std::fs::read_to_string(path)?.trim().to_string())
    }

    /// A TLS connection to the server that trusts its CA and speaks HTTP/1.1 only, for
    /// writing raw requests (upgrades) by hand.
    pub async fn raw_http1(&self) -> anyhow::Result<TlsStream<TcpStream>> {
        self.raw_tls(b"http/1.1").await
    }

    /// A TLS connection to the server offering only `alpn`.
    pub async fn raw_tls(&self, alpn: &[u8]) -> anyhow::Result<TlsStream<TcpStream>> {
        let ca = std::fs::read(self._dir.path().join("pki").join("ca.crt"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca.as_slice()) {
            roots.add(cert?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![alpn.to_vec()];
        let addr = self.running().addr;
        let tcp = TcpStream::connect(addr).await?;
        let name = rustls::pki_types::ServerName::from(addr.ip());
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await?;
        Ok(tls)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            drop(tokio::spawn(r.shutdown()));
        }
    }
}
