//! `/openapi/v2` in protobuf: client-go asks for the v2 document only as gnostic's
//! `openapi.v2.Document` message (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`),
//! so kubectl's v2 paths (`kubectl explain --output plaintext-openapiv2`, the fallbacks of
//! server-side-validation detection and of `kubectl apply`) need this encoding.
//!
//! The JSON document is walked and written field by field with the numbers of gnostic's
//! `OpenAPIv2.proto`. Free-form values (`default`, `enum`, `example`, `x-` extensions) are
//! gnostic `Any`s holding YAML; JSON is YAML, so they carry the value's JSON text.

use serde_json::{Map, Value};

/// The `Content-Type` of a [`v2_protobuf`] response. Clients ask for it (or for the older
/// spelling `...spec.v2@v1.0+protobuf`, which Go cannot parse back as a media type) in `Accept`.
pub const V2_PROTOBUF_MEDIA_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Whether an `Accept` header asks for the protobuf v2 document (either spelling).
pub fn accepts_v2_protobuf(accept: &str) -> bool {
    accept.split(',').any(|m| {
        m.trim()
            .starts_with("application/com.github.proto-openapi.spec.v2")
    })
}

/// Encodes a document from [`super::v2_document`] as a gnostic `openapi.v2.Document`.
pub fn v2_protobuf(document: &Value) -> Vec<u8> {
    document_message(document).0
}

/// A protobuf message being written. Zero values are skipped, as proto3 does.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, v: Option<&Value>) {
        if let Some(s) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) {
            self.bytes(field, s.as_bytes());
        }
    }

    fn strings(&mut self, field: u32, v: Option<&Value>) {
        for s in v
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            self.bytes(field, s.as_bytes());
        }
    }

    fn bool(&mut self, field: u32, v: Option<&Value>) {
        if v.and_then(Value::as_bool) == Some(true) {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: Option<&Value>) {
        if let Some(i) = v.and_then(Value::as_i64).filter(|i| *i != 0) {
            self.key(field, 0);
            self.varint(i as u64);
        }
    }

    fn double(&mut self, field: u32, v: Option<&Value>) {
        if let Some(d) = v.and_then(Value::as_f64).filter(|d| *d != 0.0) {
            self.key(field, 1);
            self.0.extend_from_slice(&d.to_le_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    /// gnostic `Any`: the value as YAML text (its JSON).
    fn any(&mut self, field: u32, v: &Value) {
        let mut any = Msg::default();
        any.bytes(2, v.to_string().as_bytes());
        self.message(field, any);
    }

    /// `repeated NamedAny vendor_extension` from every `x-` key of `map`.
    fn extensions(&mut self, field: u32, map: &Map<String, Value>) {
        for (name, value) in map.iter().filter(|(k, _)| k.starts_with("x-")) {
            let mut named = Msg::default();
            named.bytes(1, name.as_bytes());
            named.any(2, value);
            self.message(field, named);
        }
    }
}

fn named(name: &str, value: Msg) -> Msg {
    let mut m = Msg::default();
    m.bytes(1, name.as_bytes());
    m.message(2, value);
    m
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn document_message(doc: &Value) -> Msg {
    let d = object(doc);
    let mut m = Msg::default();
    m.string(1, d.get("swagger"));
    if let Some(info) = d.get("info") {
        let mut i = Msg::default();
        i.string(1, info.get("title"));
        i.string(2, info.get("version"));
        i.string(3, info.get("description"));
        m.message(2, i);
    }
    if let Some(Value::Object(paths)) = d.get("paths") {
        let mut p = Msg::default();
        for (path, item) in paths {
            p.message(2, named(path, path_item(item)));
        }
        m.message(8, p);
    }
    if let Some(Value::Object(defs)) = d.get("definitions") {
        let mut ds = Msg::default();
        for (name, def) in defs {
            ds.message(1, named(name, schema(def)));
        }
        m.message(9, ds);
    }
    for requirement in d
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut r = Msg::default();
        for (name, scopes) in object(requirement) {
            let mut list = Msg::default();
            list.strings(1, Some(&scopes));
            r.message(1, named(&name, list));
        }
        m.message(12, r);
    }
    if let Some(Value::Object(defs)) = d.get("securityDefinitions") {
        let mut sd = Msg::default();
        for (name, def) in defs {
            let mut api_key = Msg::default();
            api_key.string(1, def.get("type"));
            api_key.string(2, def.get("name"));
            api_key.string(3, def.get("in"));
            api_key.string(4, def.get("description"));
            let mut item = Msg::default();
            item.message(2, api_key);
            sd.message(1, named(name, item));
        }
        m.message(13, sd);
    }
    m
}

fn path_item(item: &Value) -> Msg {
    let item = object(item);
    let mut m = Msg::default();
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = item.get(method) {
            m.message(field, operation(op));
        }
    }
    for p in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(9, parameter(p));
    }
    m.extensions(10, &item);
    m
}

fn operation(op: &Value) -> Msg {
    let op = object(op);
    let mut m = Msg::default();
    m.strings(1, op.get("tags"));
    m.string(2, op.get("summary"));
    m.string(3, op.get("description"));
    m.string(5, op.get("operationId"));
    m.strings(6, op.get("produces"));
    m.strings(7, op.get("consumes"));
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(8, parameter(p));
    }
    if let Some(Value::Object(responses)) = op.get("responses") {
        let mut rs = Msg::default();
        for (code, response) in responses {
            let mut r = Msg::default();
            r.string(1, response.get("description"));
            if let Some(s) = response.get("schema") {
                let mut item = Msg::default();
                item.message(1, schema(s));
                r.message(2, item);
            }
            let mut value = Msg::default();
            value.message(1, r);
            rs.message(1, named(code, value));
        }
        m.message(9, rs);
    }
    m.strings(10, op.get("schemes"));
    m.bool(11, op.get("deprecated"));
    m.extensions(13, &op);
    m
}

