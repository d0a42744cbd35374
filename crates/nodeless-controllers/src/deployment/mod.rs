//! The Deployment controller, as upstream's: a Deployment owns ReplicaSets named
//! `<deployment>-<pod-template-hash>`, one per template it has run, and moves replicas from
//! the old ones to the new one by its strategy (RollingUpdate within maxSurge and
//! maxUnavailable, or Recreate), recording revisions, keeping revisionHistoryLimit old
//! ReplicaSets, scaling proportionally when resized mid-rollout or paused, and reporting
//! Progressing (with progressDeadlineSeconds) and Available conditions.
//!
//! Rollback is kubectl's (`rollout undo` writes an old ReplicaSet's template back into the
//! Deployment): the controller finds that ReplicaSet by its template, reuses it and gives it
//! the next revision.

mod proportional;
mod recreate;
mod rolling;
pub mod status;
mod sync;
pub mod util;

use std::sync::Arc;

use futures::{stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::controller::{trigger_self, trigger_with, Action, ReconcileRequest};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use nodeless_kube::EventType;

use crate::pods;
use crate::replicaset::queue::{self, Retries, RetryBackoff};
use crate::{Context, ControllerError};
use sync::Sync;

const CONTROLLER: &str = "deployment";

#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("create replica set {rs}: {source}")]
    CreateReplicaSet {
        rs: String,
        #[source]
        source: kube::Error,
    },
    #[error("replica set {rs} exists with another template; collisionCount raised")]
    HashCollision { rs: String },
    #[error("update replica set {rs}: {source}")]
    UpdateReplicaSet {
        rs: String,
        #[source]
        source: kube::Error,
    },
    #[error("delete old replica set {rs}: {source}")]
    DeleteReplicaSet {
        rs: String,
        #[source]
        source: kube::Error,
    },
    #[error("adopt or release replica set {rs}: {source}")]
    ClaimReplicaSet {
        rs: String,
        #[source]
        source: kube::Error,
    },
    #[error("update deployment {deployment}: {source}")]
    UpdateDeployment {
        deployment: String,
        #[source]
        source: kube::Error,
    },
    #[error("update status of deployment {deployment}: {source}")]
    UpdateStatus {
        deployment: String,
        #[source]
        source: kube::Error,
    },
}

pub(crate) struct State {
    ctx: Context,
    replicasets: Store<ReplicaSet>,
    pods: Store<Pod>,
    retries: RetryBackoff,
}

impl Retries for State {
    fn retries(&self) -> &RetryBackoff {
        &self.retries
    }
}

/// Runs the Deployment controller until `ctx.shutdown` is cancelled.
pub async fn run(ctx: Context) -> Result<(), ControllerError> {
    let (d_store, d_writer) = reflector::store::<Deployment>();
    let (rs_store, rs_writer) = reflector::store::<ReplicaSet>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let client = ctx.client.clone();
    let deployments = reflector::reflector(
        d_writer,
        watcher(Api::<Deployment>::all(client.clone()), Default::default()).default_backoff(),
    );
    let replicasets = reflector::reflector(
        rs_writer,
        watcher(Api::<ReplicaSet>::all(client.clone()), Default::default()).default_backoff(),
    );
    // Only Pods made from a Deployment's template; only their deletion matters (Recreate
    // waits for old Pods to be gone).
    let pod_config = watcher::Config::default().labels(util::HASH_LABEL);
    let pods = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(client), pod_config).default_backoff(),
    );
    let for_rs = d_store.clone();
    let rs_lookup = rs_store.clone();
    let queue = stream::select_all([
        trigger_self(
            deployments.try_filter_map(|e| async { Ok(queue::touched(e)) }),
            (),
        )
        .boxed(),
        trigger_with(
            replicasets.try_filter_map(|e| async { Ok(queue::touched(e)) }),
            move |rs: ReplicaSet| deployments_for_rs(&for_rs, &rs),
        )
        .boxed(),
        trigger_with(
            pods.try_filter_map(|e| async {
                Ok(match e {
                    watcher::Event::Delete(p) => Some(p),
                    _ => None,
                })
            }),
            move |pod: Pod| deployment_for_pod(&rs_lookup, &pod),
        )
        .boxed(),
    ]);
    let shutdown = ctx.shutdown.clone();
    let state = Arc::new(State {
        ctx,
        replicasets: rs_store,
        pods: pod_store,
        retries: RetryBackoff::default(),
    });
    queue::drive(CONTROLLER, d_store, queue, state, reconcile, shutdown).await;
    Ok(())
}

fn selector_of(d: &Deployment) -> Option<nodeless_core::selector::LabelSelector> {
    pods::selector_matcher(&d.spec.as_ref()?.selector)
}

