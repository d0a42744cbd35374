//! Registry credentials, including those carried by a Kubernetes `kubernetes.io/dockerconfigjson`
//! (or legacy `kubernetes.io/dockercfg`) secret.
//!
//! Keys of the `auths` map are matched against a registry host the way the kubelet's keyring does:
//! a scheme and a path in the key are ignored, the host and port must match (`*` may stand for one
//! DNS label, as in `*.example.com`), and Docker Hub's aliases (`index.docker.io`,
//! `registry-1.docker.io`, `https://index.docker.io/v1/`) all mean `docker.io`.

use std::fmt;

use base64::Engine as _;
use serde::Deserialize;

/// Credentials for one registry. `registry_token`, when set, is sent as a bearer token and the
/// username and password are not used.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    pub registry_token: Option<String>,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field(
                "registry_token",
                &self.registry_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    auths: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize, Default)]
struct DockerConfigEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl RegistryAuth {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        RegistryAuth {
            username: username.into(),
            password: password.into(),
            registry_token: None,
        }
    }

    /// Finds the credentials for `registry` (a host with optional port, e.g. `docker.io` or
    /// `127.0.0.1:5000`) in a secret's `.dockerconfigjson` (or `.dockercfg`) bytes. An exact host
    /// match wins over a wildcard one. Unreadable JSON or entries yield `None`.
    pub fn from_docker_config_json(json: &[u8], registry: &str) -> Option<RegistryAuth> {
        let value: serde_json::Value = serde_json::from_slice(json).ok()?;
        // `.dockerconfigjson` wraps the map in `auths`; the legacy `.dockercfg` is the map itself.
        let auths = match serde_json::from_value::<DockerConfig>(value.clone()) {
            Ok(DockerConfig { auths: Some(auths) }) => auths,
            _ => value.as_object()?.clone(),
        };
        let wanted = canonical_host(registry);
        let mut best: Option<(bool, &serde_json::Value)> = None;
        for (key, entry) in &auths {
            let host = canonical_host(key_host(key));
            let exact = host == wanted;
            let better = best.is_none_or(|(was_exact, _)| exact && !was_exact);
            if (exact || host_glob_matches(&host, &wanted)) && better {
                best = Some((exact, entry));
            }
        }
        let entry: DockerConfigEntry = serde_json::from_value(best?.1.clone()).ok()?;
        entry_to_auth(entry)
    }
}

fn entry_to_auth(entry: DockerConfigEntry) -> Option<RegistryAuth> {
    if let Some(token) = entry.registrytoken.filter(|t| !t.is_empty()) {
        return Some(RegistryAuth {
            registry_token: Some(token),
            ..Default::default()
        });
    }
    if let Some(encoded) = entry.auth.filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        return Some(RegistryAuth::basic(username, password));
    }
    match (entry.username, entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Some(RegistryAuth::basic(u, p)),
        _ => None,
    }
}

/// `https://host:port/v1/` → `host:port`.
fn key_host(key: &str) -> &str {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

/// `*.example.com` matches `a.example.com` (one label per `*`, ports equal).
fn host_glob_matches(pattern: &str, host: &str) -> bool {
    if !pattern.contains('*') {
        return false;
    }
    let split = |h: &str| -> (String, Option<String>) {
        match h.rsplit_once(':') {
            Some((name, port)) => (name.to_string(), Some(port.to_string())),
            None => (h.to_string(), None),
        }
    };
    let ((p_name, p_port), (h_name, h_port)) = (split(pattern), split(host));
    if p_port != h_port {
        return false;
    }
    let p_labels: Vec<&str> = p_name.split('.').collect();
    let h_labels: Vec<&str> = h_name.split('.').collect();
    p_labels.len() == h_labels.len()
        && p_labels
            .iter()
            .zip(&h_labels)
            .all(|(p, h)| label_glob(p, h))
}

/// A label pattern with `*` wildcards (`*`, `web-*`); `*` never spans a dot.
fn label_glob(pattern: &str, label: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == label,
        Some((prefix, rest)) => {
            let Some(after) = label.strip_prefix(prefix) else {
                return false;
            };
            (0..=after.len()).any(|i| after.is_char_boundary(i) && label_glob(rest, &after[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auth_field_is_decoded_into_username_and_password() {
        let json = format!(
            r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{}"}}}}}}"#,
            b64("alice:s3:cret")
        );
        let auth = RegistryAuth::from_docker_config_json(json.as_bytes(), "127.0.0.1:5000");
        assert_eq!(auth, Some(RegistryAuth::basic("alice", "s3:cret")));
    }

    #[test]
    fn username_and_password_fields_are_used_without_auth() {
        let json =
            br#"{"auths":{"https://registry.example.com/v2/":{"username":"bob","password":"pw"}}}"#;
        let auth = RegistryAuth::from_docker_config_json(json, "registry.example.com");
        assert_eq!(auth, Some(RegistryAuth::basic("bob", "pw")));
    }

    #[test]
    fn docker_hub_aliases_match_docker_io() {
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}}}}}}"#,
            b64("u:p")
        );
        let auth = RegistryAuth::from_docker_config_json(json.as_bytes(), "docker.io");
        assert_eq!(auth, Some(RegistryAuth::basic("u", "p")));
    }

    #[test]
    fn ports_must_match_and_other_hosts_do_not() {
        let json = format!(
            r#"{{"auths":{{"example.com:5000":{{"auth":"{}"}}}}}}"#,
            b64("u:p")
        );
        assert_eq!(
            RegistryAuth::from_docker_config_json(json.as_bytes(), "example.com"),
            None
        );
        assert_eq!(
            RegistryAuth::from_docker_config_json(json.as_bytes(), "example.org:5000"),
            None
        );
    }

    #[test]
    fn exact_entries_win_over_wildcards() {
        let json = format!(
            r#"{{"auths":{{"*.example.com":{{"auth":"{}"}},"eu.example.com":{{"auth":"{}"}}}}}}"#,
            b64("wild:1"),
            b64("exact:2")
        );
        let get = |h| RegistryAuth::from_docker_config_json(json.as_bytes(), h).map(|a| a.username);
        assert_eq!(get("eu.example.com").as_deref(), Some("exact"));
        assert_eq!(get("us.example.com").as_deref(), Some("wild"));
        assert_eq!(get("a.b.example.com"), None);
    }

    #[test]
    fn legacy_dockercfg_without_auths_wrapper_is_read() {
        let json = format!(r#"{{"quay.io":{{"auth":"{}","email":"x@y"}}}}"#, b64("q:w"));
        let auth = RegistryAuth::from_docker_config_json(json.as_bytes(), "quay.io");
        assert_eq!(auth, Some(RegistryAuth::basic("q", "w")));
    }

    #[test]
    fn registry_tokens_become_bearer_credentials() {
        let json = br#"{"auths":{"quay.io":{"registrytoken":"tok"}}}"#;
        let auth = RegistryAuth::from_docker_config_json(json, "quay.io").expect("auth");
        assert_eq!(auth.registry_token.as_deref(), Some("tok"));
    }

    #[test]
    fn garbage_yields_none_instead_of_panicking() {
        for json in [
            &b"not json"[..],
            b"[]",
            br#"{"auths":{"a":{"auth":"!!!"}}}"#,
            br#"{"auths":{"a":{"auth":"bm9jb2xvbg=="}}}"#,
        ] {
            assert_eq!(RegistryAuth::from_docker_config_json(json, "a"), None);
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let text = format!("{:?}", RegistryAuth::basic("u", "hunter2"));
        assert!(!text.contains("hunter2"));
    }
}
