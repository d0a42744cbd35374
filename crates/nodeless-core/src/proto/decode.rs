//! Builds the JSON object of one message from its wire fields and the schema table.

use super::special;
use super::table::{Card, Field, Kind, M};
use super::wire::{self, Reader};
use super::{FieldProblem, ProtoError};
use base64::Engine;
use serde_json::{Map, Number, Value};

/// Deeper nesting than any real object has; bounds recursion on hostile input.
pub(super) const MAX_DEPTH: usize = 100;

/// What has been read for one field so far.
#[derive(Clone)]
enum Slot {
    Empty,
    One(Value),
    Many(Vec<Value>),
    Map(Map<String, Value>),
}

/// Decodes the fields of message `m`. Unknown field numbers are skipped, as Go does, so
/// clients newer than the table still work.
pub(super) fn message(m: M, buf: &[u8], depth: usize) -> Result<Map<String, Value>, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep);
    }
    let fields = m.fields();
    let mut slots = vec![Slot::Empty; fields.len()];
    let mut reader = Reader::new(buf);
    while let Some((tag, value)) = reader.next_field().map_err(|source| ProtoError::Wire {
        message: m.name(),
        source,
    })? {
        if let Some((field, slot)) = fields
            .iter()
            .zip(slots.iter_mut())
            .find(|(f, _)| f.tag == tag)
        {
            store(m, field, slot, value, depth)?;
        }
    }
    Ok(emit(fields, slots))
}

/// Adds one wire value to field `f`'s slot; errors get the field's JSON path segment.
fn store(
    m: M,
    f: &Field,
    slot: &mut Slot,
    value: wire::Value,
    depth: usize,
) -> Result<(), ProtoError> {
    match f.card {
        // Go keeps the last of repeated occurrences of a singular field.
        Card::One | Card::Inline => {
            let segment = if f.card == Card::Inline { "" } else { f.json };
            *slot = match self::value(m, f, value, depth).map_err(|e| e.within(segment))? {
                Some(v) => Slot::One(v),
                None => Slot::Empty,
            };
        }
        Card::Repeated => {
            let mut items = match std::mem::replace(slot, Slot::Empty) {
                Slot::Many(items) => items,
                _ => Vec::new(),
            };
            let segment = format!("{}[{}]", f.json, items.len());
            match value {
                wire::Value::Bytes(packed) if is_packable(f.kind) => {
                    unpack(m, f, packed, &mut items).map_err(|e| e.within(&segment))?
                }
                value => {
                    let v = self::value(m, f, value, depth).map_err(|e| e.within(&segment))?;
                    items.push(v.unwrap_or(Value::Null));
                }
            }
            *slot = Slot::Many(items);
        }
        Card::Map => {
            let mut entries = match std::mem::replace(slot, Slot::Empty) {
                Slot::Map(entries) => entries,
                _ => Map::new(),
            };
            let (key, v) = map_entry(m, f, value, depth).map_err(|e| e.within(f.json))?;
            entries.insert(key, v);
            *slot = Slot::Map(entries);
        }
    }
    Ok(())
}

/// The JSON object in table (Go declaration) order, without unset and omitted-zero fields.
fn emit(fields: &[Field], slots: Vec<Slot>) -> Map<String, Value> {
    let mut out = Map::new();
    for (f, slot) in fields.iter().zip(slots) {
        match slot {
            Slot::Empty => {}
            Slot::One(Value::Object(inner)) if f.card == Card::Inline => out.extend(inner),
            Slot::One(v) if !f.keep_zero && is_zero_scalar(f.kind, &v) => {}
            Slot::One(v) => {
                out.insert(f.json.into(), v);
            }
            Slot::Many(items) => {
                out.insert(f.json.into(), Value::Array(items));
            }
            Slot::Map(entries) => {
                out.insert(f.json.into(), Value::Object(entries));
            }
        }
    }
    out
}

/// One value of field `f`; `None` where Go's JSON would be `null` (a zero `Time`, an empty
/// `RawExtension`), which is left out.
fn value(m: M, f: &Field, value: wire::Value, depth: usize) -> Result<Option<Value>, ProtoError> {
    let problem = |p| ProtoError::field(m, f, p);
    match f.kind {
        Kind::Str | Kind::Bytes | Kind::Int32 | Kind::Int64 | Kind::Bool | Kind::Double => {
            scalar(f.kind, value).map(Some).map_err(problem)
        }
        Kind::Message(inner) => {
            let bytes = bytes(value).map_err(problem)?;
            Ok(Some(Value::Object(message(inner, bytes, depth + 1)?)))
        }
        special_kind => {
            let bytes = bytes(value).map_err(problem)?;
            special::decode(special_kind, bytes, depth + 1).map_err(|e| match e {
                special::SpecialError::Problem(p) => ProtoError::field(m, f, p),
                special::SpecialError::Nested(e) => e,
            })
        }
    }
}