/// The Deployments a ReplicaSet change concerns: its controller, or for an orphan every
/// Deployment whose selector matches it.
fn deployments_for_rs(
    store: &Store<Deployment>,
    rs: &ReplicaSet,
) -> Vec<ReconcileRequest<Deployment>> {
    let ns = rs.namespace().unwrap_or_default();
    if let Some(owner) = pods::controller_of(&rs.metadata) {
        if owner.kind == "Deployment" && owner.api_version.starts_with("apps/") {
            return vec![queue::request(&ns, &owner.name)];
        }
        return Vec::new();
    }
    store
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(ns.as_str()))
        .filter(|d| {
            selector_of(d).is_some_and(|s| !s.is_empty() && pods::selects(&s, &rs.metadata))
        })
        .map(|d| queue::request(&ns, &d.name_any()))
        .collect()
}

fn deployment_for_pod(
    store: &Store<ReplicaSet>,
    pod: &Pod,
) -> Option<ReconcileRequest<Deployment>> {
    let ns = pod.namespace().unwrap_or_default();
    let owner = pods::controller_of(&pod.metadata)?;
    let rs = store.get(&ObjectRef::new(&owner.name).within(&ns))?;
    let d = pods::controller_of(&rs.metadata).filter(|r| r.kind == "Deployment")?;
    Some(queue::request(&ns, &d.name))
}

async fn reconcile(d: Arc<Deployment>, st: Arc<State>) -> Result<Action, DeploymentError> {
    if st.replicasets.wait_until_ready().await.is_err() || st.pods.wait_until_ready().await.is_err()
    {
        return Ok(Action::await_change());
    }
    let mut sync = Sync::new(&st, (*d).clone());
    let Some(selector) = selector_of(&d) else {
        return Ok(Action::await_change());
    };
    if selector.is_empty() {
        let msg = "This deployment is selecting all pods. A non-empty selector is required.";
        sync.event(EventType::Warning, "SelectingAll", msg).await;
        let mut s = d.status.clone().unwrap_or_default();
        if s.observed_generation < d.metadata.generation {
            s.observed_generation = d.metadata.generation;
            sync.write_status(s).await?;
        }
        return Ok(Action::await_change());
    }
    let list = claim_replica_sets(&st, &d, &selector).await?;
    let (mut new, mut old) = sync.new_and_old(&list).await?;
    if d.metadata.deletion_timestamp.is_some() {
        sync.sync_status(&old, new.as_ref()).await?;
        return Ok(Action::await_change());
    }
    sync.check_paused_conditions().await?;
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let active: Vec<&ReplicaSet> = old
        .iter()
        .chain(new.as_ref())
        .filter(|rs| util::rs_replicas(rs) > 0)
        .collect();
    if paused || util::is_scaling_event(&sync.d, &active) {
        sync.scale(new.as_mut(), &mut old).await?;
        if paused {
            sync.cleanup(&old).await?;
        }
        sync.sync_status(&old, new.as_ref()).await?;
    } else if util::is_recreate(&d) {
        let owned: Vec<Arc<Pod>> = st
            .pods
            .state()
            .into_iter()
            .filter(|p| p.namespace() == d.namespace())
            .collect();
        recreate::rollout(&mut sync, new, old, &owned).await?;
    } else {
        rolling::rollout(&mut sync, new, old).await?;
    }
    Ok(match sync.requeue {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// The ReplicaSets `d` owns after adopting matching orphans and releasing its ReplicaSets
/// that no longer match, as upstream's ClaimReplicaSets.
async fn claim_replica_sets(
    st: &State,
    d: &Deployment,
    selector: &nodeless_core::selector::LabelSelector,
) -> Result<Vec<ReplicaSet>, DeploymentError> {
    let uid = d.uid().unwrap_or_default();
    let deleting = d.metadata.deletion_timestamp.is_some();
    let mut owned = Vec::new();
    for rs in st.replicasets.state() {
        if rs.namespace() != d.namespace() {
            continue;
        }
        let matches = pods::selects(selector, &rs.metadata);
        match pods::controller_of(&rs.metadata) {
            Some(owner) if owner.uid == uid => {
                if matches {
                    owned.push((*rs).clone());
                } else if !deleting {
                    set_owner(st, &rs, None).await?;
                }
            }
            Some(_) => {}
            None if deleting || !matches || rs.metadata.deletion_timestamp.is_some() => {}
            None => {
                if let Some(owner) = pods::controller_ref(d) {
                    set_owner(st, &rs, Some(owner)).await?;
                    owned.push((*rs).clone());
                }
            }
        }
    }
    Ok(owned)
}

async fn set_owner(
    st: &State,
    rs: &ReplicaSet,
    owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
) -> Result<(), DeploymentError> {
    crate::pods::set_controller(&st.ctx.client, rs, owner)
        .await
        .map_err(|source| DeploymentError::ClaimReplicaSet {
            rs: rs.name_any(),
            source,
        })
}
