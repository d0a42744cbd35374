//! Service kube-system/kube-dns and its EndpointSlice: what makes the cluster DNS address
//! (10.96.0.10:53) reach this server through the Service proxy. Created or brought back to the
//! wanted shape, idempotently.

use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};

pub const NAMESPACE: &str = "kube-system";
pub const SERVICE_NAME: &str = "kube-dns";
/// The EndpointSlice's name: deterministic, so every start finds the one it made.
pub const SLICE_NAME: &str = "kube-dns-nodeless";
const MANAGER: &str = "nodeless-dns";

#[derive(Debug, thiserror::Error)]
pub enum KubeDnsError {
    #[error("cannot read {kind} kube-system/{name}")]
    Get {
        kind: &'static str,
        name: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("cannot write {kind} kube-system/{name}")]
    Write {
        kind: &'static str,
        name: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// Where the DNS Service's traffic must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub service_ip: Ipv4Addr,
    pub address: IpAddr,
    pub port: u16,
}

/// The Service as it must be: the fixed cluster DNS address, `dns` 53/UDP and `dns-tcp`
/// 53/TCP, no selector (its only endpoint is this server, written by us).
pub fn desired_service(target: Target) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": SERVICE_NAME,
            "namespace": NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                "app.kubernetes.io/managed-by": MANAGER,
            },
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": target.service_ip.to_string(),
            "clusterIPs": [target.service_ip.to_string()],
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": target.port},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": target.port},
            ],
        },
    })
}

pub fn desired_slice(target: Target, service_uid: Option<&str>) -> Value {
    let family = if target.address.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    };
    let mut slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": SLICE_NAME,
            "namespace": NAMESPACE,
            "labels": {
                "kubernetes.io/service-name": SERVICE_NAME,
                "endpointslice.kubernetes.io/managed-by": MANAGER,
                "k8s-app": "kube-dns",
            },
        },
        "addressType": family,
        "endpoints": [{
            "addresses": [target.address.to_string()],
            "conditions": {"ready": true, "serving": true, "terminating": false},
        }],
        "ports": [
            {"name": "dns", "port": target.port, "protocol": "UDP"},
            {"name": "dns-tcp", "port": target.port, "protocol": "TCP"},
        ],
    });
    if let Some(uid) = service_uid {
        slice["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "Service", "name": SERVICE_NAME, "uid": uid,
            "controller": true, "blockOwnerDeletion": true,
        }]);
    }
    slice
}

/// Whether every field `desired` sets has the same value in `actual` (the API server adds
/// defaults and metadata of its own, which do not count).
pub fn covers(actual: &Value, desired: &Value) -> bool {
    match (actual, desired) {
        (Value::Object(a), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| a.get(k).is_some_and(|av| covers(av, dv))),
        (Value::Array(a), Value::Array(d)) => {
            a.len() == d.len() && a.iter().zip(d).all(|(av, dv)| covers(av, dv))
        }
        _ => actual == desired,
    }
}

/// Brings the Service and its EndpointSlice to their wanted shape.
pub async fn ensure(client: &Client, target: Target) -> Result<(), KubeDnsError> {
    let uid = ensure_service(client, target).await?;
    ensure_slice(client, target, uid.as_deref()).await
}

