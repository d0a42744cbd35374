//! Root-only: lifecycle on real runc — OOM, restart with backoff and previous logs, stop with
//! grace, init containers in order, volumes.

mod instance_common;

use std::time::{Duration, Instant};

use instance_common::*;
use nodeless_engine::instance::{
    ContainerState, Engine, InstancePhase, InstanceSpec, RestartPolicy, StorageMedium, VolumeFile,
    VolumeMount, VolumeSource, VolumeSpec,
};

fn with_volume(spec: &mut InstanceSpec, name: &str, source: VolumeSource, path: &str) {
    spec.volumes.push(VolumeSpec {
        name: name.into(),
        source,
    });
    for c in spec
        .init_containers
        .iter_mut()
        .chain(spec.containers.iter_mut())
    {
        c.mounts.push(VolumeMount {
            volume: name.into(),
            mount_path: path.into(),
            read_only: false,
            sub_path: None,
        });
    }
}

fn empty_dir() -> VolumeSource {
    VolumeSource::EmptyDir {
        medium: StorageMedium::Disk,
        size_limit: None,
    }
}

#[tokio::test]
async fn a_container_over_its_memory_limit_is_oom_killed() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-oom", "t-oom", "busybox");
    spec.memory_bytes = 32 << 20;
    spec.containers[0].command = cmd(&["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"]);
    engine.create(spec).await.expect("create");
    let st = wait_for(&engine, "t-oom", Duration::from_secs(30), |s| {
        s.phase.is_finished()
    })
    .await;
    let t = st.containers[0]
        .status
        .state
        .termination()
        .expect("terminated")
        .clone();
    assert_eq!(
        (t.reason.as_str(), t.exit_code),
        ("OOMKilled", 137),
        "{t:?}"
    );
    engine.remove("t-oom").await.expect("remove");
}

#[tokio::test]
async fn failing_containers_restart_with_backoff_and_keep_the_previous_runs_logs() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-restart", "t-restart", "busybox");
    spec.restart_policy = RestartPolicy::OnFailure;
    spec.containers[0].command =
        cmd(&["sh", "-c", "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; echo run $n; exit 3"]);
    with_volume(&mut spec, "data", empty_dir(), "/data");
    let start = Instant::now();
    engine.create(spec).await.expect("create");
    let st = wait_for(&engine, "t-restart", Duration::from_secs(30), |s| {
        let c = &s.containers[0].status;
        c.restart_count >= 2 && c.state.termination().is_some()
    })
    .await;
    // As the kubelet's: the first restart is immediate, the next waits 200 ms (the test config).
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "restarted too fast: {:?}",
        start.elapsed()
    );
    let c = &st.containers[0].status;
    assert_eq!(c.last_state.as_ref().map(|t| t.exit_code), Some(3));
    assert_eq!(
        st.phase,
        InstancePhase::Running,
        "OnFailure keeps restarting"
    );
    let (previous_end, this_start) = (
        c.last_state.as_ref().expect("last state").finished_at,
        c.state
            .termination()
            .and_then(|t| t.started_at)
            .expect("started"),
    );
    let gap = (this_start - previous_end).to_std().expect("ordered");
    assert!(
        gap >= Duration::from_millis(200),
        "the second restart should back off 200 ms, was {gap:?}"
    );
    let current = log_text(&engine, "t-restart", "t-restart", false).await;
    let previous = log_text(&engine, "t-restart", "t-restart", true).await;
    let n: u32 = current
        .trim()
        .trim_start_matches("run ")
        .parse()
        .expect("run number");
    assert_eq!(previous, format!("run {}\n", n - 1));
    engine
        .stop("t-restart", Duration::from_secs(1))
        .await
        .expect("stop");
    engine.remove("t-restart").await.expect("remove");
}

#[tokio::test]
async fn crash_loops_are_reported_as_back_off_between_runs() {
    require_root!();
    let root = TestRoot::new();
    let cfg_engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-loop", "t-loop", "busybox");
    spec.restart_policy = RestartPolicy::Always;
    spec.containers[0].command = cmd(&["false"]);
    cfg_engine.create(spec).await.expect("create");
    let st = wait_for(&cfg_engine, "t-loop", Duration::from_secs(20), |s| {
        matches!(&s.containers[0].status.state, ContainerState::Waiting { reason, .. } if reason == "CrashLoopBackOff")
    })
    .await;
    assert!(st.containers[0].status.restart_count <= 3);
    cfg_engine.remove("t-loop").await.expect("remove");
}

