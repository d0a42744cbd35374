//! The Deployment controller (with the ReplicaSet controller) against a real API server: a
//! Deployment's ReplicaSet and Pods, rolling updates within maxSurge/maxUnavailable,
//! `rollout undo` reusing the old ReplicaSet, Recreate, scaling, pausing, status and
//! conditions, and a controller restart in the middle of a rollout.

#[path = "deployment_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use support::*;

const REVISION: &str = "deployment.kubernetes.io/revision";

fn deployment(
    name: &str,
    replicas: i32,
    image: &str,
    strategy: serde_json::Value,
) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {"kubernetes.io/change-cause": format!("image {image}")}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]}
            }
        }
    }))?)
}

fn surge_one() -> serde_json::Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
}

async fn replica_sets(client: &Client, app: &str) -> anyhow::Result<Vec<ReplicaSet>> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    Ok(api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?
        .items)
}

fn annotation(rs: &ReplicaSet, key: &str) -> Option<String> {
    rs.metadata.annotations.as_ref()?.get(key).cloned()
}

fn image_of(rs: &ReplicaSet) -> Option<String> {
    rs.spec
        .as_ref()?
        .template
        .as_ref()?
        .spec
        .as_ref()?
        .containers[0]
        .image
        .clone()
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// What `kubectl rollout status` waits for.
fn rolled_out(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = d.status.as_ref() else {
        return false;
    };
    s.observed_generation >= d.metadata.generation
        && s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
}

fn condition(d: &Deployment, type_: &str) -> Option<(String, String)> {
    let c = d
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default()))
}

/// Keeps marking Pods ready, as kubelets would, until dropped.
struct Kubelet(tokio::task::JoinHandle<()>);

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn kubelet(client: &Client, app: &str) -> Kubelet {
    let client = client.clone();
    let selector = format!("app={app}");
    Kubelet(tokio::spawn(async move {
        loop {
            let _ = make_all_ready(&client, "default", &selector).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }))
}

async fn wait_rolled_out(api: &Api<Deployment>, name: &str) -> anyhow::Result<Deployment> {
    eventually_within(40, "the rollout finishes", || async {
        let d = api.get(name).await?;
        Ok(rolled_out(&d).then_some(d))
    })
    .await
}

async fn set_image(api: &Api<Deployment>, name: &str, image: &str) -> anyhow::Result<()> {
    let patch = json!({
        "metadata": {"annotations": {"kubernetes.io/change-cause": format!("image {image}")}},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}
    });
    api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_deployment_runs_its_pods_through_a_hashed_replica_set_and_reports_rolled_out(
) -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let client = cluster.client.clone();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment("web", 3, "nginx:1", surge_one())?,
    )
    .await?;
    let _kubelet = kubelet(&client, "web");
    let d = wait_rolled_out(&api, "web").await?;

    let sets = replica_sets(&client, "web").await?;
    assert_eq!(sets.len(), 1);
    let rs = &sets[0];
    let hash = rs.metadata.labels.as_ref().expect("labels")["pod-template-hash"].clone();
    assert_eq!(
        rs.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    let owner = &rs.metadata.owner_references.as_ref().expect("owned")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.block_owner_deletion),
        ("Deployment", Some(true))
    );
    assert_eq!(annotation(rs, REVISION).as_deref(), Some("1"));
    assert_eq!(
        annotation(rs, "kubernetes.io/change-cause").as_deref(),
        Some("image nginx:1")
    );
    assert_eq!(
        d.metadata.annotations.as_ref().expect("annotations")[REVISION],
        "1"
    );
    let pods = live_pods(&client, "default", &format!("pod-template-hash={hash}")).await?;
    assert_eq!(pods.len(), 3);

    let s = d.status.clone().expect("status");
    assert_eq!(
        (s.ready_replicas, s.unavailable_replicas),
        (Some(3), Some(0))
    );
    assert_eq!(
        condition(&d, "Available"),
        Some(("True".into(), "MinimumReplicasAvailable".into()))
    );
    eventually("Progressing says NewReplicaSetAvailable", || async {
        let d = api.get("web").await?;
        Ok(
            (condition(&d, "Progressing")
                == Some(("True".into(), "NewReplicaSetAvailable".into())))
            .then_some(()),
        )
    })
    .await?;
    let scaled = event_messages(&client, "default", "web", "ScalingReplicaSet").await?;
    assert_eq!(
        scaled,
        [format!("Scaled up replica set web-{hash} from 0 to 3")]
    );
    Ok(())
}

