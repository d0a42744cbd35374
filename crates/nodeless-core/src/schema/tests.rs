//! Tests of parsing, validation, pruning and defaulting against upstream's behaviour.

use super::*;
use serde_json::json;

fn schema(v: Value) -> Schema {
    Schema::from_json(&v).expect("valid schema")
}

/// A CRD-like root schema with `spec` holding the given properties.
fn spec_schema(props: Value) -> Schema {
    schema(
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}),
    )
}

fn messages(s: &Schema, obj: Value) -> Vec<String> {
    validate(s, &obj).iter().map(|e| e.to_string()).collect()
}

fn spec_messages(props: Value, spec: Value) -> Vec<String> {
    messages(
        &spec_schema(props),
        json!({"apiVersion": "x/v1", "kind": "X", "spec": spec}),
    )
}

#[test]
fn wrong_type_is_reported_with_upstream_message() {
    let errs = spec_messages(
        json!({"replicas": {"type": "integer"}}),
        json!({"replicas": "3"}),
    );
    assert_eq!(
        errs,
        vec![
            r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
        ]
    );
    let e = &validate(
        &spec_schema(json!({"replicas": {"type": "integer"}})),
        &json!({"spec": {"replicas": "3"}}),
    )[0];
    assert_eq!(e.kind.cause_reason(), "FieldValueTypeInvalid");
}

#[test]
fn every_json_type_is_checked() {
    let props = json!({
        "o": {"type": "object"}, "a": {"type": "array"}, "s": {"type": "string"},
        "n": {"type": "number"}, "b": {"type": "boolean"}
    });
    let errs = spec_messages(
        props,
        json!({"o": [], "a": {}, "s": 1, "n": true, "b": "yes"}),
    );
    assert_eq!(
        errs,
        vec![
            r#"spec.o: Invalid value: "array": spec.o in body must be of type object: "array""#,
            r#"spec.a: Invalid value: "object": spec.a in body must be of type array: "object""#,
            r#"spec.s: Invalid value: "integer": spec.s in body must be of type string: "integer""#,
            r#"spec.n: Invalid value: "boolean": spec.n in body must be of type number: "boolean""#,
            r#"spec.b: Invalid value: "string": spec.b in body must be of type boolean: "string""#,
        ]
    );
}

#[test]
fn integers_and_numbers_convert_where_upstream_allows() {
    let props = json!({"i": {"type": "integer"}, "n": {"type": "number"}});
    assert!(spec_messages(props.clone(), json!({"i": 2.0, "n": 3})).is_empty());
    assert_eq!(
        spec_messages(props, json!({"i": 2.5})),
        vec![
            r#"spec.i: Invalid value: "number": spec.i in body must be of type integer: "number""#
        ]
    );
}

#[test]
fn missing_required_fields_are_each_reported() {
    let s = schema(json!({
        "type": "object", "required": ["spec"],
        "properties": {"spec": {"type": "object", "required": ["foo", "bar"], "properties": {
            "foo": {"type": "string"}, "bar": {"type": "string"}}}}
    }));
    assert_eq!(messages(&s, json!({})), vec!["spec: Required value"]);
    assert_eq!(
        messages(&s, json!({"spec": {}})),
        vec!["spec.foo: Required value", "spec.bar: Required value"]
    );
    let e = &validate(&s, &json!({}))[0];
    assert_eq!(e.kind.cause_reason(), "FieldValueRequired");
}

#[test]
fn enum_lists_supported_values() {
    let props = json!({"mode": {"type": "string", "enum": ["a", "b"]}, "level": {"type": "integer", "enum": [1, 2]}});
    assert_eq!(
        spec_messages(props.clone(), json!({"mode": "x", "level": 3})),
        vec![
            r#"spec.mode: Unsupported value: "x": supported values: "a", "b""#,
            r#"spec.level: Unsupported value: 3: supported values: "1", "2""#,
        ]
    );
    assert!(spec_messages(props, json!({"mode": "b", "level": 2})).is_empty());
}

