//! The CronJob controller (batch/v1), after upstream's: starts a Job named
//! `<cronjob>-<minutes since the epoch>` at each start time of the schedule (in the CronJob's
//! time zone), honouring `suspend`, `startingDeadlineSeconds` and the concurrency policy,
//! keeps `status.active`, `lastScheduleTime` and `lastSuccessfulTime`, deletes finished Jobs
//! beyond the history limits, and wakes exactly at the next start time.

pub mod plan;
pub mod schedule;
mod sync;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::ResourceExt;
use tracing::Instrument;

use crate::job::retry::ErrorBackoff;
use crate::{Context, ControllerError};

/// The annotation on each Job naming the start time it was made for.
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

#[derive(Debug, thiserror::Error)]
pub enum CronJobError {
    #[error("listing the jobs of cronjob {cronjob}")]
    ListJobs {
        cronjob: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating job {job}")]
    CreateJob {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("job {job} exists and belongs to someone else")]
    JobTaken { job: String },
    #[error("deleting job {job}")]
    DeleteJob {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the status of cronjob {cronjob}")]
    UpdateStatus {
        cronjob: String,
        #[source]
        source: kube::Error,
    },
    #[error("encoding cronjob {cronjob}")]
    Encode {
        cronjob: String,
        #[source]
        source: serde_json::Error,
    },
}

struct Shared {
    client: kube::Client,
    events: nodeless_kube::EventRecorder,
    backoff: ErrorBackoff,
}

/// Runs the CronJob controller until `ctx.shutdown` is cancelled.
pub async fn run(ctx: Context) -> Result<(), ControllerError> {
    let cronjobs: Api<CronJob> = Api::all(ctx.client.clone());
    let jobs: Api<Job> = Api::all(ctx.client.clone());
    let shared = Arc::new(Shared {
        client: ctx.client.clone(),
        events: ctx.events.clone(),
        backoff: ErrorBackoff::default(),
    });
    Controller::new(cronjobs, watcher::Config::default())
        .owns(jobs, watcher::Config::default())
        .graceful_shutdown_on(ctx.shutdown.clone().cancelled_owned())
        .run(reconcile, error_policy, shared)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "cronjob reconcile failed");
            }
        })
        .await;
    Ok(())
}

fn key(cj: &CronJob) -> String {
    format!("{}/{}", cj.namespace().unwrap_or_default(), cj.name_any())
}

async fn reconcile(cj: Arc<CronJob>, shared: Arc<Shared>) -> Result<Action, CronJobError> {
    let span = tracing::debug_span!("reconcile", object.ref = %key(&cj));
    let action = sync::sync(&cj, &shared, chrono::Utc::now())
        .instrument(span)
        .await?;
    shared.backoff.succeeded(&key(&cj));
    Ok(action)
}

fn error_policy(cj: Arc<CronJob>, error: &CronJobError, shared: Arc<Shared>) -> Action {
    let delay = shared.backoff.failed(&key(&cj));
    tracing::info!(cronjob = %key(&cj), error = %error, source = ?std::error::Error::source(error), retry_in = ?delay, "cronjob sync failed");
    Action::requeue(delay)
}
