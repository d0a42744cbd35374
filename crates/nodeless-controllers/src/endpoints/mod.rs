//! The Endpoints and EndpointSlice controller: for every Service with a selector, an
//! Endpoints object of the same name and EndpointSlices labelled with the Service's name,
//! both listing the selected Pods' IPs, ports and readiness, rewritten as soon as a Pod's
//! readiness, IP or deletion changes (the proxy's ClusterIP data path and cluster DNS read
//! the slices). Services without a selector are left to whoever manages their endpoints.
//!
//! - [`compute`]: the endpoints a Service should have (pure).
//! - [`slices`]: the slice writes that get there with the least churn (pure).
//! - [`tracker`]: what was written and the cache has not shown yet.

pub mod compute;
pub mod slices;
pub mod tracker;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::{self, UnboundedSender};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use nodeless_kube::{EventRecorder, EventType};

use crate::{reflect, Context, ControllerError};
use compute::{PodEndpoint, ENDPOINTS_MANAGED_BY_LABEL, ENDPOINTS_MANAGER};
use slices::{MANAGED_BY_LABEL, MANAGER, SERVICE_NAME_LABEL};
use tracker::Tracker;

const NAME: &str = "endpoints";
pub const LOAD_BALANCER_REASON: &str = "ExternalAddressNotProvided";
pub const LOAD_BALANCER_MESSAGE: &str =
    "nodeless does not provide external load balancers yet; the Service works as ClusterIP";

#[derive(Debug, thiserror::Error)]
pub enum EndpointsError {
    #[error("writing endpoints {name}: {source}")]
    WriteEndpoints {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing endpoint slice of {service}: {source}")]
    WriteSlice {
        service: String,
        #[source]
        source: kube::Error,
    },
}

impl EndpointsError {
    fn is_conflict(&self) -> bool {
        let (EndpointsError::WriteEndpoints { source, .. }
        | EndpointsError::WriteSlice { source, .. }) = self;
        matches!(source, kube::Error::Api(e) if e.code == 409)
    }
}

struct State {
    client: kube::Client,
    events: EventRecorder,
    pods: Store<Pod>,
    slices: Store<EndpointSlice>,
    endpoints: Store<Endpoints>,
    tracker: Mutex<Tracker>,
    /// Services already told that they get no external load balancer.
    warned: Mutex<HashSet<String>>,
}

fn service_key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

/// Runs the controller until `ctx.shutdown`.
pub async fn run(ctx: Context) -> Result<(), ControllerError> {
    let client = ctx.client.clone();
    let (services, services_w) = reflector::store::<Service>();
    let (pods, pods_w) = reflector::store::<Pod>();
    let (slices, slices_w) = reflector::store::<EndpointSlice>();
    let (endpoints, endpoints_w) = reflector::store::<Endpoints>();
    let (queue, queued) = mpsc::unbounded::<ObjectRef<Service>>();
    let (gone, gone_rx) = mpsc::unbounded::<Service>();

    let service_watch = reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        services_w,
        {
            let queue = queue.clone();
            move |ev| match ev {
                Event::Apply(s) | Event::InitApply(s) => send(&queue, ObjectRef::from_obj(s)),
                Event::Delete(s) => drop(gone.unbounded_send(s.clone())),
                Event::Init | Event::InitDone => {}
            }
        },
    );
    let pod_watch = reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        pods_w,
        pod_trigger(services.clone(), queue.clone()),
    );
    let managed = format!("{MANAGED_BY_LABEL}={MANAGER}");
    let slice_watch = reflect(
        Api::all(client.clone()),
        watcher::Config::default().labels(&managed),
        slices_w,
        {
            let queue = queue.clone();
            move |ev| match ev {
                Event::Apply(s) | Event::InitApply(s) | Event::Delete(s) => {
                    if let Some(r) = owning_service(s) {
                        send(&queue, r);
                    }
                }
                Event::Init | Event::InitDone => {}
            }
        },
    );
    let endpoints_watch = reflect(
        Api::all(client.clone()),
        watcher::Config::default(),
        endpoints_w,
        {
            let queue = queue.clone();
            move |ev| match ev {
                Event::Apply(e) | Event::InitApply(e) | Event::Delete(e) => {
                    if let (Some(ns), Some(name)) = (&e.metadata.namespace, &e.metadata.name) {
                        send(&queue, ObjectRef::new(name).within(ns));
                    }
                }
                Event::Init | Event::InitDone => {}
            }
        },
    );

    let state = Arc::new(State {
        client,
        events: ctx.events.clone(),
        pods,
        slices,
        endpoints,
        tracker: Mutex::new(Tracker::default()),
        warned: Mutex::new(HashSet::new()),
    });
    let work = {
        let state = state.clone();
        let services = services.clone();
        async move {
            // Endpoints computed from half-listed caches would drop live Pods.
            let ready = futures::future::try_join4(
                services.wait_until_ready(),
                state.pods.wait_until_ready(),
                state.slices.wait_until_ready(),
                state.endpoints.wait_until_ready(),
            )
            .await;
            if ready.is_err() {
                return;
            }
            tracing::info!(controller = NAME, "caches synced");
            remove_leftovers(&state, &services).await;
            let cleanup = gone_rx.for_each(|svc| {
                let state = state.clone();
                async move { remove_for(&state, svc).await }
            });
            let applied = controller::applier(
                |svc, st| Box::pin(reconcile(svc, st)),
                error_policy,
                state.clone(),
                services,
                queued.map(Ok::<_, Infallible>),
                controller::Config::default(),
            )
            .for_each(|res| {
                if let Err(e) = res {
                    log_applier_error(&e);
                }
                futures::future::ready(())
            });
            futures::future::join(cleanup, applied).await;
        }
    };
    tokio::select! {
        _ = ctx.shutdown.cancelled() => {}
        _ = service_watch => {}
        _ = pod_watch => {}
        _ = slice_watch => {}
        _ = endpoints_watch => {}
        _ = work => {}
    }
    Ok(())
}

