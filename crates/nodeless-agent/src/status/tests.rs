use std::collections::BTreeMap;

use chrono::{Duration, TimeZone};
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use nodeless_engine::instance::{
    ContainerState, ContainerStatus, ContainerView, InstancePhase, InstanceStatus, RuntimeKind,
    Termination,
};
use serde_json::json;

use super::*;

const UID: &str = "0f3c2b6e-1111-2222-3333-444455556666";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0)
        .single()
        .expect("time")
}

fn host() -> IpAddr {
    "192.168.1.10".parse().expect("ip")
}

fn pod(init: &[&str], main: &[&str]) -> Pod {
    let c = |n: &&str| json!({"name": n, "image": "busybox"});
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": UID},
        "spec": {
            "nodeName": "nodeless",
            "initContainers": init.iter().map(c).collect::<Vec<_>>(),
            "containers": main.iter().map(c).collect::<Vec<_>>()
        },
        "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-01-01T11:00:00Z"}
        ]}
    }))
    .expect("pod")
}

fn running(name: &str, at: DateTime<Utc>, ready: bool) -> ContainerView {
    ContainerView {
        status: ContainerStatus {
            state: ContainerState::Running {
                pid: 7,
                started_at: at,
            },
            ..ContainerStatus::new(name)
        },
        image: "docker.io/library/busybox:latest".into(),
        image_digest: "sha256:abc".into(),
        ready,
        started: true,
    }
}

fn term(code: i32, reason: &str, at: DateTime<Utc>) -> Termination {
    Termination {
        exit_code: code,
        signal: None,
        reason: reason.into(),
        message: None,
        started_at: Some(at - Duration::seconds(1)),
        finished_at: at,
    }
}

fn exited(name: &str, code: i32, at: DateTime<Utc>) -> ContainerView {
    let mut v = running(name, at, false);
    v.started = false;
    v.status.state = ContainerState::Terminated(term(
        code,
        if code == 0 { "Completed" } else { "Error" },
        at,
    ));
    v
}

fn waiting(name: &str, reason: &str) -> ContainerView {
    let mut v = running(name, t0(), false);
    v.started = false;
    v.status.state = ContainerState::Waiting {
        reason: reason.into(),
        message: None,
    };
    v
}

fn instance(
    phase: InstancePhase,
    init: Vec<ContainerView>,
    main: Vec<ContainerView>,
) -> InstanceStatus {
    InstanceStatus {
        id: UID.into(),
        name: "ns/web".into(),
        phase,
        message: None,
        ip: Some("10.88.0.5".parse().expect("ip")),
        runtime: RuntimeKind::Runc,
        created_at: t0(),
        init_containers: init,
        containers: main,
        labels: BTreeMap::new(),
    }
}

fn condition<'a>(s: &'a PodStatus, type_: &str) -> &'a k8s_openapi::api::core::v1::PodCondition {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"))
}

fn status_of(p: &Pod, view: View) -> PodStatus {
    pod_status(p, p.status.as_ref(), view, host(), t0())
}

#[test]
fn a_running_instance_makes_a_running_ready_pod_with_ips() {
    let p = pod(&[], &["app"]);
    let inst = instance(
        InstancePhase::Running,
        vec![],
        vec![running("app", t0(), true)],
    );
    let s = status_of(&p, View::Instance(&inst));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.88.0.5"));
    assert_eq!(
        s.pod_ips.as_ref().map(|v| v[0].ip.as_str()),
        Some("10.88.0.5")
    );
    assert_eq!(s.host_ip.as_deref(), Some("192.168.1.10"));
    assert_eq!(
        s.host_ips.as_ref().map(|v| v[0].ip.as_str()),
        Some("192.168.1.10")
    );
    assert_eq!(s.start_time, Some(Time(t0())));
    for c in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
    ] {
        assert_eq!(condition(&s, c).status, "True", "{c}");
    }
    let cs = &s.container_statuses.as_ref().expect("statuses")[0];
    assert!(cs.ready);
    assert_eq!(cs.started, Some(true));
    assert_eq!(cs.image, "docker.io/library/busybox:latest");
    assert_eq!(cs.image_id, "docker.io/library/busybox@sha256:abc");
    assert_eq!(
        cs.container_id.as_deref(),
        Some(format!("nodeless://{UID}-app").as_str())
    );
    assert_eq!(
        cs.state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.clone()),
        Some(Time(t0()))
    );
    assert!(s.init_container_statuses.is_none());
}

