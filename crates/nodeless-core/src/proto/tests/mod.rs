//! Golden bodies are encoded with prost and k8s-pb, an encoder independent of the table.
//! Where kubectl's Go encoder differs from prost (it writes every non-pointer field, even when
//! zero), the tests set those fields explicitly to what Go would send.

mod golden;
mod kubectl;
mod malformed;
mod schemas;

use super::MAGIC;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;

/// A full request body: magic, then the `runtime.Unknown` envelope around `object`.
pub(super) fn body(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(envelope.encode_to_vec());
    out
}
