//! The ReplicaSet controller, as upstream's: a ReplicaSet owns the active Pods its selector
//! matches (adopting orphans, releasing Pods that stop matching) and creates or deletes Pods
//! until they number `spec.replicas`. Creations go in slow-start batches (1, 2, 4, ...) and
//! are remembered as expectations, so a reconcile on a cache that has not caught up with a
//! burst never creates the same Pods twice.

pub mod expectations;
pub mod queue;
mod ranking;
mod status;

use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use futures::future::join_all;
use futures::{stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{trigger_self, trigger_with, Action, ReconcileRequest};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Resource, ResourceExt};
use nodeless_core::selector::LabelSelector;
use nodeless_kube::EventType;
use serde_json::{json, Value};

use crate::pods;
use crate::{Context, ControllerError};
use expectations::{Expectations, NewPods};
use queue::{Retries, RetryBackoff};
pub use ranking::deletion_order;

const CONTROLLER: &str = "replicaset";
/// At most this many Pods are created or deleted in one sync, as upstream's burstReplicas.
const BURST_REPLICAS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ReplicaSetError {
    #[error("create pod for replica set {rs}: {message}")]
    CreatePod { rs: String, message: String },
    #[error("delete pod {pod}: {message}")]
    DeletePod { pod: String, message: String },
    #[error("adopt or release pod {pod}: {source}")]
    ClaimPod {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("recheck replica set {rs} before adopting pods: {source}")]
    Recheck {
        rs: String,
        #[source]
        source: kube::Error,
    },
    #[error("update status of replica set {rs}: {source}")]
    UpdateStatus {
        rs: String,
        #[source]
        source: kube::Error,
    },
}

struct State {
    ctx: Context,
    pods: Store<Pod>,
    expectations: Expectations,
    retries: RetryBackoff,
}

impl Retries for State {
    fn retries(&self) -> &RetryBackoff {
        &self.retries
    }
}

/// Runs the ReplicaSet controller until `ctx.shutdown` is cancelled.
pub async fn run(ctx: Context) -> Result<(), ControllerError> {
    let (rs_store, rs_writer) = reflector::store::<ReplicaSet>();
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let expectations = Expectations::default();

    let forget = expectations.clone();
    let rs_events = reflector::reflector(
        rs_writer,
        watcher(
            Api::<ReplicaSet>::all(ctx.client.clone()),
            Default::default(),
        )
        .default_backoff(),
    )
    .inspect_ok(move |ev| {
        if let watcher::Event::Delete(rs) = ev {
            forget.forget(rs.uid().as_deref().unwrap_or_default());
        }
    });
    let observe = expectations.clone();
    let mut new_pods = NewPods::default();
    // After the reflector, so that an expectation is met only once the store shows the Pod.
    let pod_events = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(ctx.client.clone()), Default::default()).default_backoff(),
    )
    .inspect_ok(move |ev| observe_pod(&mut new_pods, &observe, ev));

    let owners = rs_store.clone();
    let queue = stream::select(
        trigger_self(
            rs_events.try_filter_map(|e| async { Ok(queue::touched(e)) }),
            (),
        )
        .boxed(),
        trigger_with(
            pod_events.try_filter_map(|e| async { Ok(queue::touched(e)) }),
            move |pod: Pod| replica_sets_for_pod(&owners, &pod),
        )
        .boxed(),
    );
    let shutdown = ctx.shutdown.clone();
    let state = Arc::new(State {
        ctx,
        pods: pod_store,
        expectations,
        retries: RetryBackoff::default(),
    });
    queue::drive(CONTROLLER, rs_store, queue, state, reconcile, shutdown).await;
    Ok(())
}

fn observe_pod(new_pods: &mut NewPods, expectations: &Expectations, ev: &watcher::Event<Pod>) {
    match ev {
        watcher::Event::Init => new_pods.relist_started(),
        watcher::Event::InitDone => new_pods.relist_done(),
        watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
            if new_pods.applied(pod.uid().as_deref().unwrap_or_default()) {
                if let Some(owner) = pods::controller_of(&pod.metadata) {
                    expectations.creation_observed(&owner.uid);
                }
            }
        }
        watcher::Event::Delete(pod) => new_pods.deleted(pod.uid().as_deref().unwrap_or_default()),
    }
}