#[test]
fn minimum_and_maximum_respect_exclusivity() {
    let props = json!({
        "a": {"type": "integer", "minimum": 1, "maximum": 10},
        "b": {"type": "integer", "minimum": 1, "exclusiveMinimum": true, "maximum": 10, "exclusiveMaximum": true},
        "c": {"type": "number", "maximum": 1.5}
    });
    assert!(spec_messages(props.clone(), json!({"a": 1, "b": 2, "c": 1.5})).is_empty());
    assert_eq!(
        spec_messages(props.clone(), json!({"a": 0, "b": 10, "c": 2})),
        vec![
            "spec.a: Invalid value: 0: spec.a in body should be greater than or equal to 1",
            "spec.b: Invalid value: 10: spec.b in body should be less than 10",
            "spec.c: Invalid value: 2: spec.c in body should be less than or equal to 1.5",
        ]
    );
    assert_eq!(
        spec_messages(props, json!({"a": 11, "b": 1})),
        vec![
            "spec.a: Invalid value: 11: spec.a in body should be less than or equal to 10",
            "spec.b: Invalid value: 1: spec.b in body should be greater than 1",
        ]
    );
}

#[test]
fn multiple_of_rejects_values_off_the_step() {
    let props = json!({"a": {"type": "integer", "multipleOf": 5}, "b": {"type": "number", "multipleOf": 0.5}});
    assert!(spec_messages(props.clone(), json!({"a": 15, "b": 2.5})).is_empty());
    assert_eq!(
        spec_messages(props, json!({"a": 7, "b": 0.3})),
        vec![
            "spec.a: Invalid value: 7: spec.a in body should be a multiple of 5",
            "spec.b: Invalid value: 0.3: spec.b in body should be a multiple of 0.5",
        ]
    );
}

#[test]
fn string_lengths_count_characters() {
    let props = json!({"s": {"type": "string", "minLength": 2, "maxLength": 3}});
    assert!(spec_messages(props.clone(), json!({"s": "héé"})).is_empty());
    assert_eq!(
        spec_messages(props.clone(), json!({"s": "abcd"})),
        vec!["spec.s: Too long: may not be more than 3 bytes"]
    );
    assert_eq!(
        spec_messages(props, json!({"s": "a"})),
        vec![r#"spec.s: Invalid value: "a": spec.s in body should be at least 2 chars long"#]
    );
}

#[test]
fn item_counts_are_bounded() {
    let props =
        json!({"l": {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "string"}}});
    assert_eq!(
        spec_messages(props.clone(), json!({"l": ["a"]})),
        vec!["spec.l: Invalid value: 1: spec.l in body should have at least 2 items"]
    );
    assert_eq!(
        spec_messages(props, json!({"l": ["a", "b", "c", "d"]})),
        vec!["spec.l: Too many: 4: must have at most 3 items"]
    );
}

