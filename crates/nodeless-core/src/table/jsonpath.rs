//! The JSONPath subset CRD printer columns use: `.spec.replicas`, `.items[0]`, `['a.b']`,
//! `.metadata.labels.app\.kubernetes\.io/name`, `[*]`, slices and filters such as
//! `.status.conditions[?(@.type=="Ready")].status`. Missing keys yield no result, as
//! upstream's `AllowMissingKeys(true)`.

use serde_json::Value;

/// A path that could not be parsed; worded like upstream's CRD table convertor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unrecognized column definition {path:?}")]
pub struct JsonPathError {
    pub path: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    path: Vec<Step>,
    test: Option<(CmpOp, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed path, evaluated against JSON values.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parses `.a.b[0]`, optionally wrapped in `{}` as kubectl templates write it.
    pub fn parse(path: &str) -> Result<Self, JsonPathError> {
        let err = || JsonPathError {
            path: path.to_string(),
        };
        let mut body = path.trim();
        if let Some(inner) = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')) {
            body = inner.trim();
        }
        body = body.strip_prefix('$').unwrap_or(body);
        let chars: Vec<char> = body.chars().collect();
        let mut pos = 0;
        let steps = parse_steps(&chars, &mut pos, &[]).ok_or_else(err)?;
        if pos != chars.len() {
            return Err(err());
        }
        Ok(Self { steps })
    }

    /// Every value the path reaches, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        apply(&self.steps, vec![root])
    }
}

/// Parses steps until the end or one of the `stop` characters (used inside filters).
fn parse_steps(c: &[char], pos: &mut usize, stop: &[char]) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    while *pos < c.len() && !stop.contains(&c[*pos]) {
        match c[*pos] {
            '.' => {
                *pos += 1;
                if c.get(*pos) == Some(&'*') {
                    *pos += 1;
                    steps.push(Step::Wildcard);
                } else if *pos < c.len() && c[*pos] != '.' && c[*pos] != '[' {
                    steps.push(Step::Field(field_name(c, pos, stop)));
                } else if *pos < c.len() && c[*pos] == '.' {
                    // Recursive descent is beyond what printer columns need.
                    return None;
                }
            }
            '[' => {
                *pos += 1;
                steps.push(bracket(c, pos)?);
            }
            _ if steps.is_empty() => steps.push(Step::Field(field_name(c, pos, stop))),
            _ => return None,
        }
    }
    Some(steps)
}

fn field_name(c: &[char], pos: &mut usize, stop: &[char]) -> String {
    let mut name = String::new();
    while *pos < c.len() {
        match c[*pos] {
            '\\' if *pos + 1 < c.len() => {
                name.push(c[*pos + 1]);
                *pos += 2;
            }
            '.' | '[' => break,
            ch if stop.contains(&ch) => break,
            ch => {
                name.push(ch);
                *pos += 1;
            }
        }
    }
    name
}

/// Parses what follows `[` up to and including `]`.
fn bracket(c: &[char], pos: &mut usize) -> Option<Step> {
    let step = match c.get(*pos)? {
        '*' => {
            *pos += 1;
            Step::Wildcard
        }
        '?' => {
            *pos += 1;
            expect(c, pos, '(')?;
            let f = filter(c, pos)?;
            expect(c, pos, ')')?;
            Step::Filter(f)
        }
        '\'' | '"' => Step::Field(quoted(c, pos)?),
        _ => index_or_slice(c, pos)?,
    };
    expect(c, pos, ']')?;
    Some(step)
}

fn expect(c: &[char], pos: &mut usize, ch: char) -> Option<()> {
    skip_spaces(c, pos);
    (c.get(*pos) == Some(&ch)).then(|| *pos += 1)
}

fn skip_spaces(c: &[char], pos: &mut usize) {
    while c.get(*pos).is_some_and(|ch| ch.is_whitespace()) {
        *pos += 1;
    }
}

