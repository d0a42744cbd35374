//! `nodeless up`: everything on one machine, on the embedded store — the API server, the
//! nodeless scheduler, the workload controllers, and a host agent with this machine's
//! instance engine, service data path and cluster DNS. All but the API server reach it
//! through the Kubernetes API, as they do when they run apart (`nodeless scheduler`,
//! `nodeless controllers`, `nodeless agent`).

use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

use crate::components::{self, AgentArgs};

#[derive(Args, Debug)]
pub struct ApiArgs {
    /// Where the store, certificates, kubeconfig and instances live [default: ~/.nodeless]
    #[arg(long, env = "NODELESS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address the API server listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Requests served at once before clients get 429 (read-only; mutating gets half).
    #[arg(long, default_value_t = 400)]
    max_requests_inflight: usize,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    agent: AgentArgs,
    #[command(flatten)]
    scheduler: components::SchedulerArgs,
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".nodeless"))
}

async fn start_api(args: &ApiArgs) -> anyhow::Result<(PathBuf, nodeless_apiserver::Running)> {
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => default_data_dir()?,
    };
    let limits = nodeless_apiserver::server::Limits {
        max_inflight: args.max_requests_inflight,
        max_mutating: (args.max_requests_inflight / 2).max(1),
        ..Default::default()
    };
    let config = nodeless_apiserver::Config {
        data_dir: data_dir.clone(),
        listen: args.listen,
        limits,
    };
    let running = nodeless_apiserver::start(config)
        .await
        .with_context(|| format!("starting nodeless in {}", data_dir.display()))?;
    Ok((data_dir, running))
}

fn print_welcome(running: &nodeless_apiserver::Running) {
    eprintln!(
        "nodeless is up: the API server listens on https://{}",
        running.addr
    );
    eprintln!(
        "point kubectl at it with:\n\n    export KUBECONFIG={}\n    kubectl get nodes\n",
        running.kubeconfig.display()
    );
}

/// `nodeless apiserver`: only the API server.
pub async fn run_apiserver(args: ApiArgs) -> anyhow::Result<u8> {
    let (_, running) = start_api(&args).await?;
    print_welcome(&running);
    wait_for_signal().await;
    eprintln!("nodeless is stopping");
    running.shutdown().await;
    Ok(0)
}

pub async fn run(args: UpArgs) -> anyhow::Result<u8> {
    let scheduler_config = args.scheduler.config()?;
    let (data_dir, running) = start_api(&args.api).await?;
    let client = components::client(Some(&running.kubeconfig)).await?;
    let shutdown = CancellationToken::new();
    let mut parts = tokio::task::JoinSet::new();
    {
        let (client, shutdown) = (client.clone(), shutdown.clone());
        parts.spawn(async move {
            (
                "scheduler",
                components::run_scheduler(client, scheduler_config, shutdown).await,
            )
        });
    }
    {
        let (client, shutdown) = (client.clone(), shutdown.clone());
        parts.spawn(async move {
            (
                "controllers",
                components::run_controllers(client, shutdown).await,
            )
        });
    }
    {
        let (agent, shutdown) = (args.agent.clone(), shutdown.clone());
        let engine_root = data_dir.join("engine");
        parts.spawn(async move {
            let r = components::run_agent(client, &agent, &engine_root, shutdown).await;
            ("host agent", r)
        });
    }
    print_welcome(&running);
    let mut code = 0;
    tokio::select! {
        _ = wait_for_signal() => {}
        Some(done) = parts.join_next() => {
            code = report(done);
        }
    }
    eprintln!("nodeless is stopping (running instances keep running)");
    shutdown.cancel();
    while let Some(done) = parts.join_next().await {
        code = code.max(report(done));
    }
    running.shutdown().await;
    Ok(code)
}

/// Prints how a component ended; 1 when it failed.
fn report(done: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>) -> u8 {
    match done {
        Ok((_, Ok(()))) => 0,
        Ok((name, Err(e))) => {
            eprintln!("error: the {name} stopped: {e:#}");
            1
        }
        Err(e) => {
            eprintln!("error: a component panicked: {e}");
            1
        }
    }
}

pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
