//! API errors as Kubernetes `Status` objects: the one shape every failure takes at the edge.

use crate::field::{ErrorList, FieldError};
use serde_json::{json, Value};
use std::fmt;

/// A failure to be returned to a client as a `metav1.Status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusError {
    pub code: u16,
    /// Upstream `StatusReason`, e.g. `NotFound`, `Conflict`, `Invalid`.
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Details>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Details {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub causes: Vec<Cause>,
    pub retry_after_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

impl StatusError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.details = Some(Details {
            name: name.into(),
            group: group.into(),
            kind: kind.into(),
            ..Default::default()
        });
        self
    }

    /// `pods "web" not found`; `group_resource` is e.g. `deployments.apps`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let gr = qualified(group, plural);
        Self::new(404, "NotFound", format!("{gr} \"{name}\" not found"))
            .with_details(group, plural, name)
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let gr = qualified(group, plural);
        Self::new(
            409,
            "AlreadyExists",
            format!("{gr} \"{name}\" already exists"),
        )
        .with_details(group, plural, name)
    }

    /// The optimistic-concurrency failure, worded as upstream so clients that match on it work.
    pub fn conflict_modified(group: &str, plural: &str, name: &str) -> Self {
        let gr = qualified(group, plural);
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {gr} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again"
            ),
        )
        .with_details(group, plural, name)
    }

    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        let gr = qualified(group, plural);
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {gr} \"{name}\": {why}"),
        )
        .with_details(group, plural, name)
    }

    /// 422 with one cause per field error: `Deployment.apps "web" is invalid: [...]`.
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &ErrorList) -> Self {
        let gk = qualified(group, kind);
        let list = render_errors(errors);
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{gk} \"{name}\" is invalid: {list}"),
        )
        .with_details(group, kind, name);
        if let Some(d) = e.details.as_mut() {
            d.causes = errors.iter().map(cause_of).collect();
        }
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(group: &str, plural: &str, name: &str, why: &str) -> Self {
        let gr = qualified(group, plural);
        let what = if name.is_empty() {
            gr.clone()
        } else {
            format!("{gr} \"{name}\"")
        };
        Self::new(403, "Forbidden", format!("{what} is forbidden: {why}"))
            .with_details(group, plural, name)
    }

    pub fn method_not_supported(group: &str, plural: &str, verb: &str) -> Self {
        let gr = qualified(group, plural);
        Self::new(
            405,
            "MethodNotAllowed",
            format!("{verb} is not supported on resources of kind \"{gr}\""),
        )
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn too_many_requests(retry_after: u32) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        e.details = Some(Details {
            retry_after_seconds: Some(retry_after),
            ..Default::default()
        });
        e
    }

    pub fn request_entity_too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json; got {content_type:?}"))
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// The `Status` object sent to clients.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            let mut details = serde_json::Map::new();
            if !d.name.is_empty() {
                details.insert("name".into(), d.name.clone().into());
            }
            if !d.group.is_empty() {
                details.insert("group".into(), d.group.clone().into());
            }
            if !d.kind.is_empty() {
                details.insert("kind".into(), d.kind.clone().into());
            }
            if !d.causes.is_empty() {
                let causes: Vec<Value> = d
                    .causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                details.insert("causes".into(), causes.into());
            }
            if let Some(s) = d.retry_after_seconds {
                details.insert("retryAfterSeconds".into(), s.into());
            }
            status["details"] = Value::Object(details);
        }
        status
    }
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for StatusError {}

fn qualified(group: &str, name: &str) -> String {
    if group.is_empty() {
        name.to_string()
    } else {
        format!("{name}.{group}")
    }
}

fn cause_of(e: &FieldError) -> Cause {
    Cause {
        reason: e.kind.cause_reason().into(),
        message: e.body(),
        field: e.field.clone(),
    }
}

/// `a: b` for one error, `[a: b, c: d]` for several, as upstream's aggregate prints.
pub fn render_errors(errors: &ErrorList) -> String {
    let parts: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_message_matches_upstream_wording() {
        let e = StatusError::conflict_modified("apps", "deployments", "web");
        assert_eq!(e.code, 409);
        assert!(e.message.starts_with("Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified"));
    }

    #[test]
    fn invalid_lists_every_cause() {
        let errs = vec![
            FieldError::required("spec.selector", ""),
            FieldError::invalid("metadata.name", "A", "bad"),
        ];
        let s = StatusError::invalid("apps", "Deployment", "web", &errs).to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["details"]["causes"].as_array().map(|c| c.len()), Some(2));
        assert_eq!(s["message"], "Deployment.apps \"web\" is invalid: [spec.selector: Required value, metadata.name: Invalid value: \"A\": bad]");
    }
}