#[test]
fn pattern_must_match() {
    let props = json!({"name": {"type": "string", "pattern": "^[a-z]+$"}});
    assert!(spec_messages(props.clone(), json!({"name": "abc"})).is_empty());
    assert_eq!(
        spec_messages(props, json!({"name": "ABC"})),
        vec![r#"spec.name: Invalid value: "ABC": spec.name in body should match '^[a-z]+$'"#]
    );
}

#[test]
fn formats_are_checked_leniently() {
    let props = json!({
        "when": {"type": "string", "format": "date-time"},
        "id": {"type": "string", "format": "uuid"},
        "custom": {"type": "string", "format": "my-own-format"},
        "small": {"type": "integer", "format": "int32"},
        "big": {"type": "integer", "format": "int64"}
    });
    assert!(spec_messages(
        props.clone(),
        json!({"when": "2024-05-01T10:00:00Z", "id": "123e4567-e89b-12d3-a456-426614174000",
               "custom": "anything", "small": 5, "big": 9_000_000_000i64})
    )
    .is_empty());
    assert_eq!(
        spec_messages(props, json!({"when": "tomorrow", "id": "nope", "small": 3_000_000_000i64})),
        vec![
            r#"spec.when: Invalid value: "tomorrow": spec.when in body must be of type date-time: "tomorrow""#,
            r#"spec.id: Invalid value: "nope": spec.id in body must be of type uuid: "nope""#,
            "spec.small: Invalid value: 3000000000: Checked value must be of type integer with format int32 in spec.small",
        ]
    );
}

#[test]
fn null_is_rejected_unless_nullable() {
    let props = json!({"a": {"type": "string"}, "b": {"type": "string", "nullable": true}});
    assert_eq!(
        spec_messages(props, json!({"a": null, "b": null})),
        vec![r#"spec.a: Invalid value: "null": spec.a in body must be of type string: "null""#]
    );
}

#[test]
fn nested_properties_additional_properties_and_items_are_followed() {
    let props = json!({
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "ports": {"type": "array", "items": {"type": "object", "required": ["port"],
            "properties": {"port": {"type": "integer", "maximum": 65535}}}}
    });
    assert_eq!(
        spec_messages(props, json!({"labels": {"a": "x", "b": 1}, "ports": [{"port": 80}, {"port": 70000}, {}]})),
        vec![
            r#"spec.labels.b: Invalid value: "integer": spec.labels.b in body must be of type string: "integer""#,
            "spec.ports[1].port: Invalid value: 70000: spec.ports[1].port in body should be less than or equal to 65535",
            "spec.ports[2].port: Required value",
        ]
    );
}

#[test]
fn int_or_string_accepts_both_and_nothing_else() {
    let props = json!({"port": {"x-kubernetes-int-or-string": true}});
    assert!(spec_messages(props.clone(), json!({"port": 80})).is_empty());
    assert!(spec_messages(props.clone(), json!({"port": "http"})).is_empty());
    assert_eq!(
        spec_messages(props, json!({"port": true})),
        vec![
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
        ]
    );
}

#[test]
fn embedded_resources_need_api_version_and_kind() {
    let props = json!({"template": {"type": "object", "x-kubernetes-embedded-resource": true,
        "x-kubernetes-preserve-unknown-fields": true}});
    assert!(spec_messages(
        props.clone(),
        json!({"template": {"apiVersion": "v1", "kind": "Pod"}})
    )
    .is_empty());
    assert_eq!(
        spec_messages(props, json!({"template": {"kind": 3}})),
        vec![
            "spec.template.apiVersion: Required value",
            "spec.template.kind: Invalid value: 3: must be a string"
        ]
    );
}

#[test]
fn several_failing_fields_are_all_reported() {
    let props = json!({
        "replicas": {"type": "integer", "minimum": 0},
        "mode": {"type": "string", "enum": ["fast", "safe"]},
        "name": {"type": "string", "maxLength": 3}
    });
    let errs = spec_messages(
        props,
        json!({"replicas": -1, "mode": "slow", "name": "toolong"}),
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
}

#[test]
fn list_type_set_and_map_reject_duplicates() {
    let props = json!({
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"],
            "items": {"type": "object", "properties": {"port": {"type": "integer"}, "name": {"type": "string"}}}}
    });
    assert_eq!(
        spec_messages(
            props,
            json!({"tags": ["a", "b", "a"], "ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]})
        ),
        vec![
            r#"spec.tags[2]: Duplicate value: "a""#,
            r#"spec.ports[1]: Duplicate value: {"port":80}"#
        ]
    );
}

#[test]
fn any_of_and_not_are_reported_at_their_field() {
    let props = json!({"v": {"type": "integer", "anyOf": [{"minimum": 10}, {"maximum": 0}], "not": {"enum": [-1]}}});
    assert!(spec_messages(props.clone(), json!({"v": 11})).is_empty());
    let errs = spec_messages(props.clone(), json!({"v": 5}));
    assert_eq!(
        errs[0],
        r#"spec.v: Invalid value: "": "spec.v" must validate at least one schema (anyOf)"#
    );
    let errs = spec_messages(props, json!({"v": -1}));
    assert_eq!(
        errs,
        vec![r#"spec.v: Invalid value: "": "spec.v" must not validate the schema (not)"#]
    );
}

#[test]
fn unknown_fields_are_pruned_and_reported() {
    let s = spec_schema(json!({"replicas": {"type": "integer"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}));
    let mut obj = json!({
        "apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "whatever": 1},
        "spec": {"replicas": 1, "foo": 2, "items": [{"name": "a", "bar": 1}]},
        "extra": true
    });
    let pruned = prune(&s, &mut obj);
    assert_eq!(pruned, vec!["spec.foo", "spec.items[0].bar", "extra"]);
    assert_eq!(
        obj,
        json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "whatever": 1},
               "spec": {"replicas": 1, "items": [{"name": "a"}]}})
    );
}

#[test]
fn preserve_unknown_fields_keeps_unknown_but_prunes_known_subtrees() {
    let s = spec_schema(json!({
        "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"strict": {"type": "object", "properties": {"a": {"type": "string"}}}}},
        "raw": {"x-kubernetes-preserve-unknown-fields": true}
    }));
    let mut obj = json!({"spec": {
        "config": {"anything": {"deep": 1}, "strict": {"a": "x", "b": "y"}},
        "raw": [{"any": {"thing": 1}}]
    }});
    let pruned = prune(&s, &mut obj);
    assert_eq!(pruned, vec!["spec.config.strict.b"]);
    assert_eq!(obj["spec"]["config"]["anything"], json!({"deep": 1}));
    assert_eq!(obj["spec"]["raw"], json!([{"any": {"thing": 1}}]));
}

#[test]
fn embedded_resources_keep_their_type_and_object_meta() {
    let s = spec_schema(
        json!({"template": {"type": "object", "x-kubernetes-embedded-resource": true,
        "properties": {"spec": {"type": "object"}}}}),
    );
    let mut obj = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
        "spec": {"gone": 1}, "other": 1}}});
    assert_eq!(
        prune(&s, &mut obj),
        vec!["spec.template.spec.gone", "spec.template.other"]
    );
    assert_eq!(obj["spec"]["template"]["metadata"], json!({"name": "x"}));
}

