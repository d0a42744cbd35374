//! Definitions of the built-in kinds, generated once from k8s-openapi's `schemars` impls and
//! normalised to the shape kube-apiserver publishes in `/openapi/v2`: `#/definitions/` refs
//! (with sibling descriptions), int-or-string and quantity as strings, the kind's
//! `x-kubernetes-group-version-kind`, list kinds, and the strategic-merge extensions that
//! k8s-openapi does not carry (taken from `nodeless_core::patch::typegraph`).

use k8s_openapi::api::{
    apps::v1 as apps, autoscaling::v1 as autoscaling_v1, autoscaling::v2 as autoscaling_v2,
    batch::v1 as batch, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
    node::v1 as node, policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling,
    storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use nodeless_core::patch::typegraph;
use schemars::{generate::SchemaSettings, JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

pub(crate) const DEFINITIONS_PREFIX: &str = "#/definitions/";
pub(crate) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
pub(crate) const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub(crate) const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// Registers a type's definition (and everything it refers to); returns its name.
type Register = fn(&mut SchemaGenerator) -> String;

fn register<T: JsonSchema>(g: &mut SchemaGenerator) -> String {
    g.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// The Rust type of every built-in kind of `nodeless_core::resource::builtins()`.
const KINDS: &[(&str, &str, &str, Register)] = &[
    ("", "v1", "Namespace", register::<core::Namespace>),
    ("", "v1", "Pod", register::<core::Pod>),
    ("", "v1", "Service", register::<core::Service>),
    ("", "v1", "Endpoints", register::<core::Endpoints>),
    ("", "v1", "ConfigMap", register::<core::ConfigMap>),
    ("", "v1", "Secret", register::<core::Secret>),
    ("", "v1", "ServiceAccount", register::<core::ServiceAccount>),
    ("", "v1", "Event", register::<core::Event>),
    ("", "v1", "Node", register::<core::Node>),
    ("", "v1", "LimitRange", register::<core::LimitRange>),
    ("", "v1", "ResourceQuota", register::<core::ResourceQuota>),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        register::<core::PersistentVolumeClaim>,
    ),
    (
        "",
        "v1",
        "ReplicationController",
        register::<core::ReplicationController>,
    ),
    ("apps", "v1", "Deployment", register::<apps::Deployment>),
    ("apps", "v1", "ReplicaSet", register::<apps::ReplicaSet>),
    ("apps", "v1", "StatefulSet", register::<apps::StatefulSet>),
    ("apps", "v1", "DaemonSet", register::<apps::DaemonSet>),
    (
        "apps",
        "v1",
        "ControllerRevision",
        register::<apps::ControllerRevision>,
    ),
    ("batch", "v1", "Job", register::<batch::Job>),
    ("batch", "v1", "CronJob", register::<batch::CronJob>),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        register::<autoscaling_v2::HorizontalPodAutoscaler>,
    ),
    (
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        register::<autoscaling_v1::HorizontalPodAutoscaler>,
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        register::<networking::Ingress>,
    ),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        register::<networking::IngressClass>,
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        register::<networking::NetworkPolicy>,
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        register::<discovery::EndpointSlice>,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        register::<coordination::Lease>,
    ),
    (
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        register::<node::RuntimeClass>,
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        register::<policy::PodDisruptionBudget>,
    ),
    ("events.k8s.io", "v1", "Event", register::<events::Event>),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        register::<apiextensions::CustomResourceDefinition>,
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        register::<scheduling::PriorityClass>,
    ),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        register::<storage::StorageClass>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        register::<rbac::ClusterRole>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        register::<rbac::ClusterRoleBinding>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        register::<rbac::Role>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        register::<rbac::RoleBinding>,
    ),
];

/// Types every group-version's operations refer to.
const SHARED: &[Register] = &[
    register::<meta::ObjectMeta>,
    register::<meta::ListMeta>,
    register::<meta::Status>,
    register::<meta::DeleteOptions>,
    register::<meta::WatchEvent<meta::Status>>,
    register::<meta::Patch>,
    register::<autoscaling_v1::Scale>,
];

pub(crate) struct Catalog {
    /// Every definition, v2-shaped, keyed by name.
    pub definitions: Map<String, Value>,
    kinds: Vec<(&'static str, &'static str, &'static str, String)>,
}

impl Catalog {
    /// The definition name of a built-in kind.
    pub fn kind_definition(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .iter()
            .find(|(g, v, k, _)| *g == group && *v == version && *k == kind)
            .map(|(.., d)| d.as_str())
    }
}

/// The catalog, built on first use (a few milliseconds) and shared from then on.
pub(crate) fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(build)
}

