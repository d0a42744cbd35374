//! What a host's instance network looks like: the bridge, the subnet, the plugin chain, and
//! where state lives; and the choice of a subnet that does not collide with the host's routes.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;
use serde_json::{json, Value};

use super::cni::Chain;

pub const CNI_VERSION: &str = "1.0.0";

/// The interface every instance sees its network on.
pub const INSTANCE_IFNAME: &str = "eth0";

#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    /// The CNI network name; host-local keeps leases in `<ipam_data_dir>/<name>/`.
    pub name: String,
    /// The Linux bridge the instances' veths join (at most 15 characters).
    pub bridge: String,
    /// `None`: 10.88.0.0/16, or the first of 10.89.0.0/16 … 10.254.0.0/16 that collides with
    /// no host route; a subnet chosen earlier (in `state_dir`) is kept.
    pub subnet: Option<Ipv4Net>,
    /// Masquerade instance traffic leaving the subnet (egress to the host's networks), with
    /// one iptables rule for the subnet.
    pub masquerade: bool,
    pub mtu: Option<u32>,
    /// Where the plugin binaries are looked up, in order.
    pub cni_bin_dirs: Vec<PathBuf>,
    /// Instance records and the written conflist.
    pub state_dir: PathBuf,
    /// Named network namespaces live at `<netns_dir>/<netns_prefix><instance id>`.
    pub netns_dir: PathBuf,
    pub netns_prefix: String,
    pub ipam_data_dir: PathBuf,
    /// A plugin that takes longer (an iptables lock held elsewhere, say) is killed.
    pub plugin_timeout: Duration,
    /// Namespaces kept attached ahead of demand: attach then takes one in about a millisecond
    /// instead of running the plugins (~10-30 ms). Each holds an address and a veth.
    pub warm_pool: usize,
    /// Whether this process tops the warm pool up by itself, in a background task after
    /// attaches and orphan cleanup: for a long-running process (the host agent). A short-lived
    /// one (each `nodeless runtime` command) sets false, as its exit would cut the task off
    /// mid-spare (a namespace and lease left for the next orphan cleanup), and calls
    /// [`super::Network::fill_warm_pool`] where it can wait for it. Attach takes spares
    /// either way.
    pub fill_in_background: bool,
    /// Orphan cleanup also reclaims namespaces under `netns_prefix` and leases in the lease
    /// dir that no record of this state dir accounts for (left when a state dir was lost).
    /// Only for the one engine that owns this network name, bridge and prefix on the host:
    /// engines over other state dirs sharing them (the default config, tests with temporary
    /// roots) would have their instances' networks taken away. Records alone find every
    /// orphan an engine crash or restart leaves, as they are written before anything else.
    pub reclaim_unrecorded: bool,
}

impl NetworkConfig {
    /// The defaults for a host: bridge `nodeless0`, netns in /run/netns, Debian's and the
    /// upstream plugin directories.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        NetworkConfig {
            name: "nodeless".into(),
            bridge: "nodeless0".into(),
            subnet: None,
            masquerade: true,
            mtu: None,
            cni_bin_dirs: vec!["/usr/lib/cni".into(), "/opt/cni/bin".into()],
            state_dir: state_dir.into(),
            netns_dir: "/run/netns".into(),
            netns_prefix: "nodeless-".into(),
            ipam_data_dir: "/var/lib/cni/networks".into(),
            plugin_timeout: Duration::from_secs(60),
            warm_pool: 2,
            fill_in_background: true,
            reclaim_unrecorded: false,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        let ok_name = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_alphanumeric())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !ok_name(&self.name) {
            return Err(format!(
                "network name {:?} must be [A-Za-z0-9][A-Za-z0-9._-]*",
                self.name
            ));
        }
        if !ok_name(&self.bridge) || self.bridge.len() > 15 {
            return Err(format!(
                "bridge name {:?} must be 1-15 characters of [A-Za-z0-9][A-Za-z0-9._-]*",
                self.bridge
            ));
        }
        if self.netns_prefix.contains('/') {
            return Err(format!(
                "netns prefix {:?} must not contain '/'",
                self.netns_prefix
            ));
        }
        if let Some(net) = self.subnet {
            if net.prefix_len() > 30 {
                return Err(format!(
                    "subnet {net} is too small for a gateway and instances"
                ));
            }
        }
        Ok(())
    }

    pub fn lease_dir(&self) -> PathBuf {
        self.ipam_data_dir.join(&self.name)
    }

    pub fn conflist_path(&self) -> PathBuf {
        self.state_dir.join(format!("{}.conflist", self.name))
    }
}

