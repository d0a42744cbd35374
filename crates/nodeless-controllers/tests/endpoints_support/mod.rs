//! What the endpoints, pdb and leader integration tests share: a real nodeless API server on
//! 127.0.0.1:0 over a temporary data directory, a kube-rs client for it, controllers run
//! against it, and Pods whose status the test sets itself (there is no host agent).

// Every test binary compiles this module and each uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use nodeless_apiserver::server::Limits;
use nodeless_apiserver::Running;
use nodeless_controllers::{Context, ControllerError};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// A server and a client for it; dropping it stops what it runs and the server.
pub struct Cluster {
    pub client: Client,
    pub shutdown: CancellationToken,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

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
    Ok(Cluster {
        client,
        shutdown: CancellationToken::new(),
        running: Some(running),
        _dir: dir,
    })
}

impl Cluster {
    pub fn context(&self) -> Context {
        Context {
            client: self.client.clone(),
            events: nodeless_kube::EventRecorder::new(
                self.client.clone(),
                "nodeless-controllers",
                None,
            ),
            shutdown: self.shutdown.child_token(),
        }
    }

    /// Runs one controller until the cluster is dropped.
    pub fn run<F, Fut>(&self, controller: F)
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<(), ControllerError>> + Send + 'static,
    {
        let fut = controller(self.context());
        tokio::spawn(async move {
            if let Err(e) = fut.await {
                eprintln!("controller failed: {e}");
            }
        });
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(r) = self.running.take() {
            drop(tokio::spawn(r.shutdown()));
        }
    }
}

/// Creates a Pod labelled `labels` on the virtual node, with a container port named `http`
/// at `http_port` when given.
pub async fn create_pod(
    client: &Client,
    ns: &str,
    name: &str,
    labels: Value,
    http_port: Option<i32>,
) -> anyhow::Result<Pod> {
    let ports: Vec<Value> = http_port
        .map(|p| json!({"name": "http", "containerPort": p}))
        .into_iter()
        .collect();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": "nodeless",
                 "containers": [{"name": "c", "image": "busybox", "ports": ports}]}
    }))?;
    Ok(Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await?)
}

/// Sets what a host agent would: Running, the Pod's IP and its Ready condition.
pub async fn set_pod_status(
    client: &Client,
    ns: &str,
    name: &str,
    ip: &str,
    ready: bool,
) -> anyhow::Result<()> {
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": status,
                        "lastTransitionTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}]
    }});
    Api::<Pod>::namespaced(client.clone(), ns)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Creates any namespaced object from JSON.
pub async fn create<K>(client: &Client, ns: &str, obj: Value) -> anyhow::Result<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
{
    let obj: K = serde_json::from_value(obj)?;
    Ok(Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await?)
}

/// Polls `check` every 50 ms until it yields a value, for at most 20 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
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
