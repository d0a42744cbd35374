//! The shape of the generated schema table ([`super::schema`]) and lookups into it.

pub(crate) use super::schema::M;
use super::schema::{KINDS, MESSAGES};

/// What a field holds on the wire and how it becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    /// Base64 in JSON, as Go encodes `[]byte`.
    Bytes,
    Int32,
    Int64,
    Bool,
    Double,
    /// An ordinary message: a JSON object of its fields.
    Message(M),
    /// `metav1.Time`: RFC 3339 with seconds.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds.
    MicroTime,
    /// `metav1.Duration`: a Go duration string. No served kind has one yet; the generator maps
    /// the message here should one appear.
    #[allow(dead_code)]
    Duration,
    /// `resource.Quantity`: its canonical string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`: the embedded JSON (or an embedded protobuf object).
    RawExtension,
    /// `metav1.FieldsV1` and apiextensions `JSON`: raw JSON bytes.
    RawJson,
    /// apiextensions `JSONSchemaPropsOrArray`: a schema or an array of schemas.
    SchemaOrArray,
    /// apiextensions `JSONSchemaPropsOrBool`: a schema or a bool.
    SchemaOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray`: a schema or an array of strings.
    SchemaOrStringArray,
    /// A Go named `[]string` (`ExtraValue`): a wrapper message with `items = 1`, an array in JSON.
    StringList,
}

/// How many values a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    One,
    Repeated,
    /// `map<string, V>`, sent as repeated entries with key 1 and value 2.
    Map,
    /// A Go struct embedded with `json:",inline"`: its fields join the parent's JSON object.
    Inline,
}

/// One field of a message, as the generated table lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub tag: u32,
    pub json: &'static str,
    pub kind: Kind,
    pub card: Card,
    /// Kept when zero: Go pointers and fields without `omitempty`. Other scalars are written by
    /// Go's encoder even when unset, and the JSON encoding drops them.
    pub keep_zero: bool,
}

pub(crate) const fn one(tag: u32, json: &'static str, kind: Kind) -> Field {
    Field {
        tag,
        json,
        kind,
        card: Card::One,
        keep_zero: false,
    }
}

pub(crate) const fn rep(tag: u32, json: &'static str, kind: Kind) -> Field {
    Field {
        tag,
        json,
        kind,
        card: Card::Repeated,
        keep_zero: false,
    }
}

pub(crate) const fn map(tag: u32, json: &'static str, kind: Kind) -> Field {
    Field {
        tag,
        json,
        kind,
        card: Card::Map,
        keep_zero: false,
    }
}

pub(crate) const fn inline(tag: u32, kind: Kind) -> Field {
    Field {
        tag,
        json: "",
        kind,
        card: Card::Inline,
        keep_zero: false,
    }
}

impl Field {
    pub(crate) const fn keep_zero(mut self) -> Self {
        self.keep_zero = true;
        self
    }
}

impl M {
    /// The protobuf name, e.g. `k8s.io.api.core.v1.PodSpec`, for error messages.
    pub(crate) fn name(self) -> &'static str {
        MESSAGES[self as usize].0
    }

    /// The fields in Go declaration order, which is also the JSON order.
    pub(crate) fn fields(self) -> &'static [Field] {
        MESSAGES[self as usize].1
    }
}

/// The message a body of `apiVersion`/`kind` holds.
pub(crate) fn message_of(api_version: &str, kind: &str) -> Option<M> {
    KINDS
        .iter()
        .find(|(v, k, _)| *k == kind && (*v == api_version || *v == "*"))
        .map(|(_, _, m)| *m)
}
