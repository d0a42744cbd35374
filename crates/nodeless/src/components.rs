//! The scheduler and host agent as `nodeless up` and their own subcommands run them: flags,
//! a Kubernetes client, and the pool capacity.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::engine_opts::RegistryArgs;

#[derive(Args, Debug, Clone)]
pub struct KubeconfigArgs {
    /// The cluster to talk to [default: $KUBECONFIG, then ~/.kube/config, then in-cluster].
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

/// A client for the cluster in `path`, or found as kubectl finds it.
pub async fn client(path: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match path {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p)
                .with_context(|| format!("reading kubeconfig {}", p.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("kubeconfig {}", p.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no cluster found: pass --kubeconfig or set KUBECONFIG")?,
    };
    kube::Client::try_from(config).context("cannot build a Kubernetes client")
}

#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// This host's name in the instance pool [default: the machine's hostname].
    #[arg(long)]
    pub host_name: Option<String>,
    /// The host's IP as Pods see it (status.hostIP) [default: the IP of the default route].
    #[arg(long)]
    pub host_address: Option<IpAddr>,
    /// Where the node-side endpoints (logs, exec, port-forward) listen.
    #[arg(long, default_value = "127.0.0.1:10250")]
    pub node_listen: SocketAddr,
    /// What the scheduler may place on this host: `cpu=N,memory=SIZE`
    /// [default: 8 vCPU per core and 4× the RAM — overcommit, so a laptop runs many small Pods].
    #[arg(long, value_name = "cpu=N,memory=SIZE")]
    pub pool_capacity: Option<String>,
    /// Do not run the cluster DNS server on this host (Pods then use the host's resolvers).
    #[arg(long)]
    pub no_cluster_dns: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `--pool-capacity cpu=N,memory=SIZE` as (millicpu, bytes); either part may be left out.
pub fn parse_capacity(s: &str) -> anyhow::Result<(Option<u64>, Option<u64>)> {
    let (mut cpu, mut mem) = (None, None);
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            bail!("--pool-capacity {s}: expected cpu=N,memory=SIZE, got {part:?}");
        };
        let q = nodeless_core::validation::quantity::parse_quantity(v.trim())
            .map_err(|e| anyhow::anyhow!("--pool-capacity {k}={v}: {e}"))?;
        if q.is_negative() || q.is_zero() {
            bail!("--pool-capacity {k}={v}: must be positive");
        }
        match k.trim() {
            "cpu" => cpu = Some(u64::try_from(q.milli_value()).context("cpu is too large")?),
            "memory" => mem = Some(u64::try_from(q.value()).context("memory is too large")?),
            other => bail!("--pool-capacity: unknown resource {other:?} (cpu, memory)"),
        }
    }
    Ok((cpu, mem))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The source address of the default route: what other machines reach this host at.
fn default_address() -> IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr());
    match probe {
        Ok(a) if !a.ip().is_unspecified() => a.ip(),
        _ => IpAddr::from([127, 0, 0, 1]),
    }
}

/// Runs the host agent with an engine rooted at `engine_root` until `shutdown`.
pub async fn run_agent(
    client: kube::Client,
    args: &AgentArgs,
    engine_root: &Path,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!("the host agent needs root (runc, network namespaces, cgroups); run as root, or run only `nodeless apiserver`");
    }
    let host = crate::engine_opts::open_engine(engine_root, &args.registry, true)?;
    let host_name = args.host_name.clone().unwrap_or_else(hostname);
    let address = args.host_address.unwrap_or_else(default_address);
    let mut config =
        nodeless_agent::AgentConfig::for_this_host(&host_name, address, args.node_listen);
    if let Some(spec) = &args.pool_capacity {
        let (cpu, mem) = parse_capacity(spec)?;
        if let Some(cpu) = cpu {
            config.capacity_cpu_millis = cpu;
        }
        if let Some(mem) = mem {
            config.capacity_memory_bytes = mem;
        }
    }
    // This host's share of the cluster's networking, beside the agent as kube-proxy and a
    // node-local DNS are beside a kubelet. Their failures are logged, not fatal: running
    // instances keep running and the agent keeps reporting them.
    let mut side = tokio::task::JoinSet::new();
    let proxy = nodeless_proxy::ProxyConfig {
        pod_cidr: Some(host.network.subnet()),
        ..Default::default()
    };
    side.spawn(log_failure(
        "service data path",
        nodeless_proxy::run(client.clone(), proxy, shutdown.clone()),
    ));
    if !args.no_cluster_dns {
        let gateway = host.network.gateway();
        let dns = nodeless_dns::DnsConfig {
            listen: std::net::SocketAddr::new(gateway, 53),
            advertise: gateway,
            ..Default::default()
        };
        config.cluster_dns = vec![dns.service_ip.to_string()];
        side.spawn(log_failure(
            "cluster DNS",
            nodeless_dns::run(client.clone(), dns, shutdown.clone()),
        ));
    }
    let result = nodeless_agent::run(client, Arc::new(host.engine), config, shutdown.clone())
        .await
        .context("host agent");
    shutdown.cancel();
    while side.join_next().await.is_some() {}
    result
}

