//! Reviews a client asks about itself: `kubectl auth can-i` and `kubectl auth whoami`.
//!
//! nodeless has one identity, the cluster admin of the kubeconfig it writes, and no
//! authorization policy beyond authentication: every authenticated request is allowed.
//! These answers say so instead of leaving clients with a 404.

use nodeless_core::resource::ResourceType;
use nodeless_core::StatusError;
use serde_json::{json, Value};

pub const ADMIN_USER: &str = "nodeless-admin";

/// Fills in the review's status; `None` if `rt` is not a review.
pub fn answer(rt: &ResourceType, mut review: Value) -> Option<Result<Value, StatusError>> {
    let status = match (rt.group.as_str(), rt.kind.as_str()) {
        ("authorization.k8s.io", "SelfSubjectAccessReview") => {
            json!({"allowed": true, "reason": "nodeless allows every request of the authenticated cluster admin"})
        }
        ("authorization.k8s.io", "SelfSubjectRulesReview") => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        ("authentication.k8s.io", "SelfSubjectReview") => json!({
            "userInfo": {"username": ADMIN_USER, "groups": ["system:masters", "system:authenticated"]}
        }),
        _ => return None,
    };
    if !review.is_object() {
        return Some(Err(StatusError::bad_request(
            "the review must be an object",
        )));
    }
    review["apiVersion"] = json!(rt.api_version());
    review["kind"] = json!(rt.kind);
    review["status"] = status;
    Some(Ok(review))
}
