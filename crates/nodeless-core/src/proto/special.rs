//! apimachinery types whose JSON is not an object of their protobuf fields: times, durations,
//! quantities, int-or-string, embedded raw JSON and the apiextensions schema unions.

use super::decode::{self, bytes, string};
use super::schema::M;
use super::table::Kind;
use super::wire::{self, Reader};
use super::{FieldProblem, ProtoError};
use chrono::{DateTime, Datelike};
use serde_json::Value;

pub(super) enum SpecialError {
    /// The special value itself is malformed: reported at the field holding it.
    Problem(FieldProblem),
    /// A message inside it (a JSON schema) is malformed: already located.
    Nested(ProtoError),
}

impl From<FieldProblem> for SpecialError {
    fn from(p: FieldProblem) -> Self {
        SpecialError::Problem(p)
    }
}

impl From<wire::WireError> for SpecialError {
    fn from(e: wire::WireError) -> Self {
        SpecialError::Problem(e.into())
    }
}

impl From<ProtoError> for SpecialError {
    fn from(e: ProtoError) -> Self {
        SpecialError::Nested(e)
    }
}

/// The JSON of a special message held in `buf`; `None` where Go's JSON is `null`.
pub(super) fn decode(kind: Kind, buf: &[u8], depth: usize) -> Result<Option<Value>, SpecialError> {
    Ok(match kind {
        Kind::Time => time(buf, false)?,
        Kind::MicroTime => time(buf, true)?,
        Kind::Duration => Some(Value::String(go_duration(int_field(buf, 1)? as i64))),
        Kind::Quantity => Some(Value::String(quantity(buf)?)),
        Kind::IntOrString => Some(int_or_string(buf)?),
        Kind::RawExtension => raw_extension(buf, depth)?,
        Kind::RawJson => raw_json(buf)?,
        Kind::SchemaOrArray | Kind::SchemaOrBool | Kind::SchemaOrStringArray => {
            schema_union(kind, buf, depth)?
        }
        Kind::StringList => Some(Value::Array(repeated_strings(buf, 1)?)),
        // Scalars and ordinary messages never reach here (decode.rs handles them).
        _ => None,
    })
}

/// `Timestamp{seconds = 1, nanos = 2}`; all zero is Go's zero time, whose JSON is `null`.
fn time(buf: &[u8], micro: bool) -> Result<Option<Value>, SpecialError> {
    let seconds = int_field(buf, 1)? as i64;
    let nanos = i64::from(int_field(buf, 2)? as i32);
    if seconds == 0 && nanos == 0 {
        return Ok(None);
    }
    let out_of_range = || FieldProblem::TimeOutOfRange { seconds, nanos };
    let nanos_u32 = u32::try_from(nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(out_of_range)?;
    let t = DateTime::from_timestamp(seconds, nanos_u32).ok_or_else(out_of_range)?;
    if !(0..=9999).contains(&t.year()) {
        return Err(out_of_range().into());
    }
    // Go formats with RFC3339 (whole seconds) and RFC3339Micro, always in UTC.
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(Some(Value::String(t.format(format).to_string())))
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(super) fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, digits) = match u {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        return format!("{sign}{}{unit}", fraction(u, digits));
    }
    let seconds = fraction(u % 60_000_000_000, 9);
    let minutes = u / 60_000_000_000;
    match minutes {
        0 => format!("{sign}{seconds}s"),
        m if m < 60 => format!("{sign}{m}m{seconds}s"),
        m => format!("{sign}{}h{}m{seconds}s", m / 60, m % 60),
    }
}

