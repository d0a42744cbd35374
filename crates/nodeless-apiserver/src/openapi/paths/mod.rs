//! The REST operations of each resource, as kube-apiserver's installer names and describes
//! them: `operationId`, `x-kubernetes-action`, `x-kubernetes-group-version-kind`, query
//! parameters, request bodies and responses, in either Swagger 2.0 or OpenAPI 3.0 form.

use super::catalog::{DELETE_OPTIONS, PATCH, SCALE, STATUS, WATCH_EVENT};
use super::params;
use super::Served;
use serde_json::{json, Map, Value};

mod render;

use render::{Body, Op, ANY};

/// Which document an operation is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    V2,
    V3,
}

impl Flavor {
    pub fn ref_prefix(self) -> &'static str {
        match self {
            Flavor::V2 => "#/definitions/",
            Flavor::V3 => "#/components/schemas/",
        }
    }

    pub fn schema_ref(self, definition: &str) -> Value {
        json!({"$ref": format!("{}{definition}", self.ref_prefix())})
    }
}

const PRODUCES: &[&str] = &["application/json", "application/yaml"];
const PRODUCES_WATCH: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;stream=watch",
];
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
/// Custom resources take every patch type but strategic merge, as upstream.
const PATCH_TYPES_CUSTOM: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// Names and shared facts of one resource's operations.
struct Resource<'a> {
    served: &'a Served<'a>,
    flavor: Flavor,
    /// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`: the group-version part of operation ids.
    gv: String,
    tag: String,
    gvk: Value,
}

/// Adds every path of one resource to `paths`.
pub(crate) fn resource_paths(s: &Served, flavor: Flavor, paths: &mut Map<String, Value>) {
    let rt = s.rt;
    let prefix = if rt.group.is_empty() {
        format!("/api/{}", rt.version)
    } else {
        format!("/apis/{}/{}", rt.group, rt.version)
    };
    let r = Resource {
        served: s,
        flavor,
        gv: format!(
            "{}{}",
            operation_id_part(&group_name(&rt.group), true),
            operation_id_part(&rt.version, true)
        ),
        tag: format!(
            "{}_{}",
            operation_id_part(&group_name(&rt.group), false),
            operation_id_part(&rt.version, false)
        ),
        gvk: json!({"group": rt.group, "kind": rt.kind, "version": rt.version}),
    };
    let scope = if rt.namespaced {
        "namespaces/{namespace}/"
    } else {
        ""
    };
    let collection = format!("{prefix}/{scope}{}", rt.plural);
    let item = format!("{collection}/{{name}}");
    insert(
        paths,
        &collection,
        r.scope_params(false),
        r.collection_ops(),
    );
    insert(paths, &item, r.scope_params(true), r.item_ops());
    if rt.namespaced && r.can("list") {
        let all = format!("{prefix}/{}", rt.plural);
        insert(
            paths,
            &all,
            vec![params::query(flavor, &params::PRETTY)],
            vec![r.list_all_namespaces()],
        );
    }
    if r.can("watch") {
        insert(
            paths,
            &format!("{prefix}/watch/{scope}{}", rt.plural),
            r.scope_params(false),
            vec![r.watch_list(true)],
        );
        insert(
            paths,
            &format!("{prefix}/watch/{scope}{}/{{name}}", rt.plural),
            r.scope_params(true),
            vec![r.watch_one()],
        );
        if rt.namespaced {
            insert(
                paths,
                &format!("{prefix}/watch/{}", rt.plural),
                vec![params::query(flavor, &params::PRETTY)],
                vec![r.watch_list(false)],
            );
        }
    }
    if rt.has_status {
        insert(
            paths,
            &format!("{item}/status"),
            r.scope_params(true),
            r.subresource_ops("Status", "status", &s.definition, r.gvk.clone()),
        );
    }
    if rt.scale.is_some() {
        let scale_gvk = json!({"group": "autoscaling", "kind": "Scale", "version": "v1"});
        insert(
            paths,
            &format!("{item}/scale"),
            r.scope_params(true),
            r.subresource_ops("Scale", "scale", SCALE, scale_gvk),
        );
    }
}

fn insert(paths: &mut Map<String, Value>, path: &str, parameters: Vec<Value>, ops: Vec<Value>) {
    if ops.is_empty() {
        return;
    }
    let mut item = Map::new();
    for op in ops {
        if let Value::Object(mut op) = op {
            let method = op
                .remove("method")
                .and_then(|m| m.as_str().map(str::to_string))
                .unwrap_or_default();
            item.insert(method, Value::Object(op));
        }
    }
    item.insert("parameters".into(), Value::Array(parameters));
    paths.insert(path.to_string(), Value::Object(item));
}