#[test]
fn pod_scheduled_and_foreign_conditions_are_kept() {
    let mut p = pod(&[], &["app"]);
    if let Some(st) = p.status.as_mut() {
        st.conditions
            .get_or_insert_with(Vec::new)
            .push(k8s_openapi::api::core::v1::PodCondition {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
                ..Default::default()
            });
    }
    let inst = instance(
        InstancePhase::Running,
        vec![],
        vec![running("app", t0(), true)],
    );
    let s = status_of(&p, View::Instance(&inst));
    let scheduled = condition(&s, "PodScheduled");
    assert_eq!(
        scheduled
            .last_transition_time
            .as_ref()
            .map(|t| t.0.to_rfc3339()),
        Some("2025-01-01T11:00:00+00:00".to_string())
    );
    assert_eq!(condition(&s, "DisruptionTarget").status, "True");
    let types: Vec<&str> = s
        .conditions
        .iter()
        .flatten()
        .map(|c| c.type_.as_str())
        .collect();
    assert_eq!(types.iter().filter(|t| **t == "Ready").count(), 1);
}

#[test]
fn unchanged_conditions_keep_their_transition_time_and_changed_ones_move() {
    let p = pod(&[], &["app"]);
    let inst = instance(
        InstancePhase::Running,
        vec![],
        vec![running("app", t0(), true)],
    );
    let first = status_of(&p, View::Instance(&inst));
    let later = t0() + Duration::minutes(5);
    let same = pod_status(&p, Some(&first), View::Instance(&inst), host(), later);
    assert_eq!(
        condition(&same, "Ready").last_transition_time,
        Some(Time(t0()))
    );
    assert_eq!(same.start_time, Some(Time(t0())), "startTime stays");
    let unready = instance(
        InstancePhase::Running,
        vec![],
        vec![running("app", t0(), false)],
    );
    let changed = pod_status(&p, Some(&first), View::Instance(&unready), host(), later);
    let ready = condition(&changed, "Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.last_transition_time, Some(Time(later)));
    assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
    assert_eq!(
        ready.message.as_deref(),
        Some("containers with unready status: [app]")
    );
    assert_eq!(
        condition(&changed, "Initialized").last_transition_time,
        Some(Time(t0()))
    );
}

#[test]
fn before_the_instance_exists_containers_wait_with_the_agents_reason() {
    let p = pod(&["init"], &["app", "side"]);
    let view = View::Waiting {
        reason: "CreateContainerConfigError",
        message: Some("configmap \"x\" not found"),
    };
    let s = status_of(&p, view);
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert!(s.pod_ip.is_none());
    let statuses = s.container_statuses.as_ref().expect("statuses");
    assert_eq!(statuses.len(), 2);
    for cs in statuses {
        let w = cs
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .expect("waiting");
        assert_eq!(w.reason.as_deref(), Some("CreateContainerConfigError"));
        assert_eq!(w.message.as_deref(), Some("configmap \"x\" not found"));
        assert_eq!(cs.image, "busybox");
        assert!(!cs.ready);
        assert!(cs.container_id.is_none());
    }
    assert_eq!(s.init_container_statuses.as_ref().map(Vec::len), Some(1));
    assert_eq!(condition(&s, "PodReadyToStartContainers").status, "False");
    assert_eq!(condition(&s, "Initialized").status, "False");
    assert_eq!(condition(&s, "Ready").status, "False");
}

#[test]
fn init_containers_keep_the_pod_pending_and_uninitialized() {
    let p = pod(&["one", "two"], &["app"]);
    let inst = instance(
        InstancePhase::Initializing,
        vec![exited("one", 0, t0()), running("two", t0(), false)],
        vec![waiting("app", "PodInitializing")],
    );
    let s = status_of(&p, View::Instance(&inst));
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let init = condition(&s, "Initialized");
    assert_eq!(init.status, "False");
    assert_eq!(init.reason.as_deref(), Some("ContainersNotInitialized"));
    assert_eq!(
        init.message.as_deref(),
        Some("containers with incomplete status: [two]")
    );
    assert_eq!(condition(&s, "PodReadyToStartContainers").status, "True");
    let inits = s.init_container_statuses.as_ref().expect("init statuses");
    let done = inits[0]
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("terminated");
    assert_eq!(
        (done.exit_code, done.reason.as_deref()),
        (0, Some("Completed"))
    );
}

#[test]
fn finished_instances_make_succeeded_or_failed_pods_that_are_not_ready() {
    let p = pod(&[], &["app"]);
    let ok = instance(
        InstancePhase::Succeeded,
        vec![],
        vec![exited("app", 0, t0())],
    );
    let s = status_of(&p, View::Instance(&ok));
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    let ready = condition(&s, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("PodCompleted"))
    );
    assert_eq!(condition(&s, "PodReadyToStartContainers").status, "False");
    let mut bad = instance(InstancePhase::Failed, vec![], vec![exited("app", 2, t0())]);
    bad.message = Some("network: no addresses left".into());
    let s = status_of(&p, View::Instance(&bad));
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    assert_eq!(s.message.as_deref(), Some("network: no addresses left"));
    let t = s.container_statuses.as_ref().expect("cs")[0]
        .state
        .as_ref()
        .and_then(|s| s.terminated.clone())
        .expect("terminated");
    assert_eq!((t.exit_code, t.reason.as_deref()), (2, Some("Error")));
    assert_eq!(
        t.container_id.as_deref(),
        Some(format!("nodeless://{UID}-app").as_str())
    );
}

