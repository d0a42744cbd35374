//! The scheduling loop: level-triggered passes over the reflected Pods and Hosts.
//!
//! A pass recomputes every host's usage from the Pods (plus bindings this process made that
//! the watch has not shown yet), then places each waiting Pod in creation order. Binds run
//! as tasks, at most `max_concurrent_binds` at once, so a pass never waits on the network and
//! a burst of Pods is bound in parallel; the tasks are owned here and end with the loop.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use nodeless_core::billing::{format_money, spot_ratio_ppm, PriceCatalog, SpotPolicy};
use nodeless_core::instance_spec::InstanceSpec;
use nodeless_kube::billing::format_time;
use nodeless_kube::events::pod_reference;
use nodeless_kube::names::{
    CAPACITY_ON_DEMAND, CAPACITY_SPOT, CAPACITY_TYPE_ANNOTATION, HOST_ANNOTATION,
    HOURLY_PRICE_ANNOTATION, INSTANCE_SPEC_ANNOTATION, SPOT_PROTECTED_UNTIL_ANNOTATION,
    VIRTUAL_NODE,
};
use nodeless_kube::{EventRecorder, EventType, Host};
use serde_json::json;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::capacity::{Plan, Round};
use crate::hosts::live_hosts;
use crate::market::{Market, Sample};
use crate::placement::{Pool, Request};
use crate::pods::{
    is_terminal, needs_scheduling, placement_of, pod_key, runtime_for, shows_unschedulable,
    spec_for,
};
use crate::spot::{policy_of, release_at, spot_instances, utilisation};

/// The shortest time between the starts of two passes. It delays a Pod's placement by at
/// most this much, and bounds the passes of a burst to 40 a second.
const MIN_PASS_INTERVAL: Duration = Duration::from_millis(25);

/// A binding this process made (or is making) for a Pod, counted until the watch shows the
/// Pod with its host annotation, so back-to-back passes do not hand out the same room twice.
struct Assumed {
    host: String,
    spec: InstanceSpec,
    /// The bind request has not answered yet.
    binding: bool,
}

pub(crate) enum Outcome {
    Bound {
        uid: String,
    },
    /// Someone else bound it (409), or it is gone (404): the watch will say where it is.
    Settled {
        uid: String,
    },
    Failed {
        uid: String,
    },
    Reported,
    /// The release notice of a spot instance was written (or not: then it is decided again).
    Noticed {
        uid: String,
        written: bool,
    },
}

/// Prices and spot rules the scheduler applies.
pub(crate) struct Economy {
    pub catalog: PriceCatalog,
    /// How long before release a spot instance is warned.
    pub notice: Duration,
}

pub(crate) struct Scheduler {
    pub client: kube::Client,
    pub pods: Store<Pod>,
    pub hosts: Store<Host>,
    pub recorder: EventRecorder,
    pub changed: Arc<Notify>,
    pub resync: Duration,
    pub bind_permits: Arc<Semaphore>,
    pub economy: Arc<Economy>,
    pub market: Market,
}

#[derive(Default)]
pub(crate) struct State {
    assumed: HashMap<String, Assumed>,
    /// The last Unschedulable message reported per Pod uid, so a resync repeats no event.
    reported: HashMap<String, String>,
    /// Each waiting Pod's spec and runtime, by uid and resourceVersion: sizing serializes
    /// the Pod, and a Pod waiting for room is looked at again on every pass.
    sized: HashMap<String, KnownSize>,
    /// Spot instances whose release notice this process is writing or wrote, until the
    /// watch shows the Pod with its release time.
    pub(crate) releasing: HashSet<String>,
}

