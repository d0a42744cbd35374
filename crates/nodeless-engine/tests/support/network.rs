//! A private instance network per test, cleaned up on drop (namespaces, bridge, nat rules),
//! and small probes of it.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nodeless_engine::network::{forward, masquerade, Network, NetworkConfig};

pub struct TestNetwork {
    pub net: Network,
    pub bridge: String,
    _dir: tempfile::TempDir,
}

impl TestNetwork {
    /// A network of its own: bridge `nlt<tag>`, subnet 10.231.<tag>.0/24, namespaces
    /// `/run/netns/nlt<tag>-<id>`, leases in a temporary directory. Every test that attaches
    /// real networks needs a distinct tag (tests/network.rs uses 1-19; take 20 and up).
    /// No warm pool, so tests see exactly their own instances.
    pub fn new(n: u8, masquerade: bool) -> TestNetwork {
        Self::with_config(n, |cfg| cfg.masquerade = masquerade)
    }

    /// With changes to the config; a test with a warm pool calls `net.drain_warm_pool()` at
    /// its end, as drop cannot wait for the pool's filler.
    pub fn with_config(n: u8, change: impl FnOnce(&mut NetworkConfig)) -> TestNetwork {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = NetworkConfig::new(dir.path().join("state"));
        cfg.name = format!("nlt-net{n}");
        cfg.bridge = format!("nlt{n}");
        cfg.subnet = Some(format!("10.231.{n}.0/24").parse().expect("subnet"));
        cfg.netns_prefix = format!("nlt{n}-");
        cfg.ipam_data_dir = dir.path().join("ipam");
        cfg.warm_pool = 0;
        change(&mut cfg);
        let net = Network::new(cfg).expect("network");
        TestNetwork {
            net,
            bridge: format!("nlt{n}"),
            _dir: dir,
        }
    }

    /// The same network as a restarted engine sees it.
    pub fn reopen(&self) -> Network {
        Network::new(self.net.config().clone()).expect("reopen network")
    }

    /// Host-side veths on the bridge.
    pub fn veths(&self) -> usize {
        std::fs::read_dir(format!("/sys/class/net/{}/brif", self.bridge))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The kernel destroys a detached namespace and its veth pair in the background.
    pub async fn wait_veths(&self, want: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.veths() != want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.veths()
    }

    pub fn leases(&self) -> Vec<String> {
        let dir = self.net.config().lease_dir();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut ips: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.parse::<IpAddr>().is_ok())
            .collect();
        ips.sort();
        ips
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        let cfg = self.net.config();
        if let Ok(entries) = std::fs::read_dir(&cfg.netns_dir) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(&cfg.netns_prefix)
                {
                    let _ = Command::new("ip")
                        .args(["netns", "del"])
                        .arg(e.file_name())
                        .status();
                }
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
        let subnet = self.net.subnet();
        let _ = masquerade::apply(&masquerade::HostIptables, &cfg.name, subnet, false);
        let _ = forward::apply(&masquerade::HostIptables, &cfg.name, &self.bridge, false);
    }
}

pub fn netns_name(path: &Path) -> String {
    path.file_name()
        .expect("netns file name")
        .to_string_lossy()
        .into_owned()
}

/// `ping -c 1` from inside the namespace with the host's static busybox.
pub fn ping_from(netns: &Path, target: IpAddr) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &netns_name(netns),
            "/bin/busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
        ])
        .arg(target.to_string())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
