//! The `nodeless` command: parses flags, builds the parts, and runs them.

mod bill;
mod components;
mod engine_opts;
mod runtime_cli;
mod up;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "nodeless",
    version,
    about = "A serverless Kubernetes: the Kubernetes API with no nodes to manage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run nodeless on this machine: the API server on an embedded store, the scheduler,
    /// and a host agent running Pods as instances of this machine.
    Up(up::UpArgs),
    /// Run only the API server.
    Apiserver(up::ApiArgs),
    /// Run only the nodeless scheduler against a cluster's API.
    Scheduler(SchedulerCmd),
    /// Run only the workload controllers (several copies elect a leader through a Lease).
    Controllers(components::KubeconfigArgs),
    /// Run only a host agent: this machine joins the instance pool of a cluster.
    Agent(AgentCmd),
    /// Print what instances cost: per pod, workload or namespace, as a table, JSON or CSV.
    Bill(bill::BillArgs),
    /// Operate this host's instance engine: images, instances, logs, exec.
    Runtime(runtime_cli::RuntimeArgs),
    /// The per-instance supervisor the engine starts (internal).
    #[command(hide = true)]
    Shim { config: std::ffi::OsString },
}

#[derive(clap::Args)]
struct SchedulerCmd {
    #[command(flatten)]
    kube: components::KubeconfigArgs,
    #[command(flatten)]
    scheduler: components::SchedulerArgs,
}

#[derive(clap::Args)]
struct AgentCmd {
    #[command(flatten)]
    kube: components::KubeconfigArgs,
    /// Engine state directory (images, instances, logs).
    #[arg(long, default_value = "/var/lib/nodeless/engine")]
    root: std::path::PathBuf,
    #[command(flatten)]
    agent: components::AgentArgs,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NODELESS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Command::Shim { config } = cli.command {
        // Synchronous and without the async runtime: it must stay small and outlive us.
        return std::process::ExitCode::from(
            nodeless_engine::shim_main(vec![config]).clamp(0, 255) as u8,
        );
    }
    raise_open_files_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Apiserver(args) => up::run_apiserver(args).await,
            Command::Scheduler(cmd) => {
                let config = cmd.scheduler.config()?;
                run_until_signal(|shutdown| async move {
                    let client = components::client(cmd.kube.kubeconfig.as_deref()).await?;
                    components::run_scheduler(client, config, shutdown).await
                })
                .await
            }
            Command::Bill(args) => bill::run(args).await,
            Command::Controllers(args) => {
                run_until_signal(|shutdown| async move {
                    let client = components::client(args.kubeconfig.as_deref()).await?;
                    components::run_controllers(client, shutdown).await
                })
                .await
            }
            Command::Agent(cmd) => {
                run_until_signal(|shutdown| async move {
                    let client = components::client(cmd.kube.kubeconfig.as_deref()).await?;
                    components::run_agent(client, &cmd.agent, &cmd.root, shutdown).await
                })
                .await
            }
            Command::Runtime(args) => runtime_cli::run(args)
                .await
                .map(|code| code.clamp(0, 255) as u8),
            Command::Shim { .. } => Ok(2),
        }
    });
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open files to the hard one, as Go programs do at start: every
/// watch connection and every instance's shim (held by pidfd) takes a descriptor, and the
/// usual soft limit of 1024 is below what a host of many instances needs.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "cannot raise the open files limit");
        }
    }
}

/// Runs a component until SIGINT/SIGTERM, then lets it stop cleanly.
async fn run_until_signal<F, Fut>(component: F) -> anyhow::Result<u8>
where
    F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(component(shutdown.clone()));
    let signal = shutdown.clone();
    tokio::spawn(async move {
        up::wait_for_signal().await;
        signal.cancel();
    });
    task.await??;
    Ok(0)
}