/// The main chain: bridge then portmap. Instances without port mappings run only the bridge:
/// portmap would change nothing but costs iptables calls on DEL.
///
/// With `address` (what nodeless reserved for the instance, ipam.rs) the bridge gets it
/// through the `static` IPAM plugin; without, through `host-local`, which is what the
/// conflist written for operators says and what DEL without a record uses (host-local then
/// releases whatever lease the container id holds, ours included: the leases are the same
/// files).
pub fn chain(
    cfg: &NetworkConfig,
    subnet: Ipv4Net,
    with_portmap: bool,
    address: Option<Ipv4Addr>,
) -> Chain {
    let gateway = gateway(subnet).to_string();
    let routes = json!([{ "dst": "0.0.0.0/0" }]);
    let ipam = match address {
        Some(ip) => json!({
            "type": "static",
            "addresses": [{ "address": format!("{ip}/{}", subnet.prefix_len()), "gateway": gateway }],
            "routes": routes,
        }),
        None => json!({
            "type": "host-local",
            "ranges": [[{ "subnet": subnet.trunc().to_string(), "gateway": gateway }]],
            "routes": routes,
            "dataDir": cfg.ipam_data_dir,
        }),
    };
    let mut bridge = json!({
        "type": "bridge",
        "bridge": cfg.bridge,
        "isGateway": true,
        // Masquerading is one subnet-wide rule (masquerade.rs), not per-instance rules.
        "ipMasq": false,
        "hairpinMode": true,
        "ipam": ipam,
    });
    if let Some(mtu) = cfg.mtu {
        bridge["mtu"] = json!(mtu);
    }
    let mut plugins = vec![bridge];
    if with_portmap {
        plugins.push(json!({ "type": "portmap", "capabilities": { "portMappings": true } }));
    }
    Chain {
        name: cfg.name.clone(),
        cni_version: CNI_VERSION.into(),
        plugins,
    }
}

/// The conflist as written for operators (and `cnitool`): the full chain.
pub fn conflist(cfg: &NetworkConfig, subnet: Ipv4Net) -> Value {
    let c = chain(cfg, subnet, true, None);
    json!({ "cniVersion": c.cni_version, "name": c.name, "plugins": c.plugins })
}

/// The address a chain hands out through `static` IPAM, if it does.
pub fn static_address(chain: &Chain) -> Option<Ipv4Addr> {
    let ipam = &chain.plugins.first()?["ipam"];
    if ipam["type"] != "static" {
        return None;
    }
    let cidr: Ipv4Net = ipam["addresses"][0]["address"].as_str()?.parse().ok()?;
    Some(cidr.addr())
}

/// The subnet a conflist written earlier used, so instances keep their network across restarts.
pub fn subnet_of_conflist(conflist: &Value) -> Option<Ipv4Net> {
    conflist["plugins"][0]["ipam"]["ranges"][0][0]["subnet"]
        .as_str()?
        .parse()
        .ok()
}

/// The bridge's address: the first host of the subnet.
pub fn gateway(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()).saturating_add(1))
}

/// One IPv4 route of the host: destination network and interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub iface: String,
    pub dest: Ipv4Net,
}

/// Parses /proc/net/route (destination and mask are native-endian hex words).
pub fn parse_proc_routes(text: &str) -> Vec<HostRoute> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let word = |s: &str| {
                u32::from_str_radix(s, 16)
                    .ok()
                    .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
            };
            let (dest, mask) = (word(f.get(1)?)?, word(f.get(7)?)?);
            let prefix = u32::from(mask).count_ones() as u8;
            Some(HostRoute {
                iface: f[0].to_string(),
                dest: Ipv4Net::new(dest, prefix).ok()?,
            })
        })
        .collect()
}

/// 10.88.0.0/16, else the next free 10.x.0.0/16: the first that overlaps no host route other
/// than the default route and the routes of our own bridge.
pub fn choose_subnet(routes: &[HostRoute], own_bridge: &str) -> Option<Ipv4Net> {
    let taken: Vec<Ipv4Net> = routes
        .iter()
        .filter(|r| r.iface != own_bridge && r.dest.prefix_len() > 0)
        .map(|r| r.dest)
        .collect();
    (88u8..=254)
        .filter_map(|second| Ipv4Net::new(Ipv4Addr::new(10, second, 0, 0), 16).ok())
        .find(|candidate| !taken.iter().any(|t| overlaps(*t, *candidate)))
}

pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
        eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        docker0\t0000580A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("test subnet")
    }

    #[test]
    fn proc_net_route_is_parsed_into_networks() {
        let routes = parse_proc_routes(PROC_ROUTE);
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[0].dest, net("0.0.0.0/0"));
        assert_eq!(
            routes[1],
            HostRoute {
                iface: "eth0".into(),
                dest: net("192.0.2.0/24")
            }
        );
        assert_eq!(routes[2].dest, net("10.88.0.0/16"));
    }

    #[test]
    fn default_subnet_is_used_when_nothing_collides() {
        let routes = parse_proc_routes(PROC_ROUTE)[..2].to_vec();
        assert_eq!(
            choose_subnet(&routes, "nodeless0"),
            Some(net("10.88.0.0/16"))
        );
    }

    #[test]
    fn a_colliding_route_moves_the_subnet_to_the_next_free_one() {
        let mut routes = parse_proc_routes(PROC_ROUTE);
        routes.push(HostRoute {
            iface: "tun0".into(),
            dest: net("10.89.4.0/24"),
        });
        assert_eq!(
            choose_subnet(&routes, "nodeless0"),
            Some(net("10.90.0.0/16"))
        );
    }

    #[test]
    fn a_host_route_covering_all_of_ten_slash_eight_leaves_no_subnet() {
        let routes = vec![HostRoute {
            iface: "vpn".into(),
            dest: net("10.0.0.0/8"),
        }];
        assert_eq!(choose_subnet(&routes, "nodeless0"), None);
    }

    #[test]
    fn routes_of_our_own_bridge_do_not_count_as_collisions() {
        let routes = vec![HostRoute {
            iface: "nodeless0".into(),
            dest: net("10.88.0.0/16"),
        }];
        assert_eq!(
            choose_subnet(&routes, "nodeless0"),
            Some(net("10.88.0.0/16"))
        );
    }

    #[test]
    fn chain_has_bridge_with_host_local_and_portmap_only_when_asked() {
        let cfg = NetworkConfig::new("/var/lib/nodeless/network");
        let with = chain(&cfg, net("10.88.0.0/16"), true, None);
        assert_eq!(with.plugins.len(), 2);
        assert_eq!(with.plugins[0]["bridge"], "nodeless0");
        assert_eq!(
            with.plugins[0]["ipam"]["ranges"][0][0]["gateway"],
            "10.88.0.1"
        );
        assert_eq!(with.plugins[1]["capabilities"]["portMappings"], true);
        assert_eq!(
            chain(&cfg, net("10.88.0.0/16"), false, None).plugins.len(),
            1
        );
        assert_eq!(static_address(&with), None);
    }

    #[test]
    fn chain_with_an_address_hands_it_out_through_static_ipam() {
        let cfg = NetworkConfig::new("/var/lib/nodeless/network");
        let ip: Ipv4Addr = "10.88.3.7".parse().expect("ip");
        let c = chain(&cfg, net("10.88.0.0/16"), false, Some(ip));
        assert_eq!(c.plugins[0]["ipam"]["type"], "static");
        assert_eq!(
            c.plugins[0]["ipam"]["addresses"][0]["address"],
            "10.88.3.7/16"
        );
        assert_eq!(c.plugins[0]["ipam"]["addresses"][0]["gateway"], "10.88.0.1");
        assert_eq!(c.plugins[0]["ipam"]["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(static_address(&c), Some(ip));
    }

    #[test]
    fn conflist_subnet_round_trips() {
        let cfg = NetworkConfig::new("/tmp/x");
        assert_eq!(
            subnet_of_conflist(&conflist(&cfg, net("10.90.0.0/16"))),
            Some(net("10.90.0.0/16"))
        );
    }

    #[test]
    fn invalid_names_are_refused() {
        let mut cfg = NetworkConfig::new("/tmp/x");
        cfg.bridge = "a-bridge-name-too-long".into();
        assert!(cfg.validate().is_err());
        let mut cfg = NetworkConfig::new("/tmp/x");
        cfg.name = "../etc".into();
        assert!(cfg.validate().is_err());
        assert!(NetworkConfig::new("/tmp/x").validate().is_ok());
    }
}
