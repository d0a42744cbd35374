//! PodDisruptionBudget status against a real nodeless API server, with its eviction.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, Patch, PatchParams};
use nodeless_controllers::pdb;
use serde_json::json;

#[path = "endpoints_support/mod.rs"]
mod support;

use support::{cluster, create, create_pod, eventually, set_pod_status};

fn numbers(b: &PodDisruptionBudget) -> Option<(i32, i32, i32, i32)> {
    let s = b.status.as_ref()?;
    Some((
        s.expected_pods,
        s.current_healthy,
        s.desired_healthy,
        s.disruptions_allowed,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_reports_healthy_pods_and_eviction_spends_its_disruptions() -> anyhow::Result<()> {
    let c = cluster().await?;
    c.run(pdb::run);
    let client = &c.client;
    for (name, ip) in [
        ("web-a", "10.88.0.2"),
        ("web-b", "10.88.0.3"),
        ("web-c", "10.88.0.4"),
    ] {
        create_pod(client, "default", name, json!({"app": "web"}), None).await?;
        set_pod_status(client, "default", name, ip, name != "web-c").await?;
    }
    create::<PodDisruptionBudget>(
        client,
        "default",
        json!({
            "metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}
        }),
    )
    .await?;
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let b = eventually("the budget allows one disruption", || async {
        let b = budgets.get("web").await?;
        Ok((numbers(&b) == Some((3, 2, 1, 1))).then_some(b))
    })
    .await?;
    let status = b.status.as_ref().expect("status");
    assert_eq!(status.observed_generation, b.metadata.generation);
    let cond = &status.conditions.as_ref().expect("conditions")[0];
    assert_eq!(
        (
            cond.type_.as_str(),
            cond.status.as_str(),
            cond.reason.as_str()
        ),
        ("DisruptionAllowed", "True", "SufficientPods")
    );

    // A Pod the eviction recorded as disrupted counts as unhealthy while it is not deleted
    // yet: the controller keeps the entry rather than overwrite it.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let disrupted = json!({"status": {"disruptedPods": {"web-b": now}, "disruptionsAllowed": 0}});
    budgets
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&disrupted))
        .await?;
    let b = eventually("web-b counts as disrupted", || async {
        let b = budgets.get("web").await?;
        Ok((numbers(&b) == Some((3, 1, 1, 0))).then_some(b))
    })
    .await?;
    let status = b.status.expect("status");
    assert!(status
        .disrupted_pods
        .expect("disruptedPods")
        .contains_key("web-b"));
    let cond = &status.conditions.expect("conditions")[0];
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_str()),
        ("False", "InsufficientPods")
    );

    // Healthy again once web-b's entry is dropped; then one eviction is allowed, not two.
    let cleared = json!({"status": {"disruptedPods": null}});
    budgets
        .patch_status("web", &PatchParams::default(), &Patch::Merge(&cleared))
        .await?;
    eventually("one disruption allowed again", || async {
        let b = budgets.get("web").await?;
        Ok((numbers(&b) == Some((3, 2, 1, 1))).then_some(()))
    })
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.evict("web-a", &EvictParams::default()).await?;
    eventually("the evicted Pod no longer counts", || async {
        let b = budgets.get("web").await?;
        Ok((numbers(&b).map(|n| (n.1, n.3)) == Some((1, 0))).then_some(()))
    })
    .await?;
    let refused = pods.evict("web-b", &EvictParams::default()).await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(e)) if e.code == 429),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percentage_budget_counts_against_the_replica_set_scale() -> anyhow::Result<()> {
    let c = cluster().await?;
    c.run(pdb::run);
    let client = &c.client;
    let rs = create::<k8s_openapi::api::apps::v1::ReplicaSet>(
        client,
        "default",
        json!({
            "metadata": {"name": "web-1"},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
        }),
    )
    .await?;
    let owner = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                        "uid": rs.metadata.uid, "controller": true}]);
    for (name, ip) in [("web-1-a", "10.88.0.2"), ("web-1-b", "10.88.0.3")] {
        create::<Pod>(
            client,
            "default",
            json!({
                "metadata": {"name": name, "labels": {"app": "web"}, "ownerReferences": owner},
                "spec": {"nodeName": "nodeless", "containers": [{"name": "c", "image": "busybox"}]}
            }),
        )
        .await?;
        set_pod_status(client, "default", name, ip, true).await?;
    }
    create::<PodDisruptionBudget>(
        client,
        "default",
        json!({
            "metadata": {"name": "web"},
            "spec": {"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "web"}}}
        }),
    )
    .await?;
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    // Four expected (the ReplicaSet's scale), one may be unavailable: three must be healthy.
    eventually("the budget counts four expected Pods", || async {
        let b = budgets.get("web").await?;
        Ok((numbers(&b) == Some((4, 2, 3, 0))).then_some(()))
    })
    .await?;
    Ok(())
}
