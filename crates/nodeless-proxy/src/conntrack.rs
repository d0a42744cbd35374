//! Forgetting UDP flows the rules no longer back, as kube-proxy does. The kernel takes the
//! NAT decision on a flow's first packet and keeps it in the flow's conntrack entry, and UDP
//! has no close to end one: a client that keeps its source port (a resolver, a syslog or
//! statsd sender) would keep sending to an endpoint that is gone, or, when the Service had no
//! endpoint as the flow began, past the DNAT altogether, until the entry idles out (30 s to
//! 2 min). So after each sync:
//! - a UDP Service port's removed endpoints lose their flows through its ClusterIP;
//! - a UDP Service port that had no endpoints and now has some loses all its flows.
//!
//! TCP needs none of this: a connection to a gone endpoint is reset, and the client's next one
//! is a new flow.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::process::Command;

use crate::model::{Protocol, ServicePort};

/// UDP flows to a ClusterIP port, those DNATed to `endpoint` only when it is given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Flows {
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub endpoint: Option<Ipv4Addr>,
}

impl fmt::Display for Flows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "udp {}:{}", self.cluster_ip, self.port)?;
        match self.endpoint {
            Some(e) => write!(f, " to {e}"),
            None => Ok(()),
        }
    }
}

/// What going from `prev` to `next` leaves stale.
pub fn stale_udp_flows(prev: &[ServicePort], next: &[ServicePort]) -> Vec<Flows> {
    let mut stale = BTreeSet::new();
    let udp = |p: &&ServicePort| p.protocol == Protocol::Udp;
    for old in prev.iter().filter(udp) {
        let now = next.iter().find(|n| {
            n.protocol == Protocol::Udp && n.cluster_ip == old.cluster_ip && n.port == old.port
        });
        let kept: BTreeSet<Ipv4Addr> = now
            .map(|n| n.endpoints.iter().map(|e| e.ip).collect())
            .unwrap_or_default();
        for e in &old.endpoints {
            if !kept.contains(&e.ip) {
                stale.insert(Flows {
                    cluster_ip: old.cluster_ip,
                    port: old.port,
                    endpoint: Some(e.ip),
                });
            }
        }
    }
    for new in next.iter().filter(udp).filter(|n| !n.endpoints.is_empty()) {
        let had_endpoints = prev.iter().filter(udp).any(|p| {
            p.cluster_ip == new.cluster_ip && p.port == new.port && !p.endpoints.is_empty()
        });
        if !had_endpoints {
            stale.insert(Flows {
                cluster_ip: new.cluster_ip,
                port: new.port,
                endpoint: None,
            });
        }
    }
    stale.into_iter().collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    #[error("cannot run {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("conntrack refused to delete {flows}: {stderr}")]
    Rejected { flows: Flows, stderr: String },
}

/// Deletes conntrack entries; the `conntrack` tool on hosts, a recorder in tests.
#[async_trait]
pub trait Conntrack: Send + Sync + fmt::Debug {
    async fn forget(&self, flows: &Flows) -> Result<(), ConntrackError>;
}

/// The host's connection tracking through the `conntrack` binary (conntrack-tools).
#[derive(Debug, Clone)]
pub struct HostConntrack {
    pub path: PathBuf,
}

impl Default for HostConntrack {
    fn default() -> Self {
        HostConntrack {
            path: PathBuf::from("conntrack"),
        }
    }
}

#[async_trait]
impl Conntrack for HostConntrack {
    async fn forget(&self, flows: &Flows) -> Result<(), ConntrackError> {
        let mut cmd = Command::new(&self.path);
        cmd.args(["-D", "-p", "udp", "--orig-dst"])
            .arg(flows.cluster_ip.to_string())
            .arg("--orig-port-dst")
            .arg(flows.port.to_string());
        if let Some(endpoint) = flows.endpoint {
            // The reply comes from the endpoint the flow was DNATed to.
            cmd.arg("--reply-src").arg(endpoint.to_string());
        }
        let out =
            cmd.kill_on_drop(true)
                .output()
                .await
                .map_err(|source| ConntrackError::Spawn {
                    path: self.path.clone(),
                    source,
                })?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Nothing to delete is an exit code of 1 with "0 flow entries have been deleted".
        if out.status.success() || stderr.contains(" 0 flow entries") {
            return Ok(());
        }
        Err(ConntrackError::Rejected {
            flows: flows.clone(),
            stderr: stderr.trim().to_string(),
        })
    }
}

/// Records what it was asked to forget.
#[derive(Debug, Default)]
pub struct FakeConntrack {
    pub forgotten: Mutex<Vec<Flows>>,
}

#[async_trait]
impl Conntrack for FakeConntrack {
    async fn forget(&self, flows: &Flows) -> Result<(), ConntrackError> {
        self.forgotten
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(flows.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;

    fn port(protocol: Protocol, endpoints: &[[u8; 4]]) -> ServicePort {
        ServicePort {
            namespace: "default".into(),
            name: "dns".into(),
            port_name: String::new(),
            protocol,
            cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
            port: 53,
            affinity_timeout: None,
            endpoints: endpoints
                .iter()
                .map(|ip| Endpoint {
                    ip: Ipv4Addr::from(*ip),
                    port: 5353,
                })
                .collect(),
        }
    }

    const A: [u8; 4] = [10, 88, 0, 2];
    const B: [u8; 4] = [10, 88, 0, 3];

    fn flows(endpoint: Option<[u8; 4]>) -> Flows {
        Flows {
            cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
            port: 53,
            endpoint: endpoint.map(Ipv4Addr::from),
        }
    }

    #[test]
    fn a_removed_udp_endpoint_loses_its_flows() {
        let stale = stale_udp_flows(
            &[port(Protocol::Udp, &[A, B])],
            &[port(Protocol::Udp, &[B])],
        );
        assert_eq!(stale, vec![flows(Some(A))]);
    }

    #[test]
    fn a_removed_udp_service_loses_the_flows_of_all_its_endpoints() {
        let stale = stale_udp_flows(&[port(Protocol::Udp, &[A, B])], &[]);
        assert_eq!(stale, vec![flows(Some(A)), flows(Some(B))]);
    }

    #[test]
    fn a_udp_service_that_gets_its_first_endpoint_loses_every_flow() {
        let stale = stale_udp_flows(&[port(Protocol::Udp, &[])], &[port(Protocol::Udp, &[A])]);
        assert_eq!(stale, vec![flows(None)]);
        let new_service = stale_udp_flows(&[], &[port(Protocol::Udp, &[A])]);
        assert_eq!(new_service, vec![flows(None)]);
    }

    #[test]
    fn tcp_and_unchanged_udp_services_lose_nothing() {
        let tcp = stale_udp_flows(
            &[port(Protocol::Tcp, &[A, B])],
            &[port(Protocol::Tcp, &[B])],
        );
        assert!(tcp.is_empty());
        let same = stale_udp_flows(
            &[port(Protocol::Udp, &[A])],
            &[port(Protocol::Udp, &[A, B])],
        );
        assert!(
            same.is_empty(),
            "an added endpoint leaves the others' flows: {same:?}"
        );
    }
}
