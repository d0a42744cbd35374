//! One level-triggered pass over a CronJob: reconcile `status.active` with its Jobs, start
//! the due Job if the plan says so, write the status if it changed, prune the history, and
//! sleep until the next start time.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use nodeless_kube::EventType;

use super::plan::{self, Concurrency, Decision, Inputs};
use super::schedule::{self, Schedule};
use super::{CronJobError, Shared, SCHEDULED_TIMESTAMP_ANNOTATION};
use crate::pods::{controller_of, controller_ref};

type Result<T> = std::result::Result<T, CronJobError>;

/// Upstream wakes a little after the start time, so the pass finds it due.
const NEXT_DELTA: Duration = Duration::from_millis(100);

pub(super) async fn sync(cj: &CronJob, sh: &Shared, now: DateTime<Utc>) -> Result<Action> {
    let (Some(ns), Some(uid)) = (cj.namespace(), cj.uid()) else {
        return Ok(Action::await_change());
    };
    let name = cj.name_any();
    let spec = cj.spec.clone().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(sh.client.clone(), &ns);
    let children: Vec<Job> = jobs_api
        .list(&ListParams::default())
        .await
        .map_err(|source| CronJobError::ListJobs {
            cronjob: name.clone(),
            source,
        })?
        .items
        .into_iter()
        .filter(|j| is_controlled_by_uid(&j.metadata, &uid))
        .collect();
    let mut status = cj.status.clone().unwrap_or_default();
    reconcile_active(cj, sh, &children, &mut status).await;

    let mut next = None;
    if cj.meta().deletion_timestamp.is_none() && !spec.suspend.unwrap_or(false) {
        next = schedule_next(cj, sh, &jobs_api, &mut status, now).await?;
    }
    if status.active.as_ref().is_some_and(Vec::is_empty) {
        status.active = None;
    }
    if Some(&status) != cj.status.as_ref() {
        write_status(sh, cj, &ns, status).await?;
    }
    prune_history(
        cj,
        sh,
        &jobs_api,
        &children,
        spec.successful_jobs_history_limit,
        spec.failed_jobs_history_limit,
    )
    .await?;
    Ok(match next {
        Some(at) => Action::requeue((at - now).to_std().unwrap_or(Duration::ZERO) + NEXT_DELTA),
        None => Action::await_change(),
    })
}

/// Drops finished and vanished Jobs from status.active and notes the last success.
async fn reconcile_active(cj: &CronJob, sh: &Shared, children: &[Job], status: &mut CronJobStatus) {
    let mut active = status.active.clone().unwrap_or_default();
    let listed = |r: &ObjectReference| children.iter().any(|j| j.metadata.uid == r.uid);
    for gone in active.iter().filter(|r| !listed(r)) {
        let message = format!(
            "Active job went missing: {}",
            gone.name.clone().unwrap_or_default()
        );
        event(sh, cj, EventType::Normal, "MissingJob", &message).await;
    }
    active.retain(listed);
    for job in children {
        let in_active = active.iter().any(|r| r.uid == job.metadata.uid);
        match finished(job) {
            None if !in_active => {
                let message = format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    job.name_any()
                );
                event(sh, cj, EventType::Warning, "UnexpectedJob", &message).await;
            }
            None => {}
            Some(condition) => {
                if in_active {
                    active.retain(|r| r.uid != job.metadata.uid);
                    let message = format!(
                        "Saw completed job: {}, condition: {condition}",
                        job.name_any()
                    );
                    event(sh, cj, EventType::Normal, "SawCompletedJob", &message).await;
                }
                let completed = job.status.as_ref().and_then(|s| s.completion_time.clone());
                if condition == "Complete"
                    && completed.as_ref().map(|t| t.0)
                        > status.last_successful_time.as_ref().map(|t| t.0)
                {
                    status.last_successful_time = completed;
                }
            }
        }
    }
    status.active = Some(active);
}

/// Starts the due Job if the plan says so; returns the next start time.
async fn schedule_next(
    cj: &CronJob,
    sh: &Shared,
    jobs_api: &Api<Job>,
    status: &mut CronJobStatus,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let spec = cj.spec.clone().unwrap_or_default();
    let tz = match schedule::time_zone(spec.time_zone.as_deref()) {
        Ok(tz) => tz,
        Err(e) => {
            event(
                sh,
                cj,
                EventType::Warning,
                "UnknownTimeZone",
                &e.to_string(),
            )
            .await;
            return Ok(None);
        }
    };
    let sched = match Schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            event(
                sh,
                cj,
                EventType::Warning,
                "UnparseableSchedule",
                &e.to_string(),
            )
            .await;
            return Ok(None);
        }
    };
    let active_names: Vec<String> = status
        .active
        .iter()
        .flatten()
        .filter_map(|r| r.name.clone())
        .collect();
    let inputs = Inputs {
        schedule: &sched,
        tz,
        created: cj.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0),
        last_schedule: status.last_schedule_time.as_ref().map(|t| t.0),
        starting_deadline_seconds: spec.starting_deadline_seconds,
        concurrency: Concurrency::of(spec.concurrency_policy.as_deref()),
        active: &active_names,
        cronjob: &cj.name_any(),
    };
    let p = plan::plan(&inputs, now);
    if p.too_many_missed {
        let message = "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew";
        event(sh, cj, EventType::Warning, "TooManyMissedTimes", message).await;
    }
    match p.decision {
        Decision::Idle | Decision::AlreadyStarted => {}
        Decision::TooLate { scheduled } => {
            let message = format!(
                "Missed scheduled time to start a job: {}",
                scheduled.to_rfc3339()
            );
            event(sh, cj, EventType::Warning, "MissSchedule", &message).await;
        }
        Decision::Forbidden { .. } => {
            let message = "Not starting job because prior execution is running and concurrency policy is Forbid";
            event(sh, cj, EventType::Normal, "JobAlreadyActive", message).await;
        }
        Decision::Start { scheduled, replace } => {
            if replace {
                for r in status.active.take().unwrap_or_default() {
                    delete_job(cj, sh, jobs_api, r.name.as_deref().unwrap_or_default()).await?;
                }
            }
            let job = start(cj, sh, jobs_api, scheduled, tz).await?;
            let reference = ObjectReference {
                api_version: Some("batch/v1".into()),
                kind: Some("Job".into()),
                name: job.metadata.name.clone(),
                namespace: job.metadata.namespace.clone(),
                uid: job.metadata.uid.clone(),
                resource_version: job.metadata.resource_version.clone(),
                ..Default::default()
            };
            let active = status.active.get_or_insert_with(Vec::new);
            if !active.iter().any(|r| r.uid == reference.uid) {
                active.push(reference);
            }
            status.last_schedule_time = Some(Time(scheduled));
        }
    }
    Ok(p.next)
}

