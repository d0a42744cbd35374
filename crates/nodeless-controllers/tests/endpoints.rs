//! The Endpoints and EndpointSlice controller against a real nodeless API server.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams};
use kube::Client;
use nodeless_controllers::endpoints;
use serde_json::json;

#[path = "endpoints_support/mod.rs"]
mod support;

use support::{cluster, create, create_pod, eventually, set_pod_status};

/// Ready and not-ready IPs of the Endpoints object, each sorted.
fn addresses(e: &Endpoints) -> (Vec<String>, Vec<String>) {
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for s in e.subsets.iter().flatten() {
        ready.extend(s.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(s.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready)
}

async fn slices_of(client: &Client, ns: &str, svc: &str) -> anyhow::Result<Vec<EndpointSlice>> {
    let lp = ListParams::default().labels(&format!("kubernetes.io/service-name={svc}"));
    Ok(Api::<EndpointSlice>::namespaced(client.clone(), ns)
        .list(&lp)
        .await?
        .items)
}

/// Every slice endpoint as ip -> (ready, serving, terminating).
fn conditions(slices: &[EndpointSlice]) -> BTreeMap<String, (bool, bool, bool)> {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            let f = |b: Option<bool>| b.unwrap_or(false);
            (
                e.addresses[0].clone(),
                (f(c.ready), f(c.serving), f(c.terminating)),
            )
        })
        .collect()
}