#[test]
fn a_crash_looping_container_shows_waiting_last_state_and_restarts() {
    let p = pod(&[], &["app"]);
    let mut v = waiting("app", "CrashLoopBackOff");
    v.status.restart_count = 3;
    v.status.last_state = Some(term(1, "Error", t0()));
    if let ContainerState::Waiting { message, .. } = &mut v.status.state {
        *message = Some("back-off 40s restarting failed container".into());
    }
    let inst = instance(InstancePhase::Running, vec![], vec![v]);
    let s = status_of(&p, View::Instance(&inst));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    let cs = &s.container_statuses.as_ref().expect("cs")[0];
    assert_eq!(cs.restart_count, 3);
    let w = cs
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .expect("waiting");
    assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
    let last = cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("last");
    assert_eq!(last.exit_code, 1);
    assert!(
        cs.container_id.is_some(),
        "a container that ran keeps its id"
    );
}

#[test]
fn an_oom_killed_container_reports_oomkilled() {
    let p = pod(&[], &["app"]);
    let mut v = exited("app", 137, t0());
    v.status.state = ContainerState::Terminated(term(137, "OOMKilled", t0()));
    let inst = instance(InstancePhase::Failed, vec![], vec![v]);
    let s = status_of(&p, View::Instance(&inst));
    let t = s.container_statuses.as_ref().expect("cs")[0]
        .state
        .as_ref()
        .and_then(|s| s.terminated.clone())
        .expect("terminated");
    assert_eq!(t.reason.as_deref(), Some("OOMKilled"));
}

#[test]
fn a_stopped_instance_is_failed_unless_every_container_completed_without_restarts() {
    let mut p = pod(&[], &["app"]);
    let stopped = instance(
        InstancePhase::Stopped,
        vec![],
        vec![exited("app", 143, t0())],
    );
    assert_eq!(
        status_of(&p, View::Instance(&stopped)).phase.as_deref(),
        Some("Failed")
    );
    if let Some(spec) = p.spec.as_mut() {
        spec.restart_policy = Some("Never".into());
    }
    let done = instance(InstancePhase::Stopped, vec![], vec![exited("app", 0, t0())]);
    assert_eq!(
        status_of(&p, View::Instance(&done)).phase.as_deref(),
        Some("Succeeded")
    );
}

#[test]
fn containers_the_engine_does_not_report_yet_are_creating() {
    let p = pod(&[], &["app", "side"]);
    let inst = instance(
        InstancePhase::Creating,
        vec![],
        vec![running("app", t0(), true)],
    );
    let s = status_of(&p, View::Instance(&inst));
    let side = &s.container_statuses.as_ref().expect("cs")[1];
    assert_eq!(side.name, "side");
    assert_eq!(
        side.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref()),
        Some("ContainerCreating")
    );
    assert_eq!(s.phase.as_deref(), Some("Pending"));
}

#[test]
fn a_running_instance_whose_containers_are_still_being_created_is_pending() {
    let p = pod(&[], &["app"]);
    let inst = instance(
        InstancePhase::Running,
        vec![],
        vec![waiting("app", "ContainerCreating")],
    );
    let s = status_of(&p, View::Instance(&inst));
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(condition(&s, "PodReadyToStartContainers").status, "True");
}

#[test]
fn image_ids_name_the_repository_and_digest() {
    assert_eq!(
        image_id("busybox", "sha256:1"),
        "docker.io/library/busybox@sha256:1"
    );
    assert_eq!(
        image_id("localhost:5000/app:v1", "sha256:2"),
        "localhost:5000/app@sha256:2"
    );
    assert_eq!(image_id("busybox", ""), "");
}

fn reasons(events: &[PodEvent]) -> Vec<&str> {
    events.iter().map(|e| e.reason).collect()
}

