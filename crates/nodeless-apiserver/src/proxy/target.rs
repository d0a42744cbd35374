//! Where a Pod's log, exec, attach or port-forward request goes: the node endpoint of the
//! host its instance runs on (Pod → `nodeless.dev/host` → `Host` object → endpoint and token).

use crate::rest::Api;
use base64::Engine;
use nodeless_core::StatusError;
use serde_json::Value;

/// Mirrors of `nodeless-kube`'s names; the API server stays free of the kube client.
pub const HOST_ANNOTATION: &str = "nodeless.dev/host";
const HOST_GROUP: &str = "nodeless.dev";
const HOST_VERSION: &str = "v1alpha1";
const HOST_PLURAL: &str = "hosts";
const TOKEN_NAMESPACE: &str = "kube-system";
const TOKEN_KEY: &str = "token";
const CERT_KEY: &str = "tls.crt";
/// kubectl's annotation naming the container commands default to.
const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// A resolved request to a host agent's node endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTarget {
    /// The Host object's name, for error messages.
    pub host: String,
    /// `host:port` of the node endpoint.
    pub authority: String,
    /// The certificate (DER) the endpoint must present, for an `https` endpoint; plain HTTP
    /// without.
    pub pinned_cert: Option<Vec<u8>>,
    /// Path and the client's query, e.g. `/containerLogs/ns/pod/uid/app?follow=true`.
    pub path_and_query: String,
    pub token: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("pod {pod} does not have a host assigned")]
    NotBound { pod: String },
    #[error("a container name must be specified for pod {pod}")]
    NoContainers { pod: String },
    #[error("a container name must be specified for pod {pod}, choose one of: [{}]", .names.join(" "))]
    ChooseContainer { pod: String, names: Vec<String> },
    #[error("container {container} is not valid for pod {pod}")]
    UnknownContainer { pod: String, container: String },
    #[error("pod {pod} is bound but names no host in annotation {HOST_ANNOTATION}")]
    NoHostAnnotation { pod: String },
    #[error("host {host} is not registered: no hosts.nodeless.dev object of that name")]
    HostMissing { host: String },
    #[error("host {host} cannot be reached: {why}")]
    HostUnusable { host: String, why: String },
}

impl From<TargetError> for StatusError {
    fn from(e: TargetError) -> Self {
        match e {
            TargetError::NoHostAnnotation { .. }
            | TargetError::HostMissing { .. }
            | TargetError::HostUnusable { .. } => StatusError::service_unavailable(e.to_string()),
            _ => StatusError::bad_request(e.to_string()),
        }
    }
}

/// The node endpoint path for a Pod subresource, as the kubelet names them.
fn node_path(sub: &str, ns: &str, pod: &str, uid: &str, container: &str) -> Option<String> {
    let verb = match sub {
        "log" => "containerLogs",
        "exec" => "exec",
        "attach" => "attach",
        "portforward" => return Some(format!("/portForward/{ns}/{pod}/{uid}")),
        _ => return None,
    };
    Some(format!("/{verb}/{ns}/{pod}/{uid}/{container}"))
}

/// Resolves where `sub` of `pod` goes; `raw_query` is passed on unchanged.
pub fn resolve(
    api: &Api,
    pod: &Value,
    sub: &str,
    container: Option<&str>,
    raw_query: Option<&str>,
) -> Result<NodeTarget, StatusError> {
    let name = str_at(pod, "/metadata/name");
    let container = match sub {
        "portforward" => String::new(),
        _ => choose_container(pod, container)?,
    };
    if str_at(pod, "/spec/nodeName").is_empty() {
        return Err(TargetError::NotBound { pod: name.into() }.into());
    }
    let host = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(HOST_ANNOTATION))
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| TargetError::NoHostAnnotation { pod: name.into() })?;
    let endpoint = host_endpoint(api, host)?;
    let ns = str_at(pod, "/metadata/namespace");
    let uid = str_at(pod, "/metadata/uid");
    let path = node_path(sub, ns, name, uid, &container).ok_or_else(|| {
        StatusError::new(
            405,
            "MethodNotAllowed",
            format!("pods/{sub} is not proxied"),
        )
    })?;
    let path_and_query = match raw_query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    Ok(NodeTarget {
        host: host.into(),
        authority: endpoint.authority,
        pinned_cert: endpoint.pinned_cert,
        path_and_query,
        token: endpoint.token,
    })
}

