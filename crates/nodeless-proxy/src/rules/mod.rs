//! The nftables ruleset for Service ports, built the way kube-proxy's nftables mode lays
//! it out, in one table of family `ip`:
//!
//! 1. `nat-prerouting` (traffic from instances) and `nat-output` (from the host) jump to
//!    `services`, one verdict-map lookup `ip daddr . meta l4proto . th dport vmap
//!    @service-ips` to the Service port's chain.
//! 2. A service chain marks traffic from outside the Pod network for masquerading (so replies
//!    come back through this host), sends clients with a live affinity entry to their
//!    endpoint, and otherwise picks a chain at random with `numgen random mod N`.
//! 3. An endpoint chain marks hairpin traffic (an endpoint reaching itself through its
//!    Service) for masquerading, records the client in the endpoint's affinity set, and DNATs.
//! 4. `nat-postrouting` masquerades marked packets.
//! 5. Filter chains reject new connections to Service ports with no endpoints and to
//!    ClusterIP ports no Service has, and drop traffic to unallocated ClusterIPs, so it never
//!    leaves the host towards the default route.

mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

use crate::model::{Endpoint, ServicePort};

pub use render::{render_delete, render_full, render_update};

/// Chains and maps every ruleset has, whatever the Services.
pub const SERVICES_CHAIN: &str = "services";
pub const SERVICE_IPS_MAP: &str = "service-ips";
pub const NO_ENDPOINT_MAP: &str = "no-endpoint-services";
pub const CLUSTER_IPS_SET: &str = "cluster-ips";
pub const MARK_CHAIN: &str = "mark-for-masquerade";
pub const REJECT_CHAIN: &str = "reject-chain";

/// What shapes the ruleset besides Services: where it lives and which networks it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesConfig {
    /// The `ip` family table owning every rule; replaced as a whole, so nothing else may
    /// live in it.
    pub table: String,
    /// The instances' subnet: traffic to a ClusterIP from elsewhere (the host, other
    /// networks) is masqueraded. `None`: nothing is, but hairpin traffic.
    pub pod_cidr: Option<Ipv4Net>,
    /// The ClusterIP range: traffic to addresses of it no Service holds is dropped.
    pub service_cidr: Option<Ipv4Net>,
    /// The packet mark bit meaning "masquerade in postrouting".
    pub masquerade_mark: u32,
}

/// A complete ruleset: what the Service ports need on top of the fixed base chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub config: RulesConfig,
    /// Service and endpoint chains: name → rules, in order.
    pub chains: BTreeMap<String, Vec<String>>,
    /// ClientIP affinity sets: name → timeout in seconds.
    pub affinity_sets: BTreeMap<String, u32>,
    pub cluster_ips: BTreeSet<Ipv4Addr>,
    /// Elements of `service-ips`: `vip . proto . port` → `goto <service chain>`.
    pub service_ips: BTreeMap<String, String>,
    /// Elements of `no-endpoint-services`: `vip . proto . port` → `goto reject-chain`.
    pub no_endpoint: BTreeMap<String, String>,
}

/// The ruleset for `ports` (as `model::service_ports` returns them).
pub fn build(config: &RulesConfig, ports: &[ServicePort]) -> Ruleset {
    let mut rs = Ruleset {
        config: config.clone(),
        chains: BTreeMap::new(),
        affinity_sets: BTreeMap::new(),
        cluster_ips: BTreeSet::new(),
        service_ips: BTreeMap::new(),
        no_endpoint: BTreeMap::new(),
    };
    for sp in ports {
        rs.cluster_ips.insert(sp.cluster_ip);
        let key = format!("{} . {} . {}", sp.cluster_ip, sp.protocol, sp.port);
        if sp.endpoints.is_empty() {
            rs.no_endpoint.insert(key, format!("goto {REJECT_CHAIN}"));
            continue;
        }
        let chain = service_chain(sp);
        rs.service_ips.insert(key, format!("goto {chain}"));
        let rules = service_rules(config, sp);
        rs.chains.insert(chain, rules);
        for ep in &sp.endpoints {
            if let Some(timeout) = sp.affinity_timeout {
                rs.affinity_sets.insert(affinity_set(sp, ep), timeout);
            }
            rs.chains
                .insert(endpoint_chain(sp, ep), endpoint_rules(sp, ep));
        }
    }
    rs
}

fn service_rules(config: &RulesConfig, sp: &ServicePort) -> Vec<String> {
    let mut rules = Vec::new();
    if let Some(pods) = config.pod_cidr {
        rules.push(format!(
            "ip daddr {} ip saddr != {} jump {MARK_CHAIN}",
            sp.cluster_ip,
            pods.trunc()
        ));
    }
    if sp.affinity_timeout.is_some() {
        for ep in &sp.endpoints {
            rules.push(format!(
                "ip saddr @{} goto {}",
                affinity_set(sp, ep),
                endpoint_chain(sp, ep)
            ));
        }
    }
    let targets: Vec<String> = sp
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, ep)| format!("{i} : goto {}", endpoint_chain(sp, ep)))
        .collect();
    rules.push(format!(
        "numgen random mod {} vmap {{ {} }}",
        sp.endpoints.len(),
        targets.join(" , ")
    ));
    rules
}

fn endpoint_rules(sp: &ServicePort, ep: &Endpoint) -> Vec<String> {
    let mut rules = vec![format!("ip saddr {} jump {MARK_CHAIN}", ep.ip)];
    if sp.affinity_timeout.is_some() {
        rules.push(format!("update @{} {{ ip saddr }}", affinity_set(sp, ep)));
    }
    rules.push(format!(
        "meta l4proto {} dnat to {}:{}",
        sp.protocol, ep.ip, ep.port
    ));
    rules
}

pub fn service_chain(sp: &ServicePort) -> String {
    object_name("service", &sp.id())
}

pub fn endpoint_chain(sp: &ServicePort, ep: &Endpoint) -> String {
    object_name("endpoint", &endpoint_id(sp, ep))
}

pub fn affinity_set(sp: &ServicePort, ep: &Endpoint) -> String {
    object_name("affinity", &endpoint_id(sp, ep))
}

fn endpoint_id(sp: &ServicePort, ep: &Endpoint) -> String {
    format!("{}__{}/{}", sp.id(), ep.ip, ep.port)
}

/// `<kind>-<hash>-<id>`: readable in `nft list`, unique through the hash of the full id even
/// when the id had to be cleaned to nft's identifier characters or shortened to stay well
/// under its 256-byte names.
fn object_name(kind: &str, id: &str) -> String {
    let hash = Sha256::digest(id.as_bytes());
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "/-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    format!(
        "{kind}-{:02X}{:02X}{:02X}{:02X}-{clean}",
        hash[0], hash[1], hash[2], hash[3]
    )
}

#[cfg(test)]
mod tests;
