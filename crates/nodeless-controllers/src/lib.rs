//! The workload controllers, written against the Kubernetes API with kube-rs's runtime
//! (reflectors, level-triggered reconcilers, requeue with backoff). `nodeless up` runs them in
//! process; `nodeless controllers` runs them on their own, and several copies may run: a
//! Lease elects the one that acts.
//!
//! Modules (one per controller, each exposing `pub async fn run(ctx: Context) -> Result<(), ControllerError>`):
//! - [`pods`]: what controllers share about the Pods they own (templates, owner references,
//!   readiness and availability).
//! - being written: `replicaset`, `deployment`, `statefulset`, `job`, `cronjob`,
//!   `endpoints` (Endpoints and EndpointSlices), `pdb`, `leader`.

pub mod deployment;
pub mod endpoints;
pub mod job;
pub mod pods;
pub mod replicaset;
pub mod statefulset;

use std::time::Duration;

/// What every controller gets.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub events: nodeless_kube::EventRecorder,
    pub shutdown: tokio_util::sync::CancellationToken,
}

#[derive(Debug, Clone)]
pub struct ControllersConfig {
    /// Name of the leader-election Lease in `kube-system`.
    pub lease_name: String,
    /// This copy's identity in the Lease.
    pub identity: String,
    pub lease_duration: Duration,
}

impl Default for ControllersConfig {
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        ControllersConfig {
            lease_name: "nodeless-controllers".into(),
            identity: format!("{host}_{}", std::process::id()),
            lease_duration: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("{controller}: {source}")]
    Kube {
        controller: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("{controller}: {message}")]
    Other {
        controller: &'static str,
        message: String,
    },
}

/// Keeps `writer`'s store a mirror of `api` (watch restarts back off), handing every watch
/// event to `on_event` once the store has applied it. Never ends while the API is there to
/// watch; callers stop it by dropping it. Boxed, so the futures of controllers holding
/// several of these stay provably `Send`.
pub(crate) fn reflect<K, F>(
    api: kube::Api<K>,
    config: kube::runtime::watcher::Config,
    writer: kube::runtime::reflector::store::Writer<K>,
    mut on_event: F,
) -> futures::future::BoxFuture<'static, ()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    F: FnMut(&kube::runtime::watcher::Event<K>) + Send + 'static,
{
    use futures::{FutureExt, StreamExt};
    use kube::runtime::WatchStreamExt;
    let kind = K::kind(&()).into_owned();
    let stream = kube::runtime::watcher(api, config)
        .default_backoff()
        .reflect(writer);
    stream
        .for_each(move |event| {
            match event {
                Ok(event) => on_event(&event),
                Err(e) => tracing::warn!(kind = %kind, error = %e, "watch failed; retrying"),
            }
            futures::future::ready(())
        })
        .boxed()
}
