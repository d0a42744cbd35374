//! Strategic-merge metadata of the built-in types: which lists merge, by which key, and
//! where `retainKeys` applies.
//!
//! Upstream keeps this in Go struct tags (`patchStrategy:"merge" patchMergeKey:"name"`) and
//! publishes it as `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` in OpenAPI.
//! Here it is a small graph of types: each type lists only the fields that carry metadata or
//! lead to a type that does, so a patch can be walked from a kind's root (a Deployment's
//! `spec.template.spec` is a PodSpec). Fields absent from the graph have no metadata: maps
//! merge key by key and lists are replaced, as upstream does for untagged fields.
//! The rows themselves are in `table.rs`.

/// How a field is merged, spelled as upstream's `x-kubernetes-patch-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchStrategy {
    /// Lists: elements are merged (by merge key for lists of objects, as a set for primitives).
    Merge,
    /// The whole value is replaced rather than merged key by key.
    Replace,
    /// Objects: keys missing from the patch's `$retainKeys` list are cleared.
    RetainKeys,
    /// Lists of objects merged by key, each element honouring `$retainKeys`.
    MergeRetainKeys,
}

impl PatchStrategy {
    /// The value of `x-kubernetes-patch-strategy`.
    pub fn as_str(self) -> &'static str {
        match self {
            PatchStrategy::Merge => "merge",
            PatchStrategy::Replace => "replace",
            PatchStrategy::RetainKeys => "retainKeys",
            PatchStrategy::MergeRetainKeys => "merge,retainKeys",
        }
    }

    /// Whether list elements are merged rather than the list replaced.
    pub fn merges_lists(self) -> bool {
        matches!(self, PatchStrategy::Merge | PatchStrategy::MergeRetainKeys)
    }

    pub fn retains_keys(self) -> bool {
        matches!(
            self,
            PatchStrategy::RetainKeys | PatchStrategy::MergeRetainKeys
        )
    }
}

/// The strategic-merge metadata of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchMeta {
    pub strategy: PatchStrategy,
    /// `x-kubernetes-patch-merge-key`: the element field identifying list items.
    pub merge_key: Option<&'static str>,
}

mod table;

use table::{Row, ANY_OBJECT, KINDS, ROWS};

fn rows() -> impl Iterator<Item = &'static Row> {
    #[cfg(test)]
    let extra = table::TEST_ROWS;
    #[cfg(not(test))]
    let extra: &[Row] = &[];
    ROWS.iter().chain(extra)
}

/// A type of the graph, reached from a kind's root or looked up by definition name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeRef(&'static str);

/// What the graph knows of one field of a type.
#[derive(Debug, Clone, Copy)]
pub struct FieldInfo {
    pub meta: Option<PatchMeta>,
    /// The field's type (its elements' type, for lists), when it leads to more metadata.
    pub ty: Option<TypeRef>,
}

impl TypeRef {
    /// The root type of a built-in kind; `None` for kinds nodeless does not build in.
    pub fn root(group: &str, kind: &str) -> Option<TypeRef> {
        if !supports_strategic(group, kind) {
            return None;
        }
        let name = KINDS
            .iter()
            .find(|(g, k, _)| *g == group && *k == kind)
            .map_or(ANY_OBJECT, |(_, _, name)| name);
        TypeRef::named(name)
    }

    /// A type by OpenAPI definition name, e.g. `io.k8s.api.core.v1.PodSpec`.
    pub fn named(definition: &str) -> Option<TypeRef> {
        rows().find(|r| r.ty == definition).map(|r| TypeRef(r.ty))
    }

    /// The OpenAPI definition name.
    pub fn name(self) -> &'static str {
        self.0
    }

    /// The field's metadata and type; fields unknown to the graph have neither.
    pub fn field(self, name: &str) -> FieldInfo {
        match rows().find(|r| r.ty == self.0 && r.field == name) {
            Some(r) => FieldInfo {
                meta: r.meta,
                ty: r.child.and_then(TypeRef::named),
            },
            None => FieldInfo {
                meta: None,
                ty: None,
            },
        }
    }
}