#[tokio::test]
async fn a_rolling_update_keeps_every_replica_available_and_undo_reuses_the_old_replica_set(
) -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let client = cluster.client.clone();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment("web", 3, "nginx:1", surge_one())?,
    )
    .await?;
    let _kubelet = kubelet(&client, "web");
    wait_rolled_out(&api, "web").await?;
    let first = replica_sets(&client, "web").await?.remove(0);

    set_image(&api, "web", "nginx:2").await?;
    // Sample while it rolls: never fewer than 3 ready Pods, never more than 3 + 1 Pods.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let pods = live_pods(&client, "default", "app=web").await?;
        let ready = pods
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        assert!(ready >= 3, "only {ready} ready pods during the rollout");
        assert!(pods.len() <= 4, "{} pods during the rollout", pods.len());
        let d = api.get("web").await?;
        if d.status.as_ref().and_then(|s| s.observed_generation) >= d.metadata.generation
            && rolled_out(&d)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollout did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sets = replica_sets(&client, "web").await?;
    assert_eq!(sets.len(), 2);
    let second = sets
        .iter()
        .find(|rs| rs.metadata.name != first.metadata.name)
        .expect("new rs");
    assert_eq!(image_of(second).as_deref(), Some("nginx:2"));
    assert_eq!(annotation(second, REVISION).as_deref(), Some("2"));
    let old = sets
        .iter()
        .find(|rs| rs.metadata.name == first.metadata.name)
        .expect("old rs");
    assert_eq!(spec_replicas(old), 0);

    // `kubectl rollout undo`: the old ReplicaSet's template (without its hash label) and its
    // annotations written back into the Deployment.
    let mut template = serde_json::to_value(first.spec.as_ref().and_then(|s| s.template.clone()))?;
    template["metadata"]["labels"]
        .as_object_mut()
        .expect("labels")
        .remove("pod-template-hash");
    let annotations: BTreeMap<String, String> = first
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k == "kubernetes.io/change-cause")
        .collect();
    let undo = json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations}
    ]);
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Json::<()>(serde_json::from_value(undo)?),
    )
    .await?;
    let d = wait_rolled_out(&api, "web").await?;
    let sets = replica_sets(&client, "web").await?;
    assert_eq!(
        sets.len(),
        2,
        "the old replica set is reused, not recreated"
    );
    let reused = sets
        .iter()
        .find(|rs| rs.metadata.name == first.metadata.name)
        .expect("reused");
    assert_eq!(spec_replicas(reused), 3);
    assert_eq!(annotation(reused, REVISION).as_deref(), Some("3"));
    assert_eq!(
        annotation(reused, "deployment.kubernetes.io/revision-history").as_deref(),
        Some("1")
    );
    assert_eq!(
        d.metadata.annotations.as_ref().expect("annotations")[REVISION],
        "3"
    );
    Ok(())
}

