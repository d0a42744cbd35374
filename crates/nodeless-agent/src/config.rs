//! How an agent is set up: which host it is, where its node endpoint listens, and what it
//! offers the scheduler. Built by the `nodeless` binary from flags.

use std::net::{IpAddr, SocketAddr};

/// Default overcommit: a Pod's instance spec is what it may use, not what it uses, and most
/// Pods on a laptop idle; eight instance vCPUs per core and four times the RAM let a small
/// machine run hundreds of small Pods (the ECI minimum is 0.25 vCPU / 0.5 GiB).
pub const CPU_OVERCOMMIT: u64 = 8;
pub const MEMORY_OVERCOMMIT: u64 = 4;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The Host object's name; Pods annotated `nodeless.dev/host` with it are this agent's.
    pub host_name: String,
    /// The host's address as Pods see it (`status.hostIP`).
    pub address: IpAddr,
    /// The node endpoint's URL as the API server reaches it, e.g. `https://127.0.0.1:10250`.
    pub node_endpoint: String,
    /// Where the node endpoint listens.
    pub node_listen: SocketAddr,
    pub capacity_cpu_millis: u64,
    pub capacity_memory_bytes: u64,
    /// OCI runtimes available here (`runc`, `runsc`).
    pub runtimes: Vec<String>,
    /// Cluster DNS servers for `dnsPolicy: ClusterFirst`; empty until cluster DNS exists, in
    /// which case Pods use the host's resolvers.
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
}

impl AgentConfig {
    /// This machine with the default capacity, the runtimes found on `PATH`, the node
    /// endpoint at `node_listen` (reached at `address` when listening on all addresses),
    /// and no cluster DNS yet.
    pub fn for_this_host(host_name: &str, address: IpAddr, node_listen: SocketAddr) -> Self {
        let (cpu, memory) = default_capacity();
        let reach = if node_listen.ip().is_unspecified() {
            SocketAddr::new(address, node_listen.port())
        } else {
            node_listen
        };
        let runtimes = ["runc", "runsc"]
            .into_iter()
            .filter(|r| on_path(r))
            .map(str::to_string)
            .collect();
        AgentConfig {
            host_name: host_name.to_string(),
            address,
            node_endpoint: format!("https://{reach}"),
            node_listen,
            capacity_cpu_millis: cpu,
            capacity_memory_bytes: memory,
            runtimes,
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// What the pool offers by default: host cores × [`CPU_OVERCOMMIT`] and host RAM ×
/// [`MEMORY_OVERCOMMIT`]. `--pool-capacity cpu=N,memory=SIZE` overrides it.
pub fn default_capacity() -> (u64, u64) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total_bytes(&text))
        .unwrap_or(4 << 30);
    overcommitted(cores, memory)
}

/// `(cpu millis, memory bytes)` offered for a host with `cores` and `memory` bytes.
pub fn overcommitted(cores: u64, memory: u64) -> (u64, u64) {
    (
        cores.saturating_mul(1000 * CPU_OVERCOMMIT),
        memory.saturating_mul(MEMORY_OVERCOMMIT),
    )
}

fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_overcommits_cpu_eightfold_and_memory_fourfold() {
        assert_eq!(overcommitted(2, 8 << 30), (16_000, 32 << 30));
    }

    #[test]
    fn an_endpoint_listening_everywhere_is_reached_at_the_host_address() {
        let c = AgentConfig::for_this_host(
            "h1",
            "10.0.0.5".parse().expect("ip"),
            "0.0.0.0:10250".parse().expect("addr"),
        );
        assert_eq!(c.node_endpoint, "https://10.0.0.5:10250");
        let c = AgentConfig::for_this_host(
            "h1",
            "10.0.0.5".parse().expect("ip"),
            "127.0.0.1:10250".parse().expect("addr"),
        );
        assert_eq!(c.node_endpoint, "https://127.0.0.1:10250");
    }

    #[test]
    fn mem_total_is_read_in_kib() {
        let text = "MemTotal:        8048288 kB\nMemFree:  1 kB\n";
        assert_eq!(mem_total_bytes(text), Some(8048288 * 1024));
    }
}
