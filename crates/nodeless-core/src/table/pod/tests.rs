use super::*;
use crate::table::duration::parse_time;
use serde_json::json;

fn ctx() -> Ctx {
    Ctx {
        now: parse_time("2024-05-01T12:00:00Z").expect("valid"),
    }
}

fn pod(spec: Value, status: Value) -> Value {
    json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:55:00Z"},
        "spec": spec,
        "status": status,
    })
}

fn cells_of(p: &Value) -> Vec<Value> {
    cells(p, &ctx())
}

fn running(name: &str) -> Value {
    json!({"name": name, "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2024-05-01T11:56:00Z"}}})
}

#[test]
fn running_pods_show_ready_counts_and_wide_cells() {
    let p = pod(
        json!({"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "vk-1"}),
        json!({"phase": "Running", "podIPs": [{"ip": "10.0.0.9"}], "containerStatuses": [
            running("a"),
            {"name": "b", "ready": false, "restartCount": 0, "state": {"running": {}}}
        ]}),
    );
    assert_eq!(
        cells_of(&p),
        vec![
            json!("web"),
            json!("1/2"),
            json!("Running"),
            json!("0"),
            json!("5m"),
            json!("10.0.0.9"),
            json!("vk-1"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn completed_pods_report_the_terminated_reason_and_a_row_condition() {
    let p = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 0,
             "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
        ]}),
    );
    let c = cells_of(&p);
    assert_eq!(
        (c[1].clone(), c[2].clone()),
        (json!("0/1"), json!("Completed"))
    );
    assert_eq!(
        row_conditions(&p).expect("condition")[0]["reason"],
        "Succeeded"
    );
}

#[test]
fn crash_looping_containers_show_restarts_with_the_last_restart_age() {
    let p = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 5,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:58:00Z"}}}
        ]}),
    );
    let c = cells_of(&p);
    assert_eq!(c[2], "CrashLoopBackOff");
    assert_eq!(c[3], "5 (2m ago)");
}

#[test]
fn init_containers_show_progress_and_failures() {
    let spec =
        json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]});
    let waiting = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
            {"name": "i2", "restartCount": 0, "state": {"running": {}}}
        ]}),
    );
    assert_eq!(cells_of(&waiting)[2], "Init:1/2");
    let failed = pod(
        spec.clone(),
        json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "i1", "restartCount": 2, "state": {"terminated": {"exitCode": 3}}}
        ]}),
    );
    let c = cells_of(&failed);
    assert_eq!(c[2], "Init:ExitCode:3");
    assert_eq!(c[3], "2");
    let backoff = pod(
        spec,
        json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "i1", "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ]}),
    );
    assert_eq!(cells_of(&backoff)[2], "Init:CrashLoopBackOff");
}

#[test]
fn sidecar_init_containers_count_towards_ready_and_total() {
    let p = pod(
        json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "a"}]}),
        json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
               "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                   "state": {"running": {}}}],
               "containerStatuses": [running("a")]}),
    );
    let c = cells_of(&p);
    assert_eq!(
        (c[1].clone(), c[2].clone(), c[3].clone()),
        (json!("2/2"), json!("Running"), json!("1"))
    );
}

#[test]
fn deleted_pods_show_terminating_unless_finished_or_lost() {
    let mut p = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Running", "containerStatuses": [running("a")]}),
    );
    p["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
    assert_eq!(cells_of(&p)[2], "Terminating");
    p["status"]["reason"] = json!("NodeLost");
    assert_eq!(cells_of(&p)[2], "Unknown");
    let mut done = pod(json!({"containers": []}), json!({"phase": "Succeeded"}));
    done["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:59:00Z");
    assert_eq!(cells_of(&done)[2], "Succeeded");
}

#[test]
fn pending_and_gated_pods_show_their_phase_or_gate() {
    let p = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Pending"}),
    );
    assert_eq!(cells_of(&p)[2], "Pending");
    let gated = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
    );
    assert_eq!(cells_of(&gated)[2], "SchedulingGated");
    let signalled = pod(
        json!({"containers": [{"name": "a"}]}),
        json!({"phase": "Failed", "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
    );
    assert_eq!(cells_of(&signalled)[2], "Signal:9");
}

#[test]
fn readiness_gates_count_true_conditions() {
    let p = pod(
        json!({"containers": [], "readinessGates": [{"conditionType": "a/x"}, {"conditionType": "a/y"}]}),
        json!({"phase": "Running", "conditions": [{"type": "a/x", "status": "True"}]}),
    );
    assert_eq!(cells_of(&p)[8], "1/2");
}

#[test]
fn completed_containers_next_to_running_ones_read_as_running_or_not_ready() {
    let status = |ready: &str| {
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": ready}], "containerStatuses": [
            running("a"),
            {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
        ]})
    };
    let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
    // Statuses are walked last to first, so `a` running is seen after `b` completed.
    assert_eq!(cells_of(&pod(spec.clone(), status("True")))[2], "Running");
    assert_eq!(cells_of(&pod(spec, status("False")))[2], "NotReady");
}
