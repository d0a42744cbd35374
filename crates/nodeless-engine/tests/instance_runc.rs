//! Root-only: instances on real runc with a busybox root filesystem (no registry, no CNI).

mod instance_common;

use std::time::Duration;

use instance_common::*;
use nodeless_engine::instance::{Engine, InstancePhase, InstanceSpec};

#[tokio::test]
async fn true_and_false_report_their_exit_codes() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    for (id, command, code) in [("t-true", "true", 0), ("t-false", "false", 1)] {
        let mut spec = InstanceSpec::single(id, id, "busybox");
        spec.containers[0].command = cmd(&[command]);
        engine.create(spec).await.expect("create");
        let st = wait_for(&engine, id, Duration::from_secs(20), |s| {
            s.phase.is_finished()
        })
        .await;
        assert_eq!(exit_code(&st, 0), Some(code), "{st:#?}");
        assert_eq!(
            st.phase,
            if code == 0 {
                InstancePhase::Succeeded
            } else {
                InstancePhase::Failed
            }
        );
        engine.remove(id).await.expect("remove");
    }
    assert!(engine.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn env_and_args_reach_the_process_and_its_output_reaches_the_logs() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-env", "t-env", "busybox");
    spec.containers[0].command = cmd(&["sh", "-c"]);
    spec.containers[0].args = cmd(&[
        "echo \"$GREETING $0 $(id -u):$(id -g)\"; echo oops >&2",
        "world",
    ]);
    spec.containers[0]
        .env
        .push(("GREETING".into(), "hello".into()));
    spec.containers[0].user = Some("app".into());
    engine.create(spec).await.expect("create");
    wait_for(&engine, "t-env", Duration::from_secs(20), |s| {
        s.phase.is_finished()
    })
    .await;
    let logs = log_text(&engine, "t-env", "t-env", false).await;
    assert!(logs.contains("hello world 1000:1000\n"), "{logs}");
    assert!(logs.contains("oops\n"), "{logs}");
    engine.remove("t-env").await.expect("remove");
}

#[tokio::test]
async fn status_changes_are_announced_as_events() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut events = engine.events();
    engine.watch(Duration::from_millis(20));
    let mut spec = InstanceSpec::single("t-events", "t-events", "busybox");
    spec.containers[0].command = cmd(&["sh", "-c", "sleep 0.2"]);
    engine.create(spec).await.expect("create");
    assert!(engine.images_in_use().contains("sha256:test"));
    let mut phases = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while phases.last() != Some(&InstancePhase::Succeeded) {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("an event in time")
            .expect("event");
        if let nodeless_engine::instance::InstanceEvent::Changed(st) = event {
            if phases.last() != Some(&st.phase) {
                phases.push(st.phase);
            }
        }
    }
    assert_eq!(phases.first(), Some(&InstancePhase::Running));
    engine.remove("t-events").await.expect("remove");
    loop {
        match tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("removal event")
            .expect("event")
        {
            nodeless_engine::instance::InstanceEvent::Removed { id } => {
                assert_eq!(id, "t-events");
                break;
            }
            _ => continue,
        }
    }
}

#[tokio::test]
async fn the_root_overlay_is_mounted_in_the_container_only_and_survives_a_restart() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let id = "t-overlay";
    let mut spec = InstanceSpec::single(id, id, "busybox");
    // Each run appends to a file in the writable layer and shows the root mount; the second
    // run (a restart) must mount the same upper again, volatile marker and all.
    spec.containers[0].command = cmd(&[
        "sh",
        "-c",
        "echo run >> /runs; wc -l < /runs; grep ' / ' /proc/mounts; exit 1",
    ]);
    spec.restart_policy = nodeless_engine::instance::RestartPolicy::OnFailure;
    engine.create(spec).await.expect("create");
    let st = wait_for(&engine, id, Duration::from_secs(30), |s| {
        s.containers[0].status.restart_count >= 1 && !s.containers[0].status.state.is_running()
    })
    .await;
    let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !host_mounts
            .lines()
            .any(|l| l.contains(&root.path().display().to_string()) && l.contains("overlay")),
        "no overlay of the instance in the host's mount namespace:\n{host_mounts}"
    );
    // The second run's output may still be on its way to the log when its exit shows.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = log_text(&engine, id, id, false).await;
        if !logs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let previous = log_text(&engine, id, id, true).await;
    assert!(
        previous.starts_with("1\n") && previous.contains("overlay / overlay"),
        "{previous}"
    );
    assert!(
        logs.starts_with("2\n"),
        "the restart kept the writable layer: {logs} {st:#?}"
    );
    engine.remove(id).await.expect("remove");
}
