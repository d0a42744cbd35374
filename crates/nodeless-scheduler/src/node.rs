//! The virtual node `nodeless`: the one Node users see, standing for the whole pool.
//!
//! Its status is what the pool offers (the sum of live hosts' capacity) and its Ready
//! condition says whether any host can take an instance, so `kubectl get nodes` and
//! anything that counts allocatable capacity (autoscalers, dashboards) read the pool. Like a
//! kubelet it renews a Lease in `kube-node-lease`, which is what node-lifecycle tooling
//! watches to tell a live node from a dead one.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use nodeless_kube::host::HEARTBEAT_TIMEOUT;
use nodeless_kube::names::{NODE_LEASE_NAMESPACE, VIRTUAL_NODE};
use nodeless_kube::Host;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::hosts::{live_hosts, LiveHost};

/// How long the Lease is valid; three missed renewals before it lapses, as for kubelets.
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// Pods the virtual node admits: many, since each is its own instance.
pub const MAX_PODS: &str = "10000";
const KUBELET_PORT: i32 = 10250;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("creating namespace {NODE_LEASE_NAMESPACE}: {0}")]
    LeaseNamespace(#[source] kube::Error),
    #[error("creating node {VIRTUAL_NODE}: {0}")]
    CreateNode(#[source] kube::Error),
    #[error("reading node {VIRTUAL_NODE}: {0}")]
    GetNode(#[source] kube::Error),
    #[error("updating the status of node {VIRTUAL_NODE}: {0}")]
    PatchStatus(#[source] kube::Error),
    #[error("renewing lease {NODE_LEASE_NAMESPACE}/{VIRTUAL_NODE}: {0}")]
    RenewLease(#[source] kube::Error),
}

pub(crate) struct VirtualNode {
    pub client: kube::Client,
    pub hosts: Store<Host>,
    pub hosts_changed: Arc<Notify>,
    pub heartbeat: Duration,
}

impl VirtualNode {
    /// Keeps the node's status and Lease fresh until shutdown; failures are logged and retried
    /// at the next heartbeat.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<Value> = None;
        loop {
            let heartbeat = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => true,
                _ = self.hosts_changed.notified() => false,
            };
            let live = live_hosts(&self.hosts.state(), Utc::now());
            let summary = summary(&live);
            // Heartbeats of hosts arrive often; write only when what the node says changed.
            if !heartbeat && last.as_ref() == Some(&summary) {
                continue;
            }
            match self.update(&live).await {
                Ok(()) => last = Some(summary),
                Err(e) => tracing::warn!(error = %e, "virtual node not updated"),
            }
            if heartbeat {
                if let Err(e) = self.renew_lease().await {
                    tracing::warn!(error = %e, "virtual node lease not renewed");
                }
            }
        }
    }

    async fn update(&self, live: &[LiveHost]) -> Result<(), NodeError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let current = match nodes.get_opt(VIRTUAL_NODE).await {
            Ok(Some(node)) => node,
            Ok(None) => match nodes.create(&PostParams::default(), &new_node()).await {
                Ok(node) => node,
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    nodes.get(VIRTUAL_NODE).await.map_err(NodeError::GetNode)?
                }
                Err(e) => return Err(NodeError::CreateNode(e)),
            },
            Err(e) => return Err(NodeError::GetNode(e)),
        };
        let ready_since = ready_transition(&current, !live.is_empty());
        let patch = json!({"status": status(live, ready_since)});
        nodes
            .patch_status(VIRTUAL_NODE, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(NodeError::PatchStatus)?;
        Ok(())
    }

    async fn renew_lease(&self) -> Result<(), NodeError> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), NODE_LEASE_NAMESPACE);
        let now = MicroTime(Utc::now());
        let patch = json!({"spec": {
            "holderIdentity": VIRTUAL_NODE,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": now,
        }});
        match leases
            .patch(VIRTUAL_NODE, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(NodeError::RenewLease(e)),
        }
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(VIRTUAL_NODE.into()),
                namespace: Some(NODE_LEASE_NAMESPACE.into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(VIRTUAL_NODE.into()),
                lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
                renew_time: Some(now),
                ..Default::default()
            }),
        };
        match leases.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            // Created meanwhile by another scheduler: it renews too, which is just as good.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(NodeError::RenewLease(e)),
        }
    }
}

/// Creates namespace `kube-node-lease` when missing, as the API server does upstream.
pub async fn ensure_lease_namespace(client: &kube::Client) -> Result<(), NodeError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(NODE_LEASE_NAMESPACE.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(NodeError::LeaseNamespace(e)),
    }
}

