use super::*;
use serde_json::json;

#[test]
fn deployment_gets_replicas_strategy_and_limits() {
    let d = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"template": pod_template()}}),
    );
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["spec"]["template"]["spec"], defaulted_template_spec());
    let kept = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"},
        "revisionHistoryLimit": 0}}),
    );
    assert_eq!(kept["spec"]["replicas"], 0);
    assert_eq!(kept["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(kept["spec"]["revisionHistoryLimit"], 0);
    let partial = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}}}}),
    );
    assert_eq!(
        partial["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": 1, "maxUnavailable": "25%"})
    );
}

#[test]
fn replica_set_and_replication_controller_default_replicas() {
    let rs = defaulted(
        "apps",
        "v1",
        "ReplicaSet",
        json!({"spec": {"template": pod_template()}}),
    );
    assert_eq!(rs["spec"]["replicas"], 1);
    assert_eq!(rs["spec"]["template"]["spec"], defaulted_template_spec());
    let rc = defaulted(
        "",
        "v1",
        "ReplicationController",
        json!({"metadata": {"name": "r"}, "spec": {"template": pod_template()}}),
    );
    assert_eq!(rc["spec"]["replicas"], 1);
    assert_eq!(rc["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(rc["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(rc["spec"]["template"]["spec"], defaulted_template_spec());
    let own = defaulted(
        "",
        "v1",
        "ReplicationController",
        json!({"metadata": {"labels": {"x": "y"}},
        "spec": {"selector": {"app": "web", "tier": "a"}, "template": pod_template()}}),
    );
    assert_eq!(own["spec"]["selector"], json!({"app": "web", "tier": "a"}));
    assert_eq!(own["metadata"]["labels"], json!({"x": "y"}));
}

#[test]
fn stateful_set_gets_policies_strategy_and_claim_defaults() {
    let s = defaulted(
        "apps",
        "v1",
        "StatefulSet",
        json!({"spec": {"template": pod_template(),
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
    );
    let spec = &s["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    assert_eq!(
        spec["volumeClaimTemplates"][0]["status"],
        json!({"phase": "Pending"})
    );
    assert_eq!(spec["template"]["spec"], defaulted_template_spec());
    let on_delete = defaulted(
        "apps",
        "v1",
        "StatefulSet",
        json!({"spec": {"updateStrategy": {"type": "OnDelete"},
        "podManagementPolicy": "Parallel", "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"}}}),
    );
    assert_eq!(
        on_delete["spec"]["updateStrategy"],
        json!({"type": "OnDelete"})
    );
    assert_eq!(on_delete["spec"]["podManagementPolicy"], "Parallel");
    assert_eq!(
        on_delete["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Delete", "whenScaled": "Retain"})
    );
}

#[test]
fn daemon_set_gets_a_rolling_update_of_one() {
    let d = defaulted(
        "apps",
        "v1",
        "DaemonSet",
        json!({"spec": {"template": pod_template()}}),
    );
    assert_eq!(
        d["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["template"]["spec"], defaulted_template_spec());
}

#[test]
fn job_gets_upstreams_defaults_and_its_template_labels() {
    let j = defaulted(
        "batch",
        "v1",
        "Job",
        json!({"metadata": {"name": "j"}, "spec": {"template": pod_template()}}),
    );
    let spec = &j["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(spec["manualSelector"], false);
    assert_eq!(j["metadata"]["labels"], json!({"app": "web"}));
    // Go's restartPolicy default applies to templates too; validation then asks for Never/OnFailure.
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");

    let parallel = defaulted(
        "batch",
        "v1",
        "Job",
        json!({"spec": {"parallelism": 3, "backoffLimitPerIndex": 1,
        "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}}}),
    );
    let spec = &parallel["spec"];
    assert!(
        spec.get("completions").is_none(),
        "completions stay unset when parallelism is given"
    );
    assert_eq!(spec["parallelism"], 3);
    assert_eq!(spec["backoffLimit"], i32::MAX);
    assert_eq!(spec["podReplacementPolicy"], "Failed");
    assert_eq!(
        spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
        "True"
    );
}

#[test]
fn job_selector_is_generated_on_create_unless_manual() {
    let mut j = defaulted(
        "batch",
        "v1",
        "Job",
        json!({"metadata": {"name": "pi"}, "spec": {"template": pod_template()}}),
    );
    job_selector_on_create(&mut j, "uid-1");
    assert_eq!(
        j["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-1"}})
    );
    assert_eq!(
        j["spec"]["template"]["metadata"]["labels"],
        json!({"app": "web", "job-name": "pi", "batch.kubernetes.io/job-name": "pi",
            "controller-uid": "uid-1", "batch.kubernetes.io/controller-uid": "uid-1"})
    );
    assert_eq!(j["metadata"]["labels"], json!({"app": "web"}));

    let manual = json!({"metadata": {"name": "m"}, "spec": {"manualSelector": true,
        "selector": {"matchLabels": {"app": "web"}}, "template": pod_template()}});
    let mut generated = manual.clone();
    job_selector_on_create(&mut generated, "uid-2");
    assert_eq!(generated, manual);
}

#[test]
fn cron_job_gets_policies_and_its_pod_template_defaults_only() {
    let c = defaulted(
        "batch",
        "v1",
        "CronJob",
        json!({"spec": {"schedule": "* * * * *",
        "jobTemplate": {"spec": {"template": pod_template()}}}}),
    );
    let spec = &c["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Allow");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["successfulJobsHistoryLimit"], 3);
    assert_eq!(spec["failedJobsHistoryLimit"], 1);
    assert_eq!(
        spec["jobTemplate"]["spec"]["template"]["spec"],
        defaulted_template_spec()
    );
    assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
}

#[test]
fn hpa_v2_gets_min_replicas_a_cpu_metric_and_behavior_only_when_given() {
    let h = defaulted(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        json!({"spec": {"maxReplicas": 5}}),
    );
    assert_eq!(h["spec"]["minReplicas"], 1);
    assert_eq!(
        h["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert!(h["spec"].get("behavior").is_none());
    let b = defaulted(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        json!({"spec": {"maxReplicas": 5,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
    );
    assert_eq!(
        b["spec"]["behavior"]["scaleDown"],
        json!({"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}], "stabilizationWindowSeconds": 60})
    );
    assert_eq!(
        b["spec"]["behavior"]["scaleUp"],
        json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]})
    );
    let v1 = defaulted(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        json!({"spec": {"maxReplicas": 5, "minReplicas": 2}}),
    );
    assert_eq!(v1["spec"]["minReplicas"], 2);
    assert!(v1["spec"].get("targetCPUUtilizationPercentage").is_none());
}
