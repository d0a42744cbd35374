//! Discovery documents: the legacy per-group lists and aggregated discovery (apidiscovery.k8s.io/v2).

use crate::registry::Registry;
use nodeless_core::resource::ResourceType;
use serde_json::{json, Value};

/// Subresources served for a type, with their verbs and response kind.
fn subresources(rt: &ResourceType) -> Vec<(&'static str, Vec<&'static str>, Value)> {
    let own = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
    let mut subs = Vec::new();
    if rt.has_status {
        subs.push(("status", vec!["get", "patch", "update"], own.clone()));
    }
    if rt.scale.is_some() {
        subs.push((
            "scale",
            vec!["get", "patch", "update"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
        ));
    }
    if rt.group.is_empty() && rt.kind == "Pod" {
        subs.push((
            "binding",
            vec!["create"],
            json!({"group": "", "version": "v1", "kind": "Binding"}),
        ));
        subs.push((
            "eviction",
            vec!["create"],
            json!({"group": "policy", "version": "v1", "kind": "Eviction"}),
        ));
        subs.push((
            "log",
            vec!["get"],
            json!({"group": "", "version": "v1", "kind": "Pod"}),
        ));
        subs.push((
            "exec",
            vec!["create", "get"],
            json!({"group": "", "version": "v1", "kind": "PodExecOptions"}),
        ));
        subs.push((
            "attach",
            vec!["create", "get"],
            json!({"group": "", "version": "v1", "kind": "PodAttachOptions"}),
        ));
        subs.push((
            "portforward",
            vec!["create", "get"],
            json!({"group": "", "version": "v1", "kind": "PodPortForwardOptions"}),
        ));
    }
    if rt.group.is_empty() && rt.kind == "Namespace" {
        subs.push(("finalize", vec!["update"], own.clone()));
    }
    subs
}

/// `APIResourceList` for one group/version (`/api/v1`, `/apis/apps/v1`).
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<ResourceType> = registry
        .all()
        .into_iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in &types {
        let mut r = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": t.verbs,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        for (sub, verbs, kind) in subresources(t) {
            resources.push(json!({
                "name": format!("{}/{sub}", t.plural), "singularName": "", "namespaced": t.namespaced,
                "group": kind["group"], "version": kind["version"], "kind": kind["kind"], "verbs": verbs,
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// Each non-core group with its versions, preferred (first registered) version first.
fn groups(registry: &Registry) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in registry.all() {
        if t.group.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) if !vs.contains(&t.version) => vs.push(t.version.clone()),
            Some(_) => {}
            None => groups.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    groups
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

pub fn api_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = groups(registry)
        .iter()
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    groups(registry)
        .iter()
        .find(|(g, _)| g == name)
        .map(|(g, vs)| {
            let mut v = group_json(g, vs);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            v
        })
}

/// Aggregated discovery for the core group (`legacy`) or all named groups.
pub fn aggregated(registry: &Registry, legacy: bool, version: &str) -> Value {
    let all = registry.all();
    let group_names: Vec<(String, Vec<String>)> = if legacy {
        vec![(String::new(), vec!["v1".to_string()])]
    } else {
        groups(registry)
    };
    let items: Vec<Value> = group_names
        .iter()
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = all
                        .iter()
                        .filter(|t| &t.group == g && &t.version == v)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g}, "versions": vs})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items})
}

fn aggregated_resource(t: &ResourceType) -> Value {
    let subs: Vec<Value> = subresources(t)
        .into_iter()
        .map(|(s, verbs, kind)| json!({"subresource": s, "responseKind": kind, "verbs": verbs}))
        .collect();
    let mut r = json!({
        "resource": t.plural,
        "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": t.verbs,
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_list_their_subresources() {
        let r = Registry::with_builtins();
        let list = resource_list(&r, "", "v1").expect("core");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(
            names.contains(&"pods/status")
                && names.contains(&"pods/exec")
                && names.contains(&"namespaces/finalize")
        );
    }

    #[test]
    fn aggregated_discovery_lists_apps_with_scale() {
        let r = Registry::with_builtins();
        let d = aggregated(&r, false, "v2");
        let apps = d["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["metadata"]["name"] == "apps")
            .expect("apps");
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["resource"] == "deployments")
            .expect("deployments");
        assert!(deploy["subresources"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["subresource"] == "scale"));
    }
}
