//! Shared helpers for the sandbox/instance integration tests: a busybox root filesystem
//! built from the host's busybox-static, and engines over it without a registry.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use nodeless_engine::instance::{
    Backoff, ContainerState, Engine, EngineConfig, EngineParts, InstanceStatus, LocalEngine,
    LocalImages, NetworkProvider, NoNetwork, PulledImage,
};
use nodeless_engine::sandbox::logs::LogOptions;

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Skips (with a reason) unless root with runc available.
#[macro_export]
macro_rules! require_root {
    () => {
        if !instance_common::is_root() {
            eprintln!("skipped: needs root (real runc, mounts, cgroups)");
            return;
        }
    };
}

/// A busybox layer: /bin/busybox plus applet links, passwd/group, empty mount points.
pub fn busybox_layer() -> PathBuf {
    static LAYER: OnceLock<PathBuf> = OnceLock::new();
    LAYER
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("nodeless-test-busybox-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "home/app", "var/www"] {
                std::fs::create_dir_all(dir.join(d)).expect("mkdir");
            }
            let busybox = ["/bin/busybox", "/usr/bin/busybox"].iter().map(Path::new).find(|p| p.exists()).expect("busybox-static installed");
            std::fs::copy(busybox, dir.join("bin/busybox")).expect("copy busybox");
            let list = std::process::Command::new(busybox).arg("--list").output().expect("busybox --list");
            for applet in String::from_utf8_lossy(&list.stdout).lines() {
                let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
            }
            std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n").expect("passwd");
            std::fs::write(dir.join("etc/group"), "root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n").expect("group");
            std::fs::set_permissions(dir.join("tmp"), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).expect("chmod");
            dir
        })
        .clone()
}

pub fn busybox_image() -> PulledImage {
    PulledImage {
        reference: "local/busybox:test".into(),
        digest: "sha256:test".into(),
        cmd: vec!["sh".into()],
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        layers: vec![busybox_layer()],
        ..Default::default()
    }
}

pub fn test_config(root: &Path) -> EngineConfig {
    let mut cfg = EngineConfig::new(root.to_path_buf());
    cfg.shim_command = vec![env!("CARGO_BIN_EXE_nodeless-shim").into()];
    cfg.backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_millis(800),
        reset_after: Duration::from_secs(600),
    };
    cfg
}

pub fn engine_with(root: &Path, network: Arc<dyn NetworkProvider>) -> LocalEngine {
    let mut images = LocalImages::default();
    images.images.insert("busybox".into(), busybox_image());
    LocalEngine::open(EngineParts::host(
        test_config(root),
        Arc::new(images),
        network,
    ))
    .expect("engine opens")
}

pub fn engine(root: &Path) -> LocalEngine {
    engine_with(root, Arc::new(NoNetwork))
}

/// Polls `status` until `pred` holds or `limit` passes.
pub async fn wait_for(
    engine: &LocalEngine,
    id: &str,
    limit: Duration,
    pred: impl Fn(&InstanceStatus) -> bool,
) -> InstanceStatus {
    let start = Instant::now();
    loop {
        let st = engine.status(id).await.expect("status");
        if pred(&st) {
            return st;
        }
        assert!(
            start.elapsed() < limit,
            "timed out waiting; last status: {st:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn exit_code(st: &InstanceStatus, container: usize) -> Option<i32> {
    match &st.containers[container].status.state {
        ContainerState::Terminated(t) => Some(t.exit_code),
        _ => None,
    }
}

/// All log content of a container's current (or previous) run as text.
pub async fn log_text(engine: &LocalEngine, id: &str, container: &str, previous: bool) -> String {
    let mut stream = engine
        .logs(
            id,
            container,
            LogOptions {
                previous,
                ..Default::default()
            },
        )
        .await
        .expect("logs");
    let mut out = String::new();
    while let Some(line) = stream.next().await {
        out.push_str(&String::from_utf8_lossy(&line.text(false)));
    }
    out
}

pub fn cmd(args: &[&str]) -> Option<Vec<String>> {
    Some(args.iter().map(|s| s.to_string()).collect())
}