/// Creates the Job for `scheduled`. One already there (a pass that crashed before writing
/// the status) is taken as created if it is ours.
async fn start(
    cj: &CronJob,
    sh: &Shared,
    api: &Api<Job>,
    scheduled: DateTime<Utc>,
    tz: Tz,
) -> Result<Job> {
    let job = job_for(cj, scheduled, tz);
    let name = job.name_any();
    match api.create(&PostParams::default(), &job).await {
        Ok(created) => {
            event(
                sh,
                cj,
                EventType::Normal,
                "SuccessfulCreate",
                &format!("Created job {name}"),
            )
            .await;
            Ok(created)
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let existing = api
                .get(&name)
                .await
                .map_err(|source| CronJobError::CreateJob {
                    job: name.clone(),
                    source,
                })?;
            match cj.uid() {
                Some(uid) if is_controlled_by_uid(&existing.metadata, &uid) => Ok(existing),
                _ => Err(CronJobError::JobTaken { job: name }),
            }
        }
        Err(source) => {
            let message = format!("Error creating job: {source}");
            event(sh, cj, EventType::Warning, "FailedCreate", &message).await;
            Err(CronJobError::CreateJob { job: name, source })
        }
    }
}

/// The Job a CronJob starts for `scheduled`, from its jobTemplate.
pub fn job_for(cj: &CronJob, scheduled: DateTime<Utc>, tz: Tz) -> Job {
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tm = template.metadata.unwrap_or_default();
    let mut annotations = tm.annotations.unwrap_or_default();
    let stamp = scheduled
        .with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    annotations.insert(SCHEDULED_TIMESTAMP_ANNOTATION.into(), stamp);
    Job {
        metadata: ObjectMeta {
            name: Some(plan::job_name(&cj.name_any(), scheduled)),
            namespace: cj.namespace(),
            labels: tm.labels,
            annotations: Some(annotations),
            owner_references: controller_ref(cj).map(|r| vec![r]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Deletes finished Jobs beyond the history limits, oldest first.
async fn prune_history(
    cj: &CronJob,
    sh: &Shared,
    api: &Api<Job>,
    children: &[Job],
    successful: Option<i32>,
    failed: Option<i32>,
) -> Result<()> {
    for (condition, limit) in [
        ("Complete", successful.unwrap_or(3)),
        ("Failed", failed.unwrap_or(1)),
    ] {
        let done: Vec<(Option<DateTime<Utc>>, String)> = children
            .iter()
            .filter(|j| finished(j) == Some(condition) && j.metadata.deletion_timestamp.is_none())
            .map(|j| {
                let start = j
                    .status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .or(j.metadata.creation_timestamp.as_ref());
                (start.map(|t| t.0), j.name_any())
            })
            .collect();
        for name in plan::beyond_history(done, limit) {
            delete_job(cj, sh, api, &name).await?;
        }
    }
    Ok(())
}

async fn delete_job(cj: &CronJob, sh: &Shared, api: &Api<Job>, name: &str) -> Result<()> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => {
            event(
                sh,
                cj,
                EventType::Normal,
                "SuccessfulDelete",
                &format!("Deleted job {name}"),
            )
            .await;
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(CronJobError::DeleteJob {
            job: name.to_string(),
            source,
        }),
    }
}

fn is_controlled_by_uid(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// "Complete" or "Failed" once the Job has finished.
fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    ["Complete", "Failed"].into_iter().find(|t| {
        conditions
            .iter()
            .any(|c| c.type_ == *t && c.status == "True")
    })
}

async fn write_status(sh: &Shared, cj: &CronJob, ns: &str, status: CronJobStatus) -> Result<()> {
    let name = cj.name_any();
    let api: Api<CronJob> = Api::namespaced(sh.client.clone(), ns);
    let mut updated = cj.clone();
    updated.status = Some(status);
    let body = serde_json::to_vec(&updated).map_err(|source| CronJobError::Encode {
        cronjob: name.clone(),
        source,
    })?;
    api.replace_status(&name, &PostParams::default(), body)
        .await
        .map_err(|source| CronJobError::UpdateStatus {
            cronjob: name,
            source,
        })?;
    Ok(())
}

async fn event(sh: &Shared, cj: &CronJob, kind: EventType, reason: &str, message: &str) {
    sh.events
        .record(&cj.object_ref(&()), kind, reason, message)
        .await;
}
