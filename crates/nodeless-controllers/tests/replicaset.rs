//! The ReplicaSet controller against a real API server: Pods to the desired count, scaling
//! down the least ready first, adoption and release, status, and events.

#[path = "deployment_support/mod.rs"]
mod support;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::*;

fn replica_set(name: &str, replicas: i32) -> anyhow::Result<ReplicaSet> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    }))?)
}

async fn status_of(api: &Api<ReplicaSet>, name: &str) -> anyhow::Result<(i32, i32, i32, i64)> {
    let rs = api.get(name).await?;
    let s = rs.status.unwrap_or_default();
    Ok((
        s.replicas,
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
        s.observed_generation.unwrap_or(0),
    ))
}

#[tokio::test]
async fn a_replica_set_creates_its_pods_reports_them_and_scales_down_unready_pods_first(
) -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let client = cluster.client.clone();
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &replica_set("web", 3)?)
        .await?;

    let pods = eventually("three pods exist", || async {
        let pods = live_pods(&client, "default", "app=web").await?;
        Ok((pods.len() == 3).then_some(pods))
    })
    .await?;
    for p in &pods {
        let name = p.metadata.name.as_deref().unwrap_or_default();
        assert!(
            name.starts_with("web-") && name.len() == "web-".len() + 5,
            "{name}"
        );
        let owner = &p.metadata.owner_references.as_ref().expect("owned")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("ReplicaSet", Some(true))
        );
        assert_eq!(owner.block_owner_deletion, Some(true));
    }
    // Two of three become ready; the status follows.
    make_ready(&client, &pods[0]).await?;
    make_ready(&client, &pods[1]).await?;
    eventually("status shows 3 replicas, 2 ready", || async {
        Ok((status_of(&api, "web").await? == (3, 2, 2, 1)).then_some(()))
    })
    .await?;
    let created = event_messages(&client, "default", "web", "SuccessfulCreate").await?;
    assert_eq!(created.len(), 3, "{created:?}");
    assert!(created.iter().all(|m| m.starts_with("Created pod: web-")));

    // Scaling to 2 deletes the one that is not ready.
    let unready = pods[2].metadata.name.clone().expect("name");
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await?;
    eventually("the unready pod is deleted", || async {
        let pods = live_pods(&client, "default", "app=web").await?;
        Ok((pods.len() == 2).then_some(pods))
    })
    .await?;
    let left = live_pods(&client, "default", "app=web").await?;
    assert!(left
        .iter()
        .all(|p| p.metadata.name.as_deref() != Some(&unready)));
    eventually("status shows 2 replicas at generation 2", || async {
        Ok((status_of(&api, "web").await? == (2, 2, 2, 2)).then_some(()))
    })
    .await?;
    let deleted = event_messages(&client, "default", "web", "SuccessfulDelete").await?;
    assert_eq!(deleted, [format!("Deleted pod: {unready}")]);
    Ok(())
}

#[tokio::test]
async fn a_deleted_pod_is_replaced_orphans_are_adopted_and_relabeled_pods_released(
) -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let client = cluster.client.clone();
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    // An orphan that matches, created first: the ReplicaSet adopts it and creates one more.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "api"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))?;
    pods_api.create(&PostParams::default(), &orphan).await?;
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs = api
        .create(&PostParams::default(), &replica_set("api", 2)?)
        .await?;
    let uid = rs.metadata.uid.clone().expect("uid");
    eventually("the orphan is adopted and one pod created", || async {
        let pods = live_pods(&client, "default", "app=api").await?;
        let adopted = pods.iter().any(|p| {
            p.metadata.name.as_deref() == Some("orphan")
                && p.metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|r| r[0].uid == uid)
        });
        Ok((pods.len() == 2 && adopted).then_some(()))
    })
    .await?;

    // Relabeling a Pod releases it, and a replacement is created.
    pods_api
        .patch(
            "orphan",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await?;
    eventually("the relabeled pod is released and replaced", || async {
        let released = pods_api.get("orphan").await?;
        let free = released
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty();
        let pods = live_pods(&client, "default", "app=api").await?;
        Ok((free && pods.len() == 2).then_some(()))
    })
    .await?;

    // A deleted Pod is replaced.
    let victim = live_pods(&client, "default", "app=api").await?[0]
        .metadata
        .name
        .clone()
        .expect("name");
    pods_api.delete(&victim, &Default::default()).await?;
    eventually("the deleted pod is replaced", || async {
        let pods = live_pods(&client, "default", "app=api").await?;
        Ok((pods.len() == 2
            && pods
                .iter()
                .all(|p| p.metadata.name.as_deref() != Some(&victim)))
        .then_some(()))
    })
    .await?;
    Ok(())
}
