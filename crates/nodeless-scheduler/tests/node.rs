//! The virtual node and its Lease against a real nodeless API server.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

mod support;

use support::{add_host, cluster, eventually};

fn ready(node: &Node) -> Option<(String, String)> {
    let conditions = node.status.as_ref()?.conditions.as_ref()?;
    let c = conditions.iter().find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default()))
}

fn capacity(node: &Node, key: &str) -> Option<String> {
    let cap = node.status.as_ref()?.capacity.as_ref()?;
    cap.get(key).map(|q| q.0.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_virtual_node_is_ready_with_the_summed_capacity_of_live_hosts() -> anyhow::Result<()> {
    let c = cluster().await?;
    add_host(&c.client, "h1", "8", "16Gi", Duration::from_secs(1)).await?;
    add_host(&c.client, "h2", "4", "8Gi", Duration::from_secs(1)).await?;
    // A host whose agent stopped counts for nothing.
    add_host(&c.client, "gone", "64", "256Gi", Duration::from_secs(300)).await?;
    let nodes: Api<Node> = Api::all(c.client.clone());
    let node = eventually("the node shows both live hosts", || async {
        let node = nodes.get_opt("nodeless").await?;
        Ok(node.filter(|n| capacity(n, "cpu").as_deref() == Some("12")))
    })
    .await?;
    assert_eq!(ready(&node), Some(("True".into(), "NodelessReady".into())));
    assert_eq!(capacity(&node, "memory").as_deref(), Some("24Gi"));
    assert_eq!(capacity(&node, "pods").as_deref(), Some("10000"));
    let status = node.status.clone().expect("status");
    let alloc = status.allocatable.expect("allocatable");
    assert_eq!(alloc.get("cpu").map(|q| q.0.as_str()), Some("12"));
    let info = status.node_info.expect("nodeInfo");
    assert_eq!(info.kubelet_version, "v1.32.0-nodeless");
    assert_eq!(info.container_runtime_version, "nodeless://0.1.0");
    let addresses = status.addresses.expect("addresses");
    assert_eq!(addresses[0].type_, "InternalIP");
    assert_eq!(addresses[0].address, "192.0.2.2");
    let port = status.daemon_endpoints.and_then(|d| d.kubelet_endpoint);
    assert_eq!(port.map(|p| p.port), Some(10250));
    let labels = node.metadata.labels.expect("labels");
    assert_eq!(
        labels.get("type").map(String::as_str),
        Some("virtual-kubelet")
    );
    assert_eq!(
        labels.get("kubernetes.io/hostname").map(String::as_str),
        Some("nodeless")
    );

    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    let lease = eventually("the node's lease exists", || async {
        Ok(leases.get_opt("nodeless").await?)
    })
    .await?;
    let spec = lease.spec.expect("lease spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("nodeless"));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let first = spec.renew_time.expect("renewed").0;
    eventually("the lease is renewed", || async {
        let spec = leases.get("nodeless").await?.spec.expect("lease spec");
        Ok(spec.renew_time.filter(|t| t.0 > first).map(|_| ()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_live_host_the_virtual_node_is_not_ready() -> anyhow::Result<()> {
    let c = cluster().await?;
    add_host(&c.client, "stale", "8", "16Gi", Duration::from_secs(300)).await?;
    let nodes: Api<Node> = Api::all(c.client.clone());
    let node = eventually("the node has a Ready condition", || async {
        let node = nodes.get_opt("nodeless").await?;
        Ok(node.filter(|n| ready(n).is_some()))
    })
    .await?;
    assert_eq!(ready(&node), Some(("False".into(), "NoLiveHosts".into())));
    assert_eq!(capacity(&node, "cpu").as_deref(), Some("0"));
    Ok(())
}