/// `v / 10^digits` with the fraction's trailing zeros (and a bare `.`) dropped.
fn fraction(v: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let (whole, frac) = (v / scale, v % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// `Quantity{string = 1}`: Go's encoder sends the canonical form; an empty one is zero.
fn quantity(buf: &[u8]) -> Result<String, SpecialError> {
    let s = string_field(buf, 1)?;
    Ok(if s.is_empty() { "0".into() } else { s })
}

/// `IntOrString{type = 1, intVal = 2, strVal = 3}`.
fn int_or_string(buf: &[u8]) -> Result<Value, SpecialError> {
    match int_field(buf, 1)? {
        0 => Ok(Value::from(int_field(buf, 2)? as i32)),
        1 => Ok(Value::String(string_field(buf, 3)?)),
        other => Err(FieldProblem::IntOrStringType(other).into()),
    }
}

/// `RawExtension{raw = 1}`: usually JSON; a typed client may embed a protobuf object instead.
fn raw_extension(buf: &[u8], depth: usize) -> Result<Option<Value>, SpecialError> {
    let raw = bytes_field(buf, 1)?;
    if raw.starts_with(super::MAGIC) {
        if depth > decode::MAX_DEPTH {
            return Err(ProtoError::TooDeep.into());
        }
        return Ok(Some(super::envelope(raw, depth)?));
    }
    raw_json(buf)
}

/// `FieldsV1{raw = 1}` and apiextensions `JSON{raw = 1}`: JSON bytes, empty meaning `null`.
fn raw_json(buf: &[u8]) -> Result<Option<Value>, SpecialError> {
    let raw = bytes_field(buf, 1)?;
    if raw.is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(raw).map_err(FieldProblem::NotJson)?;
    Ok((!v.is_null()).then_some(v))
}

/// The apiextensions unions, chosen the way their Go `MarshalJSON` chooses.
fn schema_union(kind: Kind, buf: &[u8], depth: usize) -> Result<Option<Value>, SpecialError> {
    let schema = |tag| -> Result<Option<Value>, SpecialError> {
        match last_bytes(buf, tag)? {
            Some(b) => Ok(Some(Value::Object(decode::message(
                M::ApiextensionsV1JSONSchemaProps,
                b,
                depth,
            )?))),
            None => Ok(None),
        }
    };
    Ok(match kind {
        // JSONSchemaPropsOrArray{schema = 1, jSONSchemas = 2}
        Kind::SchemaOrArray => {
            let mut schemas = Vec::new();
            for b in all_bytes(buf, 2)? {
                schemas.push(Value::Object(decode::message(
                    M::ApiextensionsV1JSONSchemaProps,
                    b,
                    depth,
                )?));
            }
            if schemas.is_empty() {
                schema(1)?
            } else {
                Some(Value::Array(schemas))
            }
        }
        // JSONSchemaPropsOrBool{allows = 1, schema = 2}
        Kind::SchemaOrBool => match schema(2)? {
            Some(s) => Some(s),
            None => Some(Value::Bool(int_field(buf, 1)? != 0)),
        },
        // JSONSchemaPropsOrStringArray{schema = 1, property = 2}
        _ => {
            let property = repeated_strings(buf, 2)?;
            if property.is_empty() {
                schema(1)?
            } else {
                Some(Value::Array(property))
            }
        }
    })
}

/// The last varint of field `tag` (0 when absent, as Go's zero value).
fn int_field(buf: &[u8], tag: u32) -> Result<u64, SpecialError> {
    let mut out = 0;
    let mut reader = Reader::new(buf);
    while let Some((t, v)) = reader.next_field()? {
        if t == tag {
            out = match v {
                wire::Value::Varint(n) => n,
                other => {
                    return Err(FieldProblem::WireType {
                        expected: "varint",
                        got: other.wire_name(),
                    }
                    .into())
                }
            };
        }
    }
    Ok(out)
}

fn last_bytes(buf: &[u8], tag: u32) -> Result<Option<&[u8]>, SpecialError> {
    Ok(all_bytes(buf, tag)?.pop())
}

fn bytes_field(buf: &[u8], tag: u32) -> Result<&[u8], SpecialError> {
    Ok(last_bytes(buf, tag)?.unwrap_or_default())
}

fn string_field(buf: &[u8], tag: u32) -> Result<String, SpecialError> {
    Ok(String::from_utf8_lossy(bytes_field(buf, tag)?).into_owned())
}

fn all_bytes(buf: &[u8], tag: u32) -> Result<Vec<&[u8]>, SpecialError> {
    let mut out = Vec::new();
    let mut reader = Reader::new(buf);
    while let Some((t, v)) = reader.next_field()? {
        if t == tag {
            out.push(bytes(v)?);
        }
    }
    Ok(out)
}

fn repeated_strings(buf: &[u8], tag: u32) -> Result<Vec<Value>, SpecialError> {
    let mut out = Vec::new();
    let mut reader = Reader::new(buf);
    while let Some((t, v)) = reader.next_field()? {
        if t == tag {
            out.push(Value::String(string(v)?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-2_000_000_000, "-2s"),
            (7_200_000_000_001, "2h0m0.000000001s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(go_duration(nanos), want, "{nanos}ns");
        }
    }
}
