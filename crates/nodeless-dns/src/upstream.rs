//! Where names outside the cluster go: the host's resolvers from /etc/resolv.conf, or servers
//! given explicitly (tests, hosts with special setups).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// The upstream resolvers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The `nameserver` lines of a resolv.conf. A local stub such as systemd-resolved's
    /// 127.0.0.53 is kept: the server runs on the host, where the stub answers.
    ResolvConf(PathBuf),
    /// These servers.
    Servers(Vec<SocketAddr>),
}

impl Default for Upstream {
    fn default() -> Self {
        Self::ResolvConf(PathBuf::from("/etc/resolv.conf"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Upstream {
    /// The servers to forward to, without the ones that would be this server itself (its
    /// listen address, or the cluster DNS address should the host already use it): forwarding
    /// there would loop.
    pub fn servers(&self, own: &[SocketAddr]) -> Result<Vec<SocketAddr>, UpstreamError> {
        let all = match self {
            Self::Servers(servers) => servers.clone(),
            Self::ResolvConf(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| UpstreamError::Read {
                    path: path.clone(),
                    source,
                })?;
                nameservers(&text)
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 53))
                    .collect()
            }
        };
        Ok(all
            .into_iter()
            .filter(|server| !own.iter().any(|o| is_same_server(*o, *server)))
            .collect())
    }
}

/// The `nameserver` addresses of a resolv.conf, in order; scoped IPv6 addresses
/// (`fe80::1%eth0`) and garbage are skipped.
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => words.next()?.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

/// Whether a query sent to `server` would reach a listener bound to `own`.
fn is_same_server(own: SocketAddr, server: SocketAddr) -> bool {
    if own.port() != server.port() {
        return false;
    }
    own.ip() == server.ip() || (own.ip().is_unspecified() && server.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn nameservers_are_read_in_order_skipping_comments_and_unparsable_ones() {
        let text = "# generated\nsearch corp example.com\nnameserver 10.0.0.2\n\
                    nameserver fe80::1%eth0\nnameserver   2001:db8::53 \noptions ndots:2\n\
                    ;nameserver 1.1.1.1\nnameserver\n";
        let want: Vec<IpAddr> = vec![
            "10.0.0.2".parse().expect("ip"),
            "2001:db8::53".parse().expect("ip"),
        ];
        assert_eq!(nameservers(text), want);
    }

    #[test]
    fn a_local_stub_resolver_is_kept_since_the_server_runs_on_the_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 127.0.0.53\noptions edns0 trust-ad\n").expect("write");
        let servers = Upstream::ResolvConf(path)
            .servers(&[addr("10.88.0.1:53")])
            .expect("servers");
        assert_eq!(servers, [addr("127.0.0.53:53")]);
    }

    #[test]
    fn servers_that_are_this_server_are_dropped() {
        let upstream = Upstream::Servers(vec![
            addr("10.88.0.1:53"),
            addr("10.96.0.10:53"),
            addr("127.0.0.1:53"),
            addr("10.0.0.2:53"),
            addr("10.88.0.1:5353"),
        ]);
        let own = [addr("10.88.0.1:53"), addr("10.96.0.10:53")];
        assert_eq!(
            upstream.servers(&own).expect("servers"),
            [
                addr("127.0.0.1:53"),
                addr("10.0.0.2:53"),
                addr("10.88.0.1:5353")
            ]
        );
        let wildcard = [addr("0.0.0.0:53")];
        assert_eq!(
            upstream.servers(&wildcard).expect("servers"),
            [
                addr("10.88.0.1:53"),
                addr("10.96.0.10:53"),
                addr("10.0.0.2:53"),
                addr("10.88.0.1:5353")
            ]
        );
    }

    #[test]
    fn an_unreadable_resolv_conf_is_an_error_naming_it() {
        let err = Upstream::ResolvConf(PathBuf::from("/nonexistent/resolv.conf"))
            .servers(&[])
            .expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/resolv.conf"));
    }
}
