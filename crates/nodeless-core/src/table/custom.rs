//! Tables of custom resources: a `Name` column plus the CRD's `additionalPrinterColumns`
//! (or upstream's default `Age` column when the CRD defines none).

use super::cell::s;
use super::duration::{format_time, parse_time};
use super::jsonpath::JsonPath;
use super::{docs, ColumnDef, PrinterColumn};
use serde_json::Value;

fn default_columns() -> Vec<PrinterColumn> {
    vec![PrinterColumn {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: docs::CREATION_TIMESTAMP.into(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    }]
}

pub(super) fn table(
    columns: &[PrinterColumn],
    objects: &[&Value],
) -> (Vec<ColumnDef>, Vec<Vec<Value>>) {
    let defaults;
    let columns = if columns.is_empty() {
        defaults = default_columns();
        &defaults[..]
    } else {
        columns
    };
    let mut defs = vec![super::NAME.def()];
    defs.extend(columns.iter().map(|c| ColumnDef {
        name: c.name.clone(),
        type_: c.type_.clone(),
        format: c.format.clone(),
        description: if c.description.is_empty() {
            format!(
                "Custom resource definition column (in JSONPath format): {}",
                c.json_path
            )
        } else {
            c.description.clone()
        },
        priority: c.priority,
    }));
    // A column whose path does not parse prints empty cells rather than failing the list.
    let paths: Vec<Option<JsonPath>> = columns
        .iter()
        .map(|c| JsonPath::parse(&c.json_path).ok())
        .collect();
    let rows = objects
        .iter()
        .map(|obj| {
            let mut cells = vec![Value::from(s(obj, "/metadata/name"))];
            cells.extend(
                columns
                    .iter()
                    .zip(&paths)
                    .map(|(c, p)| cell(c, p.as_ref(), obj)),
            );
            cells
        })
        .collect();
    (defs, rows)
}

fn cell(column: &PrinterColumn, path: Option<&JsonPath>, obj: &Value) -> Value {
    let Some(value) = path.and_then(|p| p.find(obj).into_iter().next()) else {
        return Value::Null;
    };
    if column.type_ == "string" {
        return text(value);
    }
    typed(&column.type_, value)
}

/// How upstream's JSONPath printer renders one result: strings raw, lists and maps as JSON.
fn text(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

/// Upstream's `cellForJSONValue`: the cell in the column's declared type, or null.
fn typed(type_: &str, v: &Value) -> Value {
    match (type_, v) {
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
            .map(Value::from)
            .unwrap_or(Value::Null),
        ("number", Value::Number(n)) => n.as_f64().map(Value::from).unwrap_or(Value::Null),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(ts)) => match parse_time(ts) {
            Some(t) => format_time(t).into(),
            None => "<invalid>".into(),
        },
        _ => Value::Null,
    }
}
