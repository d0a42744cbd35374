//! The PodDisruptionBudget status controller, as upstream's disruption controller: how many
//! of the selected Pods are healthy, how many must be, and so how many disruptions the API
//! server's eviction may spend. Status is written with the budget's resourceVersion, so an
//! eviction that spent a disruption (and recorded its Pod in `disruptedPods`) in between
//! makes the write conflict and the status is recomputed from what the eviction left.
//!
//! - [`status`]: the status a budget should have (pure).

pub mod status;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::channel::mpsc::{self, UnboundedSender};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};

use crate::{pods, reflect, Context, ControllerError};
pub use status::{
    compute_status, expected_and_desired, scaled, selects, Scale, Scales, CONDITION,
    DELETION_TIMEOUT,
};

const NAME: &str = "disruption";

#[derive(Debug, thiserror::Error)]
pub enum PdbError {
    #[error("writing status of {name}: {source}")]
    WriteStatus {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("encoding status of {name}: {source}")]
    Encode {
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The caches a budget is computed from.
struct State {
    client: kube::Client,
    pods: Store<Pod>,
    replicasets: Store<ReplicaSet>,
    deployments: Store<Deployment>,
    statefulsets: Store<StatefulSet>,
}

impl Scales for State {
    fn scale_of(&self, namespace: &str, owner: &OwnerReference) -> Option<Scale> {
        let replicas = |r: Option<i32>| r.unwrap_or(1);
        match (owner.api_version.as_str(), owner.kind.as_str()) {
            ("apps/v1", "ReplicaSet") => {
                let rs = self
                    .replicasets
                    .get(&ObjectRef::new(&owner.name).within(namespace))?;
                let deployment = pods::controller_of(&rs.metadata)
                    .filter(|r| r.kind == "Deployment")
                    .and_then(|r| {
                        self.deployments
                            .get(&ObjectRef::new(&r.name).within(namespace))
                    });
                match deployment {
                    Some(d) => Some(Scale {
                        uid: d.metadata.uid.clone()?,
                        replicas: replicas(d.spec.as_ref().and_then(|s| s.replicas)),
                    }),
                    None => Some(Scale {
                        uid: rs.metadata.uid.clone()?,
                        replicas: replicas(rs.spec.as_ref().and_then(|s| s.replicas)),
                    }),
                }
            }
            ("apps/v1", "StatefulSet") => {
                let ss = self
                    .statefulsets
                    .get(&ObjectRef::new(&owner.name).within(namespace))?;
                Some(Scale {
                    uid: ss.metadata.uid.clone()?,
                    replicas: replicas(ss.spec.as_ref().and_then(|s| s.replicas)),
                })
            }
            _ => None,
        }
    }
}

/// Runs the controller until `ctx.shutdown`.
pub async fn run(ctx: Context) -> Result<(), ControllerError> {
    let client = ctx.client.clone();
    let (budgets, budgets_w) = reflector::store::<PodDisruptionBudget>();
    let (pods_s, pods_w) = reflector::store::<Pod>();
    let (rs_s, rs_w) = reflector::store::<ReplicaSet>();
    let (dep_s, dep_w) = reflector::store::<Deployment>();
    let (ss_s, ss_w) = reflector::store::<StatefulSet>();
    let (queue, queued) = mpsc::unbounded::<ObjectRef<PodDisruptionBudget>>();
    let cfg = watcher::Config::default;

    let budget_watch = reflect(Api::all(client.clone()), cfg(), budgets_w, {
        let queue = queue.clone();
        move |ev| {
            if let Event::Apply(b) | Event::InitApply(b) = ev {
                let _ = queue.unbounded_send(ObjectRef::from_obj(b));
            }
        }
    });
    let pod_watch = reflect(
        Api::all(client.clone()),
        cfg(),
        pods_w,
        pod_trigger(budgets.clone(), queue.clone()),
    );
    // A controller's scale changes its budgets' expected Pods.
    let scale_watch = futures::future::join3(
        reflect(
            Api::<ReplicaSet>::all(client.clone()),
            cfg(),
            rs_w,
            namespace_trigger(&budgets, &queue),
        ),
        reflect(
            Api::<Deployment>::all(client.clone()),
            cfg(),
            dep_w,
            namespace_trigger(&budgets, &queue),
        ),
        reflect(
            Api::<StatefulSet>::all(client.clone()),
            cfg(),
            ss_w,
            namespace_trigger(&budgets, &queue),
        ),
    );
    let state = Arc::new(State {
        client,
        pods: pods_s,
        replicasets: rs_s,
        deployments: dep_s,
        statefulsets: ss_s,
    });
    let work = {
        let state = state.clone();
        async move {
            let ready = futures::future::try_join5(
                budgets.wait_until_ready(),
                state.pods.wait_until_ready(),
                state.replicasets.wait_until_ready(),
                state.deployments.wait_until_ready(),
                state.statefulsets.wait_until_ready(),
            )
            .await;
            if ready.is_err() {
                return;
            }
            tracing::info!(controller = NAME, "caches synced");
            controller::applier(
                |pdb, st| Box::pin(reconcile(pdb, st)),
                error_policy,
                state,
                budgets,
                queued.map(Ok::<_, Infallible>),
                controller::Config::default(),
            )
            .for_each(|res| {
                if let Err(e) = res {
                    tracing::debug!(controller = NAME, error = %e, "not reconciled");
                }
                futures::future::ready(())
            })
            .await;
        }
    };
    tokio::select! {
        _ = ctx.shutdown.cancelled() => {}
        _ = budget_watch => {}
        _ = pod_watch => {}
        _ = scale_watch => {}
        _ = work => {}
    }
    Ok(())
}

type Queue = UnboundedSender<ObjectRef<PodDisruptionBudget>>;

fn enqueue_namespace(budgets: &Store<PodDisruptionBudget>, queue: &Queue, ns: Option<&str>) {
    for b in budgets.state() {
        if ns.is_none() || b.metadata.namespace.as_deref() == ns {
            let _ = queue.unbounded_send(ObjectRef::from_obj(b.as_ref()));
        }
    }
}

fn namespace_trigger<K: kube::Resource>(
    budgets: &Store<PodDisruptionBudget>,
    queue: &Queue,
) -> impl FnMut(&Event<K>) + Send + 'static {
    let (budgets, queue) = (budgets.clone(), queue.clone());
    move |ev| match ev {
        Event::Apply(o) | Event::InitApply(o) | Event::Delete(o) => {
            enqueue_namespace(&budgets, &queue, o.meta().namespace.as_deref())
        }
        Event::Init | Event::InitDone => {}
    }
}

fn pod_trigger(
    budgets: Store<PodDisruptionBudget>,
    queue: Queue,
) -> impl FnMut(&Event<Pod>) + Send + 'static {
    let mut last: HashMap<ObjectRef<Pod>, Vec<ObjectRef<PodDisruptionBudget>>> = HashMap::new();
    move |ev| {
        let (pod, deleted) = match ev {
            Event::Apply(p) | Event::InitApply(p) => (p, false),
            Event::Delete(p) => (p, true),
            Event::InitDone => return enqueue_namespace(&budgets, &queue, None),
            Event::Init => return,
        };
        let key = ObjectRef::from_obj(pod);
        let now: Vec<_> = budgets
            .state()
            .iter()
            .filter(|b| selects(b, pod))
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect();
        let before = if deleted {
            last.remove(&key)
        } else {
            last.insert(key, now.clone())
        };
        for r in now.into_iter().chain(before.into_iter().flatten()) {
            let _ = queue.unbounded_send(r);
        }
    }
}