/// The ReplicaSets a Pod change concerns: its controller, or for an orphan every ReplicaSet
/// whose selector matches it (one may adopt it).
fn replica_sets_for_pod(
    rs_store: &Store<ReplicaSet>,
    pod: &Pod,
) -> Vec<ReconcileRequest<ReplicaSet>> {
    let ns = pod.namespace().unwrap_or_default();
    if let Some(owner) = pods::controller_of(&pod.metadata) {
        if owner.kind == "ReplicaSet" && owner.api_version.starts_with("apps/") {
            return vec![queue::request(&ns, &owner.name)];
        }
        return Vec::new();
    }
    rs_store
        .state()
        .iter()
        .filter(|rs| rs.namespace().as_deref() == Some(ns.as_str()))
        .filter(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| pods::selector_matcher(&s.selector))
                .is_some_and(|sel| !sel.is_empty() && pods::selects(&sel, &pod.metadata))
        })
        .map(|rs| queue::request(&ns, &rs.name_any()))
        .collect()
}

fn key(rs: &ReplicaSet) -> String {
    format!("{}/{}", rs.namespace().unwrap_or_default(), rs.name_any())
}

async fn reconcile(rs: Arc<ReplicaSet>, st: Arc<State>) -> Result<Action, ReplicaSetError> {
    // The Pod cache must be complete before counting, or the first sync would create Pods
    // that already exist.
    if st.pods.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    let ns = rs.namespace().unwrap_or_default();
    let uid = rs.uid().unwrap_or_default();
    let Some(selector) = rs
        .spec
        .as_ref()
        .and_then(|s| pods::selector_matcher(&s.selector))
    else {
        tracing::warn!(object.ref = %key(&rs), "replica set has an invalid selector");
        return Ok(Action::await_change());
    };
    let needs_sync = st.expectations.satisfied(&uid, |name, pod_uid| {
        match st.pods.get(&ObjectRef::new(name).within(&ns)) {
            None => true,
            Some(p) => p.uid().as_deref() != Some(pod_uid) || pods::is_terminating(&p),
        }
    });
    let candidates: Vec<Arc<Pod>> = st
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()) && pods::is_active(p))
        .collect();
    let owned = claim(&st, &rs, &selector, candidates).await?;
    let outcome = if needs_sync && rs.metadata.deletion_timestamp.is_none() {
        manage(&st, &rs, &owned).await
    } else {
        Ok(())
    };
    let now = Utc::now();
    let failure = outcome.as_ref().err().map(|e| status::Failure {
        reason: match e {
            ReplicaSetError::DeletePod { .. } => "FailedDelete",
            _ => "FailedCreate",
        },
        message: e.to_string(),
    });
    let new_status = status::calculate(&rs, &owned, failure, now);
    if status::changed(&rs, &new_status) {
        write_status(&st, &rs, &new_status).await?;
    }
    outcome?;
    Ok(
        match status::next_available_in(&owned, status::min_ready_seconds(&rs), now) {
            Some(wait) => Action::requeue(wait),
            None => Action::await_change(),
        },
    )
}

async fn write_status(
    st: &State,
    rs: &ReplicaSet,
    new_status: &k8s_openapi::api::apps::v1::ReplicaSetStatus,
) -> Result<(), ReplicaSetError> {
    let api: Api<ReplicaSet> =
        Api::namespaced(st.ctx.client.clone(), &rs.namespace().unwrap_or_default());
    let mut body = serde_json::to_value(new_status).unwrap_or(Value::Null);
    if new_status.conditions.is_none() {
        body["conditions"] = Value::Null;
    }
    match api
        .patch_status(
            &rs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": body})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(ReplicaSetError::UpdateStatus {
            rs: key(rs),
            source,
        }),
    }
}