fn send(queue: &UnboundedSender<ObjectRef<Service>>, r: ObjectRef<Service>) {
    // Fails only once the controller is stopping.
    let _ = queue.unbounded_send(r);
}

fn owning_service(slice: &EndpointSlice) -> Option<ObjectRef<Service>> {
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(ObjectRef::new(name).within(slice.metadata.namespace.as_deref()?))
}

/// Maps Pod events to the Services that select the Pod now or did before (a relabelled Pod
/// must leave its old Services' endpoints).
fn pod_trigger(
    services: Store<Service>,
    queue: UnboundedSender<ObjectRef<Service>>,
) -> impl FnMut(&Event<Pod>) + Send + 'static {
    let mut last: HashMap<ObjectRef<Pod>, Vec<ObjectRef<Service>>> = HashMap::new();
    move |ev| {
        let (pod, deleted) = match ev {
            Event::Apply(p) | Event::InitApply(p) => (p, false),
            Event::Delete(p) => (p, true),
            // Pods deleted while the watch was down vanish without an event.
            Event::InitDone => {
                services
                    .state()
                    .iter()
                    .for_each(|s| send(&queue, ObjectRef::from_obj(s.as_ref())));
                return;
            }
            Event::Init => return,
        };
        let key = ObjectRef::from_obj(pod);
        let now: Vec<ObjectRef<Service>> = services
            .state()
            .iter()
            .filter(|s| compute::selects(s, pod))
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect();
        let before = if deleted {
            last.remove(&key)
        } else {
            last.insert(key, now.clone())
        };
        for r in now.into_iter().chain(before.into_iter().flatten()) {
            send(&queue, r);
        }
    }
}

