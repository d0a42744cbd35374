//! Which hosts a pull talks to: registry mirrors first (as containerd's `hosts.toml` and podman's
//! `registries.conf` mirrors do), then the registry itself; and over which protocol.

use std::net::IpAddr;

use url::Url;

use super::error::ImageError;
use super::reference::DOCKER_HUB;

/// Registry settings of one host, from `--registry-mirror REGISTRY=URL` and
/// `--insecure-registry HOST`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// `(registry, mirror)`: pulls of images of `registry` (e.g. `docker.io`) go to `mirror`
    /// first. An `http://` mirror is spoken to in plain HTTP. Several mirrors of one registry
    /// are tried in order.
    pub mirrors: Vec<(String, Url)>,
    /// Registries (`host[:port]`) spoken to in plain HTTP. Loopback registries (`localhost`,
    /// `127.0.0.0/8`, `[::1]`) always are, as Docker treats them as insecure by default.
    pub insecure: Vec<String>,
}

/// One host to send a pull's requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]` to connect to.
    pub host: String,
    pub plain_http: bool,
    /// For a mirror, the URL it was configured with (for messages).
    pub mirror_url: Option<Url>,
}

impl Endpoint {
    pub fn is_mirror(&self) -> bool {
        self.mirror_url.is_some()
    }

    /// How error messages name this endpoint.
    pub fn label(&self) -> String {
        match &self.mirror_url {
            Some(url) => format!("mirror {url}"),
            None => self.host.clone(),
        }
    }
}

impl RegistryConfig {
    /// Parses one `--registry-mirror` value, `REGISTRY=URL`.
    pub fn parse_mirror(arg: &str) -> Result<(String, Url), ImageError> {
        let (registry, url) = arg.split_once('=').ok_or_else(|| {
            ImageError::InvalidConfig(format!("registry mirror {arg:?} is not REGISTRY=URL"))
        })?;
        let url = Url::parse(url)
            .map_err(|e| ImageError::InvalidConfig(format!("registry mirror URL {url:?}: {e}")))?;
        let mirror = (canonical_registry(registry), url);
        validate_mirror(&mirror)?;
        Ok(mirror)
    }

    pub(crate) fn validate(&self) -> Result<(), ImageError> {
        self.mirrors.iter().try_for_each(validate_mirror)
    }

    /// The endpoints to try for `registry`, in order: its mirrors, then itself.
    pub(crate) fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let registry = canonical_registry(registry);
        let mut endpoints: Vec<Endpoint> = self
            .mirrors
            .iter()
            .filter(|(name, _)| canonical_registry(name) == registry)
            .filter_map(|(_, url)| {
                Some(Endpoint {
                    host: url_host(url)?,
                    plain_http: url.scheme() == "http",
                    mirror_url: Some(url.clone()),
                })
            })
            .collect();
        endpoints.push(Endpoint {
            plain_http: self.is_insecure(&registry),
            host: registry,
            mirror_url: None,
        });
        endpoints
    }

    fn is_insecure(&self, registry: &str) -> bool {
        self.insecure
            .iter()
            .any(|h| canonical_registry(h) == registry)
            || is_loopback(registry)
    }
}

fn validate_mirror((registry, url): &(String, Url)) -> Result<(), ImageError> {
    let bad =
        |why: &str| ImageError::InvalidConfig(format!("registry mirror {registry}={url}: {why}"));
    if registry.is_empty() {
        return Err(bad("the registry name is empty"));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the URL must be http:// or https://"));
    }
    if url_host(url).is_none() {
        return Err(bad("the URL has no host"));
    }
    // The distribution API lives at /v2/ of the host; mirrors under a path prefix would need a
    // client that can address them, which oci-client cannot.
    if !matches!(url.path(), "" | "/" | "/v2" | "/v2/") {
        return Err(bad("mirrors under a URL path are not supported"));
    }
    if !url.username().is_empty() || url.query().is_some() {
        return Err(bad("the URL may not carry credentials or a query"));
    }
    Ok(())
}

/// `host[:port]` of a URL, with IPv6 hosts in brackets.
fn url_host(url: &Url) -> Option<String> {
    let host = match url.host()? {
        url::Host::Ipv6(ip) => format!("[{ip}]"),
        other => other.to_string(),
    };
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// Docker Hub's aliases name one registry.
fn canonical_registry(name: &str) -> String {
    let name = name.trim().trim_end_matches('/').to_ascii_lowercase();
    match name.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => name,
    }
}

fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mirrors: &[&str], insecure: &[&str]) -> RegistryConfig {
        RegistryConfig {
            mirrors: mirrors
                .iter()
                .map(|m| RegistryConfig::parse_mirror(m).expect(m))
                .collect(),
            insecure: insecure.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_docker_hub_mirror_comes_before_docker_hub_and_speaks_plain_http() {
        let cfg = config(&["docker.io=http://127.0.0.1:5000"], &[]);
        let eps = cfg.endpoints("docker.io");
        assert_eq!(eps.len(), 2);
        assert_eq!(
            (eps[0].host.as_str(), eps[0].plain_http, eps[0].is_mirror()),
            ("127.0.0.1:5000", true, true)
        );
        assert_eq!(
            (eps[1].host.as_str(), eps[1].plain_http),
            ("docker.io", false)
        );
        assert_eq!(eps[0].label(), "mirror http://127.0.0.1:5000/");
    }

    #[test]
    fn mirrors_of_other_registries_are_not_used() {
        let cfg = config(&["quay.io=https://mirror.example"], &[]);
        assert_eq!(cfg.endpoints("docker.io").len(), 1);
        let eps = cfg.endpoints("quay.io");
        assert_eq!(
            (eps[0].host.as_str(), eps[0].plain_http),
            ("mirror.example", false)
        );
    }

    #[test]
    fn docker_hub_aliases_select_the_same_mirrors() {
        let cfg = config(&["index.docker.io=http://m:1"], &[]);
        assert_eq!(cfg.endpoints("docker.io")[0].host, "m:1");
    }

    #[test]
    fn insecure_and_loopback_registries_speak_plain_http() {
        let cfg = config(&[], &["registry.lan:5000"]);
        assert!(cfg.endpoints("registry.lan:5000")[0].plain_http);
        assert!(!cfg.endpoints("registry.lan")[0].plain_http);
        assert!(cfg.endpoints("127.0.0.1:5000")[0].plain_http);
        assert!(cfg.endpoints("localhost:5000")[0].plain_http);
        assert!(cfg.endpoints("[::1]:5000")[0].plain_http);
        assert!(!cfg.endpoints("ghcr.io")[0].plain_http);
    }

    #[test]
    fn malformed_mirror_settings_are_rejected() {
        for bad in [
            "docker.io",
            "docker.io=ftp://x",
            "docker.io=http://x/prefix",
            "=http://x",
            "docker.io=not a url",
        ] {
            assert!(RegistryConfig::parse_mirror(bad).is_err(), "{bad}");
        }
    }
}
