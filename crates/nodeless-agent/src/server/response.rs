//! Responses of the node endpoints: bodies, and every failure as a Kubernetes `Status`.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use nodeless_core::status::StatusError;
use nodeless_engine::instance::EngineError;

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// The `Status` JSON response for `err`.
pub fn status_response(err: &StatusError) -> Response<Body> {
    let body = serde_json::to_vec(&err.to_status()).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(empty()))
}

/// What a request was about, for error messages.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
}

impl Target {
    pub fn pod_not_found(&self) -> StatusError {
        StatusError::not_found("", "pods", &self.pod)
    }

    pub fn container_not_found(&self) -> StatusError {
        StatusError::new(
            404,
            "NotFound",
            format!(
                "container \"{}\" in pod \"{}\" not found",
                self.container, self.pod
            ),
        )
    }

    /// An engine failure as the client should see it; our own faults are logged.
    pub fn engine_error(&self, err: &EngineError) -> StatusError {
        match err {
            EngineError::NotFound(_) => self.pod_not_found(),
            EngineError::ContainerNotFound { .. } => self.container_not_found(),
            EngineError::NotRunning { .. } => StatusError::bad_request(format!(
                "container \"{}\" in pod \"{}\" is not running",
                self.container, self.pod
            )),
            EngineError::NoPreviousRun { .. } => StatusError::bad_request(format!(
                "previous terminated container \"{}\" in pod \"{}\" not found",
                self.container, self.pod
            )),
            EngineError::Invalid(why) => StatusError::bad_request(why.clone()),
            other => {
                tracing::error!(pod = %self.pod, uid = %self.uid, error = %other, "node endpoint failed");
                StatusError::internal(other.to_string())
            }
        }
    }
}