#[test]
fn a_new_run_is_created_and_started_once() {
    let p = pod(&[], &["app"]);
    let creating = instance(
        InstancePhase::Creating,
        vec![],
        vec![waiting("app", "ContainerCreating")],
    );
    let run = instance(
        InstancePhase::Running,
        vec![],
        vec![running("app", t0(), true)],
    );
    let events = events_between(&p, Some(&creating), &run);
    assert_eq!(reasons(&events), ["Created", "Started"]);
    assert_eq!(events[1].message, "Started container app");
    assert_eq!(
        events[1].field_path.as_deref(),
        Some("spec.containers{app}")
    );
    assert!(events_between(&p, Some(&run), &run).is_empty());
    assert_eq!(
        reasons(&events_between(&p, None, &run)),
        ["Created", "Started"]
    );
}

#[test]
fn a_restart_is_a_new_run() {
    let p = pod(&[], &["app"]);
    let first = instance(
        InstancePhase::Running,
        vec![],
        vec![running("app", t0(), true)],
    );
    let mut again = running("app", t0() + Duration::seconds(10), true);
    again.status.restart_count = 1;
    let second = instance(InstancePhase::Running, vec![], vec![again]);
    assert_eq!(
        reasons(&events_between(&p, Some(&first), &second)),
        ["Created", "Started"]
    );
}

#[test]
fn entering_crash_loop_back_off_is_a_warning_once_per_restart() {
    let p = pod(&[], &["app"]);
    let before = instance(InstancePhase::Running, vec![], vec![exited("app", 1, t0())]);
    let mut w = waiting("app", "CrashLoopBackOff");
    w.status.restart_count = 1;
    let backoff = instance(InstancePhase::Running, vec![], vec![w.clone()]);
    let events = events_between(&p, Some(&before), &backoff);
    assert_eq!(reasons(&events), ["BackOff"]);
    assert_eq!(events[0].kind, EventType::Warning);
    assert_eq!(
        events[0].message,
        format!("Back-off restarting failed container app in pod web_ns({UID})")
    );
    assert!(events_between(&p, Some(&backoff), &backoff).is_empty());
    w.status.restart_count = 2;
    let next = instance(InstancePhase::Running, vec![], vec![w]);
    assert_eq!(
        reasons(&events_between(&p, Some(&backoff), &next)),
        ["BackOff"]
    );
}

#[test]
fn a_container_that_cannot_start_is_a_failed_warning() {
    let p = pod(&[], &["app"]);
    let mut v = exited("app", 128, t0());
    let mut t = term(128, "StartError", t0());
    t.message = Some("exec: \"nope\": executable file not found in $PATH".into());
    t.started_at = None;
    v.status.state = ContainerState::Terminated(t);
    let inst = instance(InstancePhase::Failed, vec![], vec![v]);
    let events = events_between(&p, None, &inst);
    assert_eq!(reasons(&events), ["Failed"]);
    assert!(events[0].message.starts_with("Error: exec:"));
    assert!(events_between(&p, Some(&inst), &inst).is_empty());
}

#[test]
fn a_run_that_ended_between_two_looks_still_started() {
    let p = pod(&["init"], &["app"]);
    let before = instance(
        InstancePhase::Initializing,
        vec![waiting("init", "ContainerCreating")],
        vec![waiting("app", "PodInitializing")],
    );
    let after = instance(
        InstancePhase::Running,
        vec![exited("init", 0, t0())],
        vec![running("app", t0(), true)],
    );
    let events = events_between(&p, Some(&before), &after);
    assert_eq!(
        reasons(&events),
        ["Created", "Started", "Created", "Started"]
    );
    assert_eq!(
        events[0].field_path.as_deref(),
        Some("spec.initContainers{init}")
    );
    let seen_running = instance(
        InstancePhase::Running,
        vec![],
        vec![running("app", t0() - Duration::seconds(1), true)],
    );
    let ended = instance(
        InstancePhase::Succeeded,
        vec![],
        vec![exited("app", 0, t0())],
    );
    assert!(events_between(&p, Some(&seen_running), &ended).is_empty());
}

#[test]
fn turning_unready_while_running_is_unhealthy() {
    let p = pod(&[], &["app"]);
    let ready = instance(
        InstancePhase::Running,
        vec![],
        vec![running("app", t0(), true)],
    );
    let unready = instance(
        InstancePhase::Running,
        vec![],
        vec![running("app", t0(), false)],
    );
    let events = events_between(&p, Some(&ready), &unready);
    assert_eq!(reasons(&events), ["Unhealthy"]);
    assert_eq!(events[0].kind, EventType::Warning);
}