type Sizing = Result<(InstanceSpec, &'static str), String>;
/// A waiting Pod's spot policy (`None`: on-demand), or why its annotations are unusable.
type Policy = Result<Option<SpotPolicy>, String>;

struct KnownSize {
    resource_version: Option<String>,
    sizing: Sizing,
}

impl Scheduler {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut state = State::default();
        let mut tasks: JoinSet<Outcome> = JoinSet::new();
        let mut resync = tokio::time::interval(self.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_pass: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.changed.notified() => {}
                _ = resync.tick() => {}
                Some(done) = tasks.join_next() => {
                    match done {
                        Ok(outcome) => state.settle(outcome),
                        Err(e) => tracing::warn!(error = %e, "a scheduling task ended abnormally"),
                    }
                    // A failed bind is retried at the next change or resync, not at once, so
                    // a failing API server is not hammered.
                    continue;
                }
            }
            // A pass reads every Pod, and in a burst the watch wakes the loop once per Pod
            // event: passes paced to one per interval keep the scheduler's CPU in step with
            // time rather than with events. This pass sees every change made during the wait;
            // a wake-up during it leaves one permit, so at most one more pass follows.
            if let Some(wait) = last_pass.map(|at| MIN_PASS_INTERVAL.saturating_sub(at.elapsed())) {
                if !wait.is_zero() {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
            last_pass = Some(tokio::time::Instant::now());
            self.pass(&mut state, &mut tasks);
        }
    }

    fn pass(&self, state: &mut State, tasks: &mut JoinSet<Outcome>) {
        let now = Utc::now();
        let hosts = self.hosts.state();
        let mut pool = Pool::new(
            live_hosts(&hosts, now)
                .into_iter()
                .map(|h| h.capacity)
                .collect(),
        );
        let pods = self.pods.state();
        state.forget_reflected(&pods);
        let mut counts: std::collections::BTreeMap<String, u32> =
            [("OnDemand".to_string(), 0), ("Spot".to_string(), 0)].into();
        for pod in &pods {
            if let Some((host, spec)) = placement_of(pod) {
                pool.count(host, &spec);
                let kind = if crate::spot::is_spot(pod) {
                    "Spot"
                } else {
                    "OnDemand"
                };
                *counts.entry(kind.to_string()).or_default() += 1;
            }
        }
        for a in state.assumed.values() {
            pool.count(&a.host, &a.spec);
        }
        let utilisation = utilisation(&pool);
        let ratio = spot_ratio_ppm(utilisation, &self.economy.catalog.spot);
        self.market.offer(Sample {
            at: now,
            ratio_ppm: ratio,
            utilisation_ppm: utilisation,
            instances: counts,
        });
        let (spots, mut releasing) = spot_instances(&pods);
        releasing.extend(state.releasing.iter().cloned());
        let mut round = Round {
            now,
            ratio,
            by_uid: pods.iter().map(|p| (uid(p), p)).collect(),
            spots,
            releasing,
            on_demand_short: false,
        };
        self.reclaim_over_limit(&mut round, state, tasks);
        let mut waiting: Vec<(&Arc<Pod>, Policy)> = pods
            .iter()
            .filter(|p| needs_scheduling(p) && !state.assumed.contains_key(uid(p)))
            .map(|p| (p, policy_of(p)))
            .collect();
        // On-demand Pods first: spot instances only take capacity on-demand ones do not.
        waiting.sort_by(|(a, pa), (b, pb)| {
            let created = |p: &Pod| p.metadata.creation_timestamp.clone().map(|t| t.0);
            let spot = |p: &Policy| matches!(p, Ok(Some(_)));
            (spot(pa), created(a), pod_key(a)).cmp(&(spot(pb), created(b), pod_key(b)))
        });
        let waiting_uids: HashSet<&str> = waiting.iter().map(|(p, _)| uid(p)).collect();
        state
            .reported
            .retain(|u, _| waiting_uids.contains(u.as_str()));
        state.sized.retain(|u, _| waiting_uids.contains(u.as_str()));
        for (pod, policy) in waiting {
            let planned = state.size(pod).and_then(|(spec, runtime)| {
                let request = Request {
                    spec: &spec,
                    runtime,
                };
                self.plan(
                    &mut round,
                    state,
                    tasks,
                    &mut pool,
                    request,
                    policy.clone()?,
                )
            });
            match planned {
                Ok(plan) => {
                    state.assumed.insert(
                        uid(pod).to_string(),
                        Assumed {
                            host: plan.host.clone(),
                            spec: plan.spec.clone(),
                            binding: true,
                        },
                    );
                    tasks.spawn(self.bind(
                        pod.clone(),
                        plan,
                        self.economy.catalog.currency.clone(),
                    ));
                }
                Err(message) => {
                    if state.reported.get(uid(pod)) != Some(&message) {
                        state.reported.insert(uid(pod).to_string(), message.clone());
                        tasks.spawn(self.report(pod.clone(), message));
                    }
                }
            }
        }
    }

    fn bind(
        &self,
        pod: Arc<Pod>,
        plan: Plan,
        currency: String,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'static {
        let (client, recorder, permits) = (
            self.client.clone(),
            self.recorder.clone(),
            self.bind_permits.clone(),
        );
        async move {
            let uid = uid(&pod).to_string();
            let result = {
                let _permit = permits.acquire_owned().await;
                post_binding(client, &pod, &plan).await
            };
            let (host, spec) = (&plan.host, &plan.spec);
            let capacity = if plan.spot.is_some() {
                CAPACITY_SPOT
            } else {
                CAPACITY_ON_DEMAND
            };
            match result {
                Ok(()) => {
                    let message = format!(
                        "Successfully assigned {} to {VIRTUAL_NODE} (host {host}, spec {spec}, {capacity}, on-demand price {} {currency}/h)",
                        pod_key(&pod),
                        format_money(u128::from(plan.hourly_on_demand), 6),
                    );
                    tracing::debug!(pod = %pod_key(&pod), %host, %spec, "bound");
                    let object = pod_reference(&pod, None);
                    recorder
                        .record(&object, EventType::Normal, "Scheduled", &message)
                        .await;
                    Outcome::Bound { uid }
                }
                Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {
                    tracing::debug!(pod = %pod_key(&pod), reason = %e.message, "binding settled elsewhere");
                    Outcome::Settled { uid }
                }
                Err(e) => {
                    tracing::warn!(pod = %pod_key(&pod), %host, error = %e, "binding failed; will retry");
                    Outcome::Failed { uid }
                }
            }
        }
    }

    /// Marks the Pod Unschedulable (when its condition says otherwise) and records why.
    fn report(
        &self,
        pod: Arc<Pod>,
        message: String,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'static {
        let (client, recorder) = (self.client.clone(), self.recorder.clone());
        async move {
            tracing::info!(pod = %pod_key(&pod), %message, "unschedulable");
            if !shows_unschedulable(&pod, &message) {
                if let Err(e) = patch_unschedulable(client, &pod, &message).await {
                    tracing::warn!(pod = %pod_key(&pod), error = %e, "could not set PodScheduled=False");
                }
            }
            let object: ObjectReference = pod_reference(&pod, None);
            recorder
                .record(&object, EventType::Warning, "FailedScheduling", &message)
                .await;
            Outcome::Reported
        }
    }
}

impl State {
    /// The Pod's spec and runtime, or why it has none.
    fn size(&mut self, pod: &Pod) -> Sizing {
        let version = &pod.metadata.resource_version;
        if let Some(known) = self.sized.get(uid(pod)) {
            if &known.resource_version == version {
                return known.sizing.clone();
            }
        }
        let sizing = spec_for(pod)
            .map_err(|e| e.to_string())
            .and_then(|spec| Ok((spec, runtime_for(pod)?)));
        self.sized.insert(
            uid(pod).to_string(),
            KnownSize {
                resource_version: version.clone(),
                sizing: sizing.clone(),
            },
        );
        sizing
    }

    fn settle(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Bound { uid } => {
                if let Some(a) = self.assumed.get_mut(&uid) {
                    a.binding = false;
                }
            }
            Outcome::Settled { uid } | Outcome::Failed { uid } => {
                self.assumed.remove(&uid);
            }
            Outcome::Reported => {}
            Outcome::Noticed { uid, written } => {
                if !written {
                    self.releasing.remove(&uid);
                }
            }
        }
    }

    /// Drops assumptions the watch now reflects (the Pod shows its host annotation, so it
    /// counts through the Pod itself), and those of Pods gone or finished unless their bind
    /// has not answered yet.
    fn forget_reflected(&mut self, pods: &[Arc<Pod>]) {
        let by_uid: HashMap<&str, &Pod> = pods.iter().map(|p| (uid(p), p.as_ref())).collect();
        self.releasing.retain(|u| {
            by_uid
                .get(u.as_str())
                .is_some_and(|p| release_at(p).is_none() && !is_terminal(p))
        });
        self.assumed.retain(|u, a| match by_uid.get(u.as_str()) {
            Some(p) if placement_of(p).is_some() => false,
            Some(p) => a.binding || !is_terminal(p),
            None => a.binding,
        });
    }
}