/// The API group as operation ids spell it: `core` for the legacy group, `.k8s.io` dropped.
fn group_name(group: &str) -> String {
    if group.is_empty() {
        "core".into()
    } else {
        group.trim_end_matches(".k8s.io").to_string()
    }
}

/// Upstream's `ToValidOperationID`: letters kept, every other character dropped and the
/// following letter capitalised (`rbac.authorization` → `RbacAuthorization`).
fn operation_id_part(s: &str, capitalize_first: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_numeric()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

impl Resource<'_> {
    fn can(&self, verb: &str) -> bool {
        self.served.rt.verbs.iter().any(|v| v == verb)
    }

    fn kind(&self) -> &str {
        &self.served.rt.kind
    }

    /// `Namespaced` in operation ids of namespaced resources.
    fn scope(&self) -> &'static str {
        if self.served.rt.namespaced {
            "Namespaced"
        } else {
            ""
        }
    }

    fn id(&self, verb: &str, rest: &str) -> String {
        format!("{verb}{}{rest}", self.gv)
    }

    fn scope_params(&self, with_name: bool) -> Vec<Value> {
        let mut out = Vec::new();
        if with_name {
            out.push(params::name_path(self.flavor, self.kind()));
        }
        if self.served.rt.namespaced {
            out.push(params::namespace_path(self.flavor));
        }
        out.push(params::query(self.flavor, &params::PRETTY));
        out
    }

    fn op(
        &self,
        method: &'static str,
        action: &'static str,
        id: String,
        description: String,
    ) -> Op {
        Op {
            method,
            id,
            description,
            action,
            gvk: self.gvk.clone(),
            params: &[],
            body: None,
            responses: Vec::new(),
            produces: PRODUCES,
        }
    }

    fn patch_types(&self) -> &'static [&'static str] {
        if self.served.strategic {
            PATCH_TYPES
        } else {
            PATCH_TYPES_CUSTOM
        }
    }

    fn collection_ops(&self) -> Vec<Value> {
        let (kind, scope, def) = (self.kind(), self.scope(), &self.served.definition);
        let mut ops = Vec::new();
        if self.can("list") {
            let mut op = self.op(
                "get",
                "list",
                self.id("list", &format!("{scope}{kind}")),
                format!("list or watch objects of kind {kind}"),
            );
            op.params = params::LIST;
            op.responses = vec![("200", "OK", self.served.list_definition.clone())];
            op.produces = PRODUCES_WATCH;
            ops.push(op);
        }
        if self.can("create") {
            let mut op = self.op(
                "post",
                "post",
                self.id("create", &format!("{scope}{kind}")),
                format!("create a {kind}"),
            );
            op.params = params::CREATE;
            op.body = Some(Body {
                definition: def.clone(),
                content_types: ANY,
                required: true,
            });
            op.responses = vec![
                ("200", "OK", def.clone()),
                ("201", "Created", def.clone()),
                ("202", "Accepted", def.clone()),
            ];
            ops.push(op);
        }
        if self.can("deletecollection") {
            let id = self.id("delete", &format!("Collection{scope}{kind}"));
            let mut op = self.op(
                "delete",
                "deletecollection",
                id,
                format!("delete collection of {kind}"),
            );
            op.params = params::DELETE_COLLECTION;
            op.body = Some(Body {
                definition: DELETE_OPTIONS.into(),
                content_types: ANY,
                required: false,
            });
            op.responses = vec![("200", "OK", STATUS.into())];
            ops.push(op);
        }
        ops.iter().map(|op| self.render(op)).collect()
    }

    fn item_ops(&self) -> Vec<Value> {
        let (kind, scope, def) = (self.kind(), self.scope(), &self.served.definition);
        let mut ops = Vec::new();
        if self.can("get") {
            let mut op = self.op(
                "get",
                "get",
                self.id("read", &format!("{scope}{kind}")),
                format!("read the specified {kind}"),
            );
            op.responses = vec![("200", "OK", def.clone())];
            ops.push(op);
        }
        if self.can("update") {
            let mut op = self.op(
                "put",
                "put",
                self.id("replace", &format!("{scope}{kind}")),
                format!("replace the specified {kind}"),
            );
            op.params = params::CREATE;
            op.body = Some(Body {
                definition: def.clone(),
                content_types: ANY,
                required: true,
            });
            op.responses = vec![("200", "OK", def.clone()), ("201", "Created", def.clone())];
            ops.push(op);
        }
        if self.can("delete") {
            let mut op = self.op(
                "delete",
                "delete",
                self.id("delete", &format!("{scope}{kind}")),
                format!("delete a {kind}"),
            );
            op.params = params::DELETE;
            op.body = Some(Body {
                definition: DELETE_OPTIONS.into(),
                content_types: ANY,
                required: false,
            });
            op.responses = vec![
                ("200", "OK", STATUS.into()),
                ("202", "Accepted", STATUS.into()),
            ];
            ops.push(op);
        }
        if self.can("patch") {
            let id = self.id("patch", &format!("{scope}{kind}"));
            let mut op = self.op(
                "patch",
                "patch",
                id,
                format!("partially update the specified {kind}"),
            );
            op.params = params::PATCH;
            op.body = Some(Body {
                definition: PATCH.into(),
                content_types: self.patch_types(),
                required: true,
            });
            op.responses = vec![("200", "OK", def.clone()), ("201", "Created", def.clone())];
            ops.push(op);
        }
        ops.iter().map(|op| self.render(op)).collect()
    }

    fn list_all_namespaces(&self) -> Value {
        let kind = self.kind();
        let mut op = self.op(
            "get",
            "list",
            self.id("list", &format!("{kind}ForAllNamespaces")),
            format!("list or watch objects of kind {kind}"),
        );
        op.params = params::LIST;
        op.responses = vec![("200", "OK", self.served.list_definition.clone())];
        op.produces = PRODUCES_WATCH;
        self.render(&op)
    }

    /// The deprecated `/watch/` paths; `in_namespace` selects the per-namespace form.
    fn watch_list(&self, in_namespace: bool) -> Value {
        let kind = self.kind();
        let id = if in_namespace {
            self.id("watch", &format!("{}{kind}List", self.scope()))
        } else {
            self.id("watch", &format!("{kind}ListForAllNamespaces"))
        };
        let description = format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead.");
        let mut op = self.op("get", "watchlist", id, description);
        op.params = params::LIST;
        op.responses = vec![("200", "OK", WATCH_EVENT.into())];
        op.produces = PRODUCES_WATCH;
        self.render(&op)
    }

    fn watch_one(&self) -> Value {
        let kind = self.kind();
        let description = format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.");
        let mut op = self.op(
            "get",
            "watch",
            self.id("watch", &format!("{}{kind}", self.scope())),
            description,
        );
        op.params = params::LIST;
        op.responses = vec![("200", "OK", WATCH_EVENT.into())];
        op.produces = PRODUCES_WATCH;
        self.render(&op)
    }

    /// GET/PUT/PATCH of `status` or `scale`: `suffix` ends the operation ids.
    fn subresource_ops(&self, suffix: &str, noun: &str, def: &str, gvk: Value) -> Vec<Value> {
        let (kind, scope) = (self.kind(), self.scope());
        let name = format!("{scope}{kind}{suffix}");
        let mut read = self.op(
            "get",
            "get",
            self.id("read", &name),
            format!("read {noun} of the specified {kind}"),
        );
        read.responses = vec![("200", "OK", def.into())];
        let mut replace = self.op(
            "put",
            "put",
            self.id("replace", &name),
            format!("replace {noun} of the specified {kind}"),
        );
        replace.params = params::CREATE;
        replace.body = Some(Body {
            definition: def.into(),
            content_types: ANY,
            required: true,
        });
        replace.responses = vec![("200", "OK", def.into()), ("201", "Created", def.into())];
        let mut patch = self.op(
            "patch",
            "patch",
            self.id("patch", &name),
            format!("partially update {noun} of the specified {kind}"),
        );
        patch.params = params::PATCH;
        patch.body = Some(Body {
            definition: PATCH.into(),
            content_types: self.patch_types(),
            required: true,
        });
        patch.responses = vec![("200", "OK", def.into()), ("201", "Created", def.into())];
        [read, replace, patch]
            .into_iter()
            .map(|mut op| {
                op.gvk = gvk.clone();
                self.render(&op)
            })
            .collect()
    }

    fn render(&self, op: &Op) -> Value {
        render::render(op, self.flavor, &self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::operation_id_part;

    #[test]
    fn operation_id_parts_follow_upstream_capitalisation() {
        assert_eq!(
            operation_id_part("rbac.authorization", true),
            "RbacAuthorization"
        );
        assert_eq!(
            operation_id_part("stable.example.com", true),
            "StableExampleCom"
        );
        assert_eq!(operation_id_part("v1beta1", true), "V1beta1");
        assert_eq!(
            operation_id_part("rbac.authorization", false),
            "rbacAuthorization"
        );
    }
}