/// A `ParametersItem`: body, query or path parameter.
fn parameter(p: &Value) -> Msg {
    let p = object(p);
    let location = p.get("in").and_then(Value::as_str).unwrap_or_default();
    let mut param = Msg::default();
    if location == "body" {
        let mut body = Msg::default();
        body.string(1, p.get("description"));
        body.string(2, p.get("name"));
        body.string(3, p.get("in"));
        body.bool(4, p.get("required"));
        if let Some(s) = p.get("schema") {
            body.message(5, schema(s));
        }
        body.extensions(6, &p);
        param.message(1, body);
    } else {
        // Query and path sub-schemas share the leading fields; the type and uniqueItems
        // numbers differ because query parameters have `allowEmptyValue`.
        let (oneof_field, type_field, unique_field, ext_field) = if location == "path" {
            (4, 5, 19, 22)
        } else {
            (3, 6, 20, 23)
        };
        let mut sub = Msg::default();
        sub.bool(1, p.get("required"));
        sub.string(2, p.get("in"));
        sub.string(3, p.get("description"));
        sub.string(4, p.get("name"));
        sub.string(type_field, p.get("type"));
        sub.bool(unique_field, p.get("uniqueItems"));
        sub.extensions(ext_field, &p);
        let mut non_body = Msg::default();
        non_body.message(oneof_field, sub);
        param.message(2, non_body);
    }
    let mut item = Msg::default();
    item.message(1, param);
    item
}

fn schema(s: &Value) -> Msg {
    let s = object(s);
    let mut m = Msg::default();
    m.string(1, s.get("$ref"));
    m.string(2, s.get("format"));
    m.string(3, s.get("title"));
    m.string(4, s.get("description"));
    if let Some(d) = s.get("default") {
        m.any(5, d);
    }
    m.double(6, s.get("multipleOf"));
    m.double(7, s.get("maximum"));
    m.bool(8, s.get("exclusiveMaximum"));
    m.double(9, s.get("minimum"));
    m.bool(10, s.get("exclusiveMinimum"));
    m.int64(11, s.get("maxLength"));
    m.int64(12, s.get("minLength"));
    m.string(13, s.get("pattern"));
    m.int64(14, s.get("maxItems"));
    m.int64(15, s.get("minItems"));
    m.bool(16, s.get("uniqueItems"));
    m.int64(17, s.get("maxProperties"));
    m.int64(18, s.get("minProperties"));
    m.strings(19, s.get("required"));
    for e in s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.any(20, e);
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut a = Msg::default();
            a.bool(2, Some(&Value::Bool(*b)));
            m.message(21, a);
        }
        Some(v @ Value::Object(_)) => {
            let mut a = Msg::default();
            a.message(1, schema(v));
            m.message(21, a);
        }
        _ => {}
    }
    match s.get("type") {
        Some(Value::String(t)) => {
            let mut t_msg = Msg::default();
            t_msg.bytes(1, t.as_bytes());
            m.message(22, t_msg);
        }
        Some(types @ Value::Array(_)) => {
            let mut t_msg = Msg::default();
            t_msg.strings(1, Some(types));
            m.message(22, t_msg);
        }
        _ => {}
    }
    match s.get("items") {
        Some(v @ Value::Object(_)) => {
            let mut items = Msg::default();
            items.message(1, schema(v));
            m.message(23, items);
        }
        Some(Value::Array(list)) => {
            let mut items = Msg::default();
            list.iter().for_each(|v| items.message(1, schema(v)));
            m.message(23, items);
        }
        _ => {}
    }
    for sub in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, schema(sub));
    }
    if let Some(Value::Object(props)) = s.get("properties") {
        let mut p = Msg::default();
        for (name, sub) in props {
            p.message(1, named(name, schema(sub)));
        }
        m.message(25, p);
    }
    m.string(26, s.get("discriminator"));
    m.bool(27, s.get("readOnly"));
    if let Some(e) = s.get("example") {
        m.any(30, e);
    }
    m.extensions(31, &s);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_written_with_gnostic_numbers() {
        let bytes =
            v2_protobuf(&json!({"swagger": "2.0", "info": {"title": "K", "version": "v1"}}));
        // field 1 "2.0"; field 2 Info{1 "K", 2 "v1"}
        assert_eq!(
            bytes,
            vec![0x0a, 3, b'2', b'.', b'0', 0x12, 7, 0x0a, 1, b'K', 0x12, 2, b'v', b'1']
        );
    }

    #[test]
    fn empty_properties_are_still_present() {
        let m = schema(&json!({"type": "object", "properties": {}}));
        // type (22) then an empty Properties (25)
        assert!(m.0.ends_with(&[0xca, 0x01, 0x00]), "{:?}", m.0);
    }
}
