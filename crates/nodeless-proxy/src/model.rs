//! What the data path needs from Services and EndpointSlices: one entry per ClusterIP port
//! with the endpoints traffic to it may go to. Pure functions over the API objects.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Service, ServicePort as ApiServicePort};
use k8s_openapi::api::discovery::v1::{Endpoint as ApiEndpoint, EndpointSlice};

/// The label an EndpointSlice names its Service with.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// `sessionAffinityConfig.clientIP.timeoutSeconds` when unset: three hours, as upstream.
pub const DEFAULT_AFFINITY_TIMEOUT_SECONDS: u32 = 10_800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// TCP when unset; `None` for protocols the data path does not carry (SCTP).
    fn parse(value: Option<&str>) -> Option<Protocol> {
        match value.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

/// The nft keyword (`tcp`, `udp`).
impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// One port of one ClusterIP Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    /// The port's name; empty for a Service's single unnamed port.
    pub port_name: String,
    pub protocol: Protocol,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    /// `Some(timeout seconds)` with `sessionAffinity: ClientIP`.
    pub affinity_timeout: Option<u32>,
    /// Sorted and unique: the ready endpoints, or, when none is ready, the serving ones that
    /// are terminating (so connections drain to Pods being replaced rather than fail).
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// `ns/name/tcp/port-name`: readable, and unique per Service port.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.namespace, self.name, self.protocol, self.port_name
        )
    }
}

/// Every port of every Service with an IPv4 ClusterIP, with its endpoints from the slices
/// labelled with its name; sorted by namespace, name, port name and protocol. Headless and
/// ExternalName Services, and anything malformed, are left out rather than failing the rest.
pub fn service_ports<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> Vec<ServicePort> {
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        let labels = slice.metadata.labels.as_ref();
        if let Some(svc) = labels.and_then(|l| l.get(SERVICE_NAME_LABEL)) {
            by_service.entry((ns, svc.clone())).or_default().push(slice);
        }
    }
    let mut ports: Vec<ServicePort> = services
        .into_iter()
        .flat_map(|svc| {
            let ns = svc.metadata.namespace.clone().unwrap_or_default();
            let name = svc.metadata.name.clone().unwrap_or_default();
            let slices = by_service
                .get(&(ns, name))
                .map(Vec::as_slice)
                .unwrap_or_default();
            ports_of(svc, slices)
        })
        .collect();
    ports.sort_by(|a, b| {
        (&a.namespace, &a.name, &a.port_name, a.protocol).cmp(&(
            &b.namespace,
            &b.name,
            &b.port_name,
            b.protocol,
        ))
    });
    ports
}

fn ports_of(svc: &Service, slices: &[&EndpointSlice]) -> Vec<ServicePort> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    // "None" (headless) and IPv6 addresses do not parse.
    let Some(cluster_ip) = spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
    else {
        return Vec::new();
    };
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT_SECONDS)
    });
    let meta = &svc.metadata;
    spec.ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let protocol = Protocol::parse(p.protocol.as_deref())?;
            let port = u16::try_from(p.port).ok().filter(|p| *p > 0)?;
            Some(ServicePort {
                namespace: meta.namespace.clone().unwrap_or_default(),
                name: meta.name.clone().unwrap_or_default(),
                port_name: p.name.clone().unwrap_or_default(),
                protocol,
                cluster_ip,
                port,
                affinity_timeout,
                endpoints: endpoints_for(p, protocol, slices),
            })
        })
        .collect()
}

/// The endpoints of the slices' port named as the Service port (ports are matched by name
/// and protocol; the target port is the slice's number).
fn endpoints_for(
    port: &ApiServicePort,
    protocol: Protocol,
    slices: &[&EndpointSlice],
) -> Vec<Endpoint> {
    let wanted_name = port.name.as_deref().unwrap_or_default();
    let mut ready = BTreeSet::new();
    let mut terminating = BTreeSet::new();
    for slice in slices.iter().filter(|s| s.address_type == "IPv4") {
        let Some(target) = slice.ports.iter().flatten().find_map(|p| {
            let same = p.name.as_deref().unwrap_or_default() == wanted_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol);
            same.then_some(p.port)?
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0)
        }) else {
            continue;
        };
        for ep in &slice.endpoints {
            let Some(ip) = ep.addresses.first().and_then(|a| a.parse().ok()) else {
                continue;
            };
            let endpoint = Endpoint { ip, port: target };
            match condition(ep) {
                Condition::Ready => ready.insert(endpoint),
                Condition::ServingTerminating => terminating.insert(endpoint),
                Condition::Unusable => false,
            };
        }
    }
    let chosen = if ready.is_empty() { terminating } else { ready };
    chosen.into_iter().collect()
}

enum Condition {
    Ready,
    ServingTerminating,
    Unusable,
}

/// Unset `ready` means ready and unset `serving` means as ready, as the API documents.
fn condition(ep: &ApiEndpoint) -> Condition {
    let c = ep.conditions.as_ref();
    let ready = c.and_then(|c| c.ready).unwrap_or(true);
    let serving = c.and_then(|c| c.serving).unwrap_or(ready);
    let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
    if ready && !terminating {
        Condition::Ready
    } else if serving && terminating {
        Condition::ServingTerminating
    } else {
        Condition::Unusable
    }
}

#[cfg(test)]
mod tests;
