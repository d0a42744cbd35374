//! What `nodeless runtime`, `nodeless agent` and `nodeless up` share to open a host's
//! instance engine: registry settings and the engine's parts.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use nodeless_engine::image::{ImageService, RegistryConfig};
use nodeless_engine::instance::EngineConfig;
use nodeless_engine::instance::{EngineParts, LocalEngine, NetworkProvider};

#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Send pulls for REGISTRY to URL, e.g. docker.io=http://127.0.0.1:5000 (http:// is plain HTTP).
    #[arg(long = "registry-mirror", value_name = "REGISTRY=URL")]
    pub registry_mirrors: Vec<String>,
    /// A registry reached over plain HTTP (or TLS without verification).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
}

impl RegistryArgs {
    pub fn config(&self) -> anyhow::Result<RegistryConfig> {
        let mut registry = RegistryConfig::default();
        for m in &self.registry_mirrors {
            registry.mirrors.push(
                RegistryConfig::parse_mirror(m)
                    .with_context(|| format!("--registry-mirror {m}"))?,
            );
        }
        registry.insecure = self.insecure_registries.clone();
        Ok(registry)
    }
}

/// The image store and engine rooted at `root` (images, instances, network state). A
/// long-running process (the agent) refills the warm network pool in the background; a
/// one-shot CLI must not (see [`host_network`]).
pub fn open_engine(
    root: &Path,
    registry: &RegistryArgs,
    fill_in_background: bool,
) -> anyhow::Result<HostEngine> {
    let images = ImageService::open(&root.join("images"), registry.config()?)
        .context("cannot open the image store")?;
    let network = host_network(root, fill_in_background)?;
    let engine = LocalEngine::open(EngineParts::host(
        EngineConfig::new(root.to_path_buf()),
        Arc::new(images.clone()),
        Arc::new(network.clone()) as Arc<dyn NetworkProvider>,
    ))
    .with_context(|| format!("cannot open the instance engine in {}", root.display()))?;
    Ok(HostEngine {
        images,
        network,
        engine,
    })
}

/// A host's instance engine and the parts others need to see (the network's subnet and
/// gateway for the service data path and cluster DNS).
pub struct HostEngine {
    pub images: ImageService,
    pub network: nodeless_engine::network::Network,
    pub engine: LocalEngine,
}

/// CNI networking for instances: a bridge, one namespace and address per instance.
/// `fill_in_background`: whether a filler task tops the warm pool up after each attach.
pub fn host_network(
    root: &Path,
    fill_in_background: bool,
) -> anyhow::Result<nodeless_engine::network::Network> {
    let mut cfg = nodeless_engine::network::NetworkConfig::new(root.join("network"));
    cfg.fill_in_background = fill_in_background;
    nodeless_engine::network::Network::new(cfg).context("cannot set up instance networking")
}
