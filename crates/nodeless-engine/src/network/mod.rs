//! Instance networking with CNI: one network namespace and one IP per instance, on a Linux
//! bridge, through the standard plugins of Debian's `containernetworking-plugins`.
//!
//! The namespace's `lo` is set up as the namespace is made (netns.rs), as the `loopback`
//! plugin would, without its process start. The chain nodeless runs for each instance
//! (written to `<state_dir>/<name>.conflist` too):
//! 1. `bridge` creates `nodeless0` (the gateway), a veth pair with `eth0` in the namespace,
//!    and gives it, through the `static` IPAM plugin, the address nodeless reserved for the
//!    instance (ipam.rs: host-local's lease files, without its O(instances) scan per ADD),
//!    with a default route through the gateway;
//! 2. `portmap` maps host ports to the instance (only for instances that publish ports).
//!
//! Egress masquerading (optional) is one nat rule for the whole subnet, and forwarding is
//! accepted for the bridge (hosts with Docker drop it by default), both set when the network
//! opens (`masquerade.rs`, `forward.rs`; `host_rules.rs` skips the check while the kernel's
//! ruleset is unchanged since the last one), so attach and detach run no iptables unless
//! ports are published.
//!
//! Namespaces are named files, `/run/netns/nodeless-<id>`, so a restarted engine finds them.
//! Detach runs DEL with the cached ADD result and an empty `CNI_NETNS` (the plugins then only
//! release the lease and port mappings), and unmounts the namespace: the kernel destroys it and
//! its veth pair in the background once the instance's processes are gone, rather than the
//! bridge plugin waiting ~30 ms for the veth deletion. Both steps are idempotent.
//! `cleanup_orphans` detaches every instance the engine no longer knows of, found through
//! the network's records (written before anything is created on the host); with
//! `reclaim_unrecorded`, also through its namespaces and leases.
//!
//! Contract for the instance engine (adapters.rs):
//! ```ignore
//! let net = Network::new(NetworkConfig::new(root.join("network")))?;   // sync; checks plugins
//! let att: Attachment = net.attach(id, &[PortMapping::tcp(8080, 80)]).await?; // idempotent
//! net.detach(id).await?;                                  // idempotent
//! net.cleanup_orphans(&live_ids).await?;                  // -> ids cleaned
//! let stream = connect_in_netns(&att.netns, 8080).await?;  // port-forward and probes
//! ```
//! Calls for one instance id are serialized inside `Network`; `live` passed to
//! `cleanup_orphans` must include instances being created.

mod attach;
pub mod cni;
pub mod config;
pub mod exec;
pub mod forward;
mod host_rules;
pub mod ipam;
pub mod masquerade;
pub mod netns;
mod orphans;
mod pool;
pub mod portmap;
pub mod record;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use attach::Network;
pub use cni::{CniCommand, CniError, Invocation, PluginExec};
pub use config::NetworkConfig;
pub use exec::HostPlugins;
pub use ipam::IpamError;
pub use masquerade::IptablesError;
pub use netns::{run_in_netns, HostNamespaces, Namespaces, NetnsError};
pub use portmap::{PortMapping, Protocol};
pub use record::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "invalid instance id {0:?}: want 1-64 characters of [A-Za-z0-9_.-], starting alphanumeric"
    )]
    InvalidId(String),
    #[error("invalid network config: {0}")]
    InvalidConfig(String),
    #[error("invalid port mappings for instance {id}: {reason}")]
    InvalidPorts { id: String, reason: String },
    #[error(
        "no free 10.x.0.0/16 subnet for instances: every one collides with a host route; set one"
    )]
    NoFreeSubnet,
    #[error(transparent)]
    MissingPlugin(CniError),
    #[error(transparent)]
    PrepareNetns(NetnsError),
    #[error("host firewall: {0}")]
    Iptables(#[from] IptablesError),
    #[error("read host routes: {0}")]
    HostRoutes(#[source] std::io::Error),
    #[error("write {path}: {source}")]
    WriteConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("list {path}: {source}")]
    List {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("instance {id}: {source}")]
    Cni {
        id: String,
        #[source]
        source: CniError,
    },
    #[error("instance {id}: {source}")]
    Netns {
        id: String,
        #[source]
        source: NetnsError,
    },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    #[error("instance {id}: the cni result has no IPv4 address on {ifname}")]
    NoAddress { id: String, ifname: String },
    #[error(transparent)]
    Connect(NetnsError),
}

/// An instance's place on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// `/run/netns/nodeless-<id>`: the containers join it (runc `path` of the network namespace).
    pub netns: PathBuf,
    pub ip: IpAddr,
    pub prefix_len: u8,
    pub gateway: IpAddr,
    /// The interface inside the namespace: `eth0`.
    pub interface: String,
}

/// A TCP connection to 127.0.0.1:`port` inside an instance's namespace.
pub async fn connect_in_netns(
    netns: &Path,
    port: u16,
) -> Result<tokio::net::TcpStream, NetworkError> {
    netns::connect_in_netns(netns, port)
        .await
        .map_err(NetworkError::Connect)
}

/// Instance ids become file names and the CNI container id: keep them boring. Ids starting
/// with `spare-` belong to the warm pool.
pub fn validate_id(id: &str) -> Result<(), NetworkError> {
    if is_valid_id(id) && !id.starts_with(pool::SPARE_PREFIX) {
        Ok(())
    } else {
        Err(NetworkError::InvalidId(id.to_string()))
    }
}

/// The shape of ids nodeless made: instances' and the warm pool's.
pub(crate) fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}