fn web_service(name: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "admin", "port": 81, "targetPort": 9000}
        ]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_slices_list_ready_and_not_ready_pods_and_follow_readiness(
) -> anyhow::Result<()> {
    let c = cluster().await?;
    c.run(endpoints::run);
    let client = &c.client;
    create::<Service>(client, "default", web_service("web")).await?;
    create_pod(
        client,
        "default",
        "web-a",
        json!({"app": "web"}),
        Some(8080),
    )
    .await?;
    create_pod(
        client,
        "default",
        "web-b",
        json!({"app": "web"}),
        Some(8080),
    )
    .await?;
    create_pod(
        client,
        "default",
        "other",
        json!({"app": "other"}),
        Some(8080),
    )
    .await?;
    set_pod_status(client, "default", "web-a", "10.88.0.2", true).await?;
    set_pod_status(client, "default", "web-b", "10.88.0.3", false).await?;
    set_pod_status(client, "default", "other", "10.88.0.9", true).await?;

    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let e = eventually("the Endpoints list both Pods", || async {
        let e = eps.get_opt("web").await?;
        Ok(e.filter(|e| addresses(e) == (vec!["10.88.0.2".into()], vec!["10.88.0.3".into()])))
    })
    .await?;
    let subset = &e.subsets.as_ref().expect("subsets")[0];
    let mut ports: Vec<(String, i32)> = subset
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap_or_default(), p.port))
        .collect();
    ports.sort();
    assert_eq!(ports, vec![("admin".into(), 9000), ("http".into(), 8080)]);
    let addr = &subset.addresses.as_ref().expect("ready")[0];
    assert_eq!(addr.node_name.as_deref(), Some("nodeless"));
    assert_eq!(
        addr.target_ref.as_ref().and_then(|r| r.name.as_deref()),
        Some("web-a")
    );

    let slices = eventually("one slice lists both Pods", || async {
        let s = slices_of(client, "default", "web").await?;
        Ok((conditions(&s).len() == 2).then_some(s))
    })
    .await?;
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    assert_eq!(slice.address_type, "IPv4");
    assert!(slice
        .metadata
        .name
        .as_deref()
        .is_some_and(|n| n.starts_with("web-")));
    let labels = slice.metadata.labels.as_ref().expect("labels");
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    let owner = &slice.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(owner.kind, "Service");
    let states = conditions(&slices);
    assert_eq!(states["10.88.0.2"], (true, true, false));
    assert_eq!(states["10.88.0.3"], (false, false, false));

    // Settled: nothing is rewritten while nothing changes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = slices_of(client, "default", "web").await?;
    assert_eq!(
        again[0].metadata.resource_version,
        slice.metadata.resource_version
    );
    let e_again = eps.get("web").await?;
    assert_eq!(
        e_again.metadata.resource_version,
        e.metadata.resource_version
    );

    // Readiness follows at once.
    let started = std::time::Instant::now();
    set_pod_status(client, "default", "web-b", "10.88.0.3", true).await?;
    eventually("the slice shows web-b ready", || async {
        let s = slices_of(client, "default", "web").await?;
        Ok((conditions(&s).get("10.88.0.3") == Some(&(true, true, false))).then_some(()))
    })
    .await?;
    eprintln!("readiness reached the slice in {:?}", started.elapsed());
    eventually("the Endpoints show web-b ready", || async {
        let e = eps.get("web").await?;
        Ok((addresses(&e).0.len() == 2).then_some(()))
    })
    .await?;

    // A terminating Pod stops being ready in the slice and leaves the Endpoints.
    Api::<Pod>::namespaced(client.clone(), "default")
        .delete("web-a", &DeleteParams::default())
        .await?;
    eventually("web-a is terminating in the slice", || async {
        let s = slices_of(client, "default", "web").await?;
        Ok((conditions(&s).get("10.88.0.2") == Some(&(false, true, true))).then_some(()))
    })
    .await?;
    eventually("web-a left the Endpoints", || async {
        let e = eps.get("web").await?;
        Ok((addresses(&e) == (vec!["10.88.0.3".into()], vec![])).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_service_publishing_not_ready_pods_lists_them_with_hostnames(
) -> anyhow::Result<()> {
    let c = cluster().await?;
    c.run(endpoints::run);
    let client = &c.client;
    create::<Service>(client, "default", json!({
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": {"app": "db"}}
    }))
    .await?;
    let pod = json!({
        "metadata": {"name": "db-0", "labels": {"app": "db"}},
        "spec": {"hostname": "db-0", "subdomain": "db", "nodeName": "nodeless",
                 "containers": [{"name": "c", "image": "busybox"}]}
    });
    create::<Pod>(client, "default", pod).await?;
    set_pod_status(client, "default", "db-0", "10.88.0.5", false).await?;
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let e = eventually("the not-ready Pod is published", || async {
        let e = eps.get_opt("db").await?;
        Ok(e.filter(|e| addresses(e).0 == vec!["10.88.0.5".to_string()]))
    })
    .await?;
    let subset = &e.subsets.as_ref().expect("subsets")[0];
    assert!(subset.ports.is_none());
    assert_eq!(
        subset.addresses.as_ref().expect("ready")[0]
            .hostname
            .as_deref(),
        Some("db-0")
    );
    let labels = e.metadata.labels.as_ref().expect("labels");
    assert!(labels.contains_key("service.kubernetes.io/headless"));
    let slices = eventually("the slice lists the Pod", || async {
        let s = slices_of(client, "default", "db").await?;
        Ok((!conditions(&s).is_empty()).then_some(s))
    })
    .await?;
    let ep = &slices[0].endpoints[0];
    assert_eq!(ep.hostname.as_deref(), Some("db-0"));
    assert_eq!(conditions(&slices)["10.88.0.5"], (true, true, false));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_without_a_selector_are_left_alone_and_load_balancers_get_a_warning(
) -> anyhow::Result<()> {
    let c = cluster().await?;
    c.run(endpoints::run);
    let client = &c.client;
    create::<Service>(
        client,
        "default",
        json!({
            "metadata": {"name": "external"}, "spec": {"ports": [{"port": 53}]}
        }),
    )
    .await?;
    create::<EndpointSlice>(client, "default", json!({
        "metadata": {"name": "external-1", "labels": {"kubernetes.io/service-name": "external"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.88.0.1"]}],
        "ports": [{"port": 53}]
    }))
    .await?;
    let mut lb = web_service("lb");
    lb["spec"]["type"] = json!("LoadBalancer");
    create::<Service>(client, "default", lb).await?;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let warning = eventually("the LoadBalancer Service has its warning", || async {
        let list = events.list(&ListParams::default()).await?;
        Ok(list.items.into_iter().find(|e| {
            e.involved_object.name.as_deref() == Some("lb")
                && e.reason.as_deref() == Some(endpoints::LOAD_BALANCER_REASON)
        }))
    })
    .await?;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(
        warning.message.as_deref(),
        Some(endpoints::LOAD_BALANCER_MESSAGE)
    );
    // The LoadBalancer Service (with a selector) got its placeholder slice, so the
    // controller has been through both Services by now.
    eventually("the lb Service has a slice", || async {
        Ok((!slices_of(client, "default", "lb").await?.is_empty()).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    assert!(eps.get_opt("external").await?.is_none());
    let s = slices_of(client, "default", "external").await?;
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].endpoints[0].addresses, vec!["10.88.0.1".to_string()]);
    let count = events
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some(endpoints::LOAD_BALANCER_REASON))
        .map(|e| e.count.unwrap_or(1))
        .sum::<i32>();
    assert_eq!(count, 1, "the warning is recorded once");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_service_takes_its_endpoints_and_slices_with_it() -> anyhow::Result<()> {
    let c = cluster().await?;
    c.run(endpoints::run);
    let client = &c.client;
    create::<Service>(client, "default", web_service("gone")).await?;
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    eventually("the Endpoints exist", || async {
        Ok(eps.get_opt("gone").await?)
    })
    .await?;
    eventually("a slice exists", || async {
        Ok((!slices_of(client, "default", "gone").await?.is_empty()).then_some(()))
    })
    .await?;
    Api::<Service>::namespaced(client.clone(), "default")
        .delete("gone", &DeleteParams::default())
        .await?;
    eventually("the Endpoints and slices are gone", || async {
        let none = eps.get_opt("gone").await?.is_none()
            && slices_of(client, "default", "gone").await?.is_empty();
        Ok(none.then_some(()))
    })
    .await?;
    Ok(())
}
