//! Which EndpointSlice writes bring a Service's slices to its endpoints (no I/O).
//!
//! Endpoints stay in the slice that already holds them and only their conditions change, so
//! a reader merging slices never sees an endpoint vanish while it moves between slices. New
//! endpoints fill slices with room before new slices are made. Pods whose resolved ports
//! differ go to different slices, since a slice carries one port list. A Service with no
//! endpoints keeps one empty slice, as upstream's placeholder, so readers can tell "no
//! endpoints" from "not processed yet".

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::compute::{derived_labels, PodEndpoint, ResolvedPort};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGER: &str = "endpointslice-controller.k8s.io";
/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
const ADDRESS_TYPE: &str = "IPv4";

/// The writes to make, in the order to make them: creates and updates before deletes, so
/// an endpoint is never absent from every slice.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// The slice form of one endpoint.
pub fn slice_endpoint(ep: &PodEndpoint) -> Endpoint {
    Endpoint {
        addresses: vec![ep.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ep.ready),
            serving: Some(ep.serving),
            terminating: Some(ep.terminating),
        }),
        hostname: ep.hostname.clone(),
        node_name: ep.node_name.clone(),
        target_ref: Some(ep.target.clone()),
        ..Default::default()
    }
}

fn slice_port(p: &ResolvedPort) -> EndpointPort {
    EndpointPort {
        name: Some(p.name.clone()),
        port: Some(p.port),
        protocol: Some(p.protocol.clone()),
        app_protocol: p.app_protocol.clone(),
    }
}

/// The port list of an existing slice, in the sorted form endpoints are grouped by.
fn ports_of(slice: &EndpointSlice) -> Vec<ResolvedPort> {
    let mut ports: Vec<ResolvedPort> = slice
        .ports
        .iter()
        .flatten()
        .map(|p| ResolvedPort {
            name: p.name.clone().unwrap_or_default(),
            port: p.port.unwrap_or_default(),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            app_protocol: p.app_protocol.clone(),
        })
        .collect();
    ports.sort();
    ports
}

pub fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = derived_labels(service);
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), MANAGER.into());
    labels
}

fn new_slice(service: &Service, ports: &[ResolvedPort], endpoints: Vec<Endpoint>) -> EndpointSlice {
    let name = service.metadata.name.clone().unwrap_or_default();
    // generateName leaves room for the random suffix within a name's 63 characters.
    let prefix: String = format!("{name}-").chars().take(58).collect();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: service.metadata.namespace.clone(),
            labels: Some(slice_labels(service)),
            owner_references: crate::pods::controller_ref(service).map(|r| vec![r]),
            ..Default::default()
        },
        address_type: ADDRESS_TYPE.into(),
        endpoints,
        ports: Some(ports.iter().map(slice_port).collect()),
    }
}

/// The existing slice rewritten to hold `endpoints` with `ports` and the Service's labels;
/// None when it already does.
fn rewrite(
    service: &Service,
    slice: &EndpointSlice,
    ports: &[ResolvedPort],
    endpoints: Vec<Endpoint>,
) -> Option<EndpointSlice> {
    let ports: Vec<EndpointPort> = ports.iter().map(slice_port).collect();
    let labels = slice_labels(service);
    let owners = crate::pods::controller_ref(service).map(|r| vec![r]);
    let same = slice.endpoints == endpoints
        && slice.ports.clone().unwrap_or_default() == ports
        && slice.metadata.labels.as_ref() == Some(&labels)
        && slice.metadata.owner_references == owners;
    if same {
        return None;
    }
    let mut next = slice.clone();
    next.endpoints = endpoints;
    next.ports = Some(ports);
    next.metadata.labels = Some(labels);
    next.metadata.owner_references = owners;
    Some(next)
}

/// A slice being filled: the existing one it came from (if any) and its endpoints.
struct Draft<'a> {
    existing: Option<&'a EndpointSlice>,
    endpoints: Vec<Endpoint>,
}

/// The writes that make `existing` (this Service's slices) hold exactly `desired`.
pub fn plan(service: &Service, desired: &[PodEndpoint], existing: &[&EndpointSlice]) -> Plan {
    let mut groups: BTreeMap<Vec<ResolvedPort>, BTreeMap<&str, &PodEndpoint>> = BTreeMap::new();
    for ep in desired {
        groups
            .entry(ep.ports.clone())
            .or_default()
            .insert(ep.ip.as_str(), ep);
    }
    let mut existing: Vec<&EndpointSlice> = existing.to_vec();
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let (usable, wrong_type): (Vec<_>, Vec<_>) = existing
        .into_iter()
        .partition(|s| s.address_type == ADDRESS_TYPE);
    let mut plan = Plan::default();
    plan.delete
        .extend(wrong_type.iter().filter_map(|s| s.metadata.name.clone()));

    let mut unclaimed: Vec<&EndpointSlice> = Vec::new();
    let mut by_ports: BTreeMap<Vec<ResolvedPort>, Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in usable {
        let ports = ports_of(slice);
        if groups.contains_key(&ports) {
            by_ports.entry(ports).or_default().push(slice);
        } else {
            unclaimed.push(slice);
        }
    }
    let mut unclaimed = unclaimed.into_iter();
    let mut drafts: Vec<(Vec<ResolvedPort>, Draft)> = Vec::new();
    for (ports, wanted) in &groups {
        let mut placed: BTreeSet<&str> = BTreeSet::new();
        let mut group: Vec<Draft> = Vec::new();
        for slice in by_ports.get(ports).into_iter().flatten() {
            let endpoints = slice
                .endpoints
                .iter()
                .filter_map(|e| {
                    let ip = e.addresses.first()?.as_str();
                    let ep = wanted.get(ip)?;
                    placed.insert(ep.ip.as_str()).then(|| slice_endpoint(ep))
                })
                .collect();
            group.push(Draft {
                existing: Some(slice),
                endpoints,
            });
        }
        let mut rest = wanted
            .iter()
            .filter(|(ip, _)| !placed.contains(*ip))
            .map(|(_, ep)| slice_endpoint(ep))
            .peekable();
        for draft in &mut group {
            while draft.endpoints.len() < MAX_ENDPOINTS_PER_SLICE {
                let Some(ep) = rest.next() else { break };
                draft.endpoints.push(ep);
            }
        }
        while rest.peek().is_some() {
            let endpoints: Vec<Endpoint> = rest.by_ref().take(MAX_ENDPOINTS_PER_SLICE).collect();
            // Reuse a slice no group wants rather than delete one and create another.
            group.push(Draft {
                existing: unclaimed.next(),
                endpoints,
            });
        }
        drafts.extend(group.into_iter().map(|d| (ports.clone(), d)));
    }
    let mut leftovers: Vec<&EndpointSlice> = unclaimed.collect();
    for (ports, draft) in drafts {
        match draft.existing {
            Some(slice) if draft.endpoints.is_empty() => leftovers.push(slice),
            Some(slice) => plan
                .update
                .extend(rewrite(service, slice, &ports, draft.endpoints)),
            None => plan
                .create
                .push(new_slice(service, &ports, draft.endpoints)),
        }
    }
    leftovers.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut leftovers = leftovers.into_iter();
    if desired.is_empty() {
        match leftovers.next() {
            Some(slice) => plan.update.extend(rewrite(service, slice, &[], Vec::new())),
            None => plan.create.push(new_slice(service, &[], Vec::new())),
        }
    }
    plan.delete
        .extend(leftovers.filter_map(|s| s.metadata.name.clone()));
    plan
}
