//! What the integration tests share: an API server on 127.0.0.1:0 over a temporary data
//! directory with a kube-rs client for it (as the API server's own tests do), the scheduler
//! running against it, and helpers to offer hosts and wait for state.

// Every test binary compiles this module and each uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use nodeless_apiserver::server::Limits;
use nodeless_apiserver::Running;
use nodeless_kube::{Host, HostSpec};
use nodeless_scheduler::SchedulerConfig;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// A server with default limits, a client for it, and the scheduler running; dropping it
/// stops the scheduler and shuts the server down.
pub struct Cluster {
    pub client: Client,
    running: Option<Running>,
    shutdown: CancellationToken,
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
    let shutdown = CancellationToken::new();
    let config = SchedulerConfig {
        resync_interval: Duration::from_secs(1),
        node_heartbeat_interval: Duration::from_millis(500),
        ..Default::default()
    };
    let sched = nodeless_scheduler::run(client.clone(), config, shutdown.clone());
    tokio::spawn(async move {
        if let Err(e) = sched.await {
            eprintln!("scheduler failed: {e}");
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

/// Offers a host with `cpu` and `memory` and a heartbeat `beat_age` old.
pub async fn add_host(
    client: &Client,
    name: &str,
    cpu: &str,
    memory: &str,
    beat_age: Duration,
) -> anyhow::Result<()> {
    let hosts: Api<Host> = Api::all(client.clone());
    // The CRD is installed by the scheduler at start; wait for it to be served.
    let spec = HostSpec {
        address: format!("192.0.2.{}", name.len()),
        endpoint: "http://127.0.0.1:10250".into(),
        token_secret: format!("nodeless-host-{name}"),
        capacity: [
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(memory.into())),
        ]
        .into(),
        runtimes: vec!["runc".into(), "runsc".into()],
    };
    let host = Host::new(name, spec);
    eventually("the Host resource is served", || async {
        match hosts.create(&PostParams::default(), &host).await {
            Ok(_) => Ok(Some(())),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let beat = Utc::now() - chrono::Duration::from_std(beat_age)?;
    let status = json!({"status": {"heartbeatTime": Time(beat)}});
    hosts
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
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
