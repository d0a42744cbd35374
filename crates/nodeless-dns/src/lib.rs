//! Cluster DNS for nodeless: the names the Kubernetes DNS specification gives Services,
//! their endpoints and Pods, answered from watches of the API server; every other name is
//! forwarded to the host's resolvers.
//!
//! 1. Reflectors keep Services, EndpointSlices and Pods in memory; each change rebuilds the
//!    immutable [`records::Records`] view (bursts coalesce into one rebuild).
//! 2. A hickory-server [`server`] listens on UDP and TCP; names under the cluster domain (and
//!    reverse names of cluster addresses) are answered from the view, the rest forwarded.
//! 3. [`kube_dns`] keeps Service kube-system/kube-dns (10.96.0.10) and an EndpointSlice
//!    pointing at the listener, so the Service proxy delivers 10.96.0.10:53 here.

pub mod kube_dns;
pub mod records;
mod server;
pub mod upstream;
mod watch;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::{LowerName, Name};
use hickory_server::server::Server;
use kube::Client;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

pub use records::{Records, RecordsError};
pub use server::ForwardError;
pub use upstream::{Upstream, UpstreamError};

/// How long a client may keep a TCP connection open without sending a query.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the kube-dns Service and EndpointSlice are checked and repaired.
const KUBE_DNS_RESYNC: Duration = Duration::from_secs(30);
/// The least time between two checks prompted by changes in the cluster.
const KUBE_DNS_MIN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Where to listen, on UDP and TCP.
    pub listen: SocketAddr,
    /// The cluster domain, `cluster.local`.
    pub cluster_domain: String,
    /// The cluster DNS Service address (kube-system/kube-dns), `10.96.0.10`.
    pub service_ip: Ipv4Addr,
    /// The address instances reach the listener at, which the kube-dns EndpointSlice names
    /// (the host side of the bridge, 10.88.0.1).
    pub advertise: IpAddr,
    /// Where names outside the cluster go.
    pub upstream: Upstream,
    /// How long to wait for the listen address to appear on the host (the bridge is made
    /// when the engine's network comes up) before giving up.
    pub bind_wait: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        let gateway = Ipv4Addr::new(10, 88, 0, 1);
        Self {
            listen: SocketAddr::new(IpAddr::V4(gateway), 53),
            cluster_domain: "cluster.local".into(),
            service_ip: Ipv4Addr::new(10, 96, 0, 10),
            advertise: IpAddr::V4(gateway),
            upstream: Upstream::default(),
            bind_wait: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Forward(#[from] ForwardError),
    #[error("cannot listen for dns on {protocol} {addr}: {hint}")]
    Bind {
        protocol: &'static str,
        addr: SocketAddr,
        hint: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("dns server failed")]
    Serve(#[source] hickory_server::net::NetError),
}

/// Runs cluster DNS until `shutdown`: binds the listener (waiting for its address to exist),
/// keeps the kube-dns Service and EndpointSlice, and answers queries.
pub async fn run(
    client: Client,
    config: DnsConfig,
    shutdown: CancellationToken,
) -> Result<(), DnsError> {
    let own = [
        config.listen,
        SocketAddr::new(IpAddr::V4(config.service_ip), 53),
    ];
    let upstreams = config.upstream.servers(&own)?;
    if upstreams.is_empty() {
        tracing::warn!("no upstream resolvers: names outside the cluster will be refused");
    }
    let origin = Name::from_ascii(&config.cluster_domain)
        .and_then(|n| n.append_domain(&Name::root()))
        .map_err(|source| RecordsError::InvalidDomain {
            domain: config.cluster_domain.clone(),
            source,
        })?;
    let view = watch::View::start(client.clone(), &config, shutdown.clone())?;
    let handler = server::Handler::new(LowerName::new(&origin), view.records(), &upstreams)?;
    let Some((udp, tcp)) = bind(config.listen, config.bind_wait, &shutdown).await? else {
        return Ok(());
    };
    let port = udp.local_addr().map_or(config.listen.port(), |a| a.port());
    tracing::info!(listen = %config.listen, ?upstreams, "cluster dns listening");
    let mut server = Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE_TIMEOUT, 32);
    let target = kube_dns::Target {
        service_ip: config.service_ip,
        address: config.advertise,
        port,
    };
    let keep = keep_kube_dns(client, target, view.records(), shutdown.clone());
    tokio::select! {
        () = keep => {}
        () = shutdown.cancelled() => {}
        result = server.block_until_done() => return result.map_err(DnsError::Serve),
    }
    drop(view);
    server.shutdown_gracefully().await.map_err(DnsError::Serve)
}

/// Ensures the kube-dns Service and EndpointSlice now, after changes in the cluster (at most
/// every [`KUBE_DNS_MIN_INTERVAL`]) and every [`KUBE_DNS_RESYNC`]; failures are logged and
/// retried (the API server may be restarting).
async fn keep_kube_dns(
    client: Client,
    target: kube_dns::Target,
    mut changes: tokio::sync::watch::Receiver<Option<std::sync::Arc<Records>>>,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_millis(500);
    let mut watching = true;
    loop {
        let next = match kube_dns::ensure(&client, target).await {
            Ok(()) => {
                delay = Duration::from_millis(500);
                KUBE_DNS_RESYNC
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "cannot keep the kube-dns service");
                delay = (delay * 2).min(KUBE_DNS_RESYNC);
                delay
            }
        };
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            changed = changes.changed(), if watching => {
                // Once the view is gone only the periodic check is left.
                watching = changed.is_ok();
                tokio::time::sleep(KUBE_DNS_MIN_INTERVAL).await;
                changes.borrow_and_update();
            }
            () = shutdown.cancelled() => return,
        }
    }
}

