//! ClusterIP allocation for Services from the service CIDR.

use crate::rest::Api;
use nodeless_core::{meta, FieldError, StatusError};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::Ipv4Addr;

/// The service CIDR, 10.96.0.0/12 as kubeadm's default; .1 is the `kubernetes` Service and
/// .10 is reserved for cluster DNS.
const BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SIZE: u32 = 1 << 20;
pub const DNS_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);

fn in_range(ip: Ipv4Addr) -> bool {
    let n = u32::from(ip);
    (BASE..BASE + SIZE).contains(&n)
}

fn used(api: &Api) -> HashSet<String> {
    let Some(rt) = api.registry.lookup("", "v1", "services") else {
        return HashSet::new();
    };
    let opts = nodeless_store::ListOptions {
        prefix: rt.key_prefix(),
        ..Default::default()
    };
    api.cache
        .list(&opts)
        .map(|p| {
            p.items
                .iter()
                .filter_map(|o| {
                    o.value
                        .pointer("/spec/clusterIP")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Gives a new Service its ClusterIP (or checks the one it asks for).
pub fn allocate_cluster_ip(api: &Api, svc: &mut Value) -> Result<(), StatusError> {
    let kind = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if kind == "ExternalName" {
        return Ok(());
    }
    let requested = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = meta::name(svc).unwrap_or_default().to_string();
    if requested == "None" {
        svc["spec"]["clusterIPs"] = json!(["None"]);
        return Ok(());
    }
    let taken = used(api);
    let ip = if requested.is_empty() {
        let mut rng = rand::thread_rng();
        (0..64)
            .map(|_| Ipv4Addr::from(BASE + rng.gen_range(11..SIZE - 1)).to_string())
            .find(|ip| !taken.contains(ip))
            .ok_or_else(|| StatusError::internal("no free ClusterIP in the service range"))?
    } else {
        let parsed: Ipv4Addr = requested.parse().map_err(|_| {
            StatusError::invalid(
                "",
                "Service",
                &name,
                &vec![FieldError::invalid(
                    "spec.clusterIPs[0]",
                    requested.clone(),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                )],
            )
        })?;
        if !in_range(parsed) {
            let e = FieldError::invalid("spec.clusterIPs", requested.clone(), "failed to allocate IP: the provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12");
            return Err(StatusError::invalid("", "Service", &name, &vec![e]));
        }
        if taken.contains(&requested) {
            let e = FieldError::invalid(
                "spec.clusterIPs",
                requested.clone(),
                "failed to allocate IP: provided IP is already allocated",
            );
            return Err(StatusError::invalid("", "Service", &name, &vec![e]));
        }
        requested
    };
    svc["spec"]["clusterIP"] = json!(ip);
    svc["spec"]["clusterIPs"] = json!([ip]);
    Ok(())
}
