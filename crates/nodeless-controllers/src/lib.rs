//! The workload controllers, written against the Kubernetes API with kube-rs's runtime
//! (reflectors, level-triggered reconcilers, requeue with backoff). `nodeless up` runs them in
//! process; `nodeless controllers` runs them on their own, and several copies may run: a
//! Lease elects the one that acts.
//!
//! Modules (one per controller, each exposing `pub async fn run(ctx: Context) -> Result<(), ControllerError>`):
//! - [`pods`]: what controllers share about the Pods they own (templates, owner references,
//!   readiness and availability).
//! - [`endpoints`]: Endpoints and EndpointSlices of Services with a selector.
//! - [`pdb`]: PodDisruptionBudget status, which the API server's eviction spends.
//! - [`leader`]: the Lease that elects the copy that acts; [`run_all`] runs every
//!   controller while this copy leads.
//! - [`replicaset`], [`deployment`], [`statefulset`], [`job`], [`cronjob`]: the workload
//!   controllers.

pub mod cronjob;
pub mod deployment;
pub mod endpoints;
pub mod job;
pub mod leader;
pub mod pdb;
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

type RunFn = fn(Context) -> futures::future::BoxFuture<'static, Result<(), ControllerError>>;

/// Every controller `run_all` runs, by name.
fn controllers() -> Vec<(&'static str, RunFn)> {
    use futures::FutureExt;
    vec![
        ("endpoints", |c| endpoints::run(c).boxed()),
        ("pdb", |c| pdb::run(c).boxed()),
        ("replicaset", |c| replicaset::run(c).boxed()),
        ("deployment", |c| deployment::run(c).boxed()),
        ("statefulset", |c| statefulset::run(c).boxed()),
        ("job", |c| job::run(c).boxed()),
        ("cronjob", |c| cronjob::run(c).boxed()),
    ]
}

/// How long stopping controllers may take before their tasks are aborted.
const STOP_GRACE: Duration = Duration::from_secs(10);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Runs every controller while this copy holds the leader Lease: waits to be elected, runs
/// them all (restarting one that fails, after a backoff), stops them all when the Lease is
/// lost and goes back to waiting, and on `shutdown` stops them and gives the Lease up so
/// another copy takes over at once.
pub async fn run_all(
    client: kube::Client,
    config: ControllersConfig,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), ControllerError> {
    let mut elector = leader::LeaderElector::new(client.clone(), &config);
    let events = nodeless_kube::EventRecorder::new(client.clone(), "nodeless-controllers", None);
    loop {
        if !elector.acquire(&shutdown).await {
            return Ok(());
        }
        let leading = shutdown.child_token();
        let ctx = Context {
            client: client.clone(),
            events: events.clone(),
            shutdown: leading.clone(),
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (name, run) in controllers() {
            tasks.spawn(supervise(name, run, ctx.clone()));
        }
        tracing::info!(identity = %config.identity, controllers = tasks.len(), "leading; controllers started");
        let end = elector.hold(&shutdown).await;
        leading.cancel();
        stop(tasks).await;
        match end {
            leader::HoldEnd::Shutdown => {
                elector.release().await;
                return Ok(());
            }
            leader::HoldEnd::Lost => {
                tracing::warn!(identity = %config.identity, "leadership lost; controllers stopped")
            }
        }
    }
}

async fn stop(mut tasks: tokio::task::JoinSet<()>) {
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(STOP_GRACE, all_done).await.is_err() {
        tracing::warn!("controllers did not stop in time; aborting them");
        tasks.shutdown().await;
    }
}

/// Runs one controller until `ctx.shutdown`, restarting it with an exponential backoff
/// (reset once it has run a while) whenever it returns early.
async fn supervise(name: &'static str, run: RunFn, ctx: Context) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = tokio::time::Instant::now();
        let result = run(ctx.clone()).await;
        if ctx.shutdown.is_cancelled() {
            return;
        }
        match result {
            Ok(()) => tracing::warn!(controller = name, "controller stopped early; restarting"),
            Err(e) => {
                tracing::warn!(controller = name, error = %e, "controller failed; restarting")
            }
        }
        if started.elapsed() > RESTART_BACKOFF_MAX {
            backoff = Duration::from_secs(1);
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
    }
}