fn new_node() -> Node {
    let labels = [
        ("type", "virtual-kubelet"),
        ("kubernetes.io/hostname", VIRTUAL_NODE),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", arch()),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", arch()),
    ];
    Node {
        metadata: ObjectMeta {
            name: Some(VIRTUAL_NODE.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The architecture as Kubernetes names it (GOARCH).
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// What decides the node's status apart from timestamps: compared to skip needless writes.
fn summary(live: &[LiveHost]) -> Value {
    status(live, None)
}

/// When the Ready condition last changed: kept while its status stays, now otherwise.
fn ready_transition(node: &Node, ready: bool) -> Option<Time> {
    let want = if ready { "True" } else { "False" };
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == want)
        .and_then(|c| c.last_transition_time.clone())
}

/// The node's status for these live hosts. Without `since` (a comparison summary) the
/// timestamps are left out.
fn status(live: &[LiveHost], since: Option<Time>) -> Value {
    let cpu_millis: u64 = live.iter().map(|h| h.capacity.cpu_millis).sum();
    let memory_bytes: u64 = live.iter().map(|h| h.capacity.memory_bytes).sum();
    let resources = json!({
        "cpu": cpu_quantity(cpu_millis),
        "memory": memory_quantity(memory_bytes),
        "pods": MAX_PODS,
    });
    let (ready, reason, message) = if live.is_empty() {
        let message = format!(
            "no host of the instance pool has sent a heartbeat in the last {}s",
            HEARTBEAT_TIMEOUT.as_secs()
        );
        ("False", "NoLiveHosts", message)
    } else {
        let message = format!("{} hosts of the instance pool are live", live.len());
        ("True", "NodelessReady", message)
    };
    let stamp = |t: Option<Time>| -> Value {
        match t {
            Some(t) => json!(t),
            None => Value::Null,
        }
    };
    let now = since.as_ref().map(|_| Time(Utc::now()));
    let transition = since.clone().or_else(|| now.clone());
    let mut conditions: Vec<Value> = [
        ("MemoryPressure", "KubeletHasSufficientMemory"),
        ("DiskPressure", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "KubeletHasSufficientPID"),
    ]
    .iter()
    .map(|(kind, reason)| {
        json!({"type": kind, "status": "False", "reason": reason,
               "message": "the instance pool has room", "lastHeartbeatTime": stamp(now.clone()),
               "lastTransitionTime": stamp(transition.clone())})
    })
    .collect();
    conditions.push(json!({
        "type": "Ready", "status": ready, "reason": reason, "message": message,
        "lastHeartbeatTime": stamp(now.clone()), "lastTransitionTime": stamp(transition),
    }));
    let mut addresses = Vec::new();
    if let Some(first) = live.first() {
        addresses.push(json!({"type": "InternalIP", "address": first.address}));
    }
    addresses.push(json!({"type": "Hostname", "address": VIRTUAL_NODE}));
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": conditions,
        "addresses": addresses,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "architecture": arch(),
            "operatingSystem": "linux",
            "osImage": "nodeless",
            "kernelVersion": "",
            "kubeletVersion": "v1.32.0-nodeless",
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "nodeless://0.1.0",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    })
}

/// CPU as a quantity: whole cores when exact (`16`), millicores otherwise (`7500m`).
fn cpu_quantity(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Memory as a quantity in the largest exact binary unit, as kubelets report it (`32Gi`).
fn memory_quantity(bytes: u64) -> String {
    for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::HostCapacity;

    fn live(name: &str, cpu_millis: u64, memory_gib: u64) -> LiveHost {
        LiveHost {
            capacity: HostCapacity {
                name: name.into(),
                cpu_millis,
                memory_bytes: memory_gib << 30,
                runtimes: vec!["runc".into()],
            },
            address: format!("10.0.0.{}", name.len()),
        }
    }

    #[test]
    fn the_node_offers_the_sum_of_live_hosts_and_their_first_address() {
        let s = status(&[live("a", 8000, 16), live("bb", 7500, 16)], None);
        assert_eq!(
            s["capacity"],
            json!({"cpu": "15500m", "memory": "32Gi", "pods": "10000"})
        );
        assert_eq!(s["allocatable"], s["capacity"]);
        assert_eq!(
            s["addresses"][0],
            json!({"type": "InternalIP", "address": "10.0.0.1"})
        );
        assert_eq!(s["conditions"][3]["type"], "Ready");
        assert_eq!(s["conditions"][3]["status"], "True");
    }

    #[test]
    fn without_live_hosts_the_node_is_not_ready_and_says_why() {
        let s = status(&[], None);
        let ready = &s["conditions"][3];
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "NoLiveHosts");
        assert_eq!(s["capacity"]["cpu"], "0");
        assert_eq!(
            s["addresses"],
            json!([{"type": "Hostname", "address": "nodeless"}])
        );
    }

    #[test]
    fn quantities_use_the_largest_exact_unit() {
        assert_eq!(cpu_quantity(16000), "16");
        assert_eq!(memory_quantity(3 << 29), "1536Mi");
        assert_eq!(memory_quantity(0), "0");
    }
}
