//! The StatefulSet controller against a real API server, with the kubelet played by the tests.

#[path = "job_support/mod.rs"]
mod support;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use support::{cluster, eventually, live_pods, names, set_running};

const NS: &str = "default";

async fn create_set(client: &Client, name: &str, extra: serde_json::Value) -> anyhow::Result<()> {
    let mut spec = json!({
        "replicas": 3, "serviceName": "nginx",
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let set: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name}, "spec": spec
    }))?;
    Api::<StatefulSet>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &set)
        .await?;
    Ok(())
}

async fn wait_pods(client: &Client, app: &str, want: &[&str]) -> anyhow::Result<Vec<Pod>> {
    eventually(&format!("{app} has pods {want:?}"), || async {
        let pods = live_pods(client, NS, &format!("app={app}")).await?;
        Ok((names(&pods) == want).then_some(pods))
    })
    .await
}

async fn set_status(
    client: &Client,
    name: &str,
) -> anyhow::Result<k8s_openapi::api::apps::v1::StatefulSetStatus> {
    let set = Api::<StatefulSet>::namespaced(client.clone(), NS)
        .get(name)
        .await?;
    Ok(set.status.unwrap_or_default())
}

/// Brings up web-0..web-{n-1} in order, playing the kubelet.
async fn bring_up(client: &Client, app: &str, n: usize) -> anyhow::Result<()> {
    let all: Vec<String> = (0..n).map(|i| format!("{app}-{i}")).collect();
    for i in 0..n {
        let want: Vec<&str> = all[..=i].iter().map(String::as_str).collect();
        wait_pods(client, app, &want).await?;
        set_running(client, NS, &all[i], true).await?;
    }
    Ok(())
}

#[tokio::test]
async fn ordered_pods_start_one_after_another_and_a_deleted_one_returns_under_its_name(
) -> anyhow::Result<()> {
    let c = cluster(nodeless_controllers::statefulset::run).await?;
    create_set(&c.client, "web", json!({})).await?;
    let first = wait_pods(&c.client, "web", &["web-0"]).await?;
    let spec = first[0].spec.clone().unwrap_or_default();
    assert_eq!(spec.hostname.as_deref(), Some("web-0"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    let labels = first[0].metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "web-0");
    assert_eq!(labels["apps.kubernetes.io/pod-index"], "0");
    // Running but not Ready holds web-1 back.
    set_running(&c.client, NS, "web-0", false).await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        names(&live_pods(&c.client, NS, "app=web").await?),
        ["web-0"]
    );
    set_running(&c.client, NS, "web-0", true).await?;
    wait_pods(&c.client, "web", &["web-0", "web-1"]).await?;
    set_running(&c.client, NS, "web-1", true).await?;
    wait_pods(&c.client, "web", &["web-0", "web-1", "web-2"]).await?;
    set_running(&c.client, NS, "web-2", true).await?;
    let status = eventually("all three are ready", || async {
        let s = set_status(&c.client, "web").await?;
        Ok((s.ready_replicas == Some(3)).then_some(s))
    })
    .await?;
    assert_eq!(status.replicas, 3);
    assert_eq!(status.current_replicas, Some(3));
    assert_eq!(status.updated_replicas, Some(3));
    assert_eq!(status.available_replicas, Some(3));
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.current_revision, status.update_revision);
    let revision = status.update_revision.clone().unwrap_or_default();
    assert_eq!(labels["controller-revision-hash"], revision);
    let revs = Api::<ControllerRevision>::namespaced(c.client.clone(), NS)
        .list(&ListParams::default().labels("app=web"))
        .await?;
    assert_eq!(names_of(&revs.items), [revision]);

    // Settled: no more writes.
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), NS);
    let before = sets.get("web").await?.metadata.resource_version;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(sets.get("web").await?.metadata.resource_version, before);

    let pods: Api<Pod> = Api::namespaced(c.client.clone(), NS);
    let old_uid = pods.get("web-1").await?.metadata.uid;
    pods.delete("web-1", &Default::default()).await?;
    eventually("web-1 comes back as a new Pod", || async {
        let p = pods.get_opt("web-1").await?;
        Ok(
            p.filter(|p| p.metadata.uid != old_uid && p.metadata.deletion_timestamp.is_none())
                .map(|_| ()),
        )
    })
    .await?;
    Ok(())
}

fn names_of(revs: &[ControllerRevision]) -> Vec<String> {
    revs.iter()
        .filter_map(|r| r.metadata.name.clone())
        .collect()
}