/// Picks the container as upstream's validateContainer does; kubectl's default-container
/// annotation settles the choice among several.
pub fn choose_container(pod: &Value, requested: Option<&str>) -> Result<String, TargetError> {
    let pod_name = str_at(pod, "/metadata/name").to_string();
    let names = |field: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
            .collect()
    };
    let main = names("containers");
    let all: Vec<String> = [
        names("initContainers"),
        main.clone(),
        names("ephemeralContainers"),
    ]
    .concat();
    if let Some(c) = requested.filter(|c| !c.is_empty()) {
        return match all.iter().any(|n| n == c) {
            true => Ok(c.to_string()),
            false => Err(TargetError::UnknownContainer {
                pod: pod_name,
                container: c.into(),
            }),
        };
    }
    let annotated = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(DEFAULT_CONTAINER_ANNOTATION))
        .and_then(Value::as_str)
        .filter(|d| all.iter().any(|n| n == d));
    match (main.as_slice(), annotated) {
        (_, Some(d)) => Ok(d.to_string()),
        ([only], None) => Ok(only.clone()),
        ([], None) => Err(TargetError::NoContainers { pod: pod_name }),
        (_, None) => Err(TargetError::ChooseContainer {
            pod: pod_name,
            names: all,
        }),
    }
}

/// What reaching a Host's node endpoint takes.
struct HostEndpoint {
    authority: String,
    pinned_cert: Option<Vec<u8>>,
    token: String,
}

/// The Host's endpoint, the token its agent expects and, for `https`, the certificate it
/// serves, from this server's store.
fn host_endpoint(api: &Api, host: &str) -> Result<HostEndpoint, TargetError> {
    let missing = || TargetError::HostMissing { host: host.into() };
    let unusable = |why: String| TargetError::HostUnusable {
        host: host.into(),
        why,
    };
    let rt = api
        .registry
        .lookup(HOST_GROUP, HOST_VERSION, HOST_PLURAL)
        .ok_or_else(missing)?;
    let obj = api.get(&rt, None, host).map_err(|_| missing())?;
    let (tls, authority) = endpoint_authority(str_at(&obj, "/spec/endpoint")).map_err(unusable)?;
    let secret = str_at(&obj, "/spec/tokenSecret");
    if secret.is_empty() {
        return Err(unusable("its spec.tokenSecret is empty".into()));
    }
    let secrets = api
        .registry
        .lookup("", "v1", "secrets")
        .ok_or_else(|| unusable("secrets are not served".into()))?;
    let obj = api
        .get(&secrets, Some(TOKEN_NAMESPACE), secret)
        .map_err(|_| unusable(format!("Secret {TOKEN_NAMESPACE}/{secret} is missing")))?;
    let field = |key: &str| {
        obj.pointer(&format!("/data/{key}"))
            .and_then(Value::as_str)
            .and_then(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unusable(format!("Secret {TOKEN_NAMESPACE}/{secret} has no {key}")))
    };
    let token = field(TOKEN_KEY)?;
    let pinned_cert = match tls {
        false => None,
        true => Some(
            super::pinned::certificate_der(&field(CERT_KEY)?).ok_or_else(|| {
                unusable(format!(
                    "the {CERT_KEY} of Secret {TOKEN_NAMESPACE}/{secret} is not a PEM certificate"
                ))
            })?,
        ),
    };
    Ok(HostEndpoint {
        authority,
        pinned_cert,
        token,
    })
}

