//! /etc/resolv.conf and /etc/hosts entries of a Pod: dnsPolicy, dnsConfig, hostAliases.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use nodeless_engine::instance::DnsConfig;

use super::{Context, TranslateError};

/// resolv.conf allows three nameservers; the kubelet drops the rest.
const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;

/// The Pod's DNS settings. An empty result means "the host's resolvers", which the engine
/// fills in itself (dropping loopback resolvers an instance cannot reach).
pub(super) fn dns_config(pod: &Pod, ctx: &Context) -> DnsConfig {
    let Some(spec) = &pod.spec else {
        return DnsConfig::default();
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let extra = spec.dns_config.as_ref();
    let cluster = matches!(policy, "ClusterFirst" | "ClusterFirstWithHostNet");
    let mut base = if cluster && !ctx.cluster_dns.is_empty() {
        let domain = &ctx.cluster_domain;
        let mut searches = vec![
            format!("{namespace}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.clone(),
        ];
        // The host's search domains follow the cluster's, as the kubelet does; its options
        // do not (ndots:5 is what makes the cluster search path work).
        for host in host_dns(&ctx.host_resolv_conf).searches {
            let host = host.trim_end_matches('.').to_string();
            if !host.is_empty() && !searches.contains(&host) {
                searches.push(host);
            }
        }
        DnsConfig {
            nameservers: ctx.cluster_dns.clone(),
            searches,
            options: vec!["ndots:5".into()],
        }
    } else if policy == "None" {
        DnsConfig::default()
    } else if extra.is_none() {
        return DnsConfig::default();
    } else {
        host_dns(&ctx.host_resolv_conf)
    };
    if let Some(extra) = extra {
        for ns in extra.nameservers.iter().flatten() {
            if !base.nameservers.contains(ns) {
                base.nameservers.push(ns.clone());
            }
        }
        for s in extra.searches.iter().flatten() {
            if !base.searches.contains(s) {
                base.searches.push(s.clone());
            }
        }
        for o in extra.options.iter().flatten() {
            let Some(name) = o.name.clone() else { continue };
            let text = match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            let same = |existing: &String| existing.split(':').next() == Some(name.as_str());
            match base.options.iter_mut().find(|e| same(e)) {
                Some(existing) => *existing = text,
                None => base.options.push(text),
            }
        }
    }
    base.nameservers.truncate(MAX_NAMESERVERS);
    limit_searches(&mut base.searches);
    base
}

/// resolv.conf's limits as the kubelet applies them: at most 32 search domains, 2048
/// characters in all.
fn limit_searches(searches: &mut Vec<String>) {
    searches.truncate(MAX_SEARCHES);
    let mut total = 0;
    let keep = searches
        .iter()
        .take_while(|s| {
            total += s.len() + 1;
            total <= MAX_SEARCH_CHARS
        })
        .count();
    searches.truncate(keep);
}

/// The host's resolv.conf without loopback resolvers, unreachable from an instance.
fn host_dns(text: &str) -> DnsConfig {
    let mut dns = DnsConfig::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => dns.nameservers.extend(
                words
                    .next()
                    .filter(|s| !s.starts_with("127.") && *s != "::1")
                    .map(str::to_string),
            ),
            Some("search") => dns.searches = words.map(str::to_string).collect(),
            Some("options") => dns.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    dns
}

pub(super) fn host_aliases(spec: &PodSpec) -> Result<Vec<(IpAddr, Vec<String>)>, TranslateError> {
    spec.host_aliases
        .iter()
        .flatten()
        .map(|a| {
            let ip = a.ip.parse().map_err(|_| {
                TranslateError::Invalid(format!("hostAliases: {:?} is not an IP address", a.ip))
            })?;
            Ok((ip, a.hostnames.clone().unwrap_or_default()))
        })
        .collect()
}
