//! The cluster's DNS records, built from Services, EndpointSlices and Pods as the Kubernetes
//! DNS specification (schema 1.1.0) lays them out, and answered from memory.
//!
//! Pure: [`Records::build`] takes a snapshot of the objects, [`Records::lookup`] answers one
//! question. The server rebuilds the view whenever a watched object changes.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Every record's TTL, and the negative-caching TTL: short, so a Service or endpoint change
/// shows within seconds.
pub const TTL: u32 = 5;

/// The schema version of the specification these records follow (`dns-version.<zone>`).
const SCHEMA_VERSION: &str = "1.1.0";

/// The label EndpointSlices name their Service by.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("cluster domain {domain:?} is not a valid DNS name")]
    InvalidDomain {
        domain: String,
        #[source]
        source: hickory_proto::ProtoError,
    },
}

/// The objects the records are made from, as a reflector's stores hold them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Objects<'a> {
    pub services: &'a [Arc<Service>],
    pub slices: &'a [Arc<EndpointSlice>],
    pub pods: &'a [Arc<Pod>],
}

/// The answer to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Records of the asked type (or a CNAME for it); `additionals` holds the addresses of
    /// SRV targets.
    Found {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// The name exists but has no records of the asked type (NOERROR, empty answer).
    NoData,
    /// The name does not exist in the cluster zone.
    NxDomain,
    /// Not a name this server answers for: forward it.
    NotOurs,
}

/// An immutable view of the cluster zone and the reverse names of its addresses.
#[derive(Debug, Clone)]
pub struct Records {
    origin: LowerName,
    soa: Record,
    names: HashMap<LowerName, Vec<RData>>,
    /// Names with no records of their own but records below them (`<ns>.svc.<zone>`): they
    /// exist, so asking for them is NODATA rather than NXDOMAIN.
    empty_non_terminals: HashSet<LowerName>,
}

impl Records {
    /// The zone with only its own records (SOA, NS, `dns-version`), before any object is seen.
    pub fn empty(domain: &str, dns_ip: IpAddr, serial: u32) -> Result<Self, RecordsError> {
        let origin = Name::from_ascii(domain)
            .and_then(|n| n.append_domain(&Name::root()))
            .map_err(|source| RecordsError::InvalidDomain {
                domain: domain.to_string(),
                source,
            })?;
        let ns_name =
            child(&origin, &["ns", "dns"]).ok_or_else(|| RecordsError::InvalidDomain {
                domain: domain.to_string(),
                source: hickory_proto::ProtoError::from("name too long"),
            })?;
        let hostmaster = child(&origin, &["hostmaster"]).unwrap_or_else(|| origin.clone());
        // Refresh, retry and expire only matter to secondaries, which this zone has none of;
        // the minimum is the negative-caching TTL.
        let soa = SOA::new(ns_name.clone(), hostmaster, serial, 7200, 1800, 86400, TTL);
        let mut records = Self {
            origin: LowerName::new(&origin),
            soa: Record::from_rdata(origin.clone(), TTL, RData::SOA(soa.clone())),
            names: HashMap::new(),
            empty_non_terminals: HashSet::new(),
        };
        records.add(&origin, RData::SOA(soa));
        records.add(&origin, RData::NS(NS(ns_name.clone())));
        records.add(&ns_name, address(dns_ip));
        if let Some(version) = child(&origin, &["dns-version"]) {
            records.add(&version, RData::TXT(TXT::new(vec![SCHEMA_VERSION.into()])));
        }
        Ok(records)
    }

    /// The zone for a snapshot of the cluster's objects.
    pub fn build(
        domain: &str,
        dns_ip: IpAddr,
        serial: u32,
        objects: Objects<'_>,
    ) -> Result<Self, RecordsError> {
        let mut records = Self::empty(domain, dns_ip, serial)?;
        let origin = Name::from(records.origin.clone());
        let headless = records.add_services(&origin, objects);
        records.add_pods(&origin, objects.pods, &headless);
        Ok(records)
    }

    /// The zone's SOA record, for the authority section of negative answers.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// Answers `qtype` for `name`. Answer records carry the name as asked (case kept).
    pub fn lookup(&self, name: &Name, qtype: RecordType) -> Answer {
        let key = LowerName::new(name);
        let ours = self.origin.zone_of(&key);
        let Some(rdatas) = self.names.get(&key) else {
            return match (ours, self.empty_non_terminals.contains(&key)) {
                (true, true) => Answer::NoData,
                (true, false) => Answer::NxDomain,
                (false, _) => Answer::NotOurs,
            };
        };
        let matching: Vec<&RData> = rdatas
            .iter()
            .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
            .collect();
        // A CNAME stands for every type at its name (ExternalName Services).
        let chosen = if matching.is_empty() {
            rdatas
                .iter()
                .filter(|r| r.record_type() == RecordType::CNAME)
                .collect()
        } else {
            matching
        };
        if chosen.is_empty() {
            return Answer::NoData;
        }
        let answers: Vec<Record> = chosen
            .iter()
            .map(|r| Record::from_rdata(name.clone(), TTL, (*r).clone()))
            .collect();
        let additionals = self.srv_target_addresses(&answers);
        Answer::Found {
            answers,
            additionals,
        }
    }