/// Binds UDP and TCP on `addr`. An address not (yet) on this host is waited for up to `wait`;
/// other failures are immediate. `None` when shut down while waiting.
async fn bind(
    addr: SocketAddr,
    wait: Duration,
    shutdown: &CancellationToken,
) -> Result<Option<(UdpSocket, TcpListener)>, DnsError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match bind_once(addr).await {
            Ok(sockets) => return Ok(Some(sockets)),
            Err(DnsError::Bind { source, .. })
                if source.kind() == io::ErrorKind::AddrNotAvailable
                    && tokio::time::Instant::now() < deadline =>
            {
                tracing::info!(%addr, "waiting for the dns listen address to exist on this host");
            }
            Err(error) => return Err(error),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = shutdown.cancelled() => return Ok(None),
        }
    }
}

async fn bind_once(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsError> {
    let udp = UdpSocket::bind(addr)
        .await
        .map_err(|e| bind_error("udp", addr, e))?;
    // With port 0 the TCP listener takes the port UDP got, so one address serves both.
    let tcp_addr = udp.local_addr().unwrap_or(addr);
    let tcp = TcpListener::bind(tcp_addr)
        .await
        .map_err(|e| bind_error("tcp", tcp_addr, e))?;
    Ok((udp, tcp))
}

fn bind_error(protocol: &'static str, addr: SocketAddr, source: io::Error) -> DnsError {
    let hint = match source.kind() {
        io::ErrorKind::AddrNotAvailable => {
            "the address is not on this host (is the nodeless0 bridge up?)"
        }
        io::ErrorKind::AddrInUse => {
            "the port is taken (another dns server such as dnsmasq or systemd-resolved?)"
        }
        io::ErrorKind::PermissionDenied => "ports below 1024 need root or CAP_NET_BIND_SERVICE",
        _ => "bind failed",
    };
    DnsError::Bind {
        protocol,
        addr,
        hint,
        source,
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_address_not_on_this_host_is_waited_for_then_reported_clearly() {
        // TEST-NET-1: on no interface of any host.
        let addr: SocketAddr = "192.0.2.1:5353".parse().expect("addr");
        let started = tokio::time::Instant::now();
        let err = bind(addr, Duration::from_millis(1500), &CancellationToken::new())
            .await
            .expect_err("not on this host");
        assert!(started.elapsed() >= Duration::from_secs(1), "did not wait");
        let text = err.to_string();
        assert!(text.contains("192.0.2.1:5353"), "{text}");
        assert!(text.contains("nodeless0"), "{text}");
    }

    #[tokio::test]
    async fn shutdown_ends_the_wait_for_the_address() {
        let addr: SocketAddr = "192.0.2.1:5353".parse().expect("addr");
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let bound = bind(addr, Duration::from_secs(60), &shutdown)
            .await
            .expect("no error");
        assert!(bound.is_none());
    }

    #[tokio::test]
    async fn a_taken_port_fails_at_once_naming_the_likely_cause() {
        let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = bind(addr, Duration::from_secs(60), &CancellationToken::new())
            .await
            .expect_err("port taken");
        assert!(err.to_string().contains("port is taken"), "{err}");
    }
}
