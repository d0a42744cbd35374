//! The proxy against a real nodeless API server (in process, on 127.0.0.1:0) with the fake
//! nft: Services and EndpointSlices written through the API become rules, and changes to
//! them become updates.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Config};
use nodeless_apiserver::server::Limits;
use nodeless_proxy::{FakeNft, ProxyConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn wait_for_script(nft: &FakeNft, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        if let Some(s) = nft.scripts().into_iter().rev().find(|s| wanted(s)) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no script {what} in {:#?}", nft.scripts());
}

#[tokio::test]
async fn services_and_slices_from_the_api_become_rules_and_follow_changes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let running = nodeless_apiserver::start(nodeless_apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        limits: Limits::default(),
    })
    .await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&running.kubeconfig)?;
    let client =
        Client::try_from(Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?)?;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": { "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }],
                  "sessionAffinity": "ClientIP" },
    }))?;
    let svc = services.create(&PostParams::default(), &svc).await?;
    let cluster_ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("the API server allocates a ClusterIP");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": { "name": "web-1", "labels": { "kubernetes.io/service-name": "web" } },
        "addressType": "IPv4",
        "endpoints": [{ "addresses": ["10.88.0.5"], "conditions": { "ready": true } }],
        "ports": [{ "name": "http", "port": 8080, "protocol": "TCP" }],
    }))?;
    slices.create(&PostParams::default(), &slice).await?;

    let nft = Arc::new(FakeNft::default());
    let shutdown = CancellationToken::new();
    let proxy = tokio::spawn(nodeless_proxy::run_with(
        client.clone(),
        ProxyConfig::default(),
        nft.clone(),
        shutdown.clone(),
    ));
    let first = wait_for_script(&nft, "with the service", |s| s.contains(&cluster_ip)).await;
    assert!(
        first.contains("delete table ip nodeless"),
        "the first sync replaces the table"
    );
    assert!(first.contains("dnat to 10.88.0.5:8080"));
    assert!(first.contains("flags dynamic,timeout ; timeout 10800s"));

    slices.delete("web-1", &DeleteParams::default()).await?;
    let rejecting = format!("{cluster_ip} . tcp . 80 : goto reject-chain");
    let update = wait_for_script(&nft, "rejecting", |s| s.contains(&rejecting)).await;
    assert!(
        !update.contains("delete table"),
        "later syncs update in place"
    );
    assert!(update.contains(&format!(
        "delete element ip nodeless service-ips {{ {cluster_ip} . tcp . 80 }}"
    )));

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), proxy).await??;
    running.shutdown().await;
    Ok(())
}