/// Whether strategic merge patch applies to a kind: built-in kinds only. Upstream answers
/// 415 for custom resources, whose schemas carry no merge keys.
pub fn supports_strategic(group: &str, kind: &str) -> bool {
    crate::resource::builtins()
        .iter()
        .any(|r| r.group == group && r.kind == kind)
}

/// The metadata of the field at `path` (field names; list elements are stepped through
/// implicitly), e.g. `patch_meta("apps", "Deployment", &["spec", "template", "spec", "containers"])`.
pub fn patch_meta(group: &str, kind: &str, path: &[&str]) -> Option<PatchMeta> {
    let (last, parents) = path.split_last()?;
    let mut ty = TypeRef::root(group, kind)?;
    for name in parents {
        ty = ty.field(name).ty?;
    }
    ty.field(last).meta
}

/// The metadata of one property of an OpenAPI definition, for emitting the
/// `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key` extensions.
pub fn definition_patch_meta(definition: &str, field: &str) -> Option<PatchMeta> {
    TypeRef::named(definition)?.field(field).meta
}

/// Every (definition, property, metadata) the graph holds, for generators.
pub fn all_patch_meta() -> impl Iterator<Item = (&'static str, &'static str, PatchMeta)> {
    ROWS.iter()
        .filter(|r| r.ty != ANY_OBJECT)
        .filter_map(|r| Some((r.ty, r.field, r.meta?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_containers_merge_by_name_through_the_pod_template() {
        let meta = patch_meta(
            "apps",
            "Deployment",
            &["spec", "template", "spec", "containers"],
        );
        assert_eq!(
            meta,
            Some(PatchMeta {
                strategy: PatchStrategy::Merge,
                merge_key: Some("name")
            })
        );
        let ports = patch_meta(
            "apps",
            "Deployment",
            &["spec", "template", "spec", "containers", "ports"],
        );
        assert_eq!(ports.and_then(|m| m.merge_key), Some("containerPort"));
    }

    #[test]
    fn untagged_fields_have_no_metadata() {
        assert_eq!(patch_meta("", "Pod", &["spec", "containers", "args"]), None);
        assert_eq!(patch_meta("", "Pod", &["spec", "tolerations"]), None);
        assert_eq!(patch_meta("", "ConfigMap", &["data"]), None);
    }

    #[test]
    fn every_builtin_kind_has_typed_metadata() {
        for r in crate::resource::builtins() {
            let meta = patch_meta(&r.group, &r.kind, &["metadata", "ownerReferences"]);
            assert_eq!(
                meta.and_then(|m| m.merge_key),
                Some("uid"),
                "{}/{}",
                r.group,
                r.kind
            );
        }
    }

    #[test]
    fn custom_kinds_do_not_support_strategic_merge() {
        assert!(!supports_strategic("example.com", "Widget"));
        assert!(supports_strategic("apps", "Deployment"));
        assert_eq!(
            patch_meta("example.com", "Widget", &["metadata", "finalizers"]),
            None
        );
    }

    #[test]
    fn every_referenced_type_is_defined() {
        for r in ROWS {
            if let Some(child) = r.child {
                assert!(
                    TypeRef::named(child).is_some(),
                    "{}.{} refers to missing {child}",
                    r.ty,
                    r.field
                );
            }
            let dupes = ROWS
                .iter()
                .filter(|o| o.ty == r.ty && o.field == r.field)
                .count();
            assert_eq!(dupes, 1, "{}.{} is listed twice", r.ty, r.field);
        }
        for (_, _, name) in KINDS {
            assert!(
                TypeRef::named(name).is_some(),
                "kind root {name} is missing"
            );
        }
    }

    #[test]
    fn strategies_are_spelled_as_openapi_extensions() {
        let volumes =
            definition_patch_meta("io.k8s.api.core.v1.PodSpec", "volumes").expect("volumes");
        assert_eq!(volumes.strategy.as_str(), "merge,retainKeys");
        let strategy = definition_patch_meta("io.k8s.api.apps.v1.DeploymentSpec", "strategy")
            .expect("strategy");
        assert_eq!(strategy.strategy.as_str(), "retainKeys");
        assert!(all_patch_meta().any(|(d, f, _)| d == table::OBJECT_META && f == "finalizers"));
    }
}
