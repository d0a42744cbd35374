//! Root-only: exec with stdin and TTY, probes and stats on real runc.

mod instance_common;

use std::time::Duration;

use instance_common::*;
use nodeless_engine::instance::{Engine, ExecIo, InstanceSpec, Probe, ProbeAction};

/// A sink whose contents the test reads afterwards.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

async fn sleeper(engine: &nodeless_engine::instance::LocalEngine, id: &str) {
    let mut spec = InstanceSpec::single(id, id, "busybox");
    spec.containers[0].command = cmd(&["sleep", "1000"]);
    spec.containers[0]
        .env
        .push(("WHO".into(), "container".into()));
    engine.create(spec).await.expect("create");
    wait_for(engine, id, Duration::from_secs(20), |s| {
        s.containers[0].status.state.is_running()
    })
    .await;
}

#[tokio::test]
async fn exec_passes_stdin_and_returns_the_exit_code() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    sleeper(&engine, "t-exec").await;
    let (out, err) = (Capture::default(), Capture::default());
    let io = ExecIo {
        stdin: Some(Box::new(std::io::Cursor::new(
            b"hello from stdin\n".to_vec(),
        ))),
        stdout: Box::new(out.clone()),
        stderr: Some(Box::new(err.clone())),
        tty: false,
        resize: None,
    };
    let code = engine
        .exec(
            "t-exec",
            "t-exec",
            cmd(&["sh", "-c", "cat; echo $WHO; echo problem >&2; exit 7"]).expect("cmd"),
            io,
        )
        .await
        .expect("exec");
    assert_eq!(code, 7);
    assert_eq!(out.text(), "hello from stdin\ncontainer\n");
    assert_eq!(err.text(), "problem\n");
    engine.remove("t-exec").await.expect("remove");
}

#[tokio::test]
async fn exec_with_a_tty_runs_on_a_terminal() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    sleeper(&engine, "t-tty").await;
    let out = Capture::default();
    let (resize_tx, resize_rx) = tokio::sync::mpsc::channel(1);
    resize_tx.send((120, 40)).await.expect("resize");
    let io = ExecIo {
        stdin: None,
        stdout: Box::new(out.clone()),
        stderr: None,
        tty: true,
        resize: Some(resize_rx),
    };
    let code = engine
        .exec(
            "t-tty",
            "t-tty",
            cmd(&["sh", "-c", "sleep 0.2; tty; stty size"]).expect("cmd"),
            io,
        )
        .await
        .expect("exec");
    assert_eq!(code, 0);
    let text = out.text();
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("40 120"), "{text:?}");
    engine.remove("t-tty").await.expect("remove");
}

#[tokio::test]
async fn exec_into_a_stopped_container_is_refused() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-done", "t-done", "busybox");
    spec.containers[0].command = cmd(&["true"]);
    engine.create(spec).await.expect("create");
    wait_for(&engine, "t-done", Duration::from_secs(20), |s| {
        s.phase.is_finished()
    })
    .await;
    let io = ExecIo {
        stdin: None,
        stdout: Box::new(tokio::io::sink()),
        stderr: None,
        tty: false,
        resize: None,
    };
    let err = engine
        .exec("t-done", "t-done", vec!["true".into()], io)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("not running"), "{err}");
    engine.remove("t-done").await.expect("remove");
}

#[tokio::test]
async fn readiness_follows_an_exec_probe_and_a_failing_liveness_probe_restarts_the_container() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-probe", "t-probe", "busybox");
    spec.restart_policy = nodeless_engine::instance::RestartPolicy::Always;
    spec.containers[0].command = cmd(&["sh", "-c", "sleep 0.5; touch /tmp/ready; sleep 1000"]);
    let fast = |action| Probe {
        period: Duration::from_millis(100),
        failure_threshold: 2,
        ..Probe::new(action)
    };
    spec.containers[0].readiness_probe = Some(fast(ProbeAction::Exec {
        command: cmd(&["test", "-f", "/tmp/ready"]).expect("cmd"),
    }));
    spec.containers[0].liveness_probe = Some(fast(ProbeAction::Exec {
        command: cmd(&["test", "!", "-f", "/tmp/dead"]).expect("cmd"),
    }));
    let st = engine.create(spec).await.expect("create");
    assert!(!st.containers[0].ready);
    wait_for(&engine, "t-probe", Duration::from_secs(20), |s| {
        s.containers[0].ready
    })
    .await;
    let io = ExecIo {
        stdin: None,
        stdout: Box::new(tokio::io::sink()),
        stderr: None,
        tty: false,
        resize: None,
    };
    engine
        .exec(
            "t-probe",
            "t-probe",
            cmd(&["touch", "/tmp/dead"]).expect("cmd"),
            io,
        )
        .await
        .expect("exec");
    let st = wait_for(&engine, "t-probe", Duration::from_secs(20), |s| {
        s.containers[0].status.restart_count >= 1
    })
    .await;
    assert_eq!(
        st.containers[0]
            .status
            .last_state
            .as_ref()
            .map(|t| t.exit_code),
        Some(137)
    );
    engine.remove("t-probe").await.expect("remove");
}

#[tokio::test]
async fn stats_report_cpu_and_memory_of_running_containers() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    sleeper(&engine, "t-stats").await;
    let stats = engine.stats("t-stats").await.expect("stats");
    assert_eq!(stats.len(), 1);
    assert!(stats[0].usage.memory_usage_bytes > 0, "{stats:?}");
    assert!(stats[0].usage.pids >= 1, "{stats:?}");
    engine.remove("t-stats").await.expect("remove");
}
