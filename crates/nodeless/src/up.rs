//! `nodeless up`: everything on one machine, on the embedded store.

use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Where the store, certificates and kubeconfig live [default: ~/.nodeless]
    #[arg(long, env = "NODELESS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address the API server listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Requests served at once before clients get 429 (read-only; mutating gets half).
    #[arg(long, default_value_t = 400)]
    max_requests_inflight: usize,
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".nodeless"))
}

pub async fn run(args: UpArgs) -> anyhow::Result<u8> {
    let data_dir = match args.data_dir {
        Some(d) => d,
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
    eprintln!(
        "nodeless is up: the API server listens on https://{}",
        running.addr
    );
    eprintln!(
        "point kubectl at it with:\n\n    export KUBECONFIG={}\n    kubectl get namespaces\n",
        running.kubeconfig.display()
    );
    wait_for_signal().await;
    eprintln!("nodeless is stopping");
    running.shutdown().await;
    Ok(0)
}

async fn wait_for_signal() {
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
