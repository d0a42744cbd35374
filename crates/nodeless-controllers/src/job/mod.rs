//! The Job controller (batch/v1), after upstream's: runs a Job's Pods to `completions`
//! successes at most `parallelism` at a time (or one Pod per index for an Indexed Job),
//! replaces failed Pods with back-off until `backoffLimit`, enforces `activeDeadlineSeconds`,
//! honours `suspend`, marks the Job `SuccessCriteriaMet`/`FailureTarget` and then, once its
//! Pods are gone, `Complete`/`Failed`, and deletes it `ttlSecondsAfterFinished` later.
//!
//! Finished Pods are counted exactly once through the tracking finalizer ([`tracking`]).
//! Pods are listed from the API server on each pass rather than from a cache, so a pass
//! never misses the Pods the previous one created (upstream keeps "expectations" for that).

mod indexes;
pub mod plan;
pub(crate) mod retry;
mod sync;
mod template;
pub mod tracking;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::json;
use tracing::Instrument;

use crate::{Context, ControllerError};

/// Every Pod a Job creates carries this label (the API server adds it to the template).
const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// How often Pods whose Job is gone are checked for a leftover tracking finalizer.
const ORPHAN_SWEEP: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("listing the pods of job {job}")]
    ListPods {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating a pod for job {job}")]
    CreatePod {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting pod {pod}")]
    DeletePod {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("removing the tracking finalizer of pod {pod}")]
    ReleasePod {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the status of job {job}")]
    UpdateStatus {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting finished job {job}")]
    DeleteJob {
        job: String,
        #[source]
        source: kube::Error,
    },
    #[error("encoding job {job}")]
    Encode {
        job: String,
        #[source]
        source: serde_json::Error,
    },
}

struct Shared {
    client: kube::Client,
    events: nodeless_kube::EventRecorder,
    backoff: retry::ErrorBackoff,
}

/// Runs the Job controller until `ctx.shutdown` is cancelled.
pub async fn run(ctx: Context) -> Result<(), ControllerError> {
    let jobs: Api<Job> = Api::all(ctx.client.clone());
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let controller = Controller::new(jobs, watcher::Config::default())
        .owns(
            pods,
            watcher::Config::default().labels(CONTROLLER_UID_LABEL),
        )
        .graceful_shutdown_on(ctx.shutdown.clone().cancelled_owned());
    let store = controller.store();
    let shared = Arc::new(Shared {
        client: ctx.client.clone(),
        events: ctx.events.clone(),
        backoff: retry::ErrorBackoff::default(),
    });
    let reconciling =
        controller
            .run(reconcile, error_policy, shared)
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "job reconcile failed");
                }
            });
    let sweeping = sweep_orphans(ctx.client.clone(), store, ctx.shutdown.clone());
    tokio::join!(reconciling, sweeping);
    Ok(())
}

fn key(job: &Job) -> String {
    format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any())
}

async fn reconcile(job: Arc<Job>, shared: Arc<Shared>) -> Result<Action, JobError> {
    let span = tracing::debug_span!("reconcile", object.ref = %key(&job));
    let action = sync::sync(&job, &shared, chrono::Utc::now())
        .instrument(span)
        .await?;
    shared.backoff.succeeded(&key(&job));
    Ok(action)
}

fn error_policy(job: Arc<Job>, error: &JobError, shared: Arc<Shared>) -> Action {
    let delay = shared.backoff.failed(&key(&job));
    tracing::info!(job = %key(&job), error = %error, source = ?std::error::Error::source(error), retry_in = ?delay, "job sync failed");
    Action::requeue(delay)
}

/// Removes the tracking finalizer of finished or deleted Pods whose Job is gone: nothing
/// else would, and a deleted Pod would otherwise stay forever.
async fn sweep_orphans(
    client: kube::Client,
    jobs: Store<Job>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let pods: Api<Pod> = Api::all(client.clone());
    if shutdown
        .run_until_cancelled(jobs.wait_until_ready())
        .await
        .is_none()
    {
        return;
    }
    loop {
        if let Err(e) = sweep_once(&client, &pods, &jobs).await {
            tracing::debug!(error = %e, "job orphan sweep failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(ORPHAN_SWEEP) => {}
        }
    }
}

async fn sweep_once(
    client: &kube::Client,
    pods: &Api<Pod>,
    jobs: &Store<Job>,
) -> Result<(), kube::Error> {
    let list = pods
        .list(&ListParams::default().labels(CONTROLLER_UID_LABEL))
        .await?;
    let live: std::collections::HashSet<String> = jobs
        .state()
        .iter()
        .filter_map(|j| j.metadata.uid.clone())
        .collect();
    for pod in list.items.iter().filter(|p| tracking::holds_finalizer(p)) {
        let owner = crate::pods::controller_of(&pod.metadata).map(|r| r.uid.clone());
        let orphan = owner.is_none_or(|uid| !live.contains(&uid));
        if orphan && tracking::outcome(pod, false).is_some() {
            let api: Api<Pod> =
                Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
            release(&api, &pod.name_any()).await?;
        }
    }
    Ok(())
}

/// Removes the tracking finalizer of one Pod, as upstream does, with a strategic merge
/// patch that leaves other finalizers alone. A Pod already gone counts as released.
async fn release(pods: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [tracking::TRACKING_FINALIZER]}});
    match pods
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