fn revision_of(pod: &Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_rolling_update_replaces_pods_from_the_highest_ordinal_down_to_the_partition(
) -> anyhow::Result<()> {
    let c = cluster(nodeless_controllers::statefulset::run).await?;
    create_set(
        &c.client,
        "db",
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}),
    )
    .await?;
    bring_up(&c.client, "db", 3).await?;
    let old = eventually("the first revision is current", || async {
        let s = set_status(&c.client, "db").await?;
        Ok(s.current_revision.filter(|_| s.ready_replicas == Some(3)))
    })
    .await?;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), NS);
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}});
    sets.patch("db", &PatchParams::default(), &Patch::Strategic(&image))
        .await?;
    let new = eventually("a new update revision", || async {
        let s = set_status(&c.client, "db").await?;
        Ok(s.update_revision.filter(|u| *u != old))
    })
    .await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), NS);
    for name in ["db-2", "db-1"] {
        let pod = eventually(
            &format!("{name} is recreated at the new revision"),
            || async {
                Ok(pods
                    .get_opt(name)
                    .await?
                    .filter(|p| revision_of(p) == new && p.metadata.deletion_timestamp.is_none()))
            },
        )
        .await?;
        let image = pod.spec.clone().unwrap_or_default().containers[0]
            .image
            .clone();
        assert_eq!(image.as_deref(), Some("nginx:2"));
        // The lower ordinal is untouched while this one is not ready.
        let lower = format!("db-{}", if name == "db-2" { 1 } else { 0 });
        assert_eq!(revision_of(&pods.get(&lower).await?), old);
        set_running(&c.client, NS, name, true).await?;
    }
    let status = eventually("the rollout stops at the partition", || async {
        let s = set_status(&c.client, "db").await?;
        Ok((s.updated_replicas == Some(2) && s.ready_replicas == Some(3)).then_some(s))
    })
    .await?;
    assert_eq!(status.current_revision.as_deref(), Some(old.as_str()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        revision_of(&pods.get("db-0").await?),
        old,
        "db-0 is below the partition"
    );
    Ok(())
}

#[tokio::test]
async fn scaling_down_removes_the_highest_ordinals_first_and_parallel_sets_start_at_once(
) -> anyhow::Result<()> {
    let c = cluster(nodeless_controllers::statefulset::run).await?;
    create_set(&c.client, "par", json!({"podManagementPolicy": "Parallel"})).await?;
    wait_pods(&c.client, "par", &["par-0", "par-1", "par-2"]).await?;
    create_set(&c.client, "seq", json!({})).await?;
    bring_up(&c.client, "seq", 3).await?;
    // A finalizer holds seq-2 in deletion, so the order can be seen.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), NS);
    let hold = json!({"metadata": {"finalizers": ["test.nodeless.dev/hold"]}});
    pods.patch("seq-2", &PatchParams::default(), &Patch::Merge(&hold))
        .await?;
    let sets: Api<StatefulSet> = Api::namespaced(c.client.clone(), NS);
    sets.patch(
        "seq",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await?;
    wait_pods(&c.client, "seq", &["seq-0", "seq-1"]).await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        pods.get("seq-1")
            .await?
            .metadata
            .deletion_timestamp
            .is_none(),
        "seq-1 waits for seq-2 to be gone"
    );
    let release = json!({"metadata": {"finalizers": null}});
    pods.patch("seq-2", &PatchParams::default(), &Patch::Merge(&release))
        .await?;
    wait_pods(&c.client, "seq", &["seq-0"]).await?;
    eventually("status shows one replica", || async {
        let s = set_status(&c.client, "seq").await?;
        Ok((s.replicas == 1 && s.ready_replicas == Some(1)).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn volume_claim_templates_are_refused_with_an_event_and_a_condition() -> anyhow::Result<()> {
    let c = cluster(nodeless_controllers::statefulset::run).await?;
    let claims = json!({"volumeClaimTemplates": [{"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]});
    create_set(&c.client, "pg", claims).await?;
    let status = eventually("the set reports the refusal", || async {
        let s = set_status(&c.client, "pg").await?;
        Ok(s.conditions.clone().filter(|c| !c.is_empty()).map(|_| s))
    })
    .await?;
    let cond = &status.conditions.unwrap_or_default()[0];
    assert_eq!(
        cond.message.as_deref(),
        Some("volumeClaimTemplates are not supported yet")
    );
    assert_eq!(cond.status, "True");
    let reasons = support::event_reasons(&c.client, NS, "pg").await?;
    assert!(
        reasons
            .iter()
            .any(|r| r == "VolumeClaimTemplatesNotSupported"),
        "{reasons:?}"
    );
    assert!(live_pods(&c.client, NS, "app=pg").await?.is_empty());
    Ok(())
}
