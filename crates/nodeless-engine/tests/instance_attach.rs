//! Root-only: attach to a running container's stdin and terminal on real runc.

mod instance_common;

use std::time::Duration;

use instance_common::*;
use nodeless_engine::instance::{Engine, EngineError, InstancePhase, InstanceSpec};
use tokio::io::AsyncWriteExt;

async fn running(engine: &nodeless_engine::instance::LocalEngine, id: &str) {
    wait_for(engine, id, Duration::from_secs(20), |s| {
        s.containers[0].status.state.is_running()
    })
    .await;
}

/// What a session's client sends: `text` after `delay`, then the end of its input.
fn input(text: &'static str, delay: Duration) -> Box<dyn tokio::io::AsyncRead + Send + Unpin> {
    let (mut ours, theirs) = tokio::io::duplex(1024);
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = ours.write_all(text.as_bytes()).await;
    });
    Box::new(theirs)
}

/// A container that echoes each line of its stdin and says `eof` at the end of it.
fn line_reader(id: &str, stdin_once: bool) -> InstanceSpec {
    let mut spec = InstanceSpec::single(id, id, "busybox");
    let c = &mut spec.containers[0];
    c.command = cmd(&[
        "sh",
        "-c",
        "while read line; do echo got $line; done; echo eof",
    ]);
    c.stdin = true;
    c.stdin_once = stdin_once;
    spec
}

#[tokio::test]
async fn stdin_once_input_reaches_the_container_which_then_reads_eof() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = line_reader("t-att", true);
    spec.restart_policy = nodeless_engine::instance::RestartPolicy::Never;
    engine.create(spec).await.expect("create");
    running(&engine, "t-att").await;

    let attachment = engine.attach("t-att", "t-att", true).await.expect("attach");
    assert!(!attachment.tty);
    attachment
        .run(Some(input("hello\nworld\n", Duration::ZERO)), None)
        .await;
    let st = wait_for(&engine, "t-att", Duration::from_secs(10), |s| {
        s.phase.is_finished()
    })
    .await;
    assert_eq!(exit_code(&st, 0), Some(0));
    let logs = log_text(&engine, "t-att", "t-att", false).await;
    assert!(
        logs.contains("got hello") && logs.contains("got world") && logs.contains("eof"),
        "{logs}"
    );
    engine.remove("t-att").await.expect("remove");
}

#[tokio::test]
async fn without_stdin_once_sessions_come_and_go_and_the_container_keeps_its_stdin() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    engine
        .create(line_reader("t-att2", false))
        .await
        .expect("create");
    running(&engine, "t-att2").await;
    for word in ["first\n", "second\n"] {
        let attachment = engine
            .attach("t-att2", "t-att2", true)
            .await
            .expect("attach");
        attachment
            .run(Some(input(word, Duration::ZERO)), None)
            .await;
    }
    let logs = wait_log(&engine, "t-att2", "got second").await;
    assert!(
        logs.contains("got first") && !logs.contains("eof"),
        "{logs}"
    );
    let st = engine.status("t-att2").await.expect("status");
    assert_eq!(
        st.phase,
        InstancePhase::Running,
        "stdin stays open between sessions"
    );
    engine.remove("t-att2").await.expect("remove");
}

#[tokio::test]
async fn a_tty_container_gets_a_terminal_its_size_and_input() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-atty", "t-atty", "busybox");
    let c = &mut spec.containers[0];
    c.command = cmd(&[
        "sh",
        "-c",
        "tty; read x; stty size; echo typed:$x; sleep 1000",
    ]);
    c.stdin = true;
    c.tty = true;
    engine.create(spec).await.expect("create");
    running(&engine, "t-atty").await;
    let logs = wait_log(&engine, "t-atty", "/dev/pts/").await;
    assert!(logs.contains("/dev/pts/0"), "{logs}");

    let attachment = engine
        .attach("t-atty", "t-atty", true)
        .await
        .expect("attach");
    assert!(attachment.tty);
    let (sizes, rx) = tokio::sync::mpsc::channel(4);
    sizes.send((101, 33)).await.expect("size");
    drop(sizes);
    // The size first: the input makes the container read it.
    attachment
        .run(Some(input("hi\n", Duration::from_millis(500))), Some(rx))
        .await;
    let logs = wait_log(&engine, "t-atty", "typed:hi").await;
    assert!(
        logs.contains("33 101"),
        "stty size reads rows and columns: {logs}"
    );
    engine.remove("t-atty").await.expect("remove");
}

#[tokio::test]
async fn attaching_input_to_a_container_without_stdin_is_refused() {
    require_root!();
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-nostdin", "t-nostdin", "busybox");
    spec.containers[0].command = cmd(&["sleep", "1000"]);
    engine.create(spec).await.expect("create");
    running(&engine, "t-nostdin").await;
    match engine.attach("t-nostdin", "t-nostdin", true).await {
        Err(EngineError::Invalid(why)) => assert!(why.contains("stdin: true"), "{why}"),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("attach with input was accepted"),
    }
    // Without input it is fine: the caller follows the output.
    engine
        .attach("t-nostdin", "t-nostdin", false)
        .await
        .expect("attach without input");
    engine.remove("t-nostdin").await.expect("remove");
}

async fn wait_log(engine: &nodeless_engine::instance::LocalEngine, id: &str, want: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let logs = log_text(engine, id, id, false).await;
        if logs.contains(want) || std::time::Instant::now() > deadline {
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
