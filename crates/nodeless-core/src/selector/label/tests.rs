use super::*;
use serde_json::json;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse_err(s: &str) -> String {
    LabelSelector::parse(s).expect_err(s).to_string()
}

#[test]
fn equality_operators_match_only_the_given_value() {
    let l = labels(&[("app", "web"), ("tier", "front")]);
    for s in ["app=web", "app==web", "app = web", "app=web,tier=front"] {
        assert!(LabelSelector::parse(s).expect(s).matches(&l), "{s}");
    }
    assert!(!LabelSelector::parse("app=db").expect("parses").matches(&l));
    assert!(LabelSelector::parse("app!=db").expect("parses").matches(&l));
    assert!(!LabelSelector::parse("app!=web")
        .expect("parses")
        .matches(&l));
    assert!(LabelSelector::parse("missing!=x")
        .expect("parses")
        .matches(&l));
}

#[test]
fn set_operators_treat_missing_keys_like_upstream() {
    let l = labels(&[("env", "prod")]);
    assert!(LabelSelector::parse("env in (prod, staging)")
        .expect("parses")
        .matches(&l));
    assert!(!LabelSelector::parse("env notin (prod,staging)")
        .expect("parses")
        .matches(&l));
    assert!(LabelSelector::parse("other notin (a)")
        .expect("parses")
        .matches(&l));
    assert!(!LabelSelector::parse("other in (a)")
        .expect("parses")
        .matches(&l));
}

#[test]
fn bare_keys_test_existence_and_bang_tests_absence() {
    let l = labels(&[("env", "")]);
    assert!(LabelSelector::parse("env").expect("parses").matches(&l));
    assert!(!LabelSelector::parse("!env").expect("parses").matches(&l));
    assert!(LabelSelector::parse("!other,env")
        .expect("parses")
        .matches(&l));
    assert!(LabelSelector::parse("env=").expect("parses").matches(&l));
}

#[test]
fn numeric_comparisons_need_integer_labels() {
    let l = labels(&[("size", "5"), ("name", "x")]);
    assert!(LabelSelector::parse("size>3").expect("parses").matches(&l));
    assert!(!LabelSelector::parse("size<3").expect("parses").matches(&l));
    assert!(!LabelSelector::parse("name>3").expect("parses").matches(&l));
    assert_eq!(
        parse_err("size>x"),
        "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
}

#[test]
fn keywords_are_values_inside_sets() {
    let s = LabelSelector::parse("x in (in,notin)").expect("parses");
    assert!(s.matches(&labels(&[("x", "notin")])));
}

#[test]
fn empty_members_of_a_set_are_the_empty_string() {
    let s = LabelSelector::parse("x in (foo,,baz),y,z notin ()").expect("parses");
    assert_eq!(s.to_string(), "x in (,baz,foo),y,z notin ()");
    assert!(s.matches(&labels(&[("x", ""), ("y", "1")])));
}

#[test]
fn empty_input_selects_everything() {
    let s = LabelSelector::parse("").expect("parses");
    assert!(s.is_empty());
    assert!(s.matches(&BTreeMap::new()));
    assert!(LabelSelector::parse("  ").expect("parses").is_empty());
}

#[test]
fn selectors_print_sorted_by_key() {
    let s = LabelSelector::parse("b=1, a notin (y,x), !c").expect("parses");
    assert_eq!(s.to_string(), "a notin (x,y),b=1,!c");
}

#[test]
fn syntax_errors_use_upstream_wording() {
    assert_eq!(
        parse_err("a b"),
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(
        parse_err("a=b,"),
        "found '', expected: identifier after ','"
    );
    assert_eq!(
        parse_err("a=b c"),
        "found 'c', expected: ',' or 'end of string'"
    );
    assert_eq!(
        parse_err(",a"),
        "found ',', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(
        parse_err("a in b"),
        "unable to parse requirement: found 'b' expected: '('"
    );
    assert_eq!(
        parse_err("a in (b"),
        "unable to parse requirement: found '', expected: ',' or ')'"
    );
    assert_eq!(
        parse_err("a in (=)"),
        "unable to parse requirement: found '=', expected: ',', ')' or identifier"
    );
    assert_eq!(
        parse_err("!=a"),
        "found '!=', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(
        parse_err("! =a"),
        "unable to parse requirement: found '=', expected: identifier"
    );
    assert_eq!(
        parse_err("a=(b)"),
        "unable to parse requirement: found '(', expected: identifier"
    );
}

#[test]
fn invalid_keys_and_values_are_rejected_with_field_paths() {
    assert!(parse_err("-a=b").starts_with(
        "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters"
    ));
    assert!(parse_err("a=b$").starts_with(
        "unable to parse requirement: values[0][a]: Invalid value: \"b$\": a valid label must be an empty string"
    ));
    let long = format!("a={}", "v".repeat(64));
    assert!(parse_err(&long).contains("must be no more than 63 characters"));
}

#[test]
fn label_selector_objects_combine_labels_and_expressions() {
    let s = LabelSelector::from_json(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "env", "operator": "Exists"},
            {"key": "zone", "operator": "NotIn", "values": ["b"]}
        ]
    }))
    .expect("converts");
    assert!(s.matches(&labels(&[("app", "web"), ("tier", "edge"), ("env", "x")])));
    assert!(!s.matches(&labels(&[
        ("app", "web"),
        ("tier", "edge"),
        ("env", "x"),
        ("canary", "1")
    ])));
    assert!(!s.matches(&labels(&[("app", "web"), ("tier", "back"), ("env", "x")])));
    assert_eq!(
        s.to_string(),
        "app=web,!canary,env,tier in (edge,front),zone notin (b)"
    );
}

