//! The engine's view of its two sibling parts, images and networking, as traits: the real
//! `ImageService` and `Network` are adapted in `adapters.rs`; tests use the local ones here.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::spec::{PortMapping, PullPolicy, RegistryAuth};

/// What the engine needs to know about a pulled image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PulledImage {
    pub reference: String,
    pub digest: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    /// Unpacked snapshot directories, lowest first.
    pub layers: Vec<PathBuf>,
}

/// A failure in images or networking, kept as text with its kind for the caller.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DepError(pub String);

#[async_trait]
pub trait ImageSource: Send + Sync {
    async fn ensure(
        &self,
        reference: &str,
        policy: PullPolicy,
        auth: Option<&RegistryAuth>,
    ) -> Result<PulledImage, DepError>;
}

/// An instance's place on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetAttachment {
    /// `None`: the containers get a private network namespace with only loopback.
    pub netns: Option<PathBuf>,
    pub ip: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
}

#[async_trait]
pub trait NetworkProvider: Send + Sync {
    async fn attach(
        &self,
        instance_id: &str,
        ports: &[PortMapping],
    ) -> Result<NetAttachment, DepError>;
    /// Idempotent.
    async fn detach(&self, instance_id: &str) -> Result<(), DepError>;
    async fn cleanup_orphans(&self, live: &HashSet<String>) -> Result<(), DepError>;
    async fn connect(&self, netns: &Path, port: u16) -> Result<tokio::net::TcpStream, DepError>;
}

/// No networking: each container gets an unconnected namespace. For tests and hosts without CNI.
#[derive(Debug, Default, Clone)]
pub struct NoNetwork;

#[async_trait]
impl NetworkProvider for NoNetwork {
    async fn attach(&self, _: &str, _: &[PortMapping]) -> Result<NetAttachment, DepError> {
        Ok(NetAttachment {
            netns: None,
            ip: None,
            gateway: None,
        })
    }
    async fn detach(&self, _: &str) -> Result<(), DepError> {
        Ok(())
    }
    async fn cleanup_orphans(&self, _: &HashSet<String>) -> Result<(), DepError> {
        Ok(())
    }
    async fn connect(&self, _: &Path, port: u16) -> Result<tokio::net::TcpStream, DepError> {
        Err(DepError(format!("no network: cannot reach port {port}")))
    }
}

/// Images already on disk, by reference: for tests and air-gapped hosts.
#[derive(Debug, Default, Clone)]
pub struct LocalImages {
    pub images: std::collections::HashMap<String, PulledImage>,
}

#[async_trait]
impl ImageSource for LocalImages {
    async fn ensure(
        &self,
        reference: &str,
        _: PullPolicy,
        _: Option<&RegistryAuth>,
    ) -> Result<PulledImage, DepError> {
        self.images
            .get(reference)
            .cloned()
            .ok_or_else(|| DepError(format!("image {reference} not found locally")))
    }
}
