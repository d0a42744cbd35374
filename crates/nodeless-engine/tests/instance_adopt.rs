//! Root-only: an engine restart adopts running instances; orphans are cleaned up.

mod instance_common;

use std::time::Duration;

use instance_common::*;
use nodeless_engine::instance::{
    ContainerState, Engine, ExecIo, InstancePhase, InstanceSpec, RestartPolicy,
};
use nodeless_engine::sandbox::{CliRuntime, Runtime, RuntimeBinary, RuntimeKind};

fn ticker(id: &str) -> InstanceSpec {
    let mut spec = InstanceSpec::single(id, id, "busybox");
    spec.restart_policy = RestartPolicy::Always;
    spec.containers[0].command = cmd(&["sh", "-c", "while true; do echo tick; sleep 0.05; done"]);
    spec
}

fn runc(root: &std::path::Path) -> CliRuntime {
    CliRuntime::new(RuntimeBinary::locate(RuntimeKind::Runc, &root.join("run/runc")).expect("runc"))
}

#[tokio::test]
async fn a_restarted_engine_adopts_running_instances_whose_output_kept_flowing() {
    require_root!();
    let root = TestRoot::new();
    {
        let first = engine(root.path());
        first.create(ticker("t-adopt")).await.expect("create");
        wait_for(&first, "t-adopt", Duration::from_secs(20), |s| {
            s.containers[0].status.state.is_running()
        })
        .await;
    } // the first engine goes away; the shim and the container do not
    let before = log_text(&engine(root.path()), "t-adopt", "t-adopt", false)
        .await
        .lines()
        .count();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = engine(root.path());
    let report = second.recover().await.expect("recover");
    assert_eq!(report.adopted, ["t-adopt"]);
    assert!(
        report.lost.is_empty() && report.removed.is_empty() && report.orphan_containers.is_empty(),
        "{report:?}"
    );
    let st = second.status("t-adopt").await.expect("status");
    assert_eq!(st.phase, InstancePhase::Running);
    assert_eq!(st.containers[0].status.restart_count, 0);
    let after = log_text(&second, "t-adopt", "t-adopt", false)
        .await
        .lines()
        .count();
    assert!(
        after > before,
        "logs stopped while no engine ran: {before} -> {after}"
    );
    let io = ExecIo {
        stdin: None,
        stdout: Box::new(tokio::io::sink()),
        stderr: None,
        tty: false,
        resize: None,
    };
    assert_eq!(
        second
            .exec("t-adopt", "t-adopt", cmd(&["true"]).expect("cmd"), io)
            .await
            .expect("exec"),
        0
    );
    second.remove("t-adopt").await.expect("remove");
}

#[tokio::test]
async fn an_instance_whose_supervisor_died_is_marked_exited_and_its_container_killed() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    engine.create(ticker("t-lost")).await.expect("create");
    wait_for(&engine, "t-lost", Duration::from_secs(20), |s| {
        s.containers[0].status.state.is_running()
    })
    .await;
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.path().join("instances/t-lost/instance.json")).expect("record"),
    )
    .expect("json");
    let shim = record["shim_pid"].as_i64().expect("shim pid") as i32;
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(shim).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report = engine.recover().await.expect("recover");
    assert_eq!(report.lost, ["t-lost"]);
    let st = engine.status("t-lost").await.expect("status");
    match &st.containers[0].status.state {
        ContainerState::Terminated(t) => assert_eq!(t.reason, "ContainerStatusUnknown"),
        other => panic!("expected terminated, got {other:?}"),
    }
    assert_eq!(st.phase, InstancePhase::Failed);
    assert!(
        runc(root.path())
            .state("t-lost-t-lost")
            .await
            .expect("state")
            .is_none(),
        "the container must be gone"
    );
    engine.remove("t-lost").await.expect("remove");
}

#[tokio::test]
async fn a_container_without_an_instance_record_is_killed_and_its_leftovers_removed() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    engine.create(ticker("t-orphan")).await.expect("create");
    wait_for(&engine, "t-orphan", Duration::from_secs(20), |s| {
        s.containers[0].status.state.is_running()
    })
    .await;
    // As if the engine crashed after starting the container but before its record was final.
    std::fs::remove_file(root.path().join("instances/t-orphan/instance.json"))
        .expect("remove record");
    let report = engine.recover().await.expect("recover");
    assert_eq!(report.removed, ["t-orphan"]);
    assert_eq!(report.orphan_containers, ["t-orphan-t-orphan"]);
    assert!(!root.path().join("instances/t-orphan").exists());
    assert!(runc(root.path()).list().await.expect("list").is_empty());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !mounts.contains(&root.path().display().to_string()),
        "a mount was left behind"
    );
}