fn quoted(c: &[char], pos: &mut usize) -> Option<String> {
    let quote = c[*pos];
    *pos += 1;
    let mut s = String::new();
    while *pos < c.len() && c[*pos] != quote {
        if c[*pos] == '\\' && *pos + 1 < c.len() {
            *pos += 1;
        }
        s.push(c[*pos]);
        *pos += 1;
    }
    (*pos < c.len()).then(|| {
        *pos += 1;
        s
    })
}

fn index_or_slice(c: &[char], pos: &mut usize) -> Option<Step> {
    let start = *pos;
    while *pos < c.len() && c[*pos] != ']' {
        *pos += 1;
    }
    let text: String = c[start..*pos].iter().collect();
    let num = |s: &str| -> Option<Option<i64>> {
        let s = s.trim();
        if s.is_empty() {
            Some(None)
        } else {
            s.parse().ok().map(Some)
        }
    };
    match text.split(':').collect::<Vec<_>>().as_slice() {
        [one] => Some(Step::Index(num(one)??)),
        [a, b] | [a, b, _] => Some(Step::Slice(num(a)?, num(b)?)),
        _ => None,
    }
}

fn filter(c: &[char], pos: &mut usize) -> Option<Filter> {
    skip_spaces(c, pos);
    expect(c, pos, '@')?;
    let path = parse_steps(c, pos, &[' ', '=', '!', '<', '>', ')'])?;
    skip_spaces(c, pos);
    let op = match (c.get(*pos), c.get(*pos + 1)) {
        (Some('='), Some('=')) => Some((CmpOp::Eq, 2)),
        (Some('!'), Some('=')) => Some((CmpOp::Ne, 2)),
        (Some('<'), Some('=')) => Some((CmpOp::Le, 2)),
        (Some('>'), Some('=')) => Some((CmpOp::Ge, 2)),
        (Some('<'), _) => Some((CmpOp::Lt, 1)),
        (Some('>'), _) => Some((CmpOp::Gt, 1)),
        _ => None,
    };
    let Some((op, width)) = op else {
        return Some(Filter { path, test: None });
    };
    *pos += width;
    skip_spaces(c, pos);
    Some(Filter {
        path,
        test: Some((op, literal(c, pos)?)),
    })
}

fn literal(c: &[char], pos: &mut usize) -> Option<Value> {
    if matches!(c.get(*pos), Some('\'' | '"')) {
        return quoted(c, pos).map(Value::String);
    }
    let start = *pos;
    while *pos < c.len() && c[*pos] != ')' && !c[*pos].is_whitespace() {
        *pos += 1;
    }
    let text: String = c[start..*pos].iter().collect();
    match text.as_str() {
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        t => serde_json::from_str::<serde_json::Number>(t)
            .ok()
            .map(Value::Number),
    }
}

fn apply<'a>(steps: &[Step], mut current: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        current = current
            .into_iter()
            .flat_map(|v| apply_step(step, v))
            .collect();
    }
    current
}

fn apply_step<'a>(step: &Step, v: &'a Value) -> Vec<&'a Value> {
    match (step, v) {
        (Step::Field(name), Value::Object(m)) => m.get(name).into_iter().collect(),
        (Step::Wildcard, Value::Object(m)) => m.values().collect(),
        (Step::Wildcard, Value::Array(a)) => a.iter().collect(),
        (Step::Index(i), Value::Array(a)) => resolve(*i, a.len())
            .and_then(|i| a.get(i))
            .into_iter()
            .collect(),
        (Step::Slice(from, to), Value::Array(a)) => {
            let len = a.len();
            let from = from.map_or(0, |f| clamp(f, len));
            let to = to.map_or(len, |t| clamp(t, len));
            a.get(from..to.max(from))
                .map(|s| s.iter().collect())
                .unwrap_or_default()
        }
        (Step::Filter(f), Value::Array(a)) => a.iter().filter(|item| passes(f, item)).collect(),
        _ => Vec::new(),
    }
}