async fn ensure_service(client: &Client, target: Target) -> Result<Option<String>, KubeDnsError> {
    let api: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let desired = desired_service(target);
    let write = |source| KubeDnsError::Write {
        kind: "Service",
        name: SERVICE_NAME,
        source,
    };
    let existing = api
        .get_opt(SERVICE_NAME)
        .await
        .map_err(|source| KubeDnsError::Get {
            kind: "Service",
            name: SERVICE_NAME,
            source,
        })?;
    let current = match existing {
        Some(svc) => svc,
        None => return create(&api, &desired).await.map_err(write),
    };
    let actual = serde_json::to_value(&current).unwrap_or(Value::Null);
    let selector = actual.pointer("/spec/selector");
    let no_selector =
        selector.is_none_or(|s| s.is_null() || s.as_object().is_some_and(|o| o.is_empty()));
    if covers(&actual, &desired) && no_selector {
        return Ok(current.metadata.uid);
    }
    let same_ip = actual.pointer("/spec/clusterIP") == desired.pointer("/spec/clusterIP");
    if !same_ip {
        // A ClusterIP cannot change in place; Pods' resolv.conf names the fixed one.
        tracing::warn!(
            cluster_ip = ?actual.pointer("/spec/clusterIP"),
            "service kube-system/kube-dns has the wrong address; recreating it"
        );
        api.delete(SERVICE_NAME, &DeleteParams::default())
            .await
            .map_err(write)?;
        return create(&api, &desired).await.map_err(write);
    }
    let mut patch = desired.clone();
    patch["spec"]["selector"] = Value::Null;
    let patched = api
        .patch(SERVICE_NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(write)?;
    Ok(patched.metadata.uid)
}

async fn create(api: &Api<Service>, desired: &Value) -> Result<Option<String>, kube::Error> {
    let svc: Service = serde_json::from_value(desired.clone()).map_err(kube::Error::SerdeError)?;
    let created = api.create(&PostParams::default(), &svc).await?;
    tracing::info!("created service kube-system/kube-dns");
    Ok(created.metadata.uid)
}

async fn ensure_slice(
    client: &Client,
    target: Target,
    service_uid: Option<&str>,
) -> Result<(), KubeDnsError> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let desired = desired_slice(target, service_uid);
    let write = |source| KubeDnsError::Write {
        kind: "EndpointSlice",
        name: SLICE_NAME,
        source,
    };
    let existing = api
        .get_opt(SLICE_NAME)
        .await
        .map_err(|source| KubeDnsError::Get {
            kind: "EndpointSlice",
            name: SLICE_NAME,
            source,
        })?;
    let mut slice: EndpointSlice =
        serde_json::from_value(desired.clone()).map_err(|e| write(kube::Error::SerdeError(e)))?;
    match existing {
        None => {
            api.create(&PostParams::default(), &slice)
                .await
                .map_err(write)?;
            tracing::info!(address = %target.address, port = target.port,
                "created endpointslice kube-system/kube-dns-nodeless");
        }
        Some(current) => {
            let actual = serde_json::to_value(&current).unwrap_or(Value::Null);
            if covers(&actual, &desired) {
                return Ok(());
            }
            // Replace, not merge: endpoints and ports are lists a merge patch cannot trim.
            slice.metadata.resource_version = current.metadata.resource_version;
            api.replace(SLICE_NAME, &PostParams::default(), &slice)
                .await
                .map_err(write)?;
            tracing::info!(address = %target.address, port = target.port,
                "updated endpointslice kube-system/kube-dns-nodeless");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            service_ip: Ipv4Addr::new(10, 96, 0, 10),
            address: IpAddr::V4(Ipv4Addr::new(10, 88, 0, 1)),
            port: 53,
        }
    }

    #[test]
    fn the_service_has_the_fixed_address_both_dns_ports_and_no_selector() {
        let svc: Service = serde_json::from_value(desired_service(target())).expect("service");
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
        assert!(spec.selector.is_none());
        let ports: Vec<(String, i32, String)> = spec
            .ports
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p.name.unwrap_or_default(),
                    p.port,
                    p.protocol.unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                ("dns".into(), 53, "UDP".into()),
                ("dns-tcp".into(), 53, "TCP".into())
            ]
        );
        let labels = svc.metadata.labels.expect("labels");
        assert_eq!(labels.get("k8s-app").map(String::as_str), Some("kube-dns"));
    }

    #[test]
    fn the_slice_points_at_the_advertised_listener_and_names_its_service() {
        let mut t = target();
        t.port = 5353;
        let slice: EndpointSlice =
            serde_json::from_value(desired_slice(t, Some("uid-1"))).expect("slice");
        assert_eq!(slice.address_type, "IPv4");
        assert_eq!(slice.endpoints[0].addresses, ["10.88.0.1"]);
        assert_eq!(
            slice.endpoints[0].conditions.as_ref().and_then(|c| c.ready),
            Some(true)
        );
        let ports: Vec<(Option<String>, Option<i32>)> = slice
            .ports
            .into_iter()
            .flatten()
            .map(|p| (p.name, p.port))
            .collect();
        assert_eq!(
            ports,
            [
                (Some("dns".into()), Some(5353)),
                (Some("dns-tcp".into()), Some(5353))
            ]
        );
        let labels = slice.metadata.labels.expect("labels");
        assert_eq!(
            labels.get("kubernetes.io/service-name").map(String::as_str),
            Some("kube-dns")
        );
        assert_eq!(
            labels
                .get("endpointslice.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("nodeless-dns")
        );
        assert_eq!(
            slice.metadata.owner_references.expect("owner")[0].uid,
            "uid-1"
        );
    }

    #[test]
    fn covers_ignores_fields_the_server_adds_but_not_changed_or_extra_list_items() {
        let desired = json!({"spec": {"ports": [{"port": 53}], "clusterIP": "10.96.0.10"}});
        let defaulted = json!({"metadata": {"uid": "x"},
            "spec": {"ports": [{"port": 53, "protocol": "UDP"}], "clusterIP": "10.96.0.10",
                     "sessionAffinity": "None"}});
        assert!(covers(&defaulted, &desired));
        let moved = json!({"spec": {"ports": [{"port": 54}], "clusterIP": "10.96.0.10"}});
        assert!(!covers(&moved, &desired));
        let extra =
            json!({"spec": {"ports": [{"port": 53}, {"port": 54}], "clusterIP": "10.96.0.10"}});
        assert!(!covers(&extra, &desired));
        assert!(!covers(&json!({}), &desired));
    }
}
