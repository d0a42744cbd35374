//! The real images and network parts behind the engine's [`ImageSource`] and [`NetworkProvider`].

use std::collections::HashSet;
use std::path::Path;

use async_trait::async_trait;

use super::deps::{DepError, ImageSource, NetAttachment, NetworkProvider, PulledImage};
use super::spec::{PortMapping, PullPolicy, RegistryAuth};
use crate::image::{self, ImageService};
use crate::network::{self, Network};

fn dep(e: impl std::fmt::Display) -> DepError {
    DepError(e.to_string())
}

#[async_trait]
impl NetworkProvider for Network {
    async fn attach(
        &self,
        instance_id: &str,
        ports: &[PortMapping],
    ) -> Result<NetAttachment, DepError> {
        let att = Network::attach(self, instance_id, ports)
            .await
            .map_err(dep)?;
        Ok(NetAttachment {
            netns: Some(att.netns),
            ip: Some(att.ip),
            gateway: Some(att.gateway),
        })
    }

    async fn detach(&self, instance_id: &str) -> Result<(), DepError> {
        Network::detach(self, instance_id).await.map_err(dep)
    }

    async fn cleanup_orphans(&self, live: &HashSet<String>) -> Result<(), DepError> {
        Network::cleanup_orphans(self, live)
            .await
            .map(|_| ())
            .map_err(dep)
    }

    async fn connect(&self, netns: &Path, port: u16) -> Result<tokio::net::TcpStream, DepError> {
        network::connect_in_netns(netns, port).await.map_err(dep)
    }
}

#[async_trait]
impl ImageSource for ImageService {
    async fn ensure(
        &self,
        reference: &str,
        policy: PullPolicy,
        auth: Option<&RegistryAuth>,
    ) -> Result<PulledImage, DepError> {
        let policy = match policy {
            PullPolicy::Always => image::PullPolicy::Always,
            PullPolicy::IfNotPresent => image::PullPolicy::IfNotPresent,
            PullPolicy::Never => image::PullPolicy::Never,
        };
        let img = ImageService::ensure(self, reference, policy, auth)
            .await
            .map_err(|e| DepError(e.to_string()))?;
        Ok(PulledImage {
            reference: img.reference,
            digest: img.digest,
            entrypoint: img.config.entrypoint,
            cmd: img.config.cmd,
            env: img.config.env,
            working_dir: img.config.working_dir,
            user: img.config.user,
            stop_signal: img.config.stop_signal,
            layers: img.layers,
        })
    }
}
