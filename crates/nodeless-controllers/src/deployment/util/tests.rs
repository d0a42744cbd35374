use super::*;
use serde_json::json;

fn deployment(v: serde_json::Value) -> Deployment {
    serde_json::from_value(v).expect("deployment")
}

fn rolling(replicas: i32, surge: serde_json::Value, unavailable: serde_json::Value) -> Deployment {
    deployment(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {}, "template": {},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}
    }))
}

fn rs(v: serde_json::Value) -> ReplicaSet {
    serde_json::from_value(v).expect("rs")
}

#[test]
fn surge_percentages_round_up_and_unavailability_percentages_round_down() {
    let d = rolling(10, json!("25%"), json!("25%"));
    assert_eq!(fenceposts(&d), (3, 2));
    let d = rolling(3, json!("10%"), json!("10%"));
    assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
    let d = rolling(4, json!(2), json!("50%"));
    assert_eq!((max_surge(&d), max_unavailable(&d)), (2, 2));
}

#[test]
fn when_both_fenceposts_round_to_zero_one_replica_may_be_unavailable() {
    let d = rolling(3, json!(0), json!("10%"));
    assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 1));
}

#[test]
fn unavailability_is_capped_at_the_replicas_and_recreate_has_no_fenceposts() {
    let d = rolling(2, json!(1), json!(5));
    assert_eq!(max_unavailable(&d), 2);
    let r = deployment(
        json!({"spec": {"replicas": 3, "selector": {}, "template": {},
        "strategy": {"type": "Recreate"}}}),
    );
    assert_eq!((max_surge(&r), max_unavailable(&r)), (0, 0));
}

#[test]
fn the_new_replica_set_grows_only_within_max_surge() {
    let d = rolling(3, json!(1), json!(0));
    let old = rs(json!({"spec": {"replicas": 3, "selector": {}}}));
    let new = rs(json!({"spec": {"replicas": 0, "selector": {}}}));
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
    let new1 = rs(json!({"spec": {"replicas": 1, "selector": {}}}));
    assert_eq!(
        new_rs_new_replicas(&d, &[&old, &new1], &new1),
        1,
        "at 4 of 4"
    );
    let old2 = rs(json!({"spec": {"replicas": 2, "selector": {}}}));
    assert_eq!(new_rs_new_replicas(&d, &[&old2, &new1], &new1), 2);
}

#[test]
fn the_template_hash_is_stable_uses_the_safe_alphabet_and_changes_with_collisions() {
    let t: PodTemplateSpec = serde_json::from_value(json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}
    }))
    .expect("template");
    let h = template_hash(&t, None);
    assert_eq!(h, template_hash(&t.clone(), None));
    assert!(!h.is_empty() && h.len() <= 10);
    assert!(
        h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{h}"
    );
    assert_ne!(h, template_hash(&t, Some(1)));
    let mut other = t.clone();
    other.spec.as_mut().expect("spec").containers[0].image = Some("nginx:2".into());
    assert_ne!(h, template_hash(&other, None));
}

#[test]
fn templates_equal_but_for_the_hash_label_are_the_same_template() {
    let a: PodTemplateSpec =
        serde_json::from_value(json!({"metadata": {"labels": {"app": "web"}}})).expect("t");
    let b: PodTemplateSpec = serde_json::from_value(
        json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}}),
    )
    .expect("t");
    assert!(equal_ignore_hash(Some(&a), Some(&b)));
    let c: PodTemplateSpec =
        serde_json::from_value(json!({"metadata": {"labels": {"app": "api"}}})).expect("t");
    assert!(!equal_ignore_hash(Some(&a), Some(&c)));
}

#[test]
fn the_oldest_replica_set_with_the_current_template_is_the_new_one() {
    let d = deployment(json!({"spec": {"selector": {},
        "template": {"metadata": {"labels": {"app": "web"}}}}}));
    let mk = |name: &str, created: &str, app: &str| {
        rs(
            json!({"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"selector": {}, "template": {"metadata": {"labels": {"app": app, "pod-template-hash": name}}}}}),
        )
    };
    let list = [
        mk("b", "2026-01-02T00:00:00Z", "web"),
        mk("a", "2026-01-01T00:00:00Z", "web"),
        mk("c", "2025-01-01T00:00:00Z", "other"),
    ];
    assert_eq!(
        find_new(&d, &list).and_then(|r| r.metadata.name.as_deref()),
        Some("a")
    );
}

#[test]
fn a_reused_replica_set_gets_the_next_revision_and_remembers_its_old_one() {
    let d = deployment(json!({
        "metadata": {"annotations": {
            "kubernetes.io/change-cause": "kubectl set image",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            REVISION: "2"}},
        "spec": {"replicas": 3, "selector": {}, "template": {}}
    }));
    let mut old = rs(json!({"metadata": {"annotations": {REVISION: "1"}}}));
    assert!(set_new_rs_annotations(&d, &mut old, 3, true));
    let a = old.metadata.annotations.as_ref().expect("annotations");
    assert_eq!(a[REVISION], "3");
    assert_eq!(a[REVISION_HISTORY], "1");
    assert_eq!(a["kubernetes.io/change-cause"], "kubectl set image");
    assert!(!a.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    assert!(!a.contains_key(DESIRED_REPLICAS), "only set on creation");
    // Already at that revision: nothing changes.
    assert!(!set_new_rs_annotations(&d, &mut old, 3, true));

    let mut fresh = rs(json!({}));
    assert!(set_new_rs_annotations(&d, &mut fresh, 1, false));
    let a = fresh.metadata.annotations.as_ref().expect("annotations");
    assert_eq!(
        (
            a[REVISION].as_str(),
            a[DESIRED_REPLICAS].as_str(),
            a[MAX_REPLICAS].as_str()
        ),
        ("1", "3", "4")
    );
}

#[test]
fn a_desired_replicas_annotation_that_differs_is_a_scaling_event() {
    let d = rolling(5, json!(1), json!(0));
    let rs3 = rs(json!({"metadata": {"annotations": {DESIRED_REPLICAS: "3"}}}));
    let rs5 = rs(json!({"metadata": {"annotations": {DESIRED_REPLICAS: "5"}}}));
    assert!(is_scaling_event(&d, &[&rs3]));
    assert!(!is_scaling_event(&d, &[&rs5]));
    let rs_plain = rs(json!({}));
    assert!(!is_scaling_event(&d, &[&rs_plain]));
}
