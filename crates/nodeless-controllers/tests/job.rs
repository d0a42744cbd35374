//! The Job controller against a real API server, with the kubelet played by the tests.

#[path = "job_support/mod.rs"]
mod support;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use support::{cluster, eventually, live_pods, names, set_finished, set_running};

const NS: &str = "default";

async fn create_job(client: &Client, name: &str, spec: serde_json::Value) -> anyhow::Result<Job> {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}});
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name}, "spec": spec
    }))?;
    let api: Api<Job> = Api::namespaced(client.clone(), NS);
    Ok(api.create(&PostParams::default(), &job).await?)
}

async fn job(client: &Client, name: &str) -> anyhow::Result<Job> {
    Ok(Api::<Job>::namespaced(client.clone(), NS).get(name).await?)
}

fn condition(job: &Job, type_: &str) -> Option<(String, String)> {
    let c = job
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default()))
}

/// Waits for exactly `n` live Pods of `job` and returns their names.
async fn pods_of(client: &Client, job: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let labels = format!("batch.kubernetes.io/job-name={job}");
    eventually(&format!("{job} has {n} pods"), || async {
        let pods = live_pods(client, NS, &labels).await?;
        Ok((pods.len() == n).then(|| names(&pods)))
    })
    .await
}

async fn wait_condition(client: &Client, name: &str, type_: &str) -> anyhow::Result<Job> {
    eventually(&format!("job {name} is {type_}"), || async {
        let j = job(client, name).await?;
        Ok(condition(&j, type_).filter(|(s, _)| s == "True").map(|_| j))
    })
    .await
}

#[tokio::test]
async fn a_job_runs_completions_at_most_parallelism_at_a_time_then_completes() -> anyhow::Result<()>
{
    let c = cluster(nodeless_controllers::job::run).await?;
    create_job(
        &c.client,
        "work",
        json!({"completions": 3, "parallelism": 2}),
    )
    .await?;
    let first = pods_of(&c.client, "work", 2).await?;
    for name in &first {
        set_running(&c.client, NS, name, true).await?;
    }
    eventually("two pods are active and ready", || async {
        let s = job(&c.client, "work").await?.status.unwrap_or_default();
        Ok((s.active == Some(2) && s.ready == Some(2) && s.start_time.is_some()).then_some(()))
    })
    .await?;
    for name in &first {
        set_finished(&c.client, NS, name, "Succeeded").await?;
    }
    // The two successes leave one completion to go: one more Pod, not two.
    let third = eventually("a third pod starts", || async {
        let pods = live_pods(&c.client, NS, "job-name=work").await?;
        let fresh: Vec<String> = names(&pods)
            .into_iter()
            .filter(|n| !first.contains(n))
            .collect();
        Ok((!fresh.is_empty()).then_some(fresh))
    })
    .await?;
    assert_eq!(third.len(), 1);
    set_finished(&c.client, NS, &third[0], "Succeeded").await?;
    let done = wait_condition(&c.client, "work", "Complete").await?;
    let status = done.status.clone().unwrap_or_default();
    assert_eq!(status.succeeded, Some(3));
    assert_eq!(status.failed, Some(0));
    assert_eq!(status.active, Some(0));
    assert!(status.completion_time.is_some());
    assert_eq!(
        condition(&done, "SuccessCriteriaMet")
            .map(|c| c.0)
            .as_deref(),
        Some("True")
    );
    let uncounted = status.uncounted_terminated_pods.unwrap_or_default();
    assert!(uncounted.succeeded.unwrap_or_default().is_empty());
    // Every finished Pod was released, so none is held back from deletion.
    let pods = live_pods(&c.client, NS, "job-name=work").await?;
    assert_eq!(pods.len(), 3);
    assert!(pods
        .iter()
        .all(|p| p.metadata.finalizers.clone().unwrap_or_default().is_empty()));
    let reasons = support::event_reasons(&c.client, NS, "work").await?;
    assert!(
        reasons.iter().any(|r| r == "SuccessfulCreate"),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r == "Completed"), "{reasons:?}");
    Ok(())
}