pub(crate) fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

async fn post_binding(client: kube::Client, pod: &Pod, plan: &Plan) -> Result<(), kube::Error> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut annotations: std::collections::BTreeMap<String, String> = [
        (INSTANCE_SPEC_ANNOTATION, plan.spec.to_string()),
        (HOST_ANNOTATION, plan.host.clone()),
        (
            HOURLY_PRICE_ANNOTATION,
            format_money(u128::from(plan.hourly_on_demand), 9),
        ),
        (CAPACITY_TYPE_ANNOTATION, CAPACITY_ON_DEMAND.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(until) = plan.spot {
        annotations.insert(CAPACITY_TYPE_ANNOTATION.into(), CAPACITY_SPOT.into());
        annotations.insert(SPOT_PROTECTED_UNTIL_ANNOTATION.into(), format_time(until));
    }
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_string()),
            uid: pod.metadata.uid.clone(),
            annotations: Some(annotations),
            ..Default::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(VIRTUAL_NODE.into()),
            ..Default::default()
        },
    };
    let body = serde_json::to_vec(&binding).map_err(kube::Error::SerdeError)?;
    let api: Api<Pod> = Api::namespaced(client, namespace);
    api.create_subresource::<serde_json::Value>("binding", &name, &PostParams::default(), body)
        .await
        .map(|_| ())
}

