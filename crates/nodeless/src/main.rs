//! The `nodeless` command: parses flags, builds the parts, and runs them.

mod up;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "nodeless", version, about = "A serverless Kubernetes: the Kubernetes API with no nodes to manage")]
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
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NODELESS_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) | Command::Apiserver(args) => up::run(args).await,
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
