//! Structure of the generated documents: what kubectl reads must be there and consistent.

use super::*;
use nodeless_core::resource::builtins;
use serde_json::json;

pub(super) fn crontab() -> (ResourceType, Value) {
    let rt = ResourceType {
        group: "stable.example.com".into(),
        version: "v1".into(),
        kind: "CronTab".into(),
        list_kind: "CronTabList".into(),
        plural: "crontabs".into(),
        singular: "crontab".into(),
        namespaced: true,
        short_names: vec!["ct".into()],
        categories: vec![],
        has_status: true,
        scale: None,
        has_spec_generation: true,
        verbs: nodeless_core::resource::ALL_VERBS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        custom: true,
    };
    let schema = json!({
        "type": "object",
        "description": "A periodic job.",
        "properties": {
            "spec": {"type": "object", "properties": {
                "cronSpec": {"type": "string", "description": "When to run."},
                "replicas": {"type": "integer", "nullable": true, "minimum": 1},
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    });
    (rt, schema)
}

fn docs_with<R>(f: impl FnOnce(&OpenApiInput) -> R) -> R {
    let resources = builtins();
    let (rt, schema) = crontab();
    let mut all = resources.clone();
    all.push(rt.clone());
    let crds = vec![(rt, schema)];
    f(&OpenApiInput {
        resources: &all,
        crd_schemas: &crds,
    })
}

/// Every `$ref` (a string under a `$ref` key) in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

fn assert_refs_resolve(doc: &Value, prefix: &str, defs: &Value) {
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{r} does not start with {prefix}"));
        assert!(defs.get(name).is_some(), "{r} does not resolve");
    }
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if method != "parameters" {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    out
}

#[test]
fn every_builtin_kind_has_a_typed_definition() {
    let cat = catalog::catalog();
    // Reviews (create-only, never stored) are answered, not decoded or published.
    for rt in builtins()
        .into_iter()
        .filter(|r| r.verbs.iter().any(|v| v == "get"))
    {
        let def = cat.kind_definition(&rt.group, &rt.version, &rt.kind);
        assert!(
            def.is_some(),
            "{}/{} {} has no k8s-openapi type",
            rt.group,
            rt.version,
            rt.kind
        );
    }
}

#[test]
fn v2_refs_all_resolve_to_definitions() {
    let doc = docs_with(v2_document);
    assert_eq!(doc["swagger"], "2.0");
    assert_refs_resolve(&doc, "#/definitions/", &doc["definitions"]);
}

#[test]
fn v3_refs_of_every_group_version_resolve_within_that_document() {
    let docs = docs_with(v3_documents);
    assert!(docs.group_versions.contains_key("api/v1"));
    assert!(docs.group_versions.contains_key("apis/apps/v1"));
    assert!(docs
        .group_versions
        .contains_key("apis/stable.example.com/v1"));
    for (key, doc) in &docs.group_versions {
        assert_eq!(doc["openapi"], "3.0.0", "{key}");
        assert_refs_resolve(doc, "#/components/schemas/", &doc["components"]["schemas"]);
    }
}

#[test]
fn kinds_and_lists_carry_their_group_version_kind() {
    let doc = docs_with(v2_document);
    let defs = &doc["definitions"];
    assert_eq!(
        defs["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert_eq!(
        defs["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "DeploymentList", "version": "v1"}])
    );
    assert_eq!(
        defs["io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler"]
            ["x-kubernetes-group-version-kind"][0]["version"],
        "v2"
    );
    assert!(
        defs["io.k8s.api.core.v1.Pod"].get("required").is_none(),
        "metadata is not required upstream"
    );
}

#[test]
fn pod_spec_containers_carry_strategic_merge_extensions_in_both_documents() {
    let v2 = docs_with(v2_document);
    let containers = &v2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(
        containers["items"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.Container"
    );
    let v3 = docs_with(|i| v3_group_version(i, "", "v1")).expect("core v1");
    let containers =
        &v3["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(
        containers["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Container"
    );
    let volumes =
        &v3["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
}

#[test]
fn v3_wraps_described_refs_in_all_of() {
    let v3 = docs_with(|i| v3_group_version(i, "apps", "v1")).expect("apps v1");
    let metadata =
        &v3["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["properties"]["metadata"];
    assert_eq!(
        metadata["allOf"],
        json!([{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}])
    );
    assert!(metadata["description"].is_string());
    let ios = &v3["components"]["schemas"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(
        ios["oneOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert!(
        v3["components"]["schemas"]
            .get("io.k8s.api.core.v1.Pod")
            .is_none(),
        "only reachable schemas"
    );
}

#[test]
fn every_write_operation_offers_field_validation_and_dry_run() {
    for doc in [docs_with(v2_document)]
        .into_iter()
        .chain(docs_with(v3_documents).group_versions.into_values())
    {
        for (path, method, op) in operations(&doc) {
            if !matches!(method.as_str(), "post" | "put" | "patch") {
                continue;
            }
            let names: Vec<&str> = op["parameters"]
                .as_array()
                .expect("params")
                .iter()
                .filter_map(|p| p["name"].as_str())
                .collect();
            for required in ["fieldValidation", "dryRun", "fieldManager"] {
                assert!(
                    names.contains(&required),
                    "{method} {path} lacks {required}"
                );
            }
            let field_validation = op["parameters"]
                .as_array()
                .expect("params")
                .iter()
                .find(|p| p["name"] == "fieldValidation")
                .expect("present");
            assert_eq!(field_validation["in"], "query");
        }
    }
}

#[test]
fn pod_operations_match_upstream_names_and_actions() {
    let v3 = docs_with(|i| v3_group_version(i, "", "v1")).expect("core v1");
    let item = &v3["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"];
    assert_eq!(item["get"]["operationId"], "readCoreV1NamespacedPod");
    assert_eq!(item["patch"]["operationId"], "patchCoreV1NamespacedPod");
    assert_eq!(item["patch"]["x-kubernetes-action"], "patch");
    assert_eq!(
        item["patch"]["x-kubernetes-group-version-kind"],
        json!({"group": "", "kind": "Pod", "version": "v1"})
    );
    let content = item["patch"]["requestBody"]["content"]
        .as_object()
        .expect("content");
    assert!(content.contains_key("application/strategic-merge-patch+json"));
    let collection = &v3["paths"]["/api/v1/namespaces/{namespace}/pods"];
    assert_eq!(collection["get"]["operationId"], "listCoreV1NamespacedPod");
    assert_eq!(
        collection["delete"]["operationId"],
        "deleteCoreV1CollectionNamespacedPod"
    );
    assert_eq!(
        v3["paths"]["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
    assert_eq!(
        v3["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/status"]["put"]["operationId"],
        "replaceCoreV1NamespacedPodStatus"
    );
    let rbac = docs_with(|i| v3_group_version(i, "rbac.authorization.k8s.io", "v1")).expect("rbac");
    assert_eq!(
        rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["get"]["operationId"],
        "listRbacAuthorizationV1ClusterRole"
    );
    let apps = docs_with(|i| v3_group_version(i, "apps", "v1")).expect("apps");
    let scale =
        &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
    assert_eq!(
        scale["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
}

#[test]
fn custom_resources_are_explainable_and_not_strategic() {
    let v3 = docs_with(|i| v3_group_version(i, "stable.example.com", "v1")).expect("crd group");
    let schemas = &v3["components"]["schemas"];
    let crontab = &schemas["com.example.stable.v1.CronTab"];
    assert_eq!(
        crontab["x-kubernetes-group-version-kind"],
        json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
    );
    assert_eq!(
        crontab["properties"]["spec"]["properties"]["cronSpec"]["description"],
        "When to run."
    );
    assert_eq!(
        crontab["properties"]["spec"]["properties"]["replicas"]["nullable"],
        true
    );
    assert!(crontab["properties"]["metadata"]["allOf"].is_array());
    assert!(schemas
        .get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
        .is_some());
    assert_eq!(
        schemas["com.example.stable.v1.CronTabList"]["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/com.example.stable.v1.CronTab"
    );
    let patch =
        &v3["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"];
    assert_eq!(
        patch["operationId"],
        "patchStableExampleComV1NamespacedCronTab"
    );
    assert!(!patch["requestBody"]["content"]
        .as_object()
        .expect("content")
        .contains_key("application/strategic-merge-patch+json"));

    let v2 = docs_with(v2_document);
    let crontab = &v2["definitions"]["com.example.stable.v1.CronTab"];
    assert_eq!(
        crontab["properties"]["spec"]["properties"]["replicas"],
        json!({"minimum": 1})
    );
    assert_eq!(
        crontab["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
}

#[test]
fn index_points_at_each_document_by_the_hash_of_its_bytes() {
    let docs = docs_with(v3_documents);
    let entry = &docs.index["paths"]["apis/apps/v1"]["serverRelativeURL"];
    let bytes = serde_json::to_vec(&docs.group_versions["apis/apps/v1"]).expect("serializes");
    let hash: String = Sha512::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(
        entry.as_str(),
        Some(format!("/openapi/v3/apis/apps/v1?hash={hash}").as_str())
    );
    let again = docs_with(|i| v3_group_version(i, "apps", "v1")).expect("apps");
    assert_eq!(
        serde_json::to_vec(&again).expect("serializes"),
        bytes,
        "documents are deterministic"
    );
    assert_eq!(docs_with(v3_index), docs.index);
    assert!(docs_with(|i| v3_group_version(i, "nothing.example.com", "v1")).is_none());
}

#[test]
fn v2_schemas_use_only_swagger_2_keywords() {
    fn check(name: &str, s: &Value) {
        let Some(map) = s.as_object() else { return };
        for (k, v) in map {
            assert!(
                k.starts_with("x-") || crd::SWAGGER2_KEYWORDS.contains(&k.as_str()),
                "{name}: {k}"
            );
            match k.as_str() {
                "properties" => v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .for_each(|(p, s)| check(&format!("{name}.{p}"), s)),
                "items" | "additionalProperties" => check(name, v),
                "allOf" => v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .for_each(|s| check(name, s)),
                _ => {}
            }
        }
        if map.contains_key("$ref") {
            assert!(
                !map.contains_key("type") && !map.contains_key("properties"),
                "{name}: $ref with a type"
            );
        }
        if map.get("type") == Some(&json!("array")) {
            assert!(
                map.get("items").is_some_and(Value::is_object),
                "{name}: array without items"
            );
        }
        assert!(
            !map.get("type").is_some_and(Value::is_array),
            "{name}: several types"
        );
    }
    let doc = docs_with(v2_document);
    for (name, def) in doc["definitions"].as_object().expect("definitions") {
        check(name, def);
    }
}