async fn patch_unschedulable(
    client: kube::Client,
    pod: &Pod,
    message: &str,
) -> Result<(), kube::Error> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let patch = json!({
        "status": {
            "conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": Time(Utc::now()),
            }]
        }
    });
    let api: Api<Pod> = Api::namespaced(client, namespace);
    api.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, annotations: serde_json::Value, phase: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": uid, "namespace": "default", "uid": uid,
                             "resourceVersion": "1", "annotations": annotations},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                "status": {"phase": phase}
            }))
            .expect("valid pod"),
        )
    }

    fn assume(state: &mut State, uid: &str, binding: bool) {
        let spec = InstanceSpec::new(2000, 4096);
        let host = "h1".to_string();
        state.assumed.insert(
            uid.into(),
            Assumed {
                host,
                spec,
                binding,
            },
        );
    }

    #[test]
    fn an_assumed_binding_counts_until_the_watch_shows_the_host() {
        let mut state = State::default();
        assume(&mut state, "a", false);
        state.forget_reflected(&[pod("a", json!({}), "Pending")]);
        assert!(state.assumed.contains_key("a"));
        let placed = json!({"nodeless.dev/host": "h1", "nodeless.dev/instance-spec": "2-4Gi"});
        state.forget_reflected(&[pod("a", placed, "Pending")]);
        assert!(!state.assumed.contains_key("a"));
    }

    #[test]
    fn a_bind_in_flight_stays_counted_even_if_the_pod_is_not_seen() {
        let mut state = State::default();
        assume(&mut state, "a", true);
        state.forget_reflected(&[]);
        assert!(state.assumed.contains_key("a"));
        state.settle(Outcome::Bound { uid: "a".into() });
        state.forget_reflected(&[]);
        assert!(!state.assumed.contains_key("a"));
    }

    #[test]
    fn a_failed_bind_releases_its_room_at_once() {
        let mut state = State::default();
        assume(&mut state, "a", true);
        state.settle(Outcome::Failed { uid: "a".into() });
        assert!(state.assumed.is_empty());
    }

    #[test]
    fn sizing_is_reused_until_the_pod_changes() {
        let mut state = State::default();
        let p = pod("a", json!({}), "Pending");
        assert_eq!(
            state.size(&p).map(|(s, r)| (s.to_string(), r)),
            Ok(("2-4Gi".into(), "runc"))
        );
        let mut changed = (*p).clone();
        changed.metadata.resource_version = Some("2".into());
        changed.metadata.annotations =
            Some([("nodeless.dev/instance-spec".into(), "bad".into())].into());
        assert!(state.size(&changed).is_err());
    }
}