fn error_policy(_svc: Arc<Service>, err: &EndpointsError, _st: Arc<State>) -> Action {
    if err.is_conflict() {
        // The cache is behind a write; its event retriggers us too.
        return Action::requeue(Duration::from_millis(200));
    }
    tracing::warn!(controller = NAME, error = %err, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

fn log_applier_error<E: std::error::Error>(e: &E) {
    // A queued Service that has gone since is normal.
    tracing::debug!(controller = NAME, error = %e, "not reconciled");
}

async fn reconcile(svc: Arc<Service>, st: Arc<State>) -> Result<Action, EndpointsError> {
    let (Some(ns), Some(name)) = (svc.metadata.namespace.clone(), svc.metadata.name.clone()) else {
        return Ok(Action::await_change());
    };
    warn_load_balancer(&svc, &st).await;
    if !compute::has_selector(&svc) || svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let pods = st.pods.state();
    let desired = compute::pod_endpoints(
        &svc,
        pods.iter()
            .map(|p| p.as_ref())
            .filter(|p| compute::selects(&svc, p)),
    );
    sync_endpoints(&svc, &ns, &name, &desired, &st).await?;
    sync_slices(&svc, &ns, &name, &desired, &st).await
}

async fn sync_endpoints(
    svc: &Service,
    ns: &str,
    name: &str,
    desired: &[PodEndpoint],
    st: &State,
) -> Result<(), EndpointsError> {
    let want = compute::endpoints_for(svc, desired);
    let api: Api<Endpoints> = Api::namespaced(st.client.clone(), ns);
    let err = |source| EndpointsError::WriteEndpoints {
        name: service_key(ns, name),
        source,
    };
    let Some(cur) = st.endpoints.get(&ObjectRef::new(name).within(ns)) else {
        api.create(&PostParams::default(), &want)
            .await
            .map_err(err)?;
        return Ok(());
    };
    let same = cur.subsets.clone().unwrap_or_default() == want.subsets.clone().unwrap_or_default()
        && cur.metadata.labels == want.metadata.labels;
    if same {
        return Ok(());
    }
    let mut next = (*cur).clone();
    next.subsets = want.subsets;
    next.metadata.labels = want.metadata.labels;
    api.replace(name, &PostParams::default(), &next)
        .await
        .map_err(err)?;
    Ok(())
}

fn cached_slices(st: &State, ns: &str, name: &str) -> Vec<Arc<EndpointSlice>> {
    st.slices
        .state()
        .into_iter()
        .filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns)
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    == Some(&name.to_string())
        })
        .collect()
}

async fn sync_slices(
    svc: &Service,
    ns: &str,
    name: &str,
    desired: &[PodEndpoint],
    st: &State,
) -> Result<Action, EndpointsError> {
    let key = service_key(ns, name);
    let cached = cached_slices(st, ns, name);
    let cached: Vec<&EndpointSlice> = cached.iter().map(|s| s.as_ref()).collect();
    let current = st
        .tracker
        .lock()
        .expect("tracker lock is never poisoned")
        .is_current(&key, &cached);
    if !current {
        return Ok(Action::requeue(Duration::from_millis(100)));
    }
    let plan = slices::plan(svc, desired, &cached);
    if plan.is_empty() {
        return Ok(Action::await_change());
    }
    let api: Api<EndpointSlice> = Api::namespaced(st.client.clone(), ns);
    let err = |source| EndpointsError::WriteSlice {
        service: key.clone(),
        source,
    };
    let pp = PostParams::default();
    for slice in &plan.create {
        let created = api.create(&pp, slice).await.map_err(err)?;
        st.tracker
            .lock()
            .expect("tracker lock")
            .wrote(&key, &created);
    }
    for slice in &plan.update {
        let slice_name = slice.metadata.name.clone().unwrap_or_default();
        let updated = api.replace(&slice_name, &pp, slice).await.map_err(err)?;
        st.tracker
            .lock()
            .expect("tracker lock")
            .wrote(&key, &updated);
    }
    for slice_name in &plan.delete {
        match api.delete(slice_name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(err(e)),
        }
        st.tracker
            .lock()
            .expect("tracker lock")
            .deleted(&key, slice_name);
    }
    tracing::debug!(
        controller = NAME,
        service = %key,
        created = plan.create.len(),
        updated = plan.update.len(),
        deleted = plan.delete.len(),
        "endpoint slices written"
    );
    Ok(Action::await_change())
}