#[tokio::test]
async fn failures_beyond_the_backoff_limit_fail_the_job_and_stop_its_pods() -> anyhow::Result<()> {
    let c = cluster(nodeless_controllers::job::run).await?;
    create_job(
        &c.client,
        "flaky",
        json!({"completions": 2, "parallelism": 2, "backoffLimit": 0}),
    )
    .await?;
    let pods = pods_of(&c.client, "flaky", 2).await?;
    set_running(&c.client, NS, &pods[1], true).await?;
    set_finished(&c.client, NS, &pods[0], "Failed").await?;
    let failed = wait_condition(&c.client, "flaky", "Failed").await?;
    assert_eq!(
        condition(&failed, "Failed").map(|c| c.1).as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(
        condition(&failed, "FailureTarget").map(|c| c.0).as_deref(),
        Some("True")
    );
    let status = failed.status.unwrap_or_default();
    // The failed Pod and the running one deleted on the way out both count as failures.
    assert_eq!(status.failed, Some(2));
    assert_eq!(status.active, Some(0));
    assert!(status.completion_time.is_none());
    let left = live_pods(&c.client, NS, "job-name=flaky").await?;
    assert_eq!(
        names(&left),
        vec![pods[0].clone()],
        "only the failed Pod is kept"
    );
    let reasons = support::event_reasons(&c.client, NS, "flaky").await?;
    assert!(
        reasons.iter().any(|r| r == "BackoffLimitExceeded"),
        "{reasons:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_indexed_job_runs_each_index_once_with_its_index_in_label_hostname_and_env(
) -> anyhow::Result<()> {
    let c = cluster(nodeless_controllers::job::run).await?;
    create_job(
        &c.client,
        "idx",
        json!({"completions": 3, "parallelism": 2, "completionMode": "Indexed"}),
    )
    .await?;
    pods_of(&c.client, "idx", 2).await?;
    let pods = live_pods(&c.client, NS, "job-name=idx").await?;
    let key = "batch.kubernetes.io/job-completion-index";
    let mut seen = Vec::new();
    for p in &pods {
        let index = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            p.metadata.annotations.as_ref().and_then(|a| a.get(key)),
            Some(&index)
        );
        let spec = p.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname, Some(format!("idx-{index}")));
        let env = spec.containers[0].env.clone().unwrap_or_default();
        assert!(env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX"));
        assert!(p
            .metadata
            .name
            .as_deref()
            .unwrap_or("")
            .starts_with(&format!("idx-{index}-")));
        seen.push(index);
    }
    seen.sort();
    assert_eq!(seen, ["0", "1"]);
    // Index 0 finishing frees a slot for index 2; index 1 finishes last.
    let name_of = |i: &str| {
        pods.iter()
            .find(|p| p.metadata.labels.as_ref().is_some_and(|l| l[key] == i))
            .and_then(|p| p.metadata.name.clone())
            .unwrap_or_default()
    };
    set_finished(&c.client, NS, &name_of("0"), "Succeeded").await?;
    let with_two = eventually("index 2 starts", || async {
        let pods = live_pods(
            &c.client,
            NS,
            "job-name=idx,batch.kubernetes.io/job-completion-index=2",
        )
        .await?;
        Ok(pods.first().and_then(|p| p.metadata.name.clone()))
    })
    .await?;
    set_finished(&c.client, NS, &with_two, "Succeeded").await?;
    set_finished(&c.client, NS, &name_of("1"), "Succeeded").await?;
    let done = wait_condition(&c.client, "idx", "Complete").await?;
    let status = done.status.unwrap_or_default();
    assert_eq!(status.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!(status.succeeded, Some(3));
    Ok(())
}

#[tokio::test]
async fn a_deleted_pod_counts_as_failed_and_is_replaced() -> anyhow::Result<()> {
    let c = cluster(nodeless_controllers::job::run).await?;
    create_job(&c.client, "replace", json!({"completions": 1})).await?;
    let first = pods_of(&c.client, "replace", 1).await?;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.client.clone(), NS);
    pods.delete(&first[0], &Default::default()).await?;
    let second = eventually("a replacement pod starts", || async {
        let live = names(&live_pods(&c.client, NS, "job-name=replace").await?);
        Ok(live.into_iter().find(|n| *n != first[0]))
    })
    .await?;
    eventually("the deletion is counted as a failure", || async {
        let s = job(&c.client, "replace").await?.status.unwrap_or_default();
        Ok((s.failed == Some(1)).then_some(()))
    })
    .await?;
    set_finished(&c.client, NS, &second, "Succeeded").await?;
    wait_condition(&c.client, "replace", "Complete").await?;
    Ok(())
}

#[tokio::test]
async fn a_suspended_job_runs_nothing_until_resumed_and_a_finished_one_expires_after_its_ttl(
) -> anyhow::Result<()> {
    let c = cluster(nodeless_controllers::job::run).await?;
    create_job(
        &c.client,
        "later",
        json!({"suspend": true, "ttlSecondsAfterFinished": 0}),
    )
    .await?;
    let suspended = wait_condition(&c.client, "later", "Suspended").await?;
    assert!(suspended.status.unwrap_or_default().start_time.is_none());
    assert!(live_pods(&c.client, NS, "job-name=later").await?.is_empty());
    let api: Api<Job> = Api::namespaced(c.client.clone(), NS);
    api.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await?;
    let pods = pods_of(&c.client, "later", 1).await?;
    let resumed = job(&c.client, "later").await?;
    assert_eq!(
        condition(&resumed, "Suspended").map(|c| c.1).as_deref(),
        Some("JobResumed")
    );
    set_finished(&c.client, NS, &pods[0], "Succeeded").await?;
    eventually("the finished job is deleted", || async {
        Ok(api.get_opt("later").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_settled_job_is_not_rewritten() -> anyhow::Result<()> {
    let c = cluster(nodeless_controllers::job::run).await?;
    create_job(
        &c.client,
        "calm",
        json!({"completions": 2, "parallelism": 1, "completionMode": "Indexed"}),
    )
    .await?;
    let pods = pods_of(&c.client, "calm", 1).await?;
    set_running(&c.client, NS, &pods[0], true).await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = job(&c.client, "calm").await?.metadata.resource_version;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(
        job(&c.client, "calm").await?.metadata.resource_version,
        before,
        "a running Job"
    );
    set_finished(&c.client, NS, &pods[0], "Succeeded").await?;
    let next = eventually("index 1 starts", || async {
        let live = names(&live_pods(&c.client, NS, "job-name=calm").await?);
        Ok(live.into_iter().find(|n| *n != pods[0]))
    })
    .await?;
    set_finished(&c.client, NS, &next, "Succeeded").await?;
    wait_condition(&c.client, "calm", "Complete").await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = job(&c.client, "calm").await?.metadata.resource_version;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(
        job(&c.client, "calm").await?.metadata.resource_version,
        before,
        "a finished Job"
    );
    Ok(())
}
