//! Turning a request path into what it addresses, as upstream's RequestInfoFactory does.

use nodeless_core::StatusError;

/// What a resource request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// The non-resource or discovery endpoints, and resource requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/api`
    LegacyRoot,
    /// `/api/v1`
    LegacyVersion(String),
    /// `/apis`
    GroupsRoot,
    /// `/apis/<group>`
    Group(String),
    /// `/apis/<group>/<version>`
    GroupVersion(String, String),
    Resource(Target),
}

/// Parses `/api/v1/namespaces/ns/pods/name/status` and friends; `None` if not an API path.
pub fn parse_path(path: &str) -> Result<Option<Route>, StatusError> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => return Ok(Some(Route::LegacyRoot)),
        ["api", v] => return Ok(Some(Route::LegacyVersion(v.to_string()))),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis"] => return Ok(Some(Route::GroupsRoot)),
        ["apis", g] => return Ok(Some(Route::Group(g.to_string()))),
        ["apis", g, v] => return Ok(Some(Route::GroupVersion(g.to_string(), v.to_string()))),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(None),
    };
    let mut rest = rest;
    let mut namespace = None;
    // `namespaces/<ns>/<resource>...` addresses namespaced objects; `namespaces/<ns>` alone
    // (or with a subresource such as `finalize`) is the namespace object itself.
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 && !is_namespace_subresource(rest[2])
    {
        namespace = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    let target = match rest {
        [plural] => Target {
            plural: plural.to_string(),
            name: None,
            subresource: None,
            namespace,
            group: group.into(),
            version: version.into(),
        },
        [plural, name] => Target {
            plural: plural.to_string(),
            name: Some(name.to_string()),
            subresource: None,
            namespace,
            group: group.into(),
            version: version.into(),
        },
        // `pods/<name>/proxy/<path...>` (and services): the rest is the proxied path, which
        // the handler takes from the request's path as sent (trailing slash included).
        [plural, name, sub] | [plural, name, sub @ "proxy", ..] => Target {
            plural: plural.to_string(),
            name: Some(name.to_string()),
            subresource: Some(sub.to_string()),
            namespace,
            group: group.into(),
            version: version.into(),
        },
        _ => {
            return Err(StatusError::new(
                404,
                "NotFound",
                format!("the server could not find the requested resource ({path})"),
            ))
        }
    };
    Ok(Some(Route::Resource(target)))
}

fn is_namespace_subresource(s: &str) -> bool {
    matches!(s, "status" | "finalize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        match parse_path(path) {
            Ok(Some(Route::Resource(t))) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_subresource_paths_are_split() {
        let t = target("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(
            (
                t.plural.as_str(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            ("pods", Some("web"), Some("status"))
        );
    }

    #[test]
    fn a_pod_proxy_path_may_go_on_past_the_subresource() {
        let t = target("/api/v1/namespaces/default/pods/web:8080/proxy/metrics/raw/");
        assert_eq!(
            (t.name.as_deref(), t.subresource.as_deref()),
            (Some("web:8080"), Some("proxy"))
        );
        let status = parse_path("/api/v1/namespaces/default/pods/web/status/extra");
        assert!(status.is_err(), "only proxy takes a path: {status:?}");
    }

    #[test]
    fn namespace_object_and_its_finalize_subresource() {
        let t = target("/api/v1/namespaces/team-a");
        assert_eq!(
            (t.plural.as_str(), t.name.as_deref(), t.namespace),
            ("namespaces", Some("team-a"), None)
        );
        let f = target("/api/v1/namespaces/team-a/finalize");
        assert_eq!(f.subresource.as_deref(), Some("finalize"));
    }

    #[test]
    fn group_paths_and_discovery_roots() {
        let t = target("/apis/apps/v1/deployments");
        assert_eq!(
            (t.group.as_str(), t.version.as_str(), t.name),
            ("apps", "v1", None)
        );
        assert_eq!(
            parse_path("/apis/apps").ok().flatten(),
            Some(Route::Group("apps".into()))
        );
        assert_eq!(parse_path("/healthz").ok().flatten(), None);
    }
}
