//! What the ReplicaSet and Deployment integration tests share: an API server on 127.0.0.1:0
//! over a temporary directory, a client for it, the ReplicaSet and Deployment controllers
//! (stoppable and restartable, as a controller-manager restart), and a stand-in for the
//! kubelet: no host agent runs here, so the tests mark Pods Running and Ready by hand.

// Every test binary compiles this module and each uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, Config};
use nodeless_apiserver::server::Limits;
use nodeless_apiserver::Running;
use nodeless_controllers::{deployment, replicaset, Context};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Cluster {
    pub client: Client,
    running: Option<Running>,
    controllers: Option<(CancellationToken, Vec<JoinHandle<()>>)>,
    _dir: tempfile::TempDir,
}

/// A server with both controllers running against it; dropping it stops everything.
pub async fn cluster() -> anyhow::Result<Cluster> {
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
    let mut cluster = Cluster {
        client,
        running: Some(running),
        controllers: None,
        _dir: dir,
    };
    cluster.start_controllers();
    Ok(cluster)
}

impl Cluster {
    pub fn start_controllers(&mut self) {
        let shutdown = CancellationToken::new();
        let ctx = Context {
            client: self.client.clone(),
            events: nodeless_kube::EventRecorder::new(
                self.client.clone(),
                "nodeless-controllers",
                None,
            ),
            shutdown: shutdown.clone(),
        };
        let rs = tokio::spawn({
            let ctx = ctx.clone();
            async move {
                if let Err(e) = replicaset::run(ctx).await {
                    eprintln!("replicaset controller failed: {e}");
                }
            }
        });
        let deploy = tokio::spawn(async move {
            if let Err(e) = deployment::run(ctx).await {
                eprintln!("deployment controller failed: {e}");
            }
        });
        self.controllers = Some((shutdown, vec![rs, deploy]));
    }

    /// Stops both controllers and waits until they have returned.
    pub async fn stop_controllers(&mut self) -> anyhow::Result<()> {
        if let Some((shutdown, handles)) = self.controllers.take() {
            shutdown.cancel();
            for h in handles {
                tokio::time::timeout(Duration::from_secs(10), h).await??;
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((shutdown, _)) = self.controllers.take() {
            shutdown.cancel();
        }
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

/// The live (not terminating) Pods in `ns` matching `selector`.
pub async fn live_pods(client: &Client, ns: &str, selector: &str) -> anyhow::Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default().labels(selector)).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

/// Does what a kubelet would: the Pod runs and is Ready.
pub async fn make_ready(client: &Client, pod: &Pod) -> anyhow::Result<()> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let now = Time(Utc::now());
    let status = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}
    ]}});
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
    {
        Ok(_) => Ok(()),
        // Deleted meanwhile by the controller under test.
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Marks every live, not yet ready Pod matching `selector` ready; returns how many it marked.
pub async fn make_all_ready(client: &Client, ns: &str, selector: &str) -> anyhow::Result<usize> {
    let mut marked = 0;
    for pod in live_pods(client, ns, selector).await? {
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if !ready {
            make_ready(client, &pod).await?;
            marked += 1;
        }
    }
    Ok(marked)
}

/// Messages of the Events about `name` with `reason` in `ns`.
pub async fn event_messages(
    client: &Client,
    ns: &str,
    name: &str,
    reason: &str,
) -> anyhow::Result<Vec<String>> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default()).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.message)
        .collect())
}

pub async fn create_namespace(client: &Client, ns: &str) -> anyhow::Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let obj = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
    match api.create(&Default::default(), &obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