    /// The A/AAAA records of SRV targets this zone holds, so clients need no second query.
    fn srv_target_addresses(&self, answers: &[Record]) -> Vec<Record> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for record in answers {
            let RData::SRV(srv) = &record.data else {
                continue;
            };
            let target = LowerName::new(&srv.target);
            if !seen.insert(target.clone()) {
                continue;
            }
            for rdata in self.names.get(&target).into_iter().flatten() {
                if matches!(rdata.record_type(), RecordType::A | RecordType::AAAA) {
                    out.push(Record::from_rdata(srv.target.clone(), TTL, rdata.clone()));
                }
            }
        }
        out
    }

    fn add(&mut self, name: &Name, rdata: RData) {
        let key = LowerName::new(name);
        self.add_parents(&key);
        let entry = self.names.entry(key).or_default();
        if !entry.contains(&rdata) {
            entry.push(rdata);
        }
    }

    /// Makes `name` exist without records of its own: a headless Service with no ready
    /// endpoint is still there (NODATA, not NXDOMAIN).
    fn add_empty(&mut self, name: &Name) {
        let key = LowerName::new(name);
        self.add_parents(&key);
        self.empty_non_terminals.insert(key);
    }

    fn add_parents(&mut self, key: &LowerName) {
        if !self.origin.zone_of(key) {
            return;
        }
        let mut parent = key.base_name();
        while parent != self.origin && self.origin.zone_of(&parent) {
            self.empty_non_terminals.insert(parent.clone());
            parent = parent.base_name();
        }
    }

    /// Service records; returns the headless Services (`namespace/name`), whose names Pods
    /// with a matching `subdomain` join.
    fn add_services(&mut self, origin: &Name, objects: Objects<'_>) -> HashSet<(String, String)> {
        let mut slices: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
        for slice in objects.slices {
            let labels = slice.metadata.labels.as_ref();
            let (Some(ns), Some(service)) = (
                slice.metadata.namespace.as_deref(),
                labels.and_then(|l| l.get(SERVICE_NAME_LABEL)),
            ) else {
                continue;
            };
            slices
                .entry((ns, service.as_str()))
                .or_default()
                .push(slice);
        }
        let mut headless = HashSet::new();
        for service in objects.services {
            let (Some(ns), Some(name)) = (
                service.metadata.namespace.as_deref(),
                service.metadata.name.as_deref(),
            ) else {
                continue;
            };
            let Some(svc_name) = child(origin, &[name, ns, "svc"]) else {
                continue;
            };
            let Some(spec) = &service.spec else { continue };
            if spec.type_.as_deref() == Some("ExternalName") {
                self.add_external_name(&svc_name, spec.external_name.as_deref());
                continue;
            }
            let cluster_ips = cluster_ips(service);
            if cluster_ips.first().map(String::as_str) == Some("None") {
                headless.insert((ns.to_string(), name.to_string()));
                let own = slices
                    .get(&(ns, name))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
                self.add_headless(&svc_name, own, publish_not_ready);
            } else {
                self.add_cluster_ip(&svc_name, service, &cluster_ips);
            }
        }
        headless
    }

    fn add_external_name(&mut self, svc_name: &Name, external: Option<&str>) {
        let target = external.and_then(|e| Name::from_ascii(e.trim_end_matches('.')).ok());
        match target.and_then(|t| t.append_domain(&Name::root()).ok()) {
            Some(target) => self.add(svc_name, RData::CNAME(CNAME(target))),
            None => tracing::debug!(name = %svc_name, "externalName is not a DNS name"),
        }
    }

    fn add_cluster_ip(&mut self, svc_name: &Name, service: &Service, ips: &[String]) {
        let ips: Vec<IpAddr> = ips.iter().filter_map(|ip| ip.parse().ok()).collect();
        if ips.is_empty() {
            // Not allocated yet: the name appears once it has an address.
            return;
        }
        for ip in &ips {
            self.add(svc_name, address(*ip));
            self.add(&reverse_name(*ip), RData::PTR(PTR(svc_name.clone())));
        }
        let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
        for port in ports.into_iter().flatten() {
            let (Some(port_name), Ok(number)) = (non_empty(&port.name), u16::try_from(port.port))
            else {
                continue;
            };
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            if let Some(srv_name) = srv_name(svc_name, port_name, protocol) {
                let srv = SRV::new(0, 100, number, svc_name.clone());
                self.add(&srv_name, RData::SRV(srv));
            }
        }
    }

    /// A headless Service: its name resolves to the ready endpoints, each endpoint gets a name
    /// of its own (its hostname, or its address dashed) that SRV records point at.
    fn add_headless(
        &mut self,
        svc_name: &Name,
        slices: &[&EndpointSlice],
        publish_not_ready: bool,
    ) {
        self.add_empty(svc_name);
        let mut targets: Vec<(Name, Vec<IpAddr>, &EndpointSlice)> = Vec::new();
        for slice in slices {
            if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
                continue;
            }
            for endpoint in &slice.endpoints {
                let ready = endpoint.conditions.as_ref().and_then(|c| c.ready);
                // A nil `ready` means ready, as the EndpointSlice API defines it.
                if !(ready.unwrap_or(true) || publish_not_ready) {
                    continue;
                }
                let ips: Vec<IpAddr> = endpoint
                    .addresses
                    .iter()
                    .filter_map(|a| a.parse().ok())
                    .collect();
                let Some(first) = ips.first() else { continue };
                let explicit = non_empty(&endpoint.hostname);
                let label = explicit.map_or_else(|| dashed(*first), str::to_string);
                for ip in &ips {
                    self.add(svc_name, address(*ip));
                }
                let Some(host_name) = child(svc_name, &[&label]) else {
                    continue;
                };
                for ip in &ips {
                    self.add(&host_name, address(*ip));
                    if explicit.is_some() {
                        self.add(&reverse_name(*ip), RData::PTR(PTR(host_name.clone())));
                    }
                }
                targets.push((host_name, ips, slice));
            }
        }
        let count = u16::try_from(targets.len()).unwrap_or(u16::MAX).max(1);
        for (host_name, _, slice) in &targets {
            for port in slice.ports.iter().flatten() {
                let (Some(port_name), Some(Ok(number))) =
                    (non_empty(&port.name), port.port.map(u16::try_from))
                else {
                    continue;
                };
                let protocol = port.protocol.as_deref().unwrap_or("TCP");
                if let Some(name) = srv_name(svc_name, port_name, protocol) {
                    let srv = SRV::new(0, (100 / count).max(1), number, host_name.clone());
                    self.add(&name, RData::SRV(srv));
                }
            }
        }
    }

    /// `<a-b-c-d>.<ns>.pod.<zone>` for every Pod address, and `<hostname>.<subdomain>.<ns>.svc`
    /// for Pods naming a headless Service as their subdomain.
    fn add_pods(&mut self, origin: &Name, pods: &[Arc<Pod>], headless: &HashSet<(String, String)>) {
        for pod in pods {
            let Some(ns) = pod.metadata.namespace.as_deref() else {
                continue;
            };
            let ips = pod_ips(pod);
            for ip in &ips {
                if let Some(name) = child(origin, &[&dashed(*ip), ns, "pod"]) {
                    self.add(&name, address(*ip));
                }
            }
            let spec = pod.spec.as_ref();
            let hostname = spec.and_then(|s| non_empty(&s.hostname));
            let subdomain = spec.and_then(|s| non_empty(&s.subdomain));
            let (Some(hostname), Some(subdomain)) = (hostname, subdomain) else {
                continue;
            };
            if !headless.contains(&(ns.to_string(), subdomain.to_string())) || !is_ready(pod) {
                continue;
            }
            if let Some(name) = child(origin, &[hostname, subdomain, ns, "svc"]) {
                for ip in &ips {
                    self.add(&name, address(*ip));
                }
            }
        }
    }
}

