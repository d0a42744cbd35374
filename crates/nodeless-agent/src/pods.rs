//! Which Pods are this host's, and the one task that routes what happens to them: Pod
//! watch events, engine instance events and ConfigMap/Secret changes go to the Pod's
//! [`worker`](crate::worker) over channels that keep only the latest value, so a burst of
//! changes costs one reconcile. Nothing here re-lists per Pod: ConfigMaps and Secrets come
//! from reflector caches, instances from the engine's event stream.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use nodeless_engine::instance::{Engine, EngineError, InstanceEvent, InstanceStatus};
use nodeless_kube::names::{HOST_ANNOTATION, VIRTUAL_NODE};
use nodeless_kube::{EventRecorder, EventType};
use tokio::sync::{broadcast, mpsc, watch, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;
use crate::status::PodEvent;
use crate::translate::{self, References, Sources};
use crate::worker::{self, WorkerInit};

/// Instances created at once: enough to overlap pulls and setup, few enough that a burst of
/// 500 Pods does not thrash a 2-core host.
const CREATE_CONCURRENCY: usize = 16;
/// Status patches in flight at once.
const WRITE_CONCURRENCY: usize = 32;
/// Events waiting to be written; beyond it they are dropped (and logged), never blocking.
const EVENT_QUEUE: usize = 8192;
/// The engine label that marks an instance as a Pod's (set by `translate`).
pub(crate) const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";

/// What every worker shares.
pub(crate) struct Agent {
    pub(crate) client: kube::Client,
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) config: AgentConfig,
    pub(crate) ctx: translate::Context,
    pub(crate) create_permits: Semaphore,
    pub(crate) write_permits: Semaphore,
    events: mpsc::Sender<(k8s_openapi::api::core::v1::ObjectReference, PodEvent)>,
    config_maps: Store<ConfigMap>,
    secrets: Store<Secret>,
    pub(crate) ledger: Arc<crate::ledger::Ledger>,
    pub(crate) shutdown: CancellationToken,
}

impl Agent {
    /// Queues an Event about `pod`; written in the background in order.
    pub(crate) fn record(&self, pod: &Pod, event: PodEvent) {
        let mut reference = nodeless_kube::events::pod_reference(pod, None);
        reference.field_path = event.field_path.clone();
        if self.events.try_send((reference, event)).is_err() {
            tracing::debug!("event queue full; an event was dropped");
        }
    }

    pub(crate) fn record_simple(
        &self,
        pod: &Pod,
        kind: EventType,
        reason: &'static str,
        message: String,
    ) {
        self.record(
            pod,
            PodEvent {
                kind,
                reason,
                message,
                field_path: None,
            },
        );
    }

    /// The ConfigMaps and Secrets `refs` names in `namespace`: from the caches, else (just
    /// created, not yet cached) from the API.
    pub(crate) async fn sources(
        &self,
        namespace: &str,
        refs: &References,
    ) -> Result<Sources, kube::Error> {
        let mut sources = Sources::default();
        for name in &refs.config_maps {
            if let Some(cm) =
                cached_or_get(&self.config_maps, &self.client, namespace, name).await?
            {
                sources.config_maps.insert(name.clone(), cm);
            }
        }
        for name in &refs.secrets {
            if let Some(s) = cached_or_get(&self.secrets, &self.client, namespace, name).await? {
                sources.secrets.insert(name.clone(), s);
            }
        }
        Ok(sources)
    }
}

async fn cached_or_get<K>(
    store: &Store<K>,
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<K>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    if let Some(obj) = store.get(&ObjectRef::new(name).within(namespace)) {
        return Ok(Some((*obj).clone()));
    }
    Api::<K>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
}

/// Whether this agent runs `pod`.
pub(crate) fn is_mine(pod: &Pod, host_name: &str) -> bool {
    let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(VIRTUAL_NODE);
    bound && pod.annotations().get(HOST_ANNOTATION).map(String::as_str) == Some(host_name)
}

