//! Field selectors: `field=value`, `field==value`, `field!=value`, comma-joined (values may
//! escape `\,`, `\=` and `\\`), limited to the fields each kind registers upstream.

use super::SelectorError;
use crate::meta::get_path;
use serde_json::Value;

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    field: String,
    value: String,
    negated: bool,
}

/// A parsed field selector for one kind; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSelector {
    group: String,
    kind: String,
    /// Custom resources read every selectable field straight from its JSON path.
    custom: bool,
    terms: Vec<Term>,
}

/// How a kind validates field labels: its selectable fields and its upstream error text.
struct KindFields {
    fields: &'static [&'static str],
    error: fn(&str) -> String,
}

const META: &[&str] = &["metadata.name", "metadata.namespace"];

fn not_supported(field: &str) -> String {
    format!("field label not supported: {field}")
}

fn job_not_supported(field: &str) -> String {
    format!("field label {field:?} not supported for batchv1.Job")
}

fn not_known(field: &str) -> String {
    format!(
        "{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    )
}

/// The field label conversions kube-apiserver registers per group/kind.
fn kind_fields(group: &str, kind: &str) -> KindFields {
    let (fields, error): (&'static [&'static str], fn(&str) -> String) = match (group, kind) {
        ("", "Pod") => (
            &[
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ],
            not_supported,
        ),
        ("", "Node") => (&["metadata.name", "spec.unschedulable"], not_supported),
        ("", "ReplicationController") | ("apps", "ReplicaSet") => (
            &["metadata.name", "metadata.namespace", "status.replicas"],
            not_supported,
        ),
        ("", "Event") => (
            &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
                "metadata.namespace",
                "metadata.name",
            ],
            not_supported,
        ),
        ("", "Namespace") => (&["status.phase", "metadata.name"], not_supported),
        ("", "Secret") => (
            &["type", "metadata.namespace", "metadata.name"],
            not_supported,
        ),
        ("", "Service") => (
            &[
                "metadata.namespace",
                "metadata.name",
                "spec.clusterIP",
                "spec.type",
            ],
            not_supported,
        ),
        ("batch", "Job") => (
            &["metadata.name", "metadata.namespace", "status.successful"],
            job_not_supported,
        ),
        _ => (META, not_known),
    };
    KindFields { fields, error }
}

impl FieldSelector {
    /// Parses a `fieldSelector` for a built-in kind and checks every field is selectable.
    pub fn parse(group: &str, kind: &str, s: &str) -> Result<Self, SelectorError> {
        let terms = parse_terms(s)?;
        let known = kind_fields(group, kind);
        let terms = terms
            .into_iter()
            .map(|t| convert(t, group, kind, &known))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            group: group.into(),
            kind: kind.into(),
            custom: false,
            terms,
        })
    }

    /// Parses a `fieldSelector` for a custom resource whose CRD lists `selectableFields`
    /// (their JSON paths, e.g. `.spec.color`), besides the metadata fields.
    pub fn parse_custom(kind: &str, selectable: &[String], s: &str) -> Result<Self, SelectorError> {
        let terms = parse_terms(s)?;
        for t in &terms {
            let listed = selectable
                .iter()
                .any(|f| f.trim_start_matches('.') == t.field);
            if !listed && !META.contains(&t.field.as_str()) {
                return Err(SelectorError::UnsupportedField(not_known(&t.field)));
            }
        }
        Ok(Self {
            group: String::new(),
            kind: kind.into(),
            custom: true,
            terms,
        })
    }

    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self {
            group: String::new(),
            kind: String::new(),
            custom: false,
            terms: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value a `field=value` term requires, when the selector pins the field.
    pub fn requires_exact(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && !t.negated)
            .map(|t| t.value.as_str())
    }

    /// Whether the object (in its served JSON form) satisfies every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let actual = if self.custom {
                path_string(obj, &t.field)
            } else {
                field_value(&self.group, &self.kind, &t.field, obj)
            };
            (actual == t.value) != t.negated
        })
    }
}

fn convert(
    mut t: Term,
    group: &str,
    kind: &str,
    known: &KindFields,
) -> Result<Term, SelectorError> {
    // Old v1 clients still send `spec.host`; upstream rewrites it.
    if group.is_empty() && kind == "Pod" && t.field == "spec.host" {
        t.field = "spec.nodeName".into();
        return Ok(t);
    }
    if known.fields.contains(&t.field.as_str()) {
        Ok(t)
    } else {
        Err(SelectorError::UnsupportedField((known.error)(&t.field)))
    }
}

fn parse_terms(selector: &str) -> Result<Vec<Term>, SelectorError> {
    let mut parts = split_terms(selector);
    parts.sort();
    let mut terms = Vec::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        let Some((field, op, rhs)) = split_term(part) else {
            return Err(SelectorError::ParseFieldSelector(format!(
                "invalid selector: '{selector}'; can't understand '{part}'"
            )));
        };
        let value = unescape(rhs)?;
        terms.push(Term {
            field: field.to_string(),
            value,
            negated: op == "!=",
        });
    }
    Ok(terms)
}

/// Splits on commas that are not escaped with a backslash (the backslash stays).
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
}

/// The first operator occurrence splits the term; `!=` and `==` win over `=` at one position.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::ParseFieldSelector(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                )));
            }
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            // Upstream prints the rune with %v, i.e. as its number.
            ',' | '=' => {
                return Err(SelectorError::ParseFieldSelector(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )))
            }
            _ => out.push(c),
        }
    }
    if escaped {
        return Err(SelectorError::ParseFieldSelector(
            "invalid field selector: invalid escape sequence: \\".into(),
        ));
    }
    Ok(out)
}

/// The string a field has for selection, as upstream's `ToSelectableFields` renders it.
fn field_value(group: &str, kind: &str, field: &str, obj: &Value) -> String {
    match (group, kind, field) {
        ("", "Pod", "spec.hostNetwork") => bool_field(obj, "spec.hostNetwork"),
        ("", "Pod", "status.podIP") => obj
            .pointer("/status/podIPs/0/ip")
            .or_else(|| obj.pointer("/status/podIP"))
            .map(render)
            .unwrap_or_default(),
        // Upstream lists status.podIPs as selectable but never fills it in.
        ("", "Pod", "status.podIPs") => String::new(),
        ("", "Node", "spec.unschedulable") => bool_field(obj, "spec.unschedulable"),
        (_, _, "status.replicas") => int_field(obj, "status.replicas"),
        ("batch", "Job", "status.successful") => int_field(obj, "status.succeeded"),
        ("", "Event", "source") => {
            let component = path_string(obj, "source.component");
            if component.is_empty() {
                path_string(obj, "reportingComponent")
            } else {
                component
            }
        }
        ("", "Event", "reportingComponent") => path_string(obj, "reportingComponent"),
        _ => path_string(obj, field),
    }
}

fn path_string(obj: &Value, path: &str) -> String {
    get_path(obj, path).map(render).unwrap_or_default()
}

fn bool_field(obj: &Value, path: &str) -> String {
    get_path(obj, path)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

fn int_field(obj: &Value, path: &str) -> String {
    get_path(obj, path)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .to_string()
}

fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
