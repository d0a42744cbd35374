//! Server-side `Table` printing: what `kubectl get` asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Built-in kinds get upstream's printer columns and cells (pkg/printers/internalversion);
//! custom resources get their CRD's `additionalPrinterColumns`; everything else gets
//! upstream's default `Name`, `Created At` table. Cells are always generated as for
//! `-o wide`, as kube-apiserver does; kubectl hides priority-1 columns itself.

mod apps;
mod batch;
mod cell;
mod core;
mod custom;
mod docs;
mod duration;
mod events;
mod jsonpath;
mod misc;
mod networking;
mod pod;

pub use duration::human_duration;
pub use jsonpath::{JsonPath, JsonPathError};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// The `includeObject` query parameter: what each row carries besides its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    /// Parses the parameter; an empty value means the default, an unknown one is `None`
    /// here and becomes upstream's `unrecognized includeObject value` 400 at the caller.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "Metadata" => Some(Self::Metadata),
            "None" => Some(Self::None),
            "Object" => Some(Self::Object),
            _ => None,
        }
    }
}

/// One `additionalPrinterColumns` entry of a CRD version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    pub json_path: String,
}

impl PrinterColumn {
    /// Reads one column from the CRD's JSON (`jsonPath`, `type`, ...).
    pub fn from_json(v: &Value) -> Self {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let priority = v.get("priority").and_then(Value::as_i64).unwrap_or(0);
        PrinterColumn {
            name: s("name"),
            type_: s("type"),
            format: s("format"),
            description: s("description"),
            priority: i32::try_from(priority).unwrap_or(0),
            json_path: s("jsonPath"),
        }
    }
}

/// A `metav1.TableColumnDefinition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
}

impl ColumnDef {
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// A column of a built-in printer, as a constant.
pub(crate) struct Col {
    name: &'static str,
    type_: &'static str,
    format: &'static str,
    priority: i32,
    description: &'static str,
}

/// A string column.
pub(crate) const fn col(name: &'static str, description: &'static str) -> Col {
    Col {
        name,
        type_: "string",
        format: "",
        priority: 0,
        description,
    }
}

/// An integer column.
pub(crate) const fn int(name: &'static str, description: &'static str) -> Col {
    Col {
        name,
        type_: "integer",
        format: "",
        priority: 0,
        description,
    }
}

/// A boolean column.
pub(crate) const fn boolean(name: &'static str, description: &'static str) -> Col {
    Col {
        name,
        type_: "boolean",
        format: "",
        priority: 0,
        description,
    }
}

/// The `Name` column every printer starts with.
pub(crate) const NAME: Col = Col {
    name: "Name",
    type_: "string",
    format: "name",
    priority: 0,
    description: docs::OBJECT_NAME,
};
/// The `Age` column.
pub(crate) const AGE: Col = col("Age", docs::CREATION_TIMESTAMP);

impl Col {
    /// The same column, shown only by `-o wide`.
    pub(crate) const fn wide(mut self) -> Col {
        self.priority = 1;
        self
    }

    fn def(&self) -> ColumnDef {
        ColumnDef {
            name: self.name.into(),
            type_: self.type_.into(),
            format: self.format.into(),
            description: self.description.into(),
            priority: self.priority,
        }
    }
}

/// What a printer's cells are computed from.
pub(crate) struct Ctx {
    pub now: DateTime<Utc>,
}

impl Ctx {
    /// The `Age` cell of an object.
    pub fn age(&self, obj: &Value) -> Value {
        self.since(cell::s(obj, "/metadata/creationTimestamp"))
            .into()
    }

    /// The age of a timestamp, `<unknown>` when unset.
    pub fn since(&self, ts: &str) -> String {
        duration::since(Some(ts), self.now)
    }
}

/// Computes one object's cells, one per column.
pub(crate) type CellFn = fn(&Value, &Ctx) -> Vec<Value>;

/// A built-in kind's columns and cell function.
pub(crate) struct Printer {
    pub columns: &'static [Col],
    pub cells: CellFn,
}

fn printer(group: &str, kind: &str) -> Option<Printer> {
    match group {
        "" => core::printer(kind).or_else(|| pod::printer(kind)),
        "apps" => apps::printer(kind),
        "batch" => batch::printer(kind),
        "networking.k8s.io" | "discovery.k8s.io" => networking::printer(kind),
        "events.k8s.io" => events::printer(kind),
        _ => misc::printer(group, kind),
    }
}

/// The default table's columns, for kinds without a printer.
fn default_columns() -> Vec<ColumnDef> {
    vec![
        NAME.def(),
        ColumnDef {
            name: "Created At".into(),
            type_: "date".into(),
            format: String::new(),
            description: docs::CREATION_TIMESTAMP.into(),
            priority: 0,
        },
    ]
}

fn default_cells(obj: &Value) -> Vec<Value> {
    let created = duration::parse_time(cell::s(obj, "/metadata/creationTimestamp"))
        .map(duration::format_time)
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    vec![cell::s(obj, "/metadata/name").into(), created.into()]
}

/// The columns `kubectl get` shows for a built-in kind (the default table's when it has no
/// printer of its own).
pub fn columns_for(group: &str, kind: &str) -> Vec<ColumnDef> {
    match printer(group, kind) {
        Some(p) => p.columns.iter().map(Col::def).collect(),
        None => default_columns(),
    }
}

/// Builds a `meta.k8s.io/v1` `Table` of `objects`.
///
/// `crd_columns` is `Some` for custom resources (an empty slice when the CRD version defines
/// no columns, which gets upstream's `Age` column); `list_meta` becomes the table's metadata
/// (`resourceVersion`, `continue`, ...); `now` is the reference for every age cell.
pub fn build_table(
    group: &str,
    kind: &str,
    crd_columns: Option<&[PrinterColumn]>,
    objects: &[&Value],
    include: IncludeObject,
    list_meta: Value,
    now: DateTime<Utc>,
) -> Value {
    let ctx = Ctx { now };
    let (columns, rows): (Vec<ColumnDef>, Vec<Vec<Value>>) =
        match (crd_columns, printer(group, kind)) {
            (Some(cols), _) => custom::table(cols, objects),
            (None, Some(p)) => (
                p.columns.iter().map(Col::def).collect(),
                objects.iter().map(|o| (p.cells)(o, &ctx)).collect(),
            ),
            (None, None) => (
                default_columns(),
                objects.iter().map(|o| default_cells(o)).collect(),
            ),
        };
    let rows: Vec<Value> = objects
        .iter()
        .zip(rows)
        .map(|(obj, cells)| row(group, kind, obj, cells, include))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": if list_meta.is_null() { json!({}) } else { list_meta },
        "columnDefinitions": columns.iter().map(ColumnDef::to_json).collect::<Vec<_>>(),
        "rows": rows,
    })
}

fn row(group: &str, kind: &str, obj: &Value, cells: Vec<Value>, include: IncludeObject) -> Value {
    let mut r = Map::new();
    r.insert("cells".into(), Value::Array(cells));
    if group.is_empty() && kind == "Pod" {
        if let Some(conditions) = pod::row_conditions(obj) {
            r.insert("conditions".into(), conditions);
        }
    }
    let object = match include {
        // Upstream leaves an empty RawExtension, which encodes as null.
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    };
    r.insert("object".into(), object);
    Value::Object(r)
}

#[cfg(test)]
mod tests;