fn service_reference(svc: &Service) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Service".into()),
        namespace: svc.metadata.namespace.clone(),
        name: svc.metadata.name.clone(),
        uid: svc.metadata.uid.clone(),
        resource_version: svc.metadata.resource_version.clone(),
        field_path: None,
    }
}

async fn warn_load_balancer(svc: &Service, st: &State) {
    let is_lb = svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    let Some(uid) = svc.metadata.uid.clone() else {
        return;
    };
    if !is_lb || !st.warned.lock().expect("warned lock").insert(uid) {
        return;
    }
    st.events
        .record(
            &service_reference(svc),
            EventType::Warning,
            LOAD_BALANCER_REASON,
            LOAD_BALANCER_MESSAGE,
        )
        .await;
}

/// Removes what this controller wrote for a deleted Service (its slices also go with their
/// owner through garbage collection; deleting them here is just sooner).
async fn remove_for(st: &State, svc: Service) {
    let (Some(ns), Some(name)) = (svc.metadata.namespace, svc.metadata.name) else {
        return;
    };
    let key = service_key(&ns, &name);
    st.tracker.lock().expect("tracker lock").forget(&key);
    if let Some(uid) = svc.metadata.uid {
        st.warned.lock().expect("warned lock").remove(&uid);
    }
    let ours = st
        .endpoints
        .get(&ObjectRef::new(&name).within(&ns))
        .is_some_and(|e| is_managed_endpoints(&e));
    if ours {
        let api: Api<Endpoints> = Api::namespaced(st.client.clone(), &ns);
        if let Err(e) = api.delete(&name, &DeleteParams::default()).await {
            tracing::debug!(controller = NAME, service = %key, error = %e, "endpoints not deleted");
        }
    }
    let api: Api<EndpointSlice> = Api::namespaced(st.client.clone(), &ns);
    for slice in cached_slices(st, &ns, &name) {
        let Some(slice_name) = slice.metadata.name.as_deref() else {
            continue;
        };
        if let Err(e) = api.delete(slice_name, &DeleteParams::default()).await {
            tracing::debug!(controller = NAME, service = %key, error = %e, "slice not deleted");
        }
    }
}

fn is_managed_endpoints(e: &Endpoints) -> bool {
    e.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ENDPOINTS_MANAGED_BY_LABEL))
        == Some(&ENDPOINTS_MANAGER.to_string())
}

/// Endpoints and slices of Services deleted while no copy of this controller ran.
async fn remove_leftovers(st: &State, services: &Store<Service>) {
    let exists = |ns: Option<&String>, name: &str| {
        ns.is_some_and(|ns| services.get(&ObjectRef::new(name).within(ns)).is_some())
    };
    let mut orphans: HashSet<(String, String)> = HashSet::new();
    for e in st.endpoints.state() {
        let (Some(ns), Some(name)) = (&e.metadata.namespace, &e.metadata.name) else {
            continue;
        };
        if is_managed_endpoints(&e) && !exists(Some(ns), name) {
            orphans.insert((ns.clone(), name.clone()));
        }
    }
    for s in st.slices.state() {
        if let Some(r) = owning_service(&s) {
            if !exists(r.namespace.as_ref(), &r.name) {
                orphans.insert((r.namespace.unwrap_or_default(), r.name));
            }
        }
    }
    for (ns, name) in orphans {
        let mut svc = Service::default();
        svc.metadata.namespace = Some(ns);
        svc.metadata.name = Some(name);
        remove_for(st, svc).await;
    }
}

#[cfg(test)]
mod tests;