fn map_entry(
    m: M,
    f: &Field,
    entry: wire::Value,
    depth: usize,
) -> Result<(String, Value), ProtoError> {
    let problem = |p| ProtoError::field(m, f, p);
    let mut reader = Reader::new(bytes(entry).map_err(problem)?);
    let mut key = String::new();
    let mut v = None;
    while let Some((tag, item)) = reader.next_field().map_err(|e| problem(e.into()))? {
        match tag {
            1 => key = string(item).map_err(problem)?,
            2 => v = value(m, f, item, depth)?,
            _ => {}
        }
    }
    Ok((key, v.unwrap_or_else(|| zero_value(f.kind))))
}

fn unpack(m: M, f: &Field, packed: &[u8], items: &mut Vec<Value>) -> Result<(), ProtoError> {
    let problem = |p| ProtoError::field(m, f, p);
    let mut reader = Reader::new(packed);
    while !reader.is_empty() {
        let one = if f.kind == Kind::Double {
            wire::Value::Fixed64(u64::from_le_bytes(
                reader.array::<8>().map_err(|e| problem(e.into()))?,
            ))
        } else {
            wire::Value::Varint(reader.varint().map_err(|e| problem(e.into()))?)
        };
        items.push(scalar(f.kind, one).map_err(problem)?);
    }
    Ok(())
}

fn is_packable(kind: Kind) -> bool {
    matches!(kind, Kind::Int32 | Kind::Int64 | Kind::Bool | Kind::Double)
}

pub(super) fn scalar(kind: Kind, value: wire::Value) -> Result<Value, FieldProblem> {
    Ok(match (kind, value) {
        (Kind::Str, _) => Value::String(string(value)?),
        (Kind::Bytes, wire::Value::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        // int32 travels sign-extended to 64 bits; the cast takes the low half back.
        (Kind::Int32, wire::Value::Varint(v)) => Value::from(v as i32),
        (Kind::Int64, wire::Value::Varint(v)) => Value::from(v as i64),
        (Kind::Bool, wire::Value::Varint(v)) => Value::Bool(v != 0),
        (Kind::Double, wire::Value::Fixed64(v)) => double(f64::from_bits(v))?,
        (kind, value) => {
            return Err(FieldProblem::WireType {
                expected: expected_wire(kind),
                got: value.wire_name(),
            })
        }
    })
}

/// Go prints integral float64 values without a fraction (`5`, not `5.0`).
fn double(d: f64) -> Result<Value, FieldProblem> {
    if !d.is_finite() {
        return Err(FieldProblem::NotFinite(d));
    }
    if d.fract() == 0.0 && d.abs() < 9_007_199_254_740_992.0 {
        return Ok(Value::from(d as i64));
    }
    Ok(Number::from_f64(d)
        .map(Value::Number)
        .unwrap_or(Value::Null))
}

fn expected_wire(kind: Kind) -> &'static str {
    match kind {
        Kind::Int32 | Kind::Int64 | Kind::Bool => "varint",
        Kind::Double => "fixed64",
        _ => "length-delimited",
    }
}

pub(super) fn bytes<'a>(value: wire::Value<'a>) -> Result<&'a [u8], FieldProblem> {
    match value {
        wire::Value::Bytes(b) => Ok(b),
        other => Err(FieldProblem::WireType {
            expected: "length-delimited",
            got: other.wire_name(),
        }),
    }
}

/// Go does not check UTF-8 in protobuf strings; its JSON encoder then writes U+FFFD for
/// invalid bytes, which is what the lossy conversion gives.
pub(super) fn string(value: wire::Value) -> Result<String, FieldProblem> {
    Ok(String::from_utf8_lossy(bytes(value)?).into_owned())
}

fn is_zero_scalar(kind: Kind, v: &Value) -> bool {
    match kind {
        Kind::Str | Kind::Bytes => v.as_str() == Some(""),
        Kind::Int32 | Kind::Int64 => v.as_i64() == Some(0),
        Kind::Bool => v.as_bool() == Some(false),
        Kind::Double => v.as_f64() == Some(0.0),
        _ => false,
    }
}

/// A map value that was absent from its entry: the Go zero value's JSON.
fn zero_value(kind: Kind) -> Value {
    match kind {
        Kind::Str | Kind::Bytes => Value::String(String::new()),
        Kind::Int32 | Kind::Int64 | Kind::Double | Kind::IntOrString => Value::from(0),
        Kind::Bool => Value::Bool(false),
        Kind::Message(_) => Value::Object(Map::new()),
        Kind::Quantity => Value::String("0".into()),
        _ => Value::Null,
    }
}
