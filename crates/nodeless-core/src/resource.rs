//! The resource model: which resource types exist, how they are named and addressed.
//!
//! Built-in types come from [`builtins`]; CustomResourceDefinitions add more at run time
//! (the API server turns an established CRD into a [`ResourceType`]).

use serde::{Deserialize, Serialize};

/// Paths of the scale subresource's fields inside a custom object (built-ins use fixed ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// One served resource: a kind in a group/version, with its REST names and subresources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceType {
    /// API group; empty for the core ("legacy") group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    /// Lower-case plural used in URLs, e.g. `pods`.
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub has_status: bool,
    pub scale: Option<ScalePaths>,
    /// Whether the object has a `spec` whose changes bump `metadata.generation`.
    pub has_spec_generation: bool,
    /// Types served only so a clear error can be returned later, or internal types,
    /// still take all verbs; this lists the verbs advertised by discovery.
    pub verbs: Vec<String>,
    /// True for resources defined by a CustomResourceDefinition.
    pub custom: bool,
}

impl ResourceType {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group: the name used in messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Storage key prefix shared by every object of this type (across versions).
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// Storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }

    /// Storage key prefix of one namespace's objects (or all, for `None`).
    pub fn namespace_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/", self.key_prefix()),
            _ => self.key_prefix(),
        }
    }
}

/// Verbs of an ordinary, fully served resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

struct Def {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    scale: bool,
    spec_generation: bool,
    create_only: bool,
}

const fn def(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
) -> Def {
    Def {
        group,
        version,
        kind,
        plural,
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        scale: false,
        spec_generation: false,
        create_only: false,
    }
}

impl Def {
    const fn cluster(mut self) -> Self {
        self.namespaced = false;
        self
    }
    const fn short(mut self, s: &'static [&'static str]) -> Self {
        self.short = s;
        self
    }
    const fn all(mut self) -> Self {
        self.categories = &["all"];
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    /// A review: answered on create, never stored (e.g. SelfSubjectAccessReview).
    const fn review(mut self) -> Self {
        self.create_only = true;
        self.namespaced = false;
        self
    }
    /// The object has a spec: changes to it bump metadata.generation.
    const fn spec(mut self) -> Self {
        self.spec_generation = true;
        self
    }
}

