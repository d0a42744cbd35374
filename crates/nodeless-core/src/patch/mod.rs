//! The PATCH verb's three formats, applied to objects held as JSON values as kube-apiserver
//! applies them: JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386) and strategic merge
//! patch, the format client-side `kubectl apply` sends.
//!
//! [`apply_patch`] is the entry point; [`typegraph`] holds the merge keys and strategies of
//! the built-in types (also used to publish them in OpenAPI).

mod json;
mod merge;
mod strategic;
pub mod typegraph;

pub use typegraph::{
    all_patch_meta, definition_patch_meta, patch_meta, supports_strategic, PatchMeta, PatchStrategy,
};

use crate::StatusError;
use serde_json::Value;

/// The `Content-Type` of a PATCH request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

impl PatchType {
    /// The patch type of a request's `Content-Type`, ignoring parameters such as `charset`.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let essence = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Upstream's cap on the operations of one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The body is not JSON of the shape the patch type needs.
    #[error("error decoding patch: {0}")]
    DecodePatch(#[source] serde_json::Error),
    #[error("the body of a {0} patch must be a JSON object")]
    PatchNotObject(&'static str),
    #[error(
        "the allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {0}"
    )]
    TooManyOperations(usize),
    /// A JSON patch operation could not be applied (failed test, missing path).
    #[error("{0}")]
    JsonPatchFailed(String),
    /// A strategic merge patch whose directives are malformed.
    #[error("{0}")]
    InvalidStrategicPatch(String),
    /// A strategic merge patch that does not fit the object (types, merge keys, order).
    #[error("{0}")]
    StrategicMergeFailed(String),
    #[error("strategic merge patch is not supported for {kind} in group {group:?}: use a JSON merge patch (--type=merge) or a JSON patch (--type=json)")]
    StrategicUnsupported { group: String, kind: String },
    #[error("server-side apply is not supported yet: use client-side `kubectl apply` (without --server-side)")]
    ServerSideApplyUnsupported,
    /// The stored object is not a JSON object: a fault of ours, not the client's.
    #[error("the object to patch is not a JSON object")]
    OriginalNotObject,
}

impl From<PatchError> for StatusError {
    fn from(e: PatchError) -> Self {
        let message = e.to_string();
        match e {
            PatchError::DecodePatch(_)
            | PatchError::PatchNotObject(_)
            | PatchError::InvalidStrategicPatch(_) => StatusError::bad_request(message),
            PatchError::TooManyOperations(_) => StatusError::request_entity_too_large(message),
            PatchError::JsonPatchFailed(_) | PatchError::StrategicMergeFailed(_) => {
                StatusError::new(422, "Invalid", message)
            }
            PatchError::StrategicUnsupported { .. } | PatchError::ServerSideApplyUnsupported => {
                StatusError::new(415, "UnsupportedMediaType", message)
            }
            PatchError::OriginalNotObject => StatusError::internal(message),
        }
    }
}

/// Applies `patch` (the raw request body) to `original`, an object of `group`/`kind`.
pub fn apply_patch(
    patch_type: PatchType,
    group: &str,
    kind: &str,
    original: &Value,
    patch: &[u8],
) -> Result<Value, PatchError> {
    if !original.is_object() {
        return Err(PatchError::OriginalNotObject);
    }
    match patch_type {
        PatchType::Json => json::apply(original, patch),
        PatchType::Merge => merge::apply(original, patch),
        PatchType::Strategic => {
            let root = typegraph::TypeRef::root(group, kind).ok_or_else(|| {
                PatchError::StrategicUnsupported {
                    group: group.into(),
                    kind: kind.into(),
                }
            })?;
            strategic::apply(original, patch, root)
        }
        PatchType::Apply => Err(PatchError::ServerSideApplyUnsupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_map_to_patch_types_ignoring_parameters() {
        let cases = [
            ("application/json-patch+json", Some(PatchType::Json)),
            (
                "application/merge-patch+json; charset=utf-8",
                Some(PatchType::Merge),
            ),
            (
                "Application/Strategic-Merge-Patch+JSON",
                Some(PatchType::Strategic),
            ),
            ("application/apply-patch+yaml", Some(PatchType::Apply)),
            ("application/json", None),
        ];
        for (ct, want) in cases {
            assert_eq!(PatchType::from_content_type(ct), want, "{ct}");
        }
    }

    #[test]
    fn server_side_apply_is_refused_with_415_naming_the_alternative() {
        let obj = json!({"metadata": {"name": "web"}});
        let err =
            apply_patch(PatchType::Apply, "apps", "Deployment", &obj, b"{}").expect_err("refused");
        let status = StatusError::from(err);
        assert_eq!(status.code, 415);
        assert!(
            status.message.contains("without --server-side"),
            "{}",
            status.message
        );
    }

    #[test]
    fn strategic_patch_of_a_custom_resource_is_415() {
        let obj = json!({"metadata": {"name": "w"}});
        let err = apply_patch(PatchType::Strategic, "example.com", "Widget", &obj, b"{}")
            .expect_err("415");
        assert_eq!(StatusError::from(err).code, 415);
    }

    #[test]
    fn malformed_bodies_are_400_for_every_patch_type() {
        let obj = json!({"metadata": {"name": "web"}});
        for t in [PatchType::Json, PatchType::Merge, PatchType::Strategic] {
            for body in [&b"{not json"[..], b"", b"\xff\xfe"] {
                let err = apply_patch(t, "", "Pod", &obj, body).expect_err("malformed");
                assert_eq!(StatusError::from(err).code, 400, "{t:?} {body:?}");
            }
        }
    }

    #[test]
    fn json_patch_failures_are_422() {
        let obj = json!({"metadata": {"name": "web"}});
        let body = br#"[{"op":"remove","path":"/spec/replicas"}]"#;
        let err =
            apply_patch(PatchType::Json, "apps", "Deployment", &obj, body).expect_err("missing");
        let status = StatusError::from(err);
        assert_eq!((status.code, status.reason), (422, "Invalid"));
    }
}
