//! The ClusterIP data path of a nodeless host, done the way kube-proxy's nftables mode does:
//! Services and EndpointSlices from the API become one nftables table (`ip nodeless`) that
//! DNATs traffic to a ClusterIP port to one of its ready endpoints, from instances (prerouting)
//! and from the host itself (output). The kernel does the forwarding: no proxy process sits in
//! the connection's path, so a ClusterIP costs about what a Pod IP does.
//!
//! 1. `model`: Services and EndpointSlices → one `ServicePort` per ClusterIP port with its
//!    usable endpoints (ready ones; serving and terminating ones when none is ready).
//! 2. `rules`: `ServicePort`s → a `Ruleset` (chains, maps, affinity sets) and its `nft -f`
//!    script: a full replacement on the first sync, in-place updates after.
//! 3. `sync`: watch signals → when to sync (coalesced, retried); `Syncer` skips unchanged
//!    rulesets.
//! 4. `nft`: the `nft` binary behind `NftApplier`, with a fake for tests; `conntrack`: the
//!    UDP flows each sync leaves stale, forgotten through the `conntrack` binary.
//! 5. `sysctl`: ip_forward and br_netfilter's bridge-nf-call-iptables.
//!
//! The table stays when the proxy stops: instances keep running across an agent restart and
//! keep reaching Services. `remove_rules` takes it away (uninstall).

pub mod conntrack;
pub mod model;
pub mod nft;
pub mod rules;
pub mod sync;
pub mod sysctl;

#[cfg(test)]
mod fixtures;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tokio_util::sync::CancellationToken;

pub use conntrack::{Conntrack, FakeConntrack, Flows, HostConntrack};
pub use model::{service_ports, Endpoint, Protocol, ServicePort};
pub use nft::{FakeNft, HostNft, NftApplier, NftError};
pub use rules::{RulesConfig, Ruleset};
pub use sync::{SyncOutcome, Syncer};
pub use sysctl::SysctlError;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("prepare host for the service data path: {0}")]
    Sysctl(#[from] SysctlError),
    #[error(transparent)]
    Nft(#[from] NftError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The nftables table (family `ip`) the proxy owns outright.
    pub table: String,
    /// The instances' subnet (the engine's network; 10.88.0.0/16 unless it collided):
    /// traffic to ClusterIPs from elsewhere, the host included, is masqueraded.
    pub pod_cidr: Option<Ipv4Net>,
    /// The ClusterIP range: unallocated addresses in it are dropped.
    pub service_cidr: Option<Ipv4Net>,
    /// The packet mark bit for "masquerade this" (kube-proxy's default bit).
    pub masquerade_mark: u32,
    /// Syncs are at least this far apart; changes in between are applied together.
    pub min_sync_interval: Duration,
    pub nft_path: PathBuf,
    /// Where sysctls are set (tests point it elsewhere).
    pub proc_sys: PathBuf,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            table: "nodeless".into(),
            pod_cidr: Some(Ipv4Net::new([10, 88, 0, 0].into(), 16).expect("valid prefix")),
            service_cidr: Some(Ipv4Net::new([10, 96, 0, 0].into(), 12).expect("valid prefix")),
            masquerade_mark: 0x4000,
            min_sync_interval: Duration::from_millis(100),
            nft_path: "nft".into(),
            proc_sys: "/proc/sys".into(),
        }
    }
}

impl ProxyConfig {
    pub fn rules_config(&self) -> RulesConfig {
        RulesConfig {
            table: self.table.clone(),
            pod_cidr: self.pod_cidr,
            service_cidr: self.service_cidr,
            masquerade_mark: self.masquerade_mark,
        }
    }
}

/// Programs this host's ClusterIP data path from the API until `shutdown`. Fails only at
/// start (sysctls that cannot be set, no `nft`); failed applies later are logged and retried.
pub async fn run(
    client: kube::Client,
    config: ProxyConfig,
    shutdown: CancellationToken,
) -> Result<(), ProxyError> {
    let changed = sysctl::prepare_host(&config.proc_sys)?;
    if !changed.is_empty() {
        tracing::info!(?changed, "set sysctls for the service data path");
    }
    let nft = HostNft::new(&config.nft_path).await?;
    run_with(client, config, Arc::new(nft), shutdown).await;
    Ok(())
}

/// `run` over any applier, without touching sysctls.
pub async fn run_with(
    client: kube::Client,
    config: ProxyConfig,
    applier: Arc<dyn NftApplier>,
    shutdown: CancellationToken,
) {
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let signals = futures::stream::select(
        signals(
            Api::<Service>::all(client.clone()),
            services_writer,
            sync::Kind::Services,
        ),
        signals(
            Api::<EndpointSlice>::all(client),
            slices_writer,
            sync::Kind::EndpointSlices,
        ),
    );
    let snapshot = || snapshot(&services, &slices);
    let mut syncer = Syncer::new(applier, config.rules_config())
        .with_conntrack(Arc::new(HostConntrack::default()));
    tracing::info!(table = %config.table, "service proxy started");
    sync::drive(
        signals,
        snapshot,
        &mut syncer,
        config.min_sync_interval,
        shutdown,
    )
    .await;
}

/// Deletes the proxy's table: every ClusterIP stops working on this host.
pub async fn remove_rules(config: &ProxyConfig) -> Result<(), ProxyError> {
    let nft = HostNft::new(&config.nft_path).await?;
    nft.apply(&rules::render_delete(&config.table)).await?;
    Ok(())
}

fn snapshot(services: &Store<Service>, slices: &Store<EndpointSlice>) -> Vec<ServicePort> {
    let services = services.state();
    let slices = slices.state();
    service_ports(
        services.iter().map(|s| s.as_ref()),
        slices.iter().map(|s| s.as_ref()),
    )
}

/// A watch kept in a reflector cache, reduced to sync signals; errors are logged (the
/// watcher retries with backoff).
fn signals<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    kind: sync::Kind,
) -> std::pin::Pin<Box<dyn Stream<Item = sync::Signal> + Send>>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .filter_map(move |event| async move {
            match event {
                Ok(watcher::Event::InitDone) => Some(sync::Signal::Listed(kind)),
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                    Some(sync::Signal::Changed)
                }
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => None,
                Err(e) => {
                    tracing::warn!(?kind, error = %e, "watch failed; retrying");
                    None
                }
            }
        })
        .boxed()
}