#[test]
fn null_selector_objects_match_nothing_and_empty_ones_everything() {
    let none = LabelSelector::from_json(&Value::Null).expect("converts");
    assert!(!none.matches(&BTreeMap::new()));
    assert!(!none.is_empty());
    let all = LabelSelector::from_json(&json!({})).expect("converts");
    assert!(all.is_empty());
    assert!(all.matches(&labels(&[("a", "b")])));
}

#[test]
fn bad_selector_objects_are_errors() {
    let e =
        LabelSelector::from_json(&json!({"matchExpressions": [{"key": "a", "operator": "Is"}]}));
    assert_eq!(
        e.expect_err("bad operator").to_string(),
        "\"Is\" is not a valid label selector operator"
    );
    let e = LabelSelector::from_json(
        &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
    );
    assert!(e
        .expect_err("empty in")
        .to_string()
        .contains("values set can't be empty"));
    assert!(LabelSelector::from_json(&json!({"matchLabels": {"a": "b c"}})).is_err());
}

#[test]
fn selector_formatting_matches_kubectl_columns() {
    assert_eq!(format_label_selector(None), "<none>");
    assert_eq!(
        format_label_selector(Some(&json!({"matchLabels": {"app": "web"}}))),
        "app=web"
    );
    assert_eq!(format_labels(&labels(&[("b", "2"), ("a", "1")])), "a=1,b=2");
    assert_eq!(format_labels(&BTreeMap::new()), "<none>");
}

/// Deterministic pseudo-random strings over the characters the grammars care about.
pub(crate) fn noise(seed: u64, count: usize) -> Vec<String> {
    let alphabet: Vec<char> = "ab=!(),<> in notin\\.[]?@'\"*:-0é".chars().collect();
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (state >> 59) as usize;
            (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    alphabet[(state >> 33) as usize % alphabet.len()]
                })
                .collect()
        })
        .collect()
}

#[test]
fn arbitrary_input_never_panics() {
    for s in noise(7, 5000) {
        if let Ok(sel) = LabelSelector::parse(&s) {
            sel.matches(&labels(&[("a", "b")]));
            let _ = sel.to_string();
        }
        let _ = crate::selector::FieldSelector::parse("", "Pod", &s);
    }
}
