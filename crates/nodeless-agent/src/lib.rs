//! The nodeless host agent: runs the instances placed on its host through the instance
//! engine and keeps their Pods' status true, like a kubelet without a Node.
//!
//! 1. [`host`]: at start, registers the host (the `Host` object, the node endpoint's token,
//!    the `gvisor` RuntimeClass) and then renews its heartbeat.
//! 2. [`pods`]: watches Pods bound to the virtual node and placed on this host, and routes
//!    Pod, instance and ConfigMap/Secret changes to one [`worker`] per Pod.
//! 3. [`ledger`]: the host's usage records (billing): each instance's start and end.
//! 4. [`translate`] turns a Pod into an engine `InstanceSpec`; [`status`] turns the
//!    engine's view back into Pod status and Events; [`deletion`] ends instances.
//! 5. [`server`]: the node-side endpoints (logs, exec, attach, port-forward).
//!
//! Stopping the agent leaves instances running; the next start adopts them.

pub mod config;
mod deletion;
pub mod host;
mod ledger;
mod pods;
mod release;
pub mod server;
pub mod status;
pub mod translate;
mod worker;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use nodeless_engine::instance::{Engine, EngineError, LocalEngine};
use nodeless_kube::names::VIRTUAL_NODE;
use tokio_util::sync::CancellationToken;

pub use config::AgentConfig;
pub use host::HostError;
pub use pods::PodsError;

/// How often the engine polls its instances' status files for changes.
const ENGINE_WATCH_PERIOD: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("recovering the engine's instances: {0}")]
    Recover(#[source] EngineError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Pods(#[from] PodsError),
    #[error(transparent)]
    Tls(#[from] server::tls::TlsError),
    #[error("listening for the node endpoint on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the agent over this host's engine until `shutdown`: adopts the instances a previous
/// run left (restarting those a host reboot killed, per restartPolicy), starts the engine's
/// status watch, then [`run_with`].
pub async fn run(
    client: kube::Client,
    engine: Arc<LocalEngine>,
    config: AgentConfig,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let report = engine.recover().await.map_err(AgentError::Recover)?;
    tracing::info!(
        adopted = report.adopted.len(),
        lost = report.lost.len(),
        removed = report.removed.len(),
        "instance engine recovered"
    );
    engine.watch(ENGINE_WATCH_PERIOD);
    let engine: Arc<dyn Engine> = engine;
    run_with(
        client,
        engine,
        config,
        report.lost.into_iter().collect(),
        shutdown,
    )
    .await
}

/// Runs the agent over any engine (the fake one in tests). `lost`: instances whose
/// supervisor died with the host, to be started again per their Pod's restartPolicy.
pub async fn run_with(
    client: kube::Client,
    engine: Arc<dyn Engine>,
    config: AgentConfig,
    lost: HashSet<String>,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    // Read before registering renews it: instances that vanished while this agent was down
    // are billed up to here and no further.
    let last_heartbeat = host::last_heartbeat(&client, &config.host_name).await;
    let cert = server::tls::self_signed(
        &config.host_name,
        &[config.address, config.node_listen.ip()],
    )?;
    let token = host::register(&client, &config, &cert.pem).await?;
    let listener = tokio::net::TcpListener::bind(config.node_listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: config.node_listen,
            source,
        })?;
    let server = tokio::spawn(server::serve(
        listener,
        Some(cert.acceptor),
        engine.clone(),
        token.into(),
        shutdown.child_token(),
    ));
    let heartbeat = tokio::spawn(host::heartbeat(
        client.clone(),
        config.host_name.clone(),
        shutdown.child_token(),
    ));
    let ctx = translate::Context {
        host_ip: config.address,
        node_name: VIRTUAL_NODE.to_string(),
        cluster_dns: config.cluster_dns.clone(),
        cluster_domain: config.cluster_domain.clone(),
        host_resolv_conf: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    };
    // Subscribe before listing, so no instance change falls in between.
    let engine_events = engine.events();
    let started = pods::start(
        client,
        engine,
        config,
        ctx,
        lost,
        last_heartbeat,
        shutdown.clone(),
    )
    .await;
    let result = match started {
        Ok(started) => {
            started.run(engine_events).await;
            Ok(())
        }
        Err(e) => {
            shutdown.cancel();
            Err(e.into())
        }
    };
    match server.await {
        Ok(Err(e)) => tracing::warn!(error = %e, "node endpoint failed"),
        Err(e) if e.is_panic() => tracing::error!("node endpoint panicked"),
        _ => {}
    }
    let _ = heartbeat.await;
    result
}
