//! The `nodeless` command: parses flags, builds the parts, and runs them.

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
    /// Run nodeless on this machine: the API server (and, as they land, the scheduler,
    /// the instance engine and the controllers) on an embedded store.
    Up(up::UpArgs),
    /// Run only the API server.
    Apiserver(up::UpArgs),
    /// Operate this host's instance engine: images, instances, logs, exec.
    Runtime(runtime_cli::RuntimeArgs),
    /// The per-instance supervisor the engine starts (internal).
    #[command(hide = true)]
    Shim { config: std::ffi::OsString },
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
            Command::Up(args) | Command::Apiserver(args) => up::run(args).await,
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