fn resolve(i: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { len + i } else { i };
    usize::try_from(i).ok()
}

fn clamp(i: i64, len: usize) -> usize {
    let n = i64::try_from(len).unwrap_or(i64::MAX);
    let i = if i < 0 { (n + i).max(0) } else { i.min(n) };
    usize::try_from(i).unwrap_or(0)
}

fn passes(f: &Filter, item: &Value) -> bool {
    let found = apply(&f.path, vec![item]);
    let Some((op, want)) = &f.test else {
        return !found.is_empty();
    };
    found.first().is_some_and(|have| compare(have, *op, want))
}

fn compare(have: &Value, op: CmpOp, want: &Value) -> bool {
    let ordering = match (have, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    let Some(ord) = ordering else {
        return op == CmpOp::Ne;
    };
    match op {
        CmpOp::Eq => ord.is_eq(),
        CmpOp::Ne => ord.is_ne(),
        CmpOp::Lt => ord.is_lt(),
        CmpOp::Le => ord.is_le(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::Ge => ord.is_ge(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first(path: &str, v: &Value) -> Option<Value> {
        JsonPath::parse(path)
            .expect(path)
            .find(v)
            .first()
            .map(|v| (*v).clone())
    }

    #[test]
    fn simple_paths_indexes_and_filters_find_values() {
        let v = json!({
            "spec": {"replicas": 3},
            "items": ["a", "b", "c"],
            "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
            "status": {"conditions": [
                {"type": "Progressing", "status": "True"},
                {"type": "Ready", "status": "False", "count": 2}
            ]}
        });
        assert_eq!(first(".spec.replicas", &v), Some(json!(3)));
        assert_eq!(first("{.spec.replicas}", &v), Some(json!(3)));
        assert_eq!(first(".items[0]", &v), Some(json!("a")));
        assert_eq!(first(".items[-1]", &v), Some(json!("c")));
        assert_eq!(
            JsonPath::parse(".items[0:2]")
                .expect("slice")
                .find(&v)
                .len(),
            2
        );
        assert_eq!(
            first(".status.conditions[?(@.type==\"Ready\")].status", &v),
            Some(json!("False"))
        );
        assert_eq!(
            first(".status.conditions[?(@.type == 'Ready')].status", &v),
            Some(json!("False"))
        );
        assert_eq!(
            first(".status.conditions[?(@.count>1)].type", &v),
            Some(json!("Ready"))
        );
        assert_eq!(
            first(".status.conditions[?(@.count)].type", &v),
            Some(json!("Ready"))
        );
        assert_eq!(
            first(".metadata.labels.app\\.kubernetes\\.io/name", &v),
            Some(json!("web"))
        );
        assert_eq!(
            first(".metadata.labels['app.kubernetes.io/name']", &v),
            Some(json!("web"))
        );
        assert_eq!(
            JsonPath::parse(".status.conditions[*].type")
                .expect("wildcard")
                .find(&v)
                .len(),
            2
        );
    }

    #[test]
    fn missing_keys_give_no_result_and_bad_paths_are_errors() {
        let v = json!({"spec": {}});
        assert_eq!(first(".spec.replicas", &v), None);
        assert_eq!(first(".spec.replicas[3].x", &v), None);
        let e = JsonPath::parse(".spec[").expect_err("unclosed");
        assert_eq!(e.to_string(), "unrecognized column definition \".spec[\"");
        assert!(JsonPath::parse(".a[?(@.b==)]").is_err());
    }
}

#[cfg(test)]
mod noise_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arbitrary_paths_never_panic() {
        let doc = json!({"a": [{"b": 1}, {"b": "x"}], "ab": {"c": true}});
        for p in crate::selector::label::tests::noise(11, 5000) {
            if let Ok(path) = JsonPath::parse(&format!(".{p}")) {
                let _ = path.find(&doc);
            }
            let _ = JsonPath::parse(&p);
        }
    }
}