fn error_policy(_pdb: Arc<PodDisruptionBudget>, err: &PdbError, _st: Arc<State>) -> Action {
    if matches!(err, PdbError::WriteStatus { source: kube::Error::Api(e), .. } if e.code == 409) {
        // An eviction (or our own last write) got there first; recompute from the cache.
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(controller = NAME, error = %err, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

async fn reconcile(pdb: Arc<PodDisruptionBudget>, st: Arc<State>) -> Result<Action, PdbError> {
    let (Some(ns), Some(name)) = (pdb.metadata.namespace.clone(), pdb.metadata.name.clone()) else {
        return Ok(Action::await_change());
    };
    let all = st.pods.state();
    let pods: Vec<&Pod> = all
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| selects(&pdb, p))
        .collect();
    let (status, recheck) = compute_status(&pdb, &pods, st.as_ref(), Utc::now());
    let next = recheck.map_or_else(Action::await_change, Action::requeue);
    if pdb.status.as_ref() == Some(&status) {
        return Ok(next);
    }
    let mut updated = (*pdb).clone();
    updated.status = Some(status);
    let body = serde_json::to_vec(&updated).map_err(|source| PdbError::Encode {
        name: format!("{ns}/{name}"),
        source,
    })?;
    let api: Api<PodDisruptionBudget> = Api::namespaced(st.client.clone(), &ns);
    api.replace_status(&name, &PostParams::default(), body)
        .await
        .map_err(|source| PdbError::WriteStatus {
            name: format!("{ns}/{name}"),
            source,
        })?;
    Ok(next)
}