struct WorkerHandle {
    pod: watch::Sender<Option<Arc<Pod>>>,
    instance: watch::Sender<Option<InstanceStatus>>,
    kick: Arc<Notify>,
    namespace: String,
    refs: References,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Routes changes to workers until `shutdown`; instances are left running.
pub(crate) struct Dispatcher {
    agent: Arc<Agent>,
    workers: HashMap<String, WorkerHandle>,
    /// Instances found at start, handed to their Pod's worker or removed once Pods are listed.
    adopted: HashMap<String, InstanceStatus>,
    lost: HashSet<String>,
    /// Pod uids seen during a (re)list.
    listing: Option<HashSet<String>>,
    synced: bool,
}

pub(crate) struct Started {
    pub(crate) agent: Arc<Agent>,
    pub(crate) dispatcher: Dispatcher,
    config_map_events: reflector::store::Writer<ConfigMap>,
    secret_events: reflector::store::Writer<Secret>,
    recorder: EventRecorder,
    event_rx: mpsc::Receiver<(k8s_openapi::api::core::v1::ObjectReference, PodEvent)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PodsError {
    #[error("listing the engine's instances: {0}")]
    ListInstances(#[source] EngineError),
    #[error("loading this host's usage records: {0}")]
    Ledger(#[source] kube::Error),
}

/// Builds the shared state and the dispatcher with the engine's current instances.
pub(crate) async fn start(
    client: kube::Client,
    engine: Arc<dyn Engine>,
    config: AgentConfig,
    ctx: translate::Context,
    lost: HashSet<String>,
    last_heartbeat: Option<chrono::DateTime<chrono::Utc>>,
    shutdown: CancellationToken,
) -> Result<Started, PodsError> {
    let (config_maps, config_map_events) = reflector::store();
    let (secrets, secret_events) = reflector::store();
    let (events, event_rx) = mpsc::channel(EVENT_QUEUE);
    // Events name the virtual node, as users never see hosts.
    let recorder = EventRecorder::new(client.clone(), "kubelet", Some(VIRTUAL_NODE));
    let instances = engine.list().await.map_err(PodsError::ListInstances)?;
    let ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
    let ledger = crate::ledger::Ledger::load(
        client.clone(),
        config.host_name.clone(),
        &ids,
        last_heartbeat,
        shutdown.clone(),
    )
    .await
    .map_err(PodsError::Ledger)?;
    let agent = Arc::new(Agent {
        client,
        engine,
        config,
        ctx,
        create_permits: Semaphore::new(CREATE_CONCURRENCY),
        write_permits: Semaphore::new(WRITE_CONCURRENCY),
        events,
        config_maps,
        secrets,
        ledger,
        shutdown,
    });
    let adopted = instances
        .into_iter()
        .filter(|i| i.labels.contains_key(POD_UID_LABEL))
        .map(|i| (i.id.clone(), i))
        .collect();
    Ok(Started {
        dispatcher: Dispatcher {
            agent: agent.clone(),
            workers: HashMap::new(),
            adopted,
            lost,
            listing: None,
            synced: false,
        },
        agent,
        config_map_events,
        secret_events,
        recorder,
        event_rx,
    })
}

impl Started {
    /// Runs until shutdown. `engine_events` must have been subscribed before the engine's
    /// instances were listed, so no change falls between the two.
    pub(crate) async fn run(self, mut engine_events: broadcast::Receiver<InstanceEvent>) {
        let Started {
            agent,
            mut dispatcher,
            config_map_events,
            secret_events,
            recorder,
            event_rx,
        } = self;
        let shutdown = agent.shutdown.clone();
        let events_task = tokio::spawn(write_events(recorder, event_rx));
        let pods_api: Api<Pod> = Api::all(agent.client.clone());
        let selector = format!("spec.nodeName={VIRTUAL_NODE}");
        let mut pods = watcher(pods_api, watcher::Config::default().fields(&selector))
            .default_backoff()
            .boxed();
        let mut config_maps = touched(
            Api::<ConfigMap>::all(agent.client.clone()),
            config_map_events,
        );
        let mut secrets = touched(Api::<Secret>::all(agent.client.clone()), secret_events);
        let mut prune = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                event = pods.next() => match event {
                    Some(Ok(e)) => dispatcher.on_pod_event(e),
                    Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                    None => break,
                },
                event = engine_events.recv() => dispatcher.on_engine_event(event),
                Some((ns, name)) = config_maps.next() => dispatcher.on_source(&ns, &name, true),
                Some((ns, name)) = secrets.next() => dispatcher.on_source(&ns, &name, false),
                _ = prune.tick() => dispatcher.workers.retain(|_, w| !w.task.is_finished()),
            }
        }
        // Workers stop where they are; instances keep running for the next agent.
        drop(dispatcher);
        events_task.abort();
    }
}

/// (namespace, name) of each ConfigMap or Secret added, changed or deleted, keeping the
/// reflector cache current.
fn touched<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
) -> std::pin::Pin<Box<dyn Stream<Item = (String, String)> + Send>>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .touched_objects()
        .filter_map(|r| async move {
            match r {
                Ok(obj) => Some((obj.namespace().unwrap_or_default(), obj.name_any())),
                Err(e) => {
                    tracing::warn!(error = %e, "configmap/secret watch failed; retrying");
                    None
                }
            }
        })
        .boxed()
}

