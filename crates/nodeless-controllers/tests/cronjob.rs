//! The CronJob controller against a real API server. `@every` schedules keep the tests short;
//! minute schedules, time zones and the concurrency rules are covered in virtual time by the
//! unit tests of `cronjob::plan` and `cronjob::schedule`.

#[path = "job_support/mod.rs"]
mod support;

use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use support::{cluster, eventually};

const NS: &str = "default";

async fn create_cronjob(
    client: &Client,
    name: &str,
    extra: serde_json::Value,
) -> anyhow::Result<CronJob> {
    let mut spec = json!({
        "schedule": "@every 2s",
        "jobTemplate": {"metadata": {"labels": {"app": name}},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let cj: CronJob = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name}, "spec": spec
    }))?;
    Ok(Api::<CronJob>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &cj)
        .await?)
}

async fn jobs_of(client: &Client, app: &str) -> anyhow::Result<Vec<Job>> {
    let api: Api<Job> = Api::namespaced(client.clone(), NS);
    Ok(api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?
        .items)
}

async fn status(
    client: &Client,
    name: &str,
) -> anyhow::Result<k8s_openapi::api::batch::v1::CronJobStatus> {
    let cj = Api::<CronJob>::namespaced(client.clone(), NS)
        .get(name)
        .await?;
    Ok(cj.status.unwrap_or_default())
}

#[tokio::test]
async fn a_due_start_time_creates_a_job_that_is_tracked_until_it_completes() -> anyhow::Result<()> {
    let c = cluster(nodeless_controllers::cronjob::run).await?;
    let cj = create_cronjob(&c.client, "tick", json!({})).await?;
    let job = eventually("a job starts", || async {
        Ok(jobs_of(&c.client, "tick").await?.into_iter().next())
    })
    .await?;
    let name = job.metadata.name.clone().unwrap_or_default();
    let scheduled = job
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("batch.kubernetes.io/cronjob-scheduled-timestamp"))
        .cloned()
        .unwrap_or_default();
    let at = chrono::DateTime::parse_from_rfc3339(&scheduled)?.with_timezone(&Utc);
    assert_eq!(name, format!("tick-{}", at.timestamp() / 60));
    let owner = job.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owner[0].uid, cj.metadata.uid.clone().unwrap_or_default());
    assert_eq!(owner[0].kind, "CronJob");
    let s = eventually("the job is active", || async {
        let s = status(&c.client, "tick").await?;
        Ok(s.active.clone().filter(|a| !a.is_empty()).map(|_| s))
    })
    .await?;
    assert_eq!(
        s.active.unwrap_or_default()[0].name.as_deref(),
        Some(name.as_str())
    );
    assert!(s.last_schedule_time.is_some_and(|t| t.0 >= at));

    // Plays the Job controller: the Job completes.
    let now = Time(Utc::now());
    let done = json!({"status": {"startTime": now, "completionTime": now, "succeeded": 1,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "lastTransitionTime": now}]}});
    Api::<Job>::namespaced(c.client.clone(), NS)
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&done))
        .await?;
    eventually("the completion is seen", || async {
        let s = status(&c.client, "tick").await?;
        let idle = s
            .active
            .as_ref()
            .is_none_or(|a| a.iter().all(|r| r.name.as_deref() != Some(name.as_str())));
        Ok((idle && s.last_successful_time.is_some()).then_some(()))
    })
    .await?;
    let reasons = support::event_reasons(&c.client, NS, "tick").await?;
    assert!(
        reasons.iter().any(|r| r == "SuccessfulCreate"),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r == "SawCompletedJob"),
        "{reasons:?}"
    );
    Ok(())
}

#[tokio::test]
async fn forbid_starts_nothing_while_a_job_runs_and_a_suspended_cronjob_starts_nothing(
) -> anyhow::Result<()> {
    let c = cluster(nodeless_controllers::cronjob::run).await?;
    create_cronjob(
        &c.client,
        "solo",
        json!({"schedule": "@every 1s", "concurrencyPolicy": "Forbid"}),
    )
    .await?;
    create_cronjob(
        &c.client,
        "paused",
        json!({"schedule": "@every 1s", "suspend": true}),
    )
    .await?;
    eventually("the first job starts", || async {
        Ok((!jobs_of(&c.client, "solo").await?.is_empty()).then_some(()))
    })
    .await?;
    // Jobs are named by the minute of their start time (as upstream), so every start time in
    // the first Job's minute counts as already handled; the first refused one is in the next
    // minute, up to 60 s away.
    support::eventually_within(75, "the next start time is refused", || async {
        let reasons = support::event_reasons(&c.client, NS, "solo").await?;
        Ok(reasons
            .iter()
            .any(|r| r == "JobAlreadyActive")
            .then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(jobs_of(&c.client, "solo").await?.len(), 1);
    assert!(jobs_of(&c.client, "paused").await?.is_empty());
    assert!(status(&c.client, "paused")
        .await?
        .last_schedule_time
        .is_none());
    Ok(())
}
