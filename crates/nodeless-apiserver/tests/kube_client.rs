//! Integration tests through a real client library (kube-rs) against a server on 127.0.0.1:0.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::WatchStreamExt;
use serde_json::json;

mod support;

use support::cluster;

fn pod(name: &str, app: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .expect("valid pod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_created_defaulted_listed_and_deleted() -> anyhow::Result<()> {
    let c = cluster().await?;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let created = pods
        .create(&PostParams::default(), &pod("p1", "web"))
        .await?;
    assert!(created.metadata.uid.is_some());
    let spec = created.spec.expect("spec");
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(
        created.status.and_then(|s| s.phase).as_deref(),
        Some("Pending")
    );
    pods.create(&PostParams::default(), &pod("p2", "db"))
        .await?;
    let web = pods.list(&ListParams::default().labels("app=web")).await?;
    assert_eq!(web.items.len(), 1);
    let pending = pods
        .list(&ListParams::default().fields("status.phase=Pending"))
        .await?;
    assert_eq!(pending.items.len(), 2);
    pods.delete("p1", &DeleteParams::default()).await?;
    let err = pods.get("p1").await.expect_err("deleted");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_update_is_rejected_with_conflict() -> anyhow::Result<()> {
    let c = cluster().await?;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}}))?;
    let v1 = cms.create(&PostParams::default(), &cm).await?;
    let mut newer = v1.clone();
    newer.data = Some([("a".to_string(), "2".to_string())].into());
    cms.replace("cfg", &PostParams::default(), &newer).await?;
    let mut stale = v1;
    stale.data = Some([("a".to_string(), "3".to_string())].into());
    let err = cms
        .replace("cfg", &PostParams::default(), &stale)
        .await
        .expect_err("stale");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("the object has been modified"),
                "{}",
                s.message
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delivers_every_change_in_order() -> anyhow::Result<()> {
    let c = cluster().await?;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let start = cms
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = cms.watch(&WatchParams::default(), &start).await?.boxed();
    for i in 0..20 {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("w{i}")}}))?;
        cms.create(&PostParams::default(), &cm).await?;
    }
    cms.patch(
        "w3",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await?;
    cms.delete("w5", &DeleteParams::default()).await?;
    let mut seen = Vec::new();
    let mut last_rv = 0i64;
    while seen.len() < 22 {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(5), stream.try_next())
            .await??
            .expect("event");
        let (kind, obj) = match ev {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        };
        let rv: i64 = obj
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or("0")
            .parse()?;
        assert!(rv > last_rv, "events must come in revision order");
        last_rv = rv;
        seen.push(format!("{kind} {}", obj.metadata.name.unwrap_or_default()));
    }
    assert_eq!(seen[0], "ADDED w0");
    assert_eq!(seen[19], "ADDED w19");
    assert_eq!(seen[20], "MODIFIED w3");
    assert_eq!(seen[21], "DELETED w5");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_merge_patch_keeps_other_containers() -> anyhow::Result<()> {
    let c = cluster().await?;
    let deploys: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}
    }))?;
    deploys.create(&PostParams::default(), &d).await?;
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}});
    let out = deploys
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    let containers = out
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod spec")
        .containers;
    let images: Vec<_> = containers
        .iter()
        .map(|c| c.image.clone().unwrap_or_default())
        .collect();
    assert_eq!(images, vec!["a:1", "b:2"]);
    assert_eq!(out.metadata.generation, Some(2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paginated_lists_return_every_object_once() -> anyhow::Result<()> {
    let c = cluster().await?;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    for i in 0..25 {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": format!("p{i:02}")}}))?;
        cms.create(&PostParams::default(), &cm).await?;
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default().limit(7);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await?;
        names.extend(page.items.into_iter().filter_map(|c| c.metadata.name));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("p{i:02}")).collect();
    names.retain(|n| n.starts_with('p'));
    assert_eq!(names, expected);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_watcher_sees_the_initial_state() -> anyhow::Result<()> {
    let c = cluster().await?;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "seed"}}))?;
    cms.create(&PostParams::default(), &cm).await?;
    let stream = kube::runtime::watcher(cms.clone(), kube::runtime::watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), stream.into_future())
        .await?
        .0;
    let obj = first.expect("an object")?;
    assert_eq!(obj.metadata.name.as_deref(), Some("seed"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cost_report_bills_a_silent_host_only_to_its_last_heartbeat() -> anyhow::Result<()> {
    use nodeless_kube::billing::{format_time, UsageRecord, UsageRecordSpec};
    use nodeless_kube::{Host, HostSpec};
    let c = cluster().await?;
    nodeless_kube::host::ensure::<Host>(&c.client).await?;
    nodeless_kube::host::ensure::<UsageRecord>(&c.client).await?;
    let now = chrono::Utc::now();
    let ago = |s: i64| now - chrono::Duration::seconds(s);
    let hosts: Api<Host> = Api::all(c.client.clone());
    for (name, beat) in [("silent", ago(600)), ("live", now)] {
        let spec = HostSpec {
            address: "10.0.0.1".into(),
            endpoint: "http://10.0.0.1:10250".into(),
            token_secret: "t".into(),
            capacity: Default::default(),
            runtimes: vec![],
        };
        hosts
            .create(&PostParams::default(), &Host::new(name, spec))
            .await?;
        let status = json!({"status": {"heartbeatTime": beat.to_rfc3339()}});
        hosts
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
    }
    let records: Api<UsageRecord> = Api::namespaced(c.client.clone(), "default");
    // 3.6 per hour is 0.001 per second.
    for (pod, host, end) in [
        ("a", "silent", None),
        ("b", "live", None),
        ("c", "live", Some(ago(600))),
    ] {
        let spec = UsageRecordSpec {
            pod: pod.into(),
            pod_uid: format!("uid-{pod}"),
            workload: format!("Pod/{pod}"),
            host: host.into(),
            instance_spec: "1-2Gi".into(),
            capacity_type: "OnDemand".into(),
            hourly_on_demand: "3.6".into(),
            start_time: format_time(ago(1200)),
        };
        records
            .create(
                &PostParams::default(),
                &UsageRecord::new(&format!("uid-{pod}"), spec),
            )
            .await?;
        if let Some(end) = end {
            let status = json!({"status": {"endTime": format_time(end), "endReason": "Deleted"}});
            records
                .patch_status(
                    &format!("uid-{pod}"),
                    &PatchParams::default(),
                    &Patch::Merge(&status),
                )
                .await?;
        }
    }
    let request = http::Request::get("/apis/cost.nodeless.dev/v1/report?by=pod").body(Vec::new())?;
    let report: serde_json::Value = c.client.request(request).await?;
    let item = |pod: &str| {
        report["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["pod"] == pod))
            .cloned()
            .unwrap_or_default()
    };
    // The silent host's instance is billed up to its last heartbeat, no further.
    assert_eq!(item("a")["seconds"], 600, "{report}");
    assert_eq!(item("a")["cost"], "0.600000000");
    let running = item("b")["seconds"].as_u64().unwrap_or(0);
    assert!((1199..=1202).contains(&running), "{report}");
    assert_eq!(item("c")["seconds"], 600);
    assert_eq!(report["total"]["instances"], 3);
    let bad = http::Request::get("/apis/cost.nodeless.dev/v1/report?by=colour").body(Vec::new())?;
    let err = c
        .client
        .request::<serde_json::Value>(bad)
        .await
        .expect_err("bad grouping");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 400),
        "{err:?}"
    );
    Ok(())
}