#[tokio::test]
async fn recreate_removes_every_old_pod_before_creating_new_ones() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let client = cluster.client.clone();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment("db", 2, "postgres:1", json!({"type": "Recreate"}))?,
    )
    .await?;
    let _kubelet = kubelet(&client, "db");
    wait_rolled_out(&api, "db").await?;
    let old_hash = replica_sets(&client, "db").await?[0]
        .metadata
        .labels
        .as_ref()
        .expect("labels")["pod-template-hash"]
        .clone();

    set_image(&api, "db", "postgres:2").await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let pods = live_pods(&client, "default", "app=db").await?;
        let old = pods
            .iter()
            .filter(|p| {
                p.metadata.labels.as_ref().expect("labels")["pod-template-hash"] == old_hash
            })
            .count();
        assert!(
            old == 0 || old == pods.len(),
            "old and new pods at once: {old} of {}",
            pods.len()
        );
        let d = api.get("db").await?;
        if rolled_out(&d)
            && d.status.as_ref().and_then(|s| s.updated_replicas) == Some(2)
            && old == 0
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "recreate did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test]
async fn scaling_a_deployment_scales_its_replica_set_and_paused_deployments_do_not_roll_out(
) -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let client = cluster.client.clone();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment("web", 2, "nginx:1", surge_one())?,
    )
    .await?;
    let _kubelet = kubelet(&client, "web");
    wait_rolled_out(&api, "web").await?;
    for n in [5, 1] {
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": n}})),
        )
        .await?;
        wait_rolled_out(&api, "web").await?;
        assert_eq!(
            live_pods(&client, "default", "app=web").await?.len(),
            n as usize
        );
    }
    let rs_name = replica_sets(&client, "web").await?[0]
        .metadata
        .name
        .clone()
        .expect("name");
    let scaled = event_messages(&client, "default", "web", "ScalingReplicaSet").await?;
    assert!(
        scaled.contains(&format!("Scaled up replica set {rs_name} from 2 to 5")),
        "{scaled:?}"
    );
    assert!(
        scaled.contains(&format!("Scaled down replica set {rs_name} from 5 to 1")),
        "{scaled:?}"
    );

    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": true}})),
    )
    .await?;
    set_image(&api, "web", "nginx:2").await?;
    eventually("the paused condition shows", || async {
        let d = api.get("web").await?;
        Ok(
            (condition(&d, "Progressing") == Some(("Unknown".into(), "DeploymentPaused".into()))
                && d.status.as_ref().and_then(|s| s.observed_generation) == d.metadata.generation)
                .then_some(()),
        )
    })
    .await?;
    assert_eq!(
        replica_sets(&client, "web").await?.len(),
        1,
        "no rollout while paused"
    );
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": false}})),
    )
    .await?;
    wait_rolled_out(&api, "web").await?;
    let sets = replica_sets(&client, "web").await?;
    assert_eq!(sets.len(), 2);
    assert!(sets
        .iter()
        .any(|rs| image_of(rs).as_deref() == Some("nginx:2") && spec_replicas(rs) == 1));
    Ok(())
}

#[tokio::test]
async fn restarting_the_controllers_mid_rollout_creates_no_extra_pods() -> anyhow::Result<()> {
    let mut cluster = cluster().await?;
    let client = cluster.client.clone();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment("web", 20, "nginx:1", surge_one())?,
    )
    .await?;
    let kubelet_handle = kubelet(&client, "web");
    wait_rolled_out(&api, "web").await?;

    set_image(&api, "web", "nginx:2").await?;
    eventually("the rollout has started", || async {
        Ok((replica_sets(&client, "web").await?.len() == 2).then_some(()))
    })
    .await?;
    cluster.stop_controllers().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.start_controllers();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let pods = live_pods(&client, "default", "app=web").await?;
        assert!(
            pods.len() <= 21,
            "{} pods for 20 replicas with maxSurge 1",
            pods.len()
        );
        let d = api.get("web").await?;
        if rolled_out(&d) && pods.len() == 20 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollout did not finish after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(kubelet_handle);
    let sets = replica_sets(&client, "web").await?;
    let total: i32 = sets.iter().map(spec_replicas).sum();
    assert_eq!(total, 20);
    Ok(())
}

#[tokio::test]
async fn a_500_replica_deployment_gets_exactly_500_pods() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let client = cluster.client.clone();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &deployment("big", 500, "nginx:1", surge_one())?,
    )
    .await?;
    eventually_within(120, "500 pods exist", || async {
        let n = live_pods(&client, "default", "app=big").await?.len();
        assert!(n <= 500, "{n} pods for 500 replicas");
        Ok((n == 500).then_some(()))
    })
    .await?;
    // Let late reconciles (on the watch catching up) show any double creation.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(live_pods(&client, "default", "app=big").await?.len(), 500);
    let rs_name = replica_sets(&client, "big").await?[0]
        .metadata
        .name
        .clone()
        .expect("name");
    eventually("the replica set reports 500 replicas", || async {
        let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default")
            .get(&rs_name)
            .await?;
        Ok((rs.status.map(|s| s.replicas) == Some(500)).then_some(()))
    })
    .await?;
    Ok(())
}