#[test]
fn additional_properties_schema_keeps_map_keys() {
    let s = spec_schema(
        json!({"m": {"type": "object", "additionalProperties": {"type": "object",
        "properties": {"a": {"type": "string"}}}}}),
    );
    let mut obj = json!({"spec": {"m": {"k1": {"a": "x", "b": 1}}}});
    assert_eq!(prune(&s, &mut obj), vec!["spec.m.k1.b"]);
    assert_eq!(obj, json!({"spec": {"m": {"k1": {"a": "x"}}}}));
}

#[test]
fn defaults_fill_missing_fields_at_every_depth() {
    let s = spec_schema(json!({
        "replicas": {"type": "integer", "default": 1},
        "strategy": {"type": "object", "default": {}, "properties": {"type": {"type": "string", "default": "Rolling"}}},
        "ports": {"type": "array", "items": {"type": "object", "properties": {"protocol": {"type": "string", "default": "TCP"}}}}
    }));
    let mut obj = json!({"spec": {"ports": [{"port": 80}, {"protocol": "UDP"}]}});
    apply_defaults(&s, &mut obj);
    assert_eq!(
        obj["spec"],
        json!({"ports": [{"port": 80, "protocol": "TCP"}, {"protocol": "UDP"}], "replicas": 1,
               "strategy": {"type": "Rolling"}})
    );
}

#[test]
fn defaults_replace_non_nullable_nulls_and_other_nulls_are_dropped() {
    let s = spec_schema(json!({
        "a": {"type": "string", "default": "x"},
        "b": {"type": "string"},
        "c": {"type": "string", "nullable": true, "default": "y"}
    }));
    let mut obj = json!({"spec": {"a": null, "b": null, "c": null}});
    apply_defaults(&s, &mut obj);
    assert_eq!(obj["spec"], json!({"a": "x", "c": null}));
}

#[test]
fn unusable_schemas_are_rejected_with_their_location() {
    let err =
        Schema::from_json(&json!({"type": "object", "properties": {"spec": {"type": "map"}}}))
            .expect_err("must be rejected");
    assert!(
        err.to_string()
            .starts_with("openAPIV3Schema.properties[spec].type: unsupported value \"map\""),
        "{err}"
    );
    let err = Schema::from_json(&json!({"type": "string", "pattern": "(unclosed"}))
        .expect_err("must be rejected");
    assert!(matches!(err, SchemaError::InvalidPattern { .. }));
    let err = Schema::from_json(&json!({"type": "string", "maxLength": "3"}))
        .expect_err("must be rejected");
    assert_eq!(
        err.to_string(),
        "openAPIV3Schema.maxLength: must be a non-negative integer"
    );
    assert!(Schema::from_json(&json!([])).is_err());
}

#[test]
fn unsupported_formats_are_ignored_like_upstream() {
    let s = schema(json!({"type": "integer", "format": "date-time"}));
    assert_eq!(s.format, None);
    let s = schema(json!({"type": "string", "format": "date-time"}));
    assert_eq!(s.format.as_deref(), Some("date-time"));
}