/// `https://host:port` → (TLS, `host:port`); plain `http://` for agents that serve it.
fn endpoint_authority(endpoint: &str) -> Result<(bool, String), String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| format!("its endpoint {endpoint:?} is not a URL"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(format!(
                "its endpoint {endpoint:?} is not an https://host:port URL"
            ))
        }
    };
    match uri.authority() {
        Some(a) if a.port().is_some() => Ok((tls, a.to_string())),
        Some(a) => Ok((tls, format!("{}:{}", a.host(), if tls { 443 } else { 80 }))),
        None => Err(format!(
            "its endpoint {endpoint:?} is not an https://host:port URL"
        )),
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], init: &[&str], annotations: Value) -> Value {
        let named = |ns: &[&str]| ns.iter().map(|n| json!({"name": n})).collect::<Vec<_>>();
        json!({"metadata": {"name": "web", "annotations": annotations},
               "spec": {"containers": named(containers), "initContainers": named(init)}})
    }

    #[test]
    fn the_only_container_is_chosen_when_none_is_named() {
        let p = pod(&["app"], &["setup"], json!({}));
        assert_eq!(choose_container(&p, None), Ok("app".into()));
        assert_eq!(choose_container(&p, Some("")), Ok("app".into()));
    }

    #[test]
    fn several_containers_need_a_name_and_the_error_lists_them_all() {
        let p = pod(&["a", "b"], &["init"], json!({}));
        let e = choose_container(&p, None).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "a container name must be specified for pod web, choose one of: [init a b]"
        );
        assert_eq!(StatusError::from(e).code, 400);
    }

    #[test]
    fn the_default_container_annotation_settles_the_choice() {
        let p = pod(&["a", "b"], &[], json!({DEFAULT_CONTAINER_ANNOTATION: "b"}));
        assert_eq!(choose_container(&p, None), Ok("b".into()));
        let stale = pod(
            &["a", "b"],
            &[],
            json!({DEFAULT_CONTAINER_ANNOTATION: "gone"}),
        );
        assert!(choose_container(&stale, None).is_err());
    }

    #[test]
    fn a_named_container_must_exist_but_may_be_an_init_container() {
        let p = pod(&["a", "b"], &["init"], json!({}));
        assert_eq!(choose_container(&p, Some("init")), Ok("init".into()));
        let e = choose_container(&p, Some("c")).expect_err("refused");
        assert_eq!(e.to_string(), "container c is not valid for pod web");
    }

    #[test]
    fn node_paths_follow_the_kubelet_names() {
        let path = |s| node_path(s, "ns", "web", "u1", "app");
        assert_eq!(path("log").as_deref(), Some("/containerLogs/ns/web/u1/app"));
        assert_eq!(path("exec").as_deref(), Some("/exec/ns/web/u1/app"));
        assert_eq!(path("attach").as_deref(), Some("/attach/ns/web/u1/app"));
        assert_eq!(
            path("portforward").as_deref(),
            Some("/portForward/ns/web/u1")
        );
        assert_eq!(path("proxy"), None);
    }

    #[test]
    fn endpoints_are_https_or_http_urls() {
        assert_eq!(
            endpoint_authority("https://10.0.0.1:10250"),
            Ok((true, "10.0.0.1:10250".into()))
        );
        assert_eq!(
            endpoint_authority("http://10.0.0.1:10250"),
            Ok((false, "10.0.0.1:10250".into()))
        );
        assert_eq!(
            endpoint_authority("http://agent"),
            Ok((false, "agent:80".into()))
        );
        assert_eq!(
            endpoint_authority("https://agent"),
            Ok((true, "agent:443".into()))
        );
        assert!(endpoint_authority("ftp://10.0.0.1:10250").is_err());
        assert!(endpoint_authority("").is_err());
    }
}