async fn write_events(
    recorder: EventRecorder,
    mut rx: mpsc::Receiver<(k8s_openapi::api::core::v1::ObjectReference, PodEvent)>,
) {
    while let Some((reference, e)) = rx.recv().await {
        recorder
            .record(&reference, e.kind, e.reason, &e.message)
            .await;
    }
}

impl Dispatcher {
    fn on_pod_event(&mut self, event: watcher::Event<Pod>) {
        match event {
            watcher::Event::Init => self.listing = Some(HashSet::new()),
            watcher::Event::InitApply(pod) => {
                if let (Some(seen), Some(uid)) = (self.listing.as_mut(), pod.metadata.uid.clone()) {
                    seen.insert(uid);
                }
                self.apply(pod);
            }
            watcher::Event::InitDone => self.list_done(),
            watcher::Event::Apply(pod) => self.apply(pod),
            watcher::Event::Delete(pod) => {
                if let Some(w) = pod.metadata.uid.as_ref().and_then(|u| self.workers.get(u)) {
                    w.pod.send_replace(None);
                }
            }
        }
    }

    fn apply(&mut self, pod: Pod) {
        let host = &self.agent.config.host_name;
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        if !is_mine(&pod, host) {
            return;
        }
        let refs = translate::references(&pod);
        let namespace = pod.namespace().unwrap_or_default();
        let pod = Arc::new(pod);
        if let Some(w) = self.workers.get_mut(&uid) {
            w.refs = refs;
            w.pod.send_replace(Some(pod));
            return;
        }
        let instance = self.adopted.remove(&uid);
        let (pod_tx, pod_rx) = watch::channel(Some(pod));
        let (inst_tx, inst_rx) = watch::channel(instance.clone());
        let kick = Arc::new(Notify::new());
        let init = WorkerInit {
            uid: uid.clone(),
            instance,
            lost: self.lost.remove(&uid),
        };
        let task = tokio::spawn(worker::run(
            self.agent.clone(),
            init,
            pod_rx,
            inst_rx,
            kick.clone(),
        ));
        self.workers.insert(
            uid,
            WorkerHandle {
                pod: pod_tx,
                instance: inst_tx,
                kick,
                namespace,
                refs,
                task,
            },
        );
    }

    /// After a (re)list: Pods not listed are gone; at the first, instances whose Pod is
    /// gone are removed.
    fn list_done(&mut self) {
        if let Some(seen) = self.listing.take() {
            for (uid, w) in &self.workers {
                if !seen.contains(uid) {
                    w.pod.send_replace(None);
                }
            }
        }
        if !self.synced {
            self.synced = true;
            for (id, _) in self.adopted.drain() {
                let agent = self.agent.clone();
                tracing::info!(instance = %id, "removing an instance whose pod is gone");
                tokio::spawn(async move { crate::deletion::remove_now(&agent, &id).await });
            }
        }
    }

    fn on_engine_event(&mut self, event: Result<InstanceEvent, broadcast::error::RecvError>) {
        match event {
            Ok(InstanceEvent::Changed(status)) => {
                if let Some(w) = self.workers.get(&status.id) {
                    w.instance.send_replace(Some(*status));
                }
            }
            Ok(InstanceEvent::Removed { id }) => {
                if let Some(w) = self.workers.get(&id) {
                    w.instance.send_replace(None);
                }
            }
            // Missed changes: every worker re-reads its instance.
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "engine events lagged; re-reading instances");
                for w in self.workers.values() {
                    w.kick.notify_one();
                }
            }
            Err(broadcast::error::RecvError::Closed) => {}
        }
    }

    fn on_source(&mut self, namespace: &str, name: &str, config_map: bool) {
        for w in self.workers.values() {
            let names = if config_map {
                &w.refs.config_maps
            } else {
                &w.refs.secrets
            };
            if w.namespace == namespace && names.contains(name) {
                w.kick.notify_one();
            }
        }
    }
}