fn cluster_ips(service: &Service) -> Vec<String> {
    let spec = service.spec.as_ref();
    match spec
        .and_then(|s| s.cluster_ips.clone())
        .filter(|ips| !ips.is_empty())
    {
        Some(ips) => ips,
        None => spec
            .and_then(|s| s.cluster_ip.clone())
            .into_iter()
            .collect(),
    }
}

fn pod_ips(pod: &Pod) -> Vec<IpAddr> {
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .filter_map(|p| p.ip.parse().ok())
        .collect();
    if ips.is_empty() {
        ips.extend(
            status
                .pod_ip
                .as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok()),
        );
    }
    ips
}

fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// `labels` (leftmost first) prepended to `parent`; `None` when not a valid DNS name.
fn child(parent: &Name, labels: &[&str]) -> Option<Name> {
    let relative = Name::from_labels(labels.iter().map(|l| l.as_bytes())).ok()?;
    relative.append_domain(parent).ok()
}

fn srv_name(svc_name: &Name, port: &str, protocol: &str) -> Option<Name> {
    let port = format!("_{port}");
    let protocol = format!("_{}", protocol.to_ascii_lowercase());
    child(svc_name, &[&port, &protocol])
}

fn address(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// An address as one DNS label: `10-88-0-5`, `fd00--5`.
fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// `d.c.b.a.in-addr.arpa.` (or the nibble form under ip6.arpa.) for PTR records.
fn reverse_name(ip: IpAddr) -> Name {
    let text = match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let mut labels: Vec<String> = Vec::with_capacity(34);
            for byte in v6.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0xf));
                labels.push(format!("{:x}", byte >> 4));
            }
            format!("{}.ip6.arpa.", labels.join("."))
        }
    };
    Name::from_ascii(text).expect("a reverse name of an address is always a valid DNS name")
}

#[cfg(test)]
mod tests;
