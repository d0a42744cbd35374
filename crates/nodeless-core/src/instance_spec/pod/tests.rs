use super::*;
use serde_json::json;

fn container(name: &str, resources: Value) -> Value {
    json!({"name": name, "image": "busybox", "resources": resources})
}

fn limits(cpu: &str, memory: &str) -> Value {
    json!({"limits": {"cpu": cpu, "memory": memory}})
}

fn requests(cpu: &str, memory: &str) -> Value {
    json!({"requests": {"cpu": cpu, "memory": memory}})
}

fn sidecar(name: &str, resources: Value) -> Value {
    let mut c = container(name, resources);
    c["restartPolicy"] = json!("Always");
    c
}

fn pod(containers: Vec<Value>) -> Value {
    json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
}

fn with_init(mut p: Value, init: Vec<Value>) -> Value {
    p["spec"]["initContainers"] = json!(init);
    p
}

fn annotated(mut p: Value, key: &str, value: &str) -> Value {
    p["metadata"]["annotations"] = json!({key: value});
    p
}

fn chosen(p: &Value) -> (String, SpecSource) {
    let c = spec_for_pod(p).expect("a spec");
    (c.spec.to_string(), c.source)
}

#[test]
fn a_pod_asking_nothing_gets_2_vcpu_4_gib() {
    assert_eq!(
        chosen(&pod(vec![container("a", json!({}))])),
        ("2-4Gi".into(), SpecSource::Default)
    );
    assert_eq!(
        chosen(&json!({"metadata": {"name": "p"}})),
        ("2-4Gi".into(), SpecSource::Default)
    );
}

#[test]
fn limits_of_all_containers_are_summed_and_rounded_up() {
    let p = pod(vec![
        container("a", limits("3", "6Gi")),
        container("b", limits("4", "7Gi")),
    ]);
    assert_eq!(chosen(&p), ("8-13Gi".into(), SpecSource::Limits));
}

#[test]
fn limits_win_over_requests() {
    let mut both = limits("4", "8Gi");
    both["requests"] = json!({"cpu": "1", "memory": "1Gi"});
    assert_eq!(
        chosen(&pod(vec![container("a", both)])),
        ("4-8Gi".into(), SpecSource::Limits)
    );
}

#[test]
fn requests_decide_when_nothing_is_limited() {
    let p = pod(vec![
        container("a", requests("250m", "256Mi")),
        container("b", json!({})),
    ]);
    assert_eq!(chosen(&p), ("0.25-0.5Gi".into(), SpecSource::Requests));
    let p = pod(vec![container("a", requests("1500m", "3Gi"))]);
    assert_eq!(chosen(&p), ("2-3Gi".into(), SpecSource::Requests));
}

#[test]
fn an_unlimited_container_still_gets_its_request_beside_limited_ones() {
    let mut a = limits("1", "1Gi");
    a["requests"] = json!({"cpu": "1", "memory": "1Gi"});
    let p = pod(vec![
        container("a", a),
        container("b", requests("2", "1Gi")),
    ]);
    assert_eq!(chosen(&p), ("4-2Gi".into(), SpecSource::Limits));
}

#[test]
fn cpu_and_memory_fall_back_each_on_its_own() {
    let p = pod(vec![container("a", json!({"limits": {"memory": "8Gi"}}))]);
    assert_eq!(chosen(&p), ("2-8Gi".into(), SpecSource::Limits));
    let p = pod(vec![container("a", json!({"requests": {"cpu": "8"}}))]);
    assert_eq!(chosen(&p), ("8-4Gi".into(), SpecSource::Requests));
}

#[test]
fn quantities_written_as_json_numbers_are_read() {
    let p = pod(vec![container(
        "a",
        json!({"limits": {"cpu": 2, "memory": "4Gi"}}),
    )]);
    assert_eq!(chosen(&p), ("2-4Gi".into(), SpecSource::Limits));
}

#[test]
fn a_large_init_container_sizes_the_pod() {
    let p = with_init(
        pod(vec![container("app", limits("1", "1Gi"))]),
        vec![container("init", limits("4", "2Gi"))],
    );
    assert_eq!(chosen(&p), ("4-2Gi".into(), SpecSource::Limits));
}

