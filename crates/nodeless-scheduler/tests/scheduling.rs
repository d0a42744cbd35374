//! The scheduler against a real nodeless API server: binding, reporting and retrying.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

mod support;

use support::{add_host, cluster, eventually};

const FRESH: Duration = Duration::from_secs(1);

fn pod(name: &str, cpu: &str, memory: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{
            "name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}
        }]}
    }))
    .expect("valid pod")
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

async fn bound(pods: &Api<Pod>, name: &str) -> anyhow::Result<Pod> {
    eventually(&format!("{name} is bound with its host"), || async {
        let p = pods.get(name).await?;
        let done = !node_name(&p).is_empty() && annotation(&p, "nodeless.dev/host").is_some();
        Ok(done.then_some(p))
    })
    .await
}

async fn warning(client: &kube::Client, pod: &str) -> anyhow::Result<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    eventually(&format!("{pod} has a FailedScheduling event"), || async {
        let list = events.list(&ListParams::default()).await?;
        Ok(list.items.into_iter().find_map(|e| {
            let about = e.involved_object.name.as_deref() == Some(pod);
            let failed = e.reason.as_deref() == Some("FailedScheduling");
            (about && failed && e.type_.as_deref() == Some("Warning"))
                .then(|| e.message.unwrap_or_default())
        }))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_is_bound_to_the_virtual_node_with_its_host_and_spec() -> anyhow::Result<()> {
    let c = cluster().await?;
    add_host(&c.client, "h1", "8", "16Gi", FRESH).await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("web", "1500m", "3Gi"))
        .await?;
    let p = bound(&pods, "web").await?;
    assert_eq!(node_name(&p), "nodeless");
    assert_eq!(annotation(&p, "nodeless.dev/host"), Some("h1"));
    assert_eq!(annotation(&p, "nodeless.dev/instance-spec"), Some("2-3Gi"));
    let events: Api<Event> = Api::namespaced(c.client.clone(), "default");
    let scheduled = eventually("a Scheduled event is recorded", || async {
        let list = events.list(&ListParams::default()).await?;
        Ok(list
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Scheduled")))
    })
    .await?;
    assert_eq!(
        scheduled.message.as_deref(),
        Some("Successfully assigned default/web to nodeless (host h1, spec 2-3Gi, on-demand, on-demand price 0.094295 USD/h)")
    );
    // The price is locked at binding: 2 vCPU × 0.04048 + 3 GiB × 0.004445 (default catalogue).
    assert_eq!(
        annotation(&p, "nodeless.dev/capacity-type"),
        Some("on-demand")
    );
    assert_eq!(
        annotation(&p, "nodeless.dev/hourly-price"),
        Some("0.094295000")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_too_large_for_the_pool_waits_until_another_is_deleted() -> anyhow::Result<()> {
    let c = cluster().await?;
    add_host(&c.client, "h1", "4", "8Gi", FRESH).await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("big", "3", "4Gi"))
        .await?;
    bound(&pods, "big").await?;
    pods.create(&PostParams::default(), &pod("next", "2", "4Gi"))
        .await?;
    let message = warning(&c.client, "next").await?;
    assert_eq!(
        message,
        "0/1 hosts of the instance pool have room: insufficient cpu (requested 2, free 0 of 4)"
    );
    let p = pods.get("next").await?;
    assert_eq!(node_name(&p), "");
    let conditions = p.status.and_then(|s| s.conditions).unwrap_or_default();
    let scheduled = conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .expect("PodScheduled condition");
    assert_eq!(scheduled.status, "False");
    assert_eq!(scheduled.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(scheduled.message.as_deref(), Some(message.as_str()));

    pods.delete("big", &DeleteParams::default().grace_period(0))
        .await?;
    let p = bound(&pods, "next").await?;
    assert_eq!(annotation(&p, "nodeless.dev/host"), Some("h1"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_annotation_leaves_the_pod_pending_and_says_why() -> anyhow::Result<()> {
    let c = cluster().await?;
    add_host(&c.client, "h1", "8", "16Gi", FRESH).await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let mut p = pod("odd", "1", "1Gi");
    p.metadata.annotations = Some([("nodeless.dev/instance-spec".into(), "huge".into())].into());
    pods.create(&PostParams::default(), &p).await?;
    let message = warning(&c.client, "odd").await?;
    assert!(message.contains("\"huge\""), "{message}");
    assert_eq!(node_name(&pods.get("odd").await?), "");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_pods_is_bound_quickly_without_oversubscribing_any_host() -> anyhow::Result<()> {
    let c = cluster().await?;
    // Room for exactly 100 one-vCPU instances across the two hosts.
    add_host(&c.client, "h1", "60", "1000Gi", FRESH).await?;
    add_host(&c.client, "h2", "40", "1000Gi", FRESH).await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let started = Instant::now();
    let creates = (0..120).map(|i| {
        let pods = pods.clone();
        async move {
            pods.create(&PostParams::default(), &pod(&format!("p{i}"), "1", "2Gi"))
                .await
        }
    });
    for created in futures::future::join_all(creates).await {
        created?;
    }
    let list = eventually("100 pods are bound and 20 marked unschedulable", || async {
        let list = pods.list(&ListParams::default()).await?.items;
        let bound = list
            .iter()
            .filter(|p| annotation(p, "nodeless.dev/host").is_some())
            .count();
        let unschedulable = list
            .iter()
            .filter(|p| {
                let conditions = p.status.as_ref().and_then(|s| s.conditions.as_ref());
                conditions
                    .into_iter()
                    .flatten()
                    .any(|c| c.reason.as_deref() == Some("Unschedulable"))
            })
            .count();
        Ok((bound == 100 && unschedulable == 20).then_some(list))
    })
    .await?;
    let elapsed = started.elapsed();
    let on = |host: &str| {
        list.iter()
            .filter(|p| annotation(p, "nodeless.dev/host") == Some(host))
            .count()
    };
    assert_eq!((on("h1"), on("h2")), (60, 40));
    eprintln!("bound 100 pods and reported 20 unschedulable in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    // Nothing more is bound later: the assumed bindings were not counted twice or dropped.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let list = pods.list(&ListParams::default()).await?.items;
    let bound = list.iter().filter(|p| !node_name(p).is_empty()).count();
    assert_eq!(bound, 100);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_pods_created_at_once_are_all_bound_within_seconds() -> anyhow::Result<()> {
    let c = cluster().await?;
    add_host(&c.client, "h1", "1000", "4000Gi", FRESH).await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let creates = futures::stream::iter(0..500).map(|i| {
        let pods = pods.clone();
        async move {
            pods.create(
                &PostParams::default(),
                &pod(&format!("p{i}"), "250m", "512Mi"),
            )
            .await
        }
    });
    let started = Instant::now();
    let created: Vec<_> = creates.buffer_unordered(64).collect().await;
    for c in created {
        c?;
    }
    let creating = started.elapsed();
    eventually("all 500 pods are bound", || async {
        let list = pods.list(&ListParams::default()).await?.items;
        let bound = list.iter().filter(|p| !node_name(p).is_empty()).count();
        Ok((bound == 500).then_some(()))
    })
    .await?;
    let elapsed = started.elapsed();
    eprintln!("created 500 pods in {creating:?}, all bound after {elapsed:?}");
    assert!(
        elapsed < creating + Duration::from_secs(10),
        "took {elapsed:?}"
    );
    Ok(())
}
