//! Label selectors: the `labelSelector` query syntax (`a=b,c in (d,e),!f`) and
//! `metav1.LabelSelector` objects (`matchLabels` + `matchExpressions`), matched against labels.

use super::SelectorError;
use crate::field::FieldError;
use crate::status::render_errors;
use crate::validation::names::{is_qualified_name, is_valid_label_value};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

mod lexer;
mod parser;

/// A requirement's operator, spelled as upstream's `selection.Operator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl Operator {
    fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One `key op values` term; a selector is the AND of its requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

impl Requirement {
    /// Validates like upstream's `NewRequirement`: field errors under `key` and `values`.
    pub fn new(
        key: &str,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errs = Vec::new();
        let key_errs = is_qualified_name(key);
        if !key_errs.is_empty() {
            errs.push(FieldError::invalid("key", key, key_errs.join("; ")));
        }
        let shown = || Value::from(values.clone());
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(FieldError::invalid(
                "values",
                shown(),
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errs.push(FieldError::invalid(
                    "values",
                    shown(),
                    "exact-match compatibility requires one single value",
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errs.push(FieldError::invalid(
                    "values",
                    shown(),
                    "values set must be empty for exists and does not exist",
                ))
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        "values",
                        shown(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            format!("values[{i}]"),
                            v.as_str(),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = is_valid_label_value(v);
            if !value_errs.is_empty() {
                errs.push(FieldError::invalid(
                    format!("values[{i}][{key}]"),
                    v.as_str(),
                    value_errs.join("; "),
                ));
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            })
        } else {
            Err(errs)
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let has = |v: &String| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                labels.get(&self.key).is_some_and(has)
            }
            Operator::NotIn | Operator::NotEquals => !labels.get(&self.key).is_some_and(has),
            Operator::Exists => labels.contains_key(&self.key),
            Operator::DoesNotExist => !labels.contains_key(&self.key),
            Operator::GreaterThan | Operator::LessThan => self.compares(labels),
        }
    }

    fn compares(&self, labels: &BTreeMap<String, String>) -> bool {
        let Some(have) = labels.get(&self.key).and_then(|v| v.parse::<i64>().ok()) else {
            return false;
        };
        let [want] = self.values.as_slice() else {
            return false;
        };
        let Ok(want) = want.parse::<i64>() else {
            return false;
        };
        match self.operator {
            Operator::GreaterThan => have > want,
            _ => have < want,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            other => other.as_str(),
        };
        f.write_str(op)?;
        let mut values = self.values.clone();
        values.sort();
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            write!(f, "({})", values.join(","))
        } else {
            f.write_str(&values.join(","))
        }
    }
}

/// A parsed label selector. The empty selector matches everything; a selector built from a
/// null `metav1.LabelSelector` matches nothing, as upstream's `LabelSelectorAsSelector`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// A selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// A selector that matches no object.
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the `labelSelector` query parameter syntax.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut requirements = parser::parse(s).map_err(SelectorError::ParseLabelSelector)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self {
            requirements,
            nothing: false,
        })
    }

    /// Builds a selector from a `metav1.LabelSelector` JSON object (null matches nothing).
    pub fn from_json(v: &Value) -> Result<Self, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(Self::nothing()),
            Value::Object(m) => m,
            other => return Err(convert_error(format!("invalid label selector: {other}"))),
        };
        let mut reqs = Vec::new();
        if let Some(labels) = obj.get("matchLabels").filter(|m| !m.is_null()) {
            let labels = labels
                .as_object()
                .ok_or_else(|| convert_error("matchLabels must be an object".into()))?;
            for (k, v) in labels {
                let value = v
                    .as_str()
                    .ok_or_else(|| convert_error(format!("matchLabels[{k}] must be a string")))?;
                reqs.push(new_requirement(
                    k,
                    Operator::Equals,
                    vec![value.to_string()],
                )?);
            }
        }
        if let Some(exprs) = obj.get("matchExpressions").filter(|m| !m.is_null()) {
            let exprs = exprs
                .as_array()
                .ok_or_else(|| convert_error("matchExpressions must be a list".into()))?;
            for expr in exprs {
                reqs.push(expression(expr)?);
            }
        }
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self {
            requirements: reqs,
            nothing: false,
        })
    }

    /// A selector requiring exactly these labels (`matchLabels` without validation).
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        let requirements = labels
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        Self {
            requirements,
            nothing: false,
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// True when the selector does not restrict anything (a "nothing" selector is not empty).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector built from a null `metav1.LabelSelector`.
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

impl fmt::Display for LabelSelector {
    /// Upstream's `Selector.String()`: requirements joined by `,` (empty for everything/nothing).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(Requirement::to_string)
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn convert_error(message: String) -> SelectorError {
    SelectorError::ConvertLabelSelector(message)
}

fn new_requirement(
    key: &str,
    op: Operator,
    values: Vec<String>,
) -> Result<Requirement, SelectorError> {
    Requirement::new(key, op, values).map_err(|errs| convert_error(render_errors(&errs)))
}

fn expression(expr: &Value) -> Result<Requirement, SelectorError> {
    let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
    let op_name = expr
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let op = match op_name {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        other => {
            return Err(convert_error(format!(
                "{other:?} is not a valid label selector operator"
            )))
        }
    };
    let values: Vec<String> = expr
        .get("values")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    new_requirement(key, op, values)
}

/// `k=v,k2=v2` sorted by key, or `<none>`: upstream's `labels.FormatLabels`.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "<none>".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Upstream's `metav1.FormatLabelSelector`: the selector string, `<none>` or `<error>`.
pub fn format_label_selector(v: Option<&Value>) -> String {
    match LabelSelector::from_json(v.unwrap_or(&Value::Null)) {
        Err(_) => "<error>".into(),
        Ok(s) if s.to_string().is_empty() => "<none>".into(),
        Ok(s) => s.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