/// The active Pods `rs` owns after adopting matching orphans and releasing its Pods that no
/// longer match, as upstream's ControllerRefManager.
async fn claim(
    st: &State,
    rs: &ReplicaSet,
    selector: &LabelSelector,
    candidates: Vec<Arc<Pod>>,
) -> Result<Vec<Arc<Pod>>, ReplicaSetError> {
    let uid = rs.uid().unwrap_or_default();
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let mut owned = Vec::new();
    let mut may_adopt: Option<bool> = None;
    for pod in candidates {
        let matches = pods::selects(selector, &pod.metadata);
        match pods::controller_of(&pod.metadata) {
            Some(owner) if owner.uid == uid => {
                if matches {
                    owned.push(pod);
                } else if !deleting {
                    set_owner(st, &pod, None).await?;
                }
            }
            Some(_) => {}
            None if deleting || !matches || pods::is_terminating(&pod) => {}
            None => {
                if may_adopt.is_none() {
                    may_adopt = Some(still_adoptable(st, rs).await?);
                }
                if may_adopt == Some(true) {
                    if let Some(owner) = pods::controller_ref(rs) {
                        set_owner(st, &pod, Some(owner)).await?;
                        owned.push(pod);
                    }
                }
            }
        }
    }
    Ok(owned)
}

/// Adoption is decided on a fresh read, as upstream: a cached ReplicaSet may already be
/// deleted or replaced by one of the same name.
async fn still_adoptable(st: &State, rs: &ReplicaSet) -> Result<bool, ReplicaSetError> {
    let api: Api<ReplicaSet> =
        Api::namespaced(st.ctx.client.clone(), &rs.namespace().unwrap_or_default());
    match api.get_opt(&rs.name_any()).await {
        Ok(Some(fresh)) => {
            Ok(fresh.uid() == rs.uid() && fresh.metadata.deletion_timestamp.is_none())
        }
        Ok(None) => Ok(false),
        Err(source) => Err(ReplicaSetError::Recheck {
            rs: key(rs),
            source,
        }),
    }
}

/// Makes `owner` the Pod's controller (adopt) or removes its controller reference (release).
async fn set_owner(
    st: &State,
    pod: &Pod,
    owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
) -> Result<(), ReplicaSetError> {
    crate::pods::set_controller(&st.ctx.client, pod, owner)
        .await
        .map_err(|source| ReplicaSetError::ClaimPod {
            pod: pod.name_any(),
            source,
        })
}

fn desired(rs: &ReplicaSet) -> usize {
    let n = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    usize::try_from(n).unwrap_or(0)
}

async fn manage(st: &State, rs: &ReplicaSet, owned: &[Arc<Pod>]) -> Result<(), ReplicaSetError> {
    let want = desired(rs);
    let uid = rs.uid().unwrap_or_default();
    if owned.len() < want {
        let count = (want - owned.len()).min(BURST_REPLICAS);
        st.expectations.expect_creations(&uid, count);
        let (created, err) = slow_start_batch(count, 1, || create_pod(st, rs)).await;
        // Pods that failed or were never tried will not show up: stop waiting for them.
        for _ in created..count {
            st.expectations.creation_observed(&uid);
        }
        return err.map_or(Ok(()), Err);
    }
    if owned.len() > want {
        let count = (owned.len() - want).min(BURST_REPLICAS);
        let mut victims = owned.to_vec();
        victims.sort_by(|a, b| deletion_order(a, b));
        victims.truncate(count);
        st.expectations.expect_deletions(
            &uid,
            victims
                .iter()
                .map(|p| (p.name_any(), p.uid().unwrap_or_default())),
        );
        let results = join_all(victims.iter().map(|p| delete_pod(st, rs, p))).await;
        return results
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err);
    }
    Ok(())
}

/// Runs `count` calls of `op` in batches of 1, 2, 4, ... (starting at `initial`), each batch
/// concurrently, stopping after the first batch with a failure, as upstream's slowStartBatch:
/// a failing create (quota, admission) costs one call, not hundreds. Returns the successes
/// and the first error.
pub async fn slow_start_batch<F, Fut, E>(
    count: usize,
    initial: usize,
    mut op: F,
) -> (usize, Option<E>)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut remaining = count;
    let mut successes = 0;
    let mut batch = initial.max(1).min(remaining);
    while batch > 0 {
        let results = join_all((0..batch).map(|_| op())).await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(()) => successes += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_some() {
            return (successes, first_error);
        }
        remaining -= batch;
        batch = (batch * 2).min(remaining);
    }
    (successes, None)
}

fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(e) => e.message.clone(),
        other => other.to_string(),
    }
}

async fn create_pod(st: &State, rs: &ReplicaSet) -> Result<(), ReplicaSetError> {
    let ns = rs.namespace().unwrap_or_default();
    let (Some(template), Some(owner)) = (
        rs.spec.as_ref().and_then(|s| s.template.as_ref()),
        pods::controller_ref(rs),
    ) else {
        return Ok(());
    };
    let prefix = format!("{}-", rs.name_any());
    let pod = pods::pod_from_template(template, owner, &ns, None, &prefix);
    let api: Api<Pod> = Api::namespaced(st.ctx.client.clone(), &ns);
    let reference = rs.object_ref(&());
    match api.create(&PostParams::default(), &pod).await {
        Ok(created) => {
            let message = format!("Created pod: {}", created.name_any());
            st.ctx
                .events
                .record(&reference, EventType::Normal, "SuccessfulCreate", &message)
                .await;
            Ok(())
        }
        Err(e) => {
            let message = api_message(&e);
            st.ctx
                .events
                .record(
                    &reference,
                    EventType::Warning,
                    "FailedCreate",
                    &format!("Error creating: {message}"),
                )
                .await;
            Err(ReplicaSetError::CreatePod {
                rs: key(rs),
                message,
            })
        }
    }
}

async fn delete_pod(st: &State, rs: &ReplicaSet, pod: &Pod) -> Result<(), ReplicaSetError> {
    let api: Api<Pod> =
        Api::namespaced(st.ctx.client.clone(), &pod.namespace().unwrap_or_default());
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    let reference = rs.object_ref(&());
    let name = pod.name_any();
    match api.delete(&name, &params).await {
        Ok(_) => {
            let message = format!("Deleted pod: {name}");
            st.ctx
                .events
                .record(&reference, EventType::Normal, "SuccessfulDelete", &message)
                .await;
            Ok(())
        }
        Err(e) => {
            st.expectations
                .deletion_failed(&rs.uid().unwrap_or_default(), &name);
            if matches!(&e, kube::Error::Api(s) if s.code == 404) {
                return Ok(());
            }
            let message = api_message(&e);
            st.ctx
                .events
                .record(
                    &reference,
                    EventType::Warning,
                    "FailedDelete",
                    &format!("Error deleting: {message}"),
                )
                .await;
            Err(ReplicaSetError::DeletePod { pod: name, message })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    #[tokio::test]
    async fn slow_start_grows_batches_and_stops_after_a_failing_batch() {
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(10, 1, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<(), ()>(())
        })
        .await;
        assert_eq!((ok, err), (10, None));
        assert_eq!(calls.load(Ordering::SeqCst), 10);

        // Batches 1, 2, 4: the 5th call fails, so the third batch is the last.
        let calls = AtomicUsize::new(0);
        let batches = Mutex::new(Vec::new());
        let (ok, err) = slow_start_batch(100, 1, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            batches.lock().expect("lock").push(n);
            async move {
                if n == 4 {
                    Err("quota")
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(err, Some("quota"));
        assert_eq!(ok, 6);
        assert_eq!(calls.load(Ordering::SeqCst), 7);
    }

    #[test]
    fn orphans_trigger_the_replica_sets_that_select_them_and_owned_pods_their_owner() {
        let (store, mut writer) = reflector::store::<ReplicaSet>();
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {}}
        }))
        .expect("rs");
        writer.apply_watcher_event(&watcher::Event::Apply(rs));
        let orphan: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}}
        }))
        .expect("pod");
        let found = replica_sets_for_pod(&store, &orphan);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].obj_ref.name, "web");
        let owned: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "other", "uid": "u2",
                "controller": true}]}
        }))
        .expect("pod");
        let found = replica_sets_for_pod(&store, &owned);
        assert_eq!(found[0].obj_ref.name, "other");
        let elsewhere: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "other", "labels": {"app": "web"}}
        }))
        .expect("pod");
        assert!(replica_sets_for_pod(&store, &elsewhere).is_empty());
    }
}
