//! The parts of an OCI image configuration a container is built from.

use serde::{Deserialize, Serialize};

use super::manifest::ManifestError;

/// What the image says to run and how. Empty `entrypoint`/`cmd` mean the image set none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` entries, in image order.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`, as the image gives it.
    pub user: Option<String>,
    /// `port/proto`, sorted, e.g. `80/tcp`.
    pub exposed_ports: Vec<String>,
    pub stop_signal: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawConfigFile {
    #[serde(default)]
    config: Option<RawConfig>,
    #[serde(default)]
    rootfs: Option<RawRootfs>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    exposed_ports: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    stop_signal: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// Parses an image config blob into the run settings and the layers' uncompressed digests.
pub(crate) fn parse_config(bytes: &[u8]) -> Result<(ImageConfig, Vec<String>), ManifestError> {
    let raw: RawConfigFile =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::InvalidConfig(e.to_string()))?;
    let c = raw.config.unwrap_or_default();
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let mut exposed_ports: Vec<String> = c
        .exposed_ports
        .unwrap_or_default()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    exposed_ports.sort();
    let config = ImageConfig {
        entrypoint: c.entrypoint.unwrap_or_default(),
        cmd: c.cmd.unwrap_or_default(),
        env: c.env.unwrap_or_default(),
        working_dir: non_empty(c.working_dir),
        user: non_empty(c.user),
        exposed_ports,
        stop_signal: non_empty(c.stop_signal),
    };
    let diff_ids = raw.rootfs.unwrap_or_default().diff_ids;
    for id in &diff_ids {
        super::reference::parse_digest(id)
            .map_err(|e| ManifestError::InvalidConfig(format!("layer diff id {id:?}: {e}")))?;
    }
    Ok((config, diff_ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_style_config_fields_are_read_and_empty_strings_become_none() {
        let json = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Entrypoint":null,"WorkingDir":"","User":"1000:1000","ExposedPorts":{"8080/tcp":{},"53/udp":{}},"StopSignal":"SIGQUIT"},"rootfs":{"type":"layers","diff_ids":["sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]}}"#;
        let (config, diff_ids) = parse_config(json).expect("config");
        assert_eq!(config.cmd, vec!["sh"]);
        assert!(config.entrypoint.is_empty());
        assert_eq!(config.working_dir, None);
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        assert_eq!(config.exposed_ports, vec!["53/udp", "8080/tcp"]);
        assert_eq!(config.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(diff_ids.len(), 1);
    }

    #[test]
    fn a_config_without_a_config_section_is_an_empty_config() {
        let (config, diff_ids) = parse_config(br#"{"rootfs":{"diff_ids":[]}}"#).expect("config");
        assert_eq!(config, ImageConfig::default());
        assert!(diff_ids.is_empty());
    }

    #[test]
    fn malformed_diff_ids_are_rejected() {
        assert!(parse_config(br#"{"rootfs":{"diff_ids":["sha256:../../etc"]}}"#).is_err());
        assert!(parse_config(b"[1,2]").is_err());
    }
}