async fn log_failure<E: std::fmt::Display>(
    what: &'static str,
    part: impl std::future::Future<Output = Result<(), E>>,
) {
    if let Err(e) = part.await {
        tracing::error!(error = %e, "the {what} stopped");
    }
}

pub async fn run_controllers(
    client: kube::Client,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    nodeless_controllers::run_all(
        client,
        nodeless_controllers::ControllersConfig::default(),
        shutdown,
    )
    .await
    .context("controllers")
}

#[derive(Args, Debug, Clone)]
pub struct SchedulerArgs {
    /// Prices of on-demand capacity and the spot market's floor, a YAML file
    /// (see docs/billing.md) [default: the built-in catalogue, Fargate-like USD list prices].
    #[arg(long, value_name = "FILE")]
    pub price_catalog: Option<PathBuf>,
    /// How long before its release a spot instance gets the SpotToBeReleased notice
    /// (`3m`, `90s`).
    #[arg(long, value_name = "DURATION", default_value = "3m")]
    pub spot_notice: String,
    /// How often each running Pod's `nodeless.dev/cost` annotation (cost so far, shown by
    /// `kubectl describe`) is brought up to date.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub cost_interval: String,
}

impl SchedulerArgs {
    pub fn config(&self) -> anyhow::Result<nodeless_scheduler::SchedulerConfig> {
        let catalog = match &self.price_catalog {
            None => nodeless_core::billing::PriceCatalog::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading the price catalogue {}", path.display()))?;
                nodeless_core::billing::PriceCatalog::from_yaml(&text)
                    .with_context(|| format!("price catalogue {}", path.display()))?
            }
        };
        Ok(nodeless_scheduler::SchedulerConfig {
            catalog,
            spot_notice: duration("--spot-notice", &self.spot_notice)?,
            cost_interval: duration("--cost-interval", &self.cost_interval)?
                .max(std::time::Duration::from_secs(1)),
            ..Default::default()
        })
    }
}

/// A flag's duration with a unit (`3m`, `90s`, `1m30s`).
fn duration(flag: &str, value: &str) -> anyhow::Result<std::time::Duration> {
    Some(value)
        .filter(|v| v.chars().any(|c| c.is_ascii_alphabetic()))
        .and_then(nodeless_core::billing::parse_duration)
        .with_context(|| format!("{flag} {value:?}: give a duration such as 3m, 90s or 1m30s"))
}

pub async fn run_scheduler(
    client: kube::Client,
    config: nodeless_scheduler::SchedulerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    nodeless_scheduler::run(client, config, shutdown)
        .await
        .context("scheduler")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_capacity_takes_cpu_and_memory_quantities() {
        let (cpu, mem) = parse_capacity("cpu=16,memory=32Gi").expect("valid");
        assert_eq!(cpu, Some(16_000));
        assert_eq!(mem, Some(32 << 30));
        let (cpu, mem) = parse_capacity("cpu=500m").expect("valid");
        assert_eq!((cpu, mem), (Some(500), None));
    }

    #[test]
    fn pool_capacity_refuses_unknown_resources_and_bad_sizes() {
        assert!(parse_capacity("gpu=1").is_err());
        assert!(parse_capacity("cpu=lots").is_err());
        assert!(parse_capacity("cpu=0").is_err());
        assert!(parse_capacity("memory").is_err());
    }
}