#[tokio::test]
async fn stop_sends_sigterm_first_and_sigkill_after_the_grace_period() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    // A shell as pid 1 only dies of SIGTERM if it traps it.
    let mut polite = InstanceSpec::single("t-term", "t-term", "busybox");
    polite.containers[0].command = cmd(&[
        "sh",
        "-c",
        "trap 'echo got term; exit 0' TERM; while true; do sleep 0.05; done",
    ]);
    let mut stubborn = InstanceSpec::single("t-kill", "t-kill", "busybox");
    stubborn.containers[0].command = cmd(&["sleep", "1000"]);
    for spec in [polite, stubborn] {
        let id = spec.id.clone();
        engine.create(spec).await.expect("create");
        wait_for(&engine, &id, Duration::from_secs(20), |s| {
            s.containers[0].status.state.is_running()
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // let the trap be installed
    let start = Instant::now();
    engine
        .stop("t-term", Duration::from_secs(10))
        .await
        .expect("stop");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "TERM was not honoured: {:?}",
        start.elapsed()
    );
    let st = engine.status("t-term").await.expect("status");
    assert_eq!(st.phase, InstancePhase::Stopped);
    assert_eq!(exit_code(&st, 0), Some(0));
    assert!(log_text(&engine, "t-term", "t-term", false)
        .await
        .contains("got term"));

    let start = Instant::now();
    engine
        .stop("t-kill", Duration::from_secs(1))
        .await
        .expect("stop");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(6),
        "{took:?}"
    );
    let st = engine.status("t-kill").await.expect("status");
    assert_eq!(exit_code(&st, 0), Some(137));
    for id in ["t-term", "t-kill"] {
        engine.remove(id).await.expect("remove");
    }
}

#[tokio::test]
async fn init_containers_run_in_order_before_the_main_container() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-init", "t-init", "busybox");
    for n in ["one", "two"] {
        let mut c = nodeless_engine::instance::ContainerSpec::new(&format!("init-{n}"), "busybox");
        c.command = cmd(&["sh", "-c", &format!("sleep 0.1; echo {n} >> /data/order")]);
        spec.init_containers.push(c);
    }
    spec.containers[0].command = cmd(&["cat", "/data/order"]);
    with_volume(&mut spec, "data", empty_dir(), "/data");
    engine.create(spec).await.expect("create");
    let st = wait_for(&engine, "t-init", Duration::from_secs(30), |s| {
        s.phase.is_finished()
    })
    .await;
    assert_eq!(st.phase, InstancePhase::Succeeded, "{st:#?}");
    assert!(st.init_containers.iter().all(|c| c
        .status
        .state
        .termination()
        .is_some_and(|t| t.exit_code == 0)));
    assert_eq!(
        log_text(&engine, "t-init", "t-init", false).await,
        "one\ntwo\n"
    );
    engine.remove("t-init").await.expect("remove");
}

#[tokio::test]
async fn a_failed_init_container_under_never_fails_the_instance_without_running_the_rest() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-initfail", "t-initfail", "busybox");
    let mut init = nodeless_engine::instance::ContainerSpec::new("init", "busybox");
    init.command = cmd(&["false"]);
    spec.init_containers.push(init);
    engine.create(spec).await.expect("create");
    let st = wait_for(&engine, "t-initfail", Duration::from_secs(20), |s| {
        s.phase.is_finished()
    })
    .await;
    assert_eq!(st.phase, InstancePhase::Failed);
    assert!(matches!(
        st.containers[0].status.state,
        ContainerState::Waiting { .. }
    ));
    engine.remove("t-initfail").await.expect("remove");
}

#[tokio::test]
async fn memory_empty_dirs_are_tmpfs_and_file_volumes_carry_contents_and_modes() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-vol", "t-vol", "busybox");
    spec.containers[0].command = cmd(&[
        "sh",
        "-c",
        "grep ' /cache ' /proc/mounts | cut -d' ' -f3; cat /cfg/app/settings; stat -c %a /cfg/app/settings; cat /etc/hostname",
    ]);
    with_volume(
        &mut spec,
        "cache",
        VolumeSource::EmptyDir {
            medium: StorageMedium::Memory,
            size_limit: Some(8 << 20),
        },
        "/cache",
    );
    let files = vec![VolumeFile {
        path: "app/settings".into(),
        contents: b"debug=true\n".to_vec(),
        mode: 0o640,
    }];
    with_volume(&mut spec, "cfg", VolumeSource::Files { files }, "/cfg");
    engine.create(spec).await.expect("create");
    let record =
        std::fs::read_to_string(root.path().join("instances/t-vol/instance.json")).expect("record");
    assert!(
        !record.contains("contents"),
        "volume file contents must stay out of the record"
    );
    wait_for(&engine, "t-vol", Duration::from_secs(20), |s| {
        s.phase.is_finished()
    })
    .await;
    assert_eq!(
        log_text(&engine, "t-vol", "t-vol", false).await,
        "tmpfs\ndebug=true\n640\nt-vol\n"
    );
    engine.remove("t-vol").await.expect("remove");
    assert!(!root.path().join("instances/t-vol").exists());
}

#[tokio::test]
async fn a_missing_command_is_a_start_error_with_the_runtimes_message() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-nocmd", "t-nocmd", "busybox");
    spec.containers[0].command = cmd(&["/no/such/binary"]);
    engine.create(spec).await.expect("create");
    let st = wait_for(&engine, "t-nocmd", Duration::from_secs(20), |s| {
        s.phase.is_finished()
    })
    .await;
    let t = st.containers[0]
        .status
        .state
        .termination()
        .expect("terminated")
        .clone();
    assert_eq!(t.reason, "StartError");
    assert!(t.message.unwrap_or_default().contains("/no/such/binary"));
    engine.remove("t-nocmd").await.expect("remove");
}