const BUILTINS: &[Def] = &[
    def("", "v1", "Namespace", "namespaces")
        .cluster()
        .short(&["ns"])
        .status(),
    def("", "v1", "Pod", "pods").short(&["po"]).all().status(),
    def("", "v1", "Service", "services")
        .short(&["svc"])
        .all()
        .status(),
    def("", "v1", "Endpoints", "endpoints").short(&["ep"]),
    def("", "v1", "ConfigMap", "configmaps").short(&["cm"]),
    def("", "v1", "Secret", "secrets"),
    def("", "v1", "ServiceAccount", "serviceaccounts").short(&["sa"]),
    def("", "v1", "Event", "events").short(&["ev"]),
    def("", "v1", "Node", "nodes")
        .cluster()
        .short(&["no"])
        .status(),
    def("", "v1", "LimitRange", "limitranges").short(&["limits"]),
    def("", "v1", "ResourceQuota", "resourcequotas")
        .short(&["quota"])
        .status(),
    def("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
        .short(&["pvc"])
        .status(),
    def("", "v1", "ReplicationController", "replicationcontrollers")
        .short(&["rc"])
        .all()
        .status()
        .scale()
        .spec(),
    def("apps", "v1", "Deployment", "deployments")
        .short(&["deploy"])
        .all()
        .status()
        .scale()
        .spec(),
    def("apps", "v1", "ReplicaSet", "replicasets")
        .short(&["rs"])
        .all()
        .status()
        .scale()
        .spec(),
    def("apps", "v1", "StatefulSet", "statefulsets")
        .short(&["sts"])
        .all()
        .status()
        .scale()
        .spec(),
    def("apps", "v1", "DaemonSet", "daemonsets")
        .short(&["ds"])
        .all()
        .status()
        .spec(),
    def("apps", "v1", "ControllerRevision", "controllerrevisions"),
    def("batch", "v1", "Job", "jobs").all().status().spec(),
    def("batch", "v1", "CronJob", "cronjobs")
        .short(&["cj"])
        .all()
        .status()
        .spec(),
    def(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
    )
    .short(&["hpa"])
    .all()
    .status()
    .spec(),
    // Served for `kubectl autoscale`; stored as v2 (see `convert`).
    def(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
    )
    .short(&["hpa"])
    .all()
    .status()
    .spec(),
    def("networking.k8s.io", "v1", "Ingress", "ingresses")
        .short(&["ing"])
        .status()
        .spec(),
    def("networking.k8s.io", "v1", "IngressClass", "ingressclasses").cluster(),
    def(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
    )
    .short(&["netpol"])
    .spec(),
    def("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    def("coordination.k8s.io", "v1", "Lease", "leases"),
    def("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses").cluster(),
    def(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
    )
    .short(&["pdb"])
    .status()
    .spec(),
    def("events.k8s.io", "v1", "Event", "events").short(&["ev"]),
    def(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    )
    .cluster()
    .short(&["crd", "crds"])
    .status()
    .spec(),
    def(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
    )
    .cluster()
    .short(&["pc"]),
    def("storage.k8s.io", "v1", "StorageClass", "storageclasses")
        .cluster()
        .short(&["sc"]),
    def(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
    )
    .cluster(),
    def(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
    )
    .cluster(),
    def("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    def(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
    ),
    def(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
    )
    .review(),
    def(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
    )
    .review(),
    def(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
    )
    .review(),
];

fn from_def(d: &Def) -> ResourceType {
    let scale = d.scale.then(|| ScalePaths {
        spec_replicas: ".spec.replicas".into(),
        status_replicas: ".status.replicas".into(),
        label_selector: Some(".status.selector".into()),
    });
    ResourceType {
        group: d.group.into(),
        version: d.version.into(),
        kind: d.kind.into(),
        list_kind: format!("{}List", d.kind),
        plural: d.plural.into(),
        singular: d.kind.to_lowercase(),
        namespaced: d.namespaced,
        short_names: d.short.iter().map(|s| s.to_string()).collect(),
        categories: d.categories.iter().map(|s| s.to_string()).collect(),
        has_status: d.status,
        scale,
        has_spec_generation: d.spec_generation,
        verbs: if d.create_only {
            vec!["create".to_string()]
        } else {
            ALL_VERBS.iter().map(|s| s.to_string()).collect()
        },
        custom: false,
    }
}

/// Every built-in resource type nodeless serves, in discovery order.
pub fn builtins() -> Vec<ResourceType> {
    BUILTINS.iter().map(from_def).collect()
}

/// The preferred version of each built-in group, in discovery order.
pub fn builtin_groups() -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for d in BUILTINS {
        match groups.iter_mut().find(|(g, _)| g == d.group) {
            Some((_, versions)) if !versions.iter().any(|v| v == d.version) => {
                versions.push(d.version.into())
            }
            Some(_) => {}
            None => groups.push((d.group.into(), vec![d.version.into()])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_namespaced_and_cluster_objects_differ_in_shape() {
        let all = builtins();
        let pods = all.iter().find(|r| r.plural == "pods").expect("pods");
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/core/pods/default/web"
        );
        let ns = all
            .iter()
            .find(|r| r.plural == "namespaces")
            .expect("namespaces");
        assert_eq!(ns.key(None, "default"), "/registry/core/namespaces/default");
        assert_eq!(pods.api_version(), "v1");
    }

    #[test]
    fn autoscaling_prefers_v2() {
        let groups = builtin_groups();
        let (_, versions) = groups
            .iter()
            .find(|(g, _)| g == "autoscaling")
            .expect("autoscaling");
        assert_eq!(versions, &vec!["v2".to_string(), "v1".to_string()]);
    }

    #[test]
    fn every_other_version_of_a_resource_is_converted() {
        // Objects are stored in one version's shape; a second served version needs conversion.
        let all = builtins();
        for t in &all {
            let others = all
                .iter()
                .filter(|o| o.group == t.group && o.plural == t.plural && o.version != t.version)
                .count();
            if others > 0
                && crate::convert::storage_version(&t.group, &t.version, &t.plural).is_none()
            {
                let stored = all.iter().any(|o| {
                    o.group == t.group
                        && o.plural == t.plural
                        && crate::convert::storage_version(&o.group, &o.version, &o.plural)
                            == Some(t.version.as_str())
                });
                assert!(
                    stored,
                    "{}/{} {} has no conversion",
                    t.group, t.version, t.plural
                );
            }
        }
    }
}
