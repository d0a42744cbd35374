//! Label and field selectors, parsed and matched exactly as kube-apiserver does.
//!
//! A bad selector in a list or watch request is the client's mistake: every error here turns
//! into a 400 `BadRequest` whose message is upstream's, so clients that show or match on the
//! text behave the same against nodeless.

pub mod field;
pub mod label;

pub use field::FieldSelector;
pub use label::{LabelSelector, Operator, Requirement};

use crate::status::StatusError;

/// Why a selector could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A `labelSelector` query string that upstream's parser rejects.
    #[error("{0}")]
    ParseLabelSelector(String),
    /// A `metav1.LabelSelector` object that cannot become a selector.
    #[error("{0}")]
    ConvertLabelSelector(String),
    /// A `fieldSelector` query string that does not split into terms.
    #[error("{0}")]
    ParseFieldSelector(String),
    /// A field the kind does not register as selectable.
    #[error("{0}")]
    UnsupportedField(String),
}

impl From<SelectorError> for StatusError {
    fn from(e: SelectorError) -> Self {
        StatusError::bad_request(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_errors_become_bad_requests() {
        let e: StatusError =
            SelectorError::UnsupportedField("field label not supported: x".into()).into();
        assert_eq!(e.code, 400);
        assert_eq!(e.reason, "BadRequest");
        assert_eq!(e.message, "field label not supported: x");
    }
}
