//! What the Job, StatefulSet and CronJob integration tests share: an API server on
//! 127.0.0.1:0 over a temporary directory, a client for it, the controller under test running
//! against it, and a stand-in for the kubelet that sets Pod status by hand (no host agent runs
//! here, so Pods never run by themselves).

// Every test binary compiles this module and each uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, Config};
use nodeless_apiserver::server::Limits;
use nodeless_apiserver::Running;
use nodeless_controllers::{Context, ControllerError};
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub struct Cluster {
    pub client: Client,
    running: Option<Running>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

/// A server with `controller` running against it; dropping it stops both.
pub async fn cluster<F, Fut>(controller: F) -> anyhow::Result<Cluster>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = Result<(), ControllerError>> + Send + 'static,
{
    let dir = tempfile::tempdir()?;
    let config = nodeless_apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        limits: Limits::default(),
    };
    let running = nodeless_apiserver::start(config).await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&running.kubeconfig)?;
    let cfg = Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = Client::try_from(cfg)?;
    let shutdown = CancellationToken::new();
    let ctx = Context {
        client: client.clone(),
        events: nodeless_kube::EventRecorder::new(client.clone(), "nodeless-controllers", None),
        shutdown: shutdown.clone(),
    };
    let run = controller(ctx);
    tokio::spawn(async move {
        if let Err(e) = run.await {
            eprintln!("controller failed: {e}");
        }
    });
    Ok(Cluster {
        client,
        running: Some(running),
        shutdown,
        _dir: dir,
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(r) = self.running.take() {
            drop(tokio::spawn(r.shutdown()));
        }
    }
}

/// Polls `check` every 50 ms until it yields a value, for at most `secs` seconds.
pub async fn eventually_within<T, F, Fut>(secs: u64, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn eventually<T, F, Fut>(what: &str, check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    eventually_within(20, what, check).await
}

/// The Pods in `ns` matching `labels`, sorted by name, without those being deleted.
pub async fn live_pods(client: &Client, ns: &str, labels: &str) -> anyhow::Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut pods: Vec<Pod> = api
        .list(&ListParams::default().labels(labels))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(pods)
}

pub fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

/// Plays the kubelet: a Running Pod, Ready or not.
pub async fn set_running(client: &Client, ns: &str, name: &str, ready: bool) -> anyhow::Result<()> {
    let now = Time(Utc::now());
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": status, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": status, "lastTransitionTime": now}
    ]}});
    patch_status(client, ns, name, patch).await
}

/// Plays the kubelet: a Pod that ended with `phase` (Succeeded or Failed).
pub async fn set_finished(
    client: &Client,
    ns: &str,
    name: &str,
    phase: &str,
) -> anyhow::Result<()> {
    let now = Time(Utc::now());
    let patch = json!({"status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now}
    ]}});
    patch_status(client, ns, name, patch).await
}

async fn patch_status(
    client: &Client,
    ns: &str,
    name: &str,
    patch: serde_json::Value,
) -> anyhow::Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The reasons of the Events about the object named `name` in `ns`.
pub async fn event_reasons(client: &Client, ns: &str, name: &str) -> anyhow::Result<Vec<String>> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    let events = api.list(&ListParams::default()).await?;
    Ok(events
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter_map(|e| e.reason)
        .collect())
}
