//! The cluster view: reflectors over Services, EndpointSlices and Pods, and a task that
//! rebuilds [`Records`] whenever one of them changes.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::records::{Objects, Records, RecordsError};
use crate::DnsConfig;

/// The least time between two builds. A build reads every Service, EndpointSlice and Pod,
/// so rebuilding on each event costs O(objects) per event: in a burst of 500 Pods (thousands
/// of Pod events) the rebuilds ran back to back on a core. Now a change shows in answers
/// within this interval plus one build.
const MIN_REBUILD_INTERVAL: Duration = Duration::from_millis(100);

/// Owns the watch tasks; dropping it stops them.
pub(crate) struct View {
    records: watch::Receiver<Option<Arc<Records>>>,
    _tasks: JoinSet<()>,
}

impl View {
    /// Starts watching. The records stay `None` until every watch has listed once.
    pub(crate) fn start(
        client: Client,
        config: &DnsConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, RecordsError> {
        let domain = config.cluster_domain.clone();
        let dns_ip = IpAddr::V4(config.service_ip);
        // Fail on a bad domain now, not in the background.
        Records::empty(&domain, dns_ip, 0)?;
        let changed = Arc::new(Notify::new());
        let mut tasks = JoinSet::new();
        let services = reflect::<Service>(&client, &changed, &shutdown, &mut tasks);
        let slices = reflect::<EndpointSlice>(&client, &changed, &shutdown, &mut tasks);
        let pods = reflect::<Pod>(&client, &changed, &shutdown, &mut tasks);
        let (tx, rx) = watch::channel(None);
        tasks.spawn(async move {
            let ready = async {
                let _ = services.wait_until_ready().await;
                let _ = slices.wait_until_ready().await;
                let _ = pods.wait_until_ready().await;
            };
            tokio::select! {
                () = ready => {}
                () = shutdown.cancelled() => return,
            }
            loop {
                let built_at = tokio::time::Instant::now();
                let (s, e, p) = (services.state(), slices.state(), pods.state());
                let objects = Objects {
                    services: &s,
                    slices: &e,
                    pods: &p,
                };
                match Records::build(&domain, dns_ip, serial(), objects) {
                    Ok(records) => {
                        tx.send_replace(Some(Arc::new(records)));
                    }
                    Err(error) => tracing::error!(%error, "cannot build the dns records"),
                }
                tokio::select! {
                    () = changed.notified() => {}
                    () = shutdown.cancelled() => return,
                }
                // Changes that land meanwhile are taken by the next build too.
                tokio::select! {
                    () = tokio::time::sleep_until(built_at + MIN_REBUILD_INTERVAL) => {}
                    () = shutdown.cancelled() => return,
                }
            }
        });
        Ok(Self {
            records: rx,
            _tasks: tasks,
        })
    }

    pub(crate) fn records(&self) -> watch::Receiver<Option<Arc<Records>>> {
        self.records.clone()
    }
}

/// A reflector over every `K` in the cluster whose changes wake `changed`.
fn reflect<K>(
    client: &Client,
    changed: &Arc<Notify>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync,
    K: 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let (reader, writer) = reflector::store();
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    let changed = changed.clone();
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            let event = tokio::select! {
                event = stream.next() => event,
                () = shutdown.cancelled() => return,
            };
            match event {
                Some(Ok(_)) => changed.notify_one(),
                Some(Err(error)) => {
                    let kind = K::kind(&());
                    tracing::warn!(%error, %kind, "dns watch failed; retrying");
                }
                None => return,
            }
        }
    });
    reader
}

/// The SOA serial: the build time in seconds, so it grows with every change.
fn serial() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    u32::try_from(secs % (1 << 32)).unwrap_or(0)
}
