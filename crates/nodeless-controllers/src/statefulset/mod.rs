//! The StatefulSet controller (apps/v1), after upstream's: Pods with stable names
//! `<set>-<ordinal>` and DNS identities, created in order (OrderedReady) or all at once
//! (Parallel), replaced under the same name when they fail or are deleted, scaled down from
//! the highest ordinal, and updated from the highest ordinal down to the partition
//! (RollingUpdate) or only when deleted (OnDelete), with the template history kept as
//! ControllerRevisions.
//!
//! `volumeClaimTemplates` need storage nodeless does not have yet: such a set gets a Warning
//! event and a `ReplicaFailure` condition saying so, and no Pods.

mod identity;
pub mod plan;
pub mod revision;
mod sync;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::ResourceExt;
use tracing::Instrument;

use crate::job::retry::ErrorBackoff;
use crate::{Context, ControllerError};

pub use identity::{POD_INDEX_LABEL, POD_NAME_LABEL, REVISION_LABEL};

#[derive(Debug, thiserror::Error)]
pub enum StatefulSetError {
    #[error("listing the pods of statefulset {set}")]
    ListPods {
        set: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating pod {pod}")]
    CreatePod {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting pod {pod}")]
    DeletePod {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("keeping the revisions of statefulset {set}")]
    Revisions {
        set: String,
        #[source]
        source: kube::Error,
    },
    #[error("statefulset {set}: revision {revision} collides with another template")]
    RevisionCollision { set: String, revision: String },
    #[error("updating the status of statefulset {set}")]
    UpdateStatus {
        set: String,
        #[source]
        source: kube::Error,
    },
    #[error("encoding statefulset {set}")]
    Encode {
        set: String,
        #[source]
        source: serde_json::Error,
    },
}

struct Shared {
    client: kube::Client,
    events: nodeless_kube::EventRecorder,
    backoff: ErrorBackoff,
}

/// Runs the StatefulSet controller until `ctx.shutdown` is cancelled.
pub async fn run(ctx: Context) -> Result<(), ControllerError> {
    let sets: Api<StatefulSet> = Api::all(ctx.client.clone());
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let shared = Arc::new(Shared {
        client: ctx.client.clone(),
        events: ctx.events.clone(),
        backoff: ErrorBackoff::default(),
    });
    Controller::new(sets, watcher::Config::default())
        .owns(pods, watcher::Config::default().labels(POD_NAME_LABEL))
        .graceful_shutdown_on(ctx.shutdown.clone().cancelled_owned())
        .run(reconcile, error_policy, shared)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "statefulset reconcile failed");
            }
        })
        .await;
    Ok(())
}

fn key(set: &StatefulSet) -> String {
    format!("{}/{}", set.namespace().unwrap_or_default(), set.name_any())
}

async fn reconcile(set: Arc<StatefulSet>, shared: Arc<Shared>) -> Result<Action, StatefulSetError> {
    let span = tracing::debug_span!("reconcile", object.ref = %key(&set));
    let action = sync::sync(&set, &shared, chrono::Utc::now())
        .instrument(span)
        .await?;
    shared.backoff.succeeded(&key(&set));
    Ok(action)
}

fn error_policy(set: Arc<StatefulSet>, error: &StatefulSetError, shared: Arc<Shared>) -> Action {
    let delay = shared.backoff.failed(&key(&set));
    tracing::info!(statefulset = %key(&set), error = %error, source = ?std::error::Error::source(error), retry_in = ?delay, "statefulset sync failed");
    Action::requeue(delay)
}
