//! The nodeless scheduler: sizes each Pod to an instance spec, places the instance on a host
//! of the pool, and binds the Pod to the one virtual node users see.
//!
//! Why it is built this way:
//! - It talks only to the Kubernetes API (kube-rs reflectors over Pods and `Host`s), so it
//!   runs inside `nodeless up` or on its own against any API server, and a restart loses
//!   nothing: every decision is written on the Pod (`nodeless.dev/host`,
//!   `nodeless.dev/instance-spec`, via the binding), and a host's usage is recomputed from
//!   those annotations at every pass.
//! - It is level-triggered: any change of a Pod or Host (and a periodic resync, which also
//!   catches heartbeats going stale) wakes one pass over the current state; wake-ups during a
//!   pass fold into one, and passes start at most every 25 ms, so a burst's thousands of Pod
//!   events cost a few dozen passes a second. Nothing is queued per Pod, so nothing can be
//!   lost or duplicated.
//! - Placement ([`placement`]) is a pure function over hosts and usage, so the policy and
//!   the reasons users read in `FailedScheduling` events are unit-tested.
//! - Throughput: a burst of Pods is placed within one pass against in-memory usage and bound
//!   by up to [`SchedulerConfig::max_concurrent_binds`] concurrent requests. Bindings made
//!   but not yet seen through the watch are counted as assumed, so back-to-back passes never
//!   hand out the same room twice.
//! - Users see one node ([`node`]), `nodeless`, whose capacity is the pool's and which is
//!   Ready while any host is live; the hosts themselves stay nodeless's business.

mod capacity;
pub mod hosts;
pub mod market;
pub mod meter;
pub mod node;
pub mod placement;
pub mod pods;
mod scheduler;
pub mod spot;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use nodeless_kube::host::HEARTBEAT_INTERVAL;
use nodeless_kube::{EventRecorder, Host};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

pub use node::NodeError;
pub use placement::{HostCapacity, Pool, Request, Unschedulable, Usage};

/// The component name on Events the scheduler records.
pub const COMPONENT: &str = "nodeless-scheduler";

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often waiting Pods are retried without any change (also notices hosts whose
    /// heartbeat went stale, which produces no watch event).
    pub resync_interval: Duration,
    /// How often the virtual node's status and Lease are renewed.
    pub node_heartbeat_interval: Duration,
    /// Binding requests in flight at once.
    pub max_concurrent_binds: usize,
    /// Prices of on-demand capacity and the spot market's parameters.
    pub catalog: nodeless_core::billing::PriceCatalog,
    /// How long before its release a spot instance is warned (ECI: about 3 minutes).
    pub spot_notice: Duration,
    /// How often running Pods' `nodeless.dev/cost` annotation is brought up to date.
    pub cost_interval: Duration,
}

/// ECI warns about three minutes ahead of releasing a spot instance.
pub const DEFAULT_SPOT_NOTICE: Duration = Duration::from_secs(180);

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            resync_interval: Duration::from_secs(5),
            node_heartbeat_interval: HEARTBEAT_INTERVAL,
            max_concurrent_binds: 64,
            catalog: Default::default(),
            spot_notice: DEFAULT_SPOT_NOTICE,
            cost_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("installing the Host resource: {0}")]
    HostCrd(#[from] nodeless_kube::host::HostCrdError),
    #[error("preparing the virtual node: {0}")]
    Node(#[from] NodeError),
}

/// Runs the scheduler and the virtual node until `shutdown` is cancelled.
pub async fn run(
    client: kube::Client,
    config: SchedulerConfig,
    shutdown: CancellationToken,
) -> Result<(), SchedulerError> {
    nodeless_kube::host::ensure_crd(&client).await?;
    nodeless_kube::host::ensure::<nodeless_kube::billing::SpotMarket>(&client).await?;
    node::ensure_lease_namespace(&client).await?;
    let pods_changed = Arc::new(Notify::new());
    let hosts_changed = Arc::new(Notify::new());
    let (pods, pod_watch) = reflect(Api::<Pod>::all(client.clone()), vec![pods_changed.clone()]);
    let (hosts, host_watch) = reflect(
        Api::<Host>::all(client.clone()),
        vec![pods_changed.clone(), hosts_changed.clone()],
    );
    let (market, samples) = market::Market::new();
    let publisher = market::Publisher {
        client: client.clone(),
        catalog: config.catalog.clone(),
        notice: config.spot_notice,
    };
    let meter = meter::Meter {
        client: client.clone(),
        interval: config.cost_interval,
    };
    let scheduler = scheduler::Scheduler {
        client: client.clone(),
        pods: pods.clone(),
        hosts: hosts.clone(),
        recorder: EventRecorder::new(client.clone(), COMPONENT, None),
        changed: pods_changed,
        resync: config.resync_interval,
        bind_permits: Arc::new(Semaphore::new(config.max_concurrent_binds.max(1))),
        economy: Arc::new(scheduler::Economy {
            catalog: config.catalog,
            notice: config.spot_notice,
        }),
        market,
    };
    let node = node::VirtualNode {
        client,
        hosts: hosts.clone(),
        hosts_changed,
        heartbeat: config.node_heartbeat_interval,
    };
    let work = {
        let shutdown = shutdown.clone();
        async move {
            // Placing against a half-listed cache would oversubscribe hosts.
            if pods.wait_until_ready().await.is_err() || hosts.wait_until_ready().await.is_err() {
                return;
            }
            tracing::info!("scheduler caches synced; scheduling");
            tokio::join!(
                scheduler.run(shutdown.clone()),
                node.run(shutdown.clone()),
                publisher.run(samples, shutdown.clone()),
                meter.run(shutdown)
            );
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = pod_watch => {}
        _ = host_watch => {}
        _ = work => {}
    }
    Ok(())
}

/// A reflector over `api`: its store, and the future that keeps it current and wakes
/// `wake` on every event (including the end of a re-list).
fn reflect<K>(api: Api<K>, wake: Vec<Arc<Notify>>) -> (Store<K>, impl Future<Output = ()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let kind = K::kind(&()).to_string();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    let drive = stream.for_each(move |event| {
        if let Err(e) = &event {
            tracing::warn!(kind = %kind, error = %e, "watch failed; retrying");
        }
        wake.iter().for_each(|n| n.notify_one());
        std::future::ready(())
    });
    (store, drive)
}
