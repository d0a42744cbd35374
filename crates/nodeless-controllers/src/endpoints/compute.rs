//! What a Service's endpoints should be, computed from the Service and its Pods (no I/O).
//!
//! Follows upstream's endpoint and endpointslice controllers: a Pod counts once it has an IP
//! and is not terminal; its ports are the Service's ports resolved against the Pod (a named
//! `targetPort` looks up the container port of that name and protocol, and a Pod without it
//! simply lacks that port); terminating Pods stay in EndpointSlices as `serving` but never
//! `ready`, so a data path following `ready` stops sending them new connections at once.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort as CorePort, EndpointSubset, Endpoints, ObjectReference, Pod,
    Service, ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Label set on Services' Endpoints and EndpointSlices when the Service is headless.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Marks the Endpoints objects this controller writes, so leftovers can be told from
/// Endpoints that users manage themselves.
pub const ENDPOINTS_MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
pub const ENDPOINTS_MANAGER: &str = "endpoint-controller";

/// A Service port resolved for one Pod, in the form both Endpoints and slices carry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResolvedPort {
    pub name: String,
    pub port: i32,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// One Pod's place among a Service's endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEndpoint {
    pub ip: String,
    pub target: ObjectReference,
    pub node_name: Option<String>,
    pub hostname: Option<String>,
    /// Ready to take new connections (never true while terminating, unless the Service
    /// publishes not-ready addresses).
    pub ready: bool,
    /// The Pod's own readiness, whatever its deletion state.
    pub serving: bool,
    pub terminating: bool,
    /// Sorted, so Pods with the same ports group together.
    pub ports: Vec<ResolvedPort>,
}

/// Whether the Service's selector picks `pod`. Services without a selector pick nothing
/// (their endpoints are someone else's); an empty selector picks every Pod, as upstream.
pub fn selects(service: &Service, pod: &Pod) -> bool {
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    if pod.metadata.namespace != service.metadata.namespace {
        return false;
    }
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

pub fn has_selector(service: &Service) -> bool {
    service.spec.as_ref().is_some_and(|s| s.selector.is_some())
}

pub fn is_headless(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn publishes_not_ready(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

fn service_ports(service: &Service) -> &[ServicePort] {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default()
}

/// The container port a Service port targets on `pod`, if the Pod has it.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let spec = pod.spec.as_ref()?;
            // Sidecars (restartable init containers) serve ports too.
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// The Service's ports resolved for `pod`, sorted.
pub fn resolve_ports(service: &Service, pod: &Pod) -> Vec<ResolvedPort> {
    let mut ports: Vec<ResolvedPort> = service_ports(service)
        .iter()
        .filter_map(|sp| {
            Some(ResolvedPort {
                name: sp.name.clone().unwrap_or_default(),
                port: find_port(pod, sp)?,
                protocol: sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect();
    ports.sort();
    ports
}

fn pod_is_ready(pod: &Pod) -> bool {
    crate::pods::is_ready(pod)
}

fn is_terminal(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

fn pod_ip(pod: &Pod) -> Option<&str> {
    let ip = pod.status.as_ref()?.pod_ip.as_deref()?;
    (!ip.is_empty()).then_some(ip)
}

/// The endpoints of `service` among `pods` (all of them selected by it), terminating Pods
/// included, sorted by IP.
pub fn pod_endpoints<'a>(
    service: &Service,
    pods: impl IntoIterator<Item = &'a Pod>,
) -> Vec<PodEndpoint> {
    let publish = publishes_not_ready(service);
    let mut out: Vec<PodEndpoint> = pods
        .into_iter()
        .filter(|p| !is_terminal(p))
        .filter_map(|pod| {
            let ip = pod_ip(pod)?.to_string();
            let terminating = pod.metadata.deletion_timestamp.is_some();
            let serving = publish || pod_is_ready(pod);
            Some(PodEndpoint {
                ip,
                target: pod_ref(pod),
                node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                hostname: hostname_for(service, pod),
                ready: publish || (serving && !terminating),
                serving,
                terminating,
                ports: resolve_ports(service, pod),
            })
        })
        .collect();
    out.sort_by(|a, b| a.ip.cmp(&b.ip));
    out.dedup_by(|a, b| a.ip == b.ip);
    out
}

/// A Pod's hostname is published for the Service named by its `subdomain` (StatefulSet
/// Pods behind their headless Service).
fn hostname_for(service: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_ref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_ref() == service.metadata.name.as_ref()
        && pod.metadata.namespace == service.metadata.namespace)
        .then(|| hostname.clone())
}

fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The labels of everything the controllers derive from `service`: its own, plus the
/// headless marker.
pub fn derived_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    labels.remove(HEADLESS_LABEL);
    if is_headless(service) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

/// The Endpoints object `service` should have. Terminating Pods are left out (unless the
/// Service publishes not-ready addresses), as in upstream's Endpoints.
pub fn endpoints_for(service: &Service, eps: &[PodEndpoint]) -> Endpoints {
    let publish = publishes_not_ready(service);
    let headless_without_ports = is_headless(service) && service_ports(service).is_empty();
    let mut groups: BTreeMap<Vec<ResolvedPort>, EndpointSubset> = BTreeMap::new();
    for ep in eps.iter().filter(|e| publish || !e.terminating) {
        if ep.ports.is_empty() && !headless_without_ports {
            continue;
        }
        let subset = groups.entry(ep.ports.clone()).or_default();
        let list = if ep.ready {
            &mut subset.addresses
        } else {
            &mut subset.not_ready_addresses
        };
        list.get_or_insert_with(Vec::new).push(EndpointAddress {
            ip: ep.ip.clone(),
            hostname: ep.hostname.clone(),
            node_name: ep.node_name.clone(),
            target_ref: Some(ep.target.clone()),
        });
    }
    let subsets: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(ports, mut subset)| {
            subset.ports = (!ports.is_empty()).then(|| ports.iter().map(core_port).collect());
            subset
        })
        .collect();
    let mut labels = derived_labels(service);
    labels.insert(ENDPOINTS_MANAGED_BY_LABEL.into(), ENDPOINTS_MANAGER.into());
    Endpoints {
        metadata: ObjectMeta {
            name: service.metadata.name.clone(),
            namespace: service.metadata.namespace.clone(),
            labels: Some(labels),
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    }
}

fn core_port(p: &ResolvedPort) -> CorePort {
    CorePort {
        name: Some(p.name.clone()).filter(|n| !n.is_empty()),
        port: p.port,
        protocol: Some(p.protocol.clone()),
        app_protocol: p.app_protocol.clone(),
    }
}
