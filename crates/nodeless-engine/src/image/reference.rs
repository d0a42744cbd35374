//! Image references, normalized the way Docker, containerd and podman do it.
//!
//! `busybox` is `docker.io/library/busybox:latest`; `ghcr.io/a/b@sha256:…` keeps its digest and
//! gets no tag; `localhost:5000/x` names a registry with a port. The grammar follows the
//! distribution project's reference grammar (lower-case path components with `.`, `_`, `__` and
//! `-` separators, tags of at most 128 word characters, `algorithm:hex` digests).

use std::fmt;
use std::str::FromStr;

/// The registry that names without a domain belong to.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: {0}")]
    Invalid(&'static str),
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    #[error("invalid reference format: repository name is longer than {MAX_NAME_LEN} characters")]
    NameTooLong,
    #[error("unsupported digest algorithm {0:?} (only sha256 is supported)")]
    UnsupportedDigest(String),
}

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageReference {
    /// The registry host (with port), `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What to ask the registry's manifest endpoint for: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(ReferenceError::Invalid("empty reference"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(digest)?)),
            None => (input, None),
        };
        let (name, tag) = split_tag(rest)?;
        let (registry, repository) = split_domain(name)?;
        if repository.len() + registry.len() + 1 > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong);
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

/// Splits `name:tag`; a `:` before the last `/` belongs to a registry port, not a tag.
fn split_tag(rest: &str) -> Result<(&str, Option<&str>), ReferenceError> {
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => {
            let (name, tag) = (&rest[..last_slash + i], &rest[last_slash + i + 1..]);
            validate_tag(tag)?;
            Ok((name, Some(tag)))
        }
        None => Ok((rest, None)),
    }
}

fn split_domain(name: &str) -> Result<(String, String), ReferenceError> {
    let (registry, path) = match name.split_once('/') {
        Some((first, path)) if looks_like_domain(first) => (first.to_string(), path),
        _ => (DOCKER_HUB.to_string(), name),
    };
    validate_domain(&registry)?;
    let registry = if registry == DOCKER_HUB_LEGACY {
        DOCKER_HUB.to_string()
    } else {
        registry
    };
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceError::Uppercase);
    }
    validate_path(path)?;
    let repository = if registry == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    Ok((registry, repository))
}

/// Docker's rule: the first component is a registry when it has a `.` or `:`, is `localhost`,
/// or has upper-case letters (which a repository path may not have).
fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

fn validate_domain(domain: &str) -> Result<(), ReferenceError> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or(ReferenceError::Invalid("bad IPv6 registry"))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(ReferenceError::Invalid("bad IPv6 registry"));
        }
        ("", after.strip_prefix(':'))
    } else {
        match domain.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.parse::<u16>().is_err() {
            return Err(ReferenceError::Invalid("bad registry port"));
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !domain.starts_with('[') && !host.split('.').all(label_ok) {
        return Err(ReferenceError::Invalid("bad registry host"));
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), ReferenceError> {
    if path.is_empty() {
        return Err(ReferenceError::Invalid("empty repository name"));
    }
    if path.split('/').all(valid_path_component) {
        Ok(())
    } else {
        Err(ReferenceError::Invalid("bad repository name"))
    }
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn valid_path_component(component: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes: Vec<char> = component.chars().collect();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep: String = bytes[start..i].iter().collect();
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
        if !ok {
            return false;
        }
    }
    true
}

fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(word);
    if !first_ok || tag.len() > MAX_TAG_LEN || !chars.all(|c| word(c) || c == '.' || c == '-') {
        return Err(ReferenceError::Invalid("bad tag"));
    }
    Ok(())
}

/// Checks `sha256:<64 hex>`; other algorithms parse but are refused since the store is sha256.
pub fn parse_digest(digest: &str) -> Result<String, ReferenceError> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or(ReferenceError::Invalid("bad digest"))?;
    if algorithm != "sha256" {
        let plausible = !algorithm.is_empty()
            && algorithm
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
        return Err(if plausible {
            ReferenceError::UnsupportedDigest(algorithm.to_string())
        } else {
            ReferenceError::Invalid("bad digest")
        });
    }
    if hex.len() != 64
        || !hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    {
        return Err(ReferenceError::Invalid("bad sha256 digest"));
    }
    Ok(digest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn norm(s: &str) -> String {
        s.parse::<ImageReference>().expect(s).to_string()
    }

    #[test]
    fn short_names_go_to_docker_hub_library_with_latest() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("nginx:alpine"), "docker.io/library/nginx:alpine");
        assert_eq!(norm("bitnami/redis"), "docker.io/bitnami/redis:latest");
        assert_eq!(
            norm("index.docker.io/library/busybox:1"),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn registries_with_ports_and_localhost_are_recognized() {
        let r: ImageReference = "127.0.0.1:5000/nope:1".parse().expect("parse");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "nope", Some("1"))
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(
            norm("localhost:5000/a/b/c:v1.2"),
            "localhost:5000/a/b/c:v1.2"
        );
        assert_eq!(norm("[::1]:5000/app"), "[::1]:5000/app:latest");
        assert_eq!(norm("ghcr.io/org/app"), "ghcr.io/org/app:latest");
    }

    #[test]
    fn a_port_like_suffix_without_domain_is_a_tag() {
        assert_eq!(norm("test.com:5000"), "docker.io/library/test.com:5000");
    }

    #[test]
    fn digests_are_kept_and_suppress_the_default_tag() {
        assert_eq!(
            norm(&format!("busybox@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(
            norm(&format!("busybox:1.36@{D}")),
            format!("docker.io/library/busybox:1.36@{D}")
        );
        let r: ImageReference = format!("busybox:1.36@{D}").parse().expect("parse");
        assert_eq!(r.manifest_reference(), D);
    }

    #[test]
    fn malformed_references_are_rejected() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "a//b",
            "a/b/",
            "-a",
            "a@sha256:xyz",
            "a@md5",
            "host:99999/app",
            "ghcr.io/Org/app",
            "a b",
        ] {
            assert!(
                bad.parse::<ImageReference>().is_err(),
                "{bad:?} should be rejected"
            );
        }
        let long = format!("a/{}", "b".repeat(300));
        assert_eq!(
            long.parse::<ImageReference>(),
            Err(ReferenceError::NameTooLong)
        );
    }

    #[test]
    fn non_sha256_digests_are_refused_clearly() {
        let err = format!("a@sha512:{}", "0".repeat(128))
            .parse::<ImageReference>()
            .expect_err("should fail");
        assert_eq!(err, ReferenceError::UnsupportedDigest("sha512".into()));
    }

    #[test]
    fn path_separators_follow_the_distribution_grammar() {
        assert!(valid_path_component("a__b"));
        assert!(valid_path_component("a---b.c_d"));
        assert!(!valid_path_component("a___b"));
        assert!(!valid_path_component("a.-b"));
        assert!(!valid_path_component("a."));
    }
}
