//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded to JSON.
//!
//! kubectl's typed commands (`kubectl create deployment`, `kubectl run`, `kubectl create token`,
//! ...) send protobuf with no JSON fallback. Everything else in nodeless works on the JSON form,
//! so [`decode`] turns such a body into exactly the JSON object kube-apiserver's JSON encoding of
//! the same Go object would be, for every built-in kind.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` envelope whose `typeMeta` names
//! the kind and whose `raw` is the object's own message. Decoding is table-driven: the
//! generated [`schema`] maps each message's field tags to JSON names and types, [`wire`] reads
//! the wire format and [`decode`](self::decode) builds the JSON.

mod decode;
mod schema;
mod special;
mod table;
mod wire;

#[cfg(test)]
mod tests;

pub use wire::WireError;

use crate::StatusError;
use serde_json::{Map, Value};
use table::{Field, M};
use thiserror::Error;

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8] = b"k8s\x00";

/// The envelope's protobuf name, for error messages.
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";

/// Why a protobuf body could not be decoded; every variant is the client's fault.
#[derive(Debug, Error)]
pub enum ProtoError {
    #[error("the body does not start with the kubernetes protobuf prefix \"k8s\\x00\"")]
    BadMagic,
    #[error("malformed {message}: {source}")]
    Wire {
        message: &'static str,
        #[source]
        source: WireError,
    },
    #[error("{message} field {tag} ({path}): {source}")]
    Field {
        message: &'static str,
        tag: u32,
        /// JSON path of the field inside the object, e.g. `spec.containers[0].ports`.
        path: String,
        #[source]
        source: FieldProblem,
    },
    #[error("the protobuf envelope names no kind")]
    MissingKind,
    #[error("no protobuf schema is known for kind {kind:?} in apiVersion {api_version:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("protobuf content encoding {0:?} is not supported")]
    ContentEncoding(String),
    #[error("protobuf envelope content type {0:?} is not supported")]
    ContentType(String),
    #[error("messages are nested more than {} deep", decode::MAX_DEPTH)]
    TooDeep,
}

/// What was wrong with one field's value.
#[derive(Debug, Error)]
pub enum FieldProblem {
    #[error("expected wire type {expected}, got {got}")]
    WireType {
        expected: &'static str,
        got: &'static str,
    },
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the embedded bytes are not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("IntOrString type {0} is neither 0 (int) nor 1 (string)")]
    IntOrStringType(u64),
    #[error("time {seconds}s {nanos}ns is outside the years 0 to 9999")]
    TimeOutOfRange { seconds: i64, nanos: i64 },
    #[error("{0} is not a finite number")]
    NotFinite(f64),
}

impl ProtoError {
    fn field(message: M, field: &Field, source: FieldProblem) -> Self {
        ProtoError::Field {
            message: message.name(),
            tag: field.tag,
            path: String::new(),
            source,
        }
    }

    /// Prefixes the JSON path of a field error with the segment of the field it is inside
    /// (its own name first, then each enclosing field's as the error travels up).
    fn within(mut self, segment: &str) -> Self {
        if let ProtoError::Field { path, .. } = &mut self {
            if !segment.is_empty() {
                *path = if path.is_empty() {
                    segment.to_string()
                } else {
                    format!("{segment}.{path}")
                };
            }
        }
        self
    }
}

impl From<ProtoError> for StatusError {
    fn from(e: ProtoError) -> Self {
        StatusError::bad_request(format!(
            "the protobuf request body could not be decoded: {e}"
        ))
    }
}

/// Decodes a `application/vnd.kubernetes.protobuf` body (the `k8s\0` magic and a
/// `runtime.Unknown` envelope) into the JSON object kube-apiserver's JSON encoding of the same
/// object would give, `apiVersion` and `kind` taken from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    envelope(body, 0)
}

struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

fn envelope(body: &[u8], depth: usize) -> Result<Value, ProtoError> {
    let rest = body.strip_prefix(MAGIC).ok_or(ProtoError::BadMagic)?;
    let env = parse_envelope(rest)?;
    if env.kind.is_empty() {
        return Err(ProtoError::MissingKind);
    }
    if !env.content_encoding.is_empty() {
        return Err(ProtoError::ContentEncoding(env.content_encoding));
    }
    if !matches!(
        env.content_type.as_str(),
        "" | "application/vnd.kubernetes.protobuf"
    ) {
        return Err(ProtoError::ContentType(env.content_type));
    }
    let message =
        table::message_of(&env.api_version, &env.kind).ok_or_else(|| ProtoError::UnknownKind {
            api_version: env.api_version.clone(),
            kind: env.kind.clone(),
        })?;
    let fields = decode::message(message, env.raw, depth)?;
    let mut object = Map::with_capacity(fields.len() + 2);
    object.insert("apiVersion".into(), Value::String(env.api_version));
    object.insert("kind".into(), Value::String(env.kind));
    object.extend(fields);
    Ok(Value::Object(object))
}

fn parse_envelope(buf: &[u8]) -> Result<Envelope<'_>, ProtoError> {
    let wire_err = |source| ProtoError::Wire {
        message: UNKNOWN,
        source,
    };
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let mut reader = wire::Reader::new(buf);
    while let Some((tag, value)) = reader.next_field().map_err(wire_err)? {
        let wire::Value::Bytes(bytes) = value else {
            continue;
        };
        match tag {
            1 => {
                let mut meta = wire::Reader::new(bytes);
                while let Some((tag, value)) = meta.next_field().map_err(wire_err)? {
                    match (tag, value) {
                        (1, wire::Value::Bytes(b)) => {
                            env.api_version = String::from_utf8_lossy(b).into_owned()
                        }
                        (2, wire::Value::Bytes(b)) => {
                            env.kind = String::from_utf8_lossy(b).into_owned()
                        }
                        _ => {}
                    }
                }
            }
            2 => env.raw = bytes,
            3 => env.content_encoding = String::from_utf8_lossy(bytes).into_owned(),
            4 => env.content_type = String::from_utf8_lossy(bytes).into_owned(),
            _ => {}
        }
    }
    Ok(env)
}