#[test]
fn init_containers_do_not_add_to_the_app_containers() {
    let p = with_init(
        pod(vec![container("app", limits("2", "4Gi"))]),
        vec![
            container("i1", limits("1", "2Gi")),
            container("i2", limits("2", "1Gi")),
        ],
    );
    assert_eq!(chosen(&p), ("2-4Gi".into(), SpecSource::Limits));
}

#[test]
fn sidecars_count_as_app_containers() {
    let p = with_init(
        pod(vec![container("app", limits("2", "2Gi"))]),
        vec![sidecar("proxy", limits("2", "2Gi"))],
    );
    assert_eq!(chosen(&p), ("4-4Gi".into(), SpecSource::Limits));
}

#[test]
fn an_init_container_runs_beside_the_sidecars_started_before_it() {
    // While "migrate" runs, "proxy" (1 vCPU) already runs: 1 + 3 = 4 vCPU at the peak.
    let p = with_init(
        pod(vec![container("app", limits("1", "1Gi"))]),
        vec![
            sidecar("proxy", limits("1", "1Gi")),
            container("migrate", limits("3", "1Gi")),
        ],
    );
    assert_eq!(chosen(&p), ("4-2Gi".into(), SpecSource::Limits));
}

#[test]
fn an_init_container_before_a_sidecar_runs_alone() {
    // "migrate" (3 vCPU) finishes before "proxy" starts: the peak is 3, the app phase 2.
    let p = with_init(
        pod(vec![container("app", limits("1", "1Gi"))]),
        vec![
            container("migrate", limits("3", "1Gi")),
            sidecar("proxy", limits("1", "1Gi")),
        ],
    );
    assert_eq!(chosen(&p), ("4-2Gi".into(), SpecSource::Limits));
    let p = with_init(
        pod(vec![container("app", limits("1", "1Gi"))]),
        vec![
            container("migrate", limits("2", "1Gi")),
            sidecar("proxy", limits("1", "1Gi")),
        ],
    );
    assert_eq!(chosen(&p), ("2-2Gi".into(), SpecSource::Limits));
}

#[test]
fn the_spec_annotation_wins_over_resources() {
    let p = annotated(pod(vec![container("a", json!({}))]), INSTANCE_SPEC, "4-8Gi");
    assert_eq!(chosen(&p), ("4-8Gi".into(), SpecSource::Annotation));
    let p = annotated(
        pod(vec![container("a", limits("1", "1Gi"))]),
        INSTANCE_SPEC,
        "4-8Gi",
    );
    assert_eq!(chosen(&p), ("4-8Gi".into(), SpecSource::Annotation));
}

#[test]
fn the_ask_alias_is_accepted_for_the_spec() {
    let p = annotated(
        pod(vec![container("a", json!({}))]),
        "k8s.aliyun.com/eci-use-specs",
        "0.5-1Gi",
    );
    assert_eq!(chosen(&p), ("0.5-1Gi".into(), SpecSource::Annotation));
}

#[test]
fn an_annotated_spec_outside_the_table_is_rounded_up() {
    let p = annotated(pod(vec![container("a", json!({}))]), INSTANCE_SPEC, "3-5");
    assert_eq!(chosen(&p), ("4-5Gi".into(), SpecSource::Annotation));
}

#[test]
fn the_first_candidate_that_holds_the_containers_is_taken() {
    let p = annotated(
        pod(vec![container("a", limits("2", "3Gi"))]),
        INSTANCE_SPEC,
        "1-2Gi, 2-4Gi, 4-8Gi",
    );
    assert_eq!(chosen(&p), ("2-4Gi".into(), SpecSource::Annotation));
    let p = annotated(
        pod(vec![container("a", json!({}))]),
        INSTANCE_SPEC,
        "ecs.c6.large,2-4Gi",
    );
    assert_eq!(chosen(&p), ("2-4Gi".into(), SpecSource::Annotation));
}