fn build() -> Catalog {
    let mut generator = SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
            s.transforms.clear();
            s.inline_subschemas = false;
        })
        .into_generator();
    let kinds: Vec<_> = KINDS
        .iter()
        .map(|(g, v, k, reg)| (*g, *v, *k, reg(&mut generator)))
        .collect();
    for reg in SHARED {
        reg(&mut generator);
    }
    let mut definitions = generator.take_definitions(false);
    normalize_scalars(&mut definitions);
    for (group, version, kind, name) in &kinds {
        if let Some(Value::Object(def)) = definitions.get_mut(name) {
            mark_kind(def, group, version, kind);
        }
        let list = list_definition(name, kind, &format!("{DEFINITIONS_PREFIX}{name}"));
        let mut list = list.as_object().cloned().unwrap_or_default();
        mark_kind(&mut list, group, version, &format!("{kind}List"));
        definitions.insert(format!("{name}List"), Value::Object(list));
    }
    if let Some(Value::Object(def)) = definitions.get_mut(SCALE) {
        mark_kind(def, "autoscaling", "v1", "Scale");
    }
    if let Some(Value::Object(def)) = definitions.get_mut(STATUS) {
        mark_kind(def, "", "v1", "Status");
    }
    add_patch_extensions(&mut definitions);
    Catalog { definitions, kinds }
}

/// Definitions upstream publishes without a type, any JSON value being allowed; k8s-openapi
/// gives them a type or a `oneOf` that Swagger 2.0 cannot express.
const ANY_VALUE: &[&str] = &[
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

/// int-or-string and quantity are strings in v2, as upstream publishes them (the v3
/// documents turn them into `oneOf`); k8s-openapi describes both as int-or-string.
fn normalize_scalars(definitions: &mut Map<String, Value>) {
    for name in ANY_VALUE {
        if let Some(Value::Object(def)) = definitions.get_mut(*name) {
            def.retain(|k, _| k == "description");
        }
    }
    for (name, extra) in [(INT_OR_STRING, Some("int-or-string")), (QUANTITY, None)] {
        let Some(Value::Object(def)) = definitions.get_mut(name) else {
            continue;
        };
        def.remove("x-kubernetes-int-or-string");
        def.insert("type".into(), "string".into());
        if let Some(format) = extra {
            def.insert("format".into(), format.into());
        }
    }
}

/// Adds the GVK extension, and drops `metadata` from `required`: k8s-openapi requires it
/// because the Rust field is not optional, upstream does not.
pub(crate) fn mark_kind(def: &mut Map<String, Value>, group: &str, version: &str, kind: &str) {
    def.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([{"group": group, "kind": kind, "version": version}]),
    );
    if let Some(Value::Array(required)) = def.get_mut("required") {
        required.retain(|r| r != "metadata");
        if required.is_empty() {
            def.remove("required");
        }
    }
}

/// The `<Kind>List` definition upstream generates for every kind; `item_ref` is the `$ref`
/// of the kind's own definition.
pub(crate) fn list_definition(definition: &str, kind: &str, item_ref: &str) -> Value {
    let prefix = item_ref
        .strip_suffix(definition)
        .unwrap_or(DEFINITIONS_PREFIX);
    json!({
        "description": format!("{kind}List is a list of {kind}"),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", plural_words(kind)),
                "type": "array",
                "items": {"$ref": item_ref},
            },
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": {
                "$ref": format!("{prefix}{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
    })
}

fn plural_words(kind: &str) -> String {
    format!("{}s", kind.to_lowercase())
}

pub(crate) const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
pub(crate) const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
pub(crate) const METADATA_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` on every property the
/// strategic-merge table knows, as upstream's Go struct tags publish them.
fn add_patch_extensions(definitions: &mut Map<String, Value>) {
    for (definition, field, meta) in typegraph::all_patch_meta() {
        let property = definitions
            .get_mut(definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
            .and_then(Value::as_object_mut);
        let Some(property) = property else { continue };
        if let Some(key) = meta.merge_key {
            property.insert("x-kubernetes-patch-merge-key".into(), key.into());
        }
        property.insert(
            "x-kubernetes-patch-strategy".into(),
            meta.strategy.as_str().into(),
        );
    }
}