#[test]
fn an_annotation_with_no_usable_candidate_says_why_for_each() {
    let p = annotated(
        pod(vec![container("a", limits("4", "6Gi"))]),
        "k8s.aliyun.com/eci-use-specs",
        "2-4Gi,bad,128-1Gi",
    );
    let err = spec_for_pod(&p).expect_err("nothing fits");
    assert!(matches!(err, SpecError::NoCandidate { .. }));
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "annotation k8s.aliyun.com/eci-use-specs: no instance spec in \"2-4Gi,bad,128-1Gi\""
        ),
        "{msg}"
    );
    assert!(
        msg.contains("\"2-4Gi\" is smaller than the containers ask for (4 vCPU, 6Gi of memory)"),
        "{msg}"
    );
    assert!(
        msg.contains("invalid instance spec \"bad\": expected vCPU-memory"),
        "{msg}"
    );
    assert!(
        msg.contains("\"128-1Gi\": no instance spec is large enough for 128 vCPU"),
        "{msg}"
    );
}

#[test]
fn an_annotation_listing_nothing_is_an_error() {
    let p = annotated(pod(vec![container("a", json!({}))]), INSTANCE_SPEC, " , ,");
    let msg = spec_for_pod(&p).expect_err("empty list").to_string();
    assert!(msg.contains("it lists no spec"), "{msg}");
}

#[test]
fn gpus_are_summed_from_limits_and_typed_by_annotation() {
    let gpu = |n: &str| json!({"limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": n}});
    let p = annotated(
        pod(vec![container("a", gpu("1")), container("b", gpu("2"))]),
        GPU_TYPE,
        "T4",
    );
    let c = spec_for_pod(&p).expect("spec");
    assert_eq!(
        (c.spec.to_string(), c.spec.gpu, c.spec.gpu_type.as_deref()),
        ("8-32Gi".into(), 3, Some("T4"))
    );
    let plain = spec_for_pod(&pod(vec![container("a", json!({}))])).expect("spec");
    assert_eq!((plain.spec.gpu, plain.spec.gpu_type), (0, None));
}

#[test]
fn gpus_ride_along_with_an_annotated_spec() {
    let p = annotated(
        pod(vec![container(
            "a",
            json!({"limits": {"nvidia.com/gpu": "1"}}),
        )]),
        INSTANCE_SPEC,
        "8-32Gi",
    );
    let c = spec_for_pod(&p).expect("spec");
    assert_eq!((c.spec.to_string(), c.spec.gpu), ("8-32Gi".into(), 1));
}

#[test]
fn a_fraction_of_a_gpu_is_refused() {
    let p = pod(vec![container(
        "a",
        json!({"limits": {"nvidia.com/gpu": "500m"}}),
    )]);
    let msg = spec_for_pod(&p).expect_err("fraction").to_string();
    assert_eq!(msg, "spec.containers[0].resources.limits[nvidia.com/gpu]: \"500m\" is not a valid GPU count: give a whole number");
}

#[test]
fn a_malformed_quantity_names_its_field() {
    let p = pod(vec![
        container("a", json!({})),
        container("b", json!({"requests": {"memory": "lots"}})),
    ]);
    let err = spec_for_pod(&p).expect_err("malformed");
    assert!(
        err.to_string().starts_with(
            "spec.containers[1].resources.requests[memory]: invalid quantity \"lots\""
        ),
        "{err}"
    );
}

#[test]
fn a_pod_larger_than_any_instance_is_refused() {
    let p = pod(vec![
        container("a", limits("40", "100Gi")),
        container("b", limits("40", "100Gi")),
    ]);
    let err = spec_for_pod(&p).expect_err("too large");
    assert_eq!(err.to_string(), "no instance spec is large enough for 80 vCPU and 200Gi of memory: the largest is 64 vCPU with 512Gi");
}

#[test]
fn negative_amounts_count_as_none() {
    let p = pod(vec![container("a", requests("-1", "-1Gi"))]);
    assert_eq!(chosen(&p), ("2-4Gi".into(), SpecSource::Default));
}
