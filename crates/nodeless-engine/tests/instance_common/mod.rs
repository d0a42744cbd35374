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

/// A busybox layer: /bin/busybox plus applet links, passwd/group, empty mount points. Built
/// once per machine (atomically, by rename) and shared by every test process.
pub fn busybox_layer() -> PathBuf {
    static LAYER: OnceLock<PathBuf> = OnceLock::new();
    LAYER
        .get_or_init(|| {
            let dir = std::env::temp_dir().join("nodeless-test-busybox-layer");
            if dir.join("bin/busybox").exists() {
                return dir;
            }
            let work = std::env::temp_dir().join(format!("nodeless-test-busybox-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&work);
            for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "home/app", "var/www"] {
                std::fs::create_dir_all(work.join(d)).expect("mkdir");
            }
            let busybox = ["/bin/busybox", "/usr/bin/busybox"]
                .iter()
                .map(Path::new)
                .find(|p| p.exists())
                .expect("busybox-static installed");
            std::fs::copy(busybox, work.join("bin/busybox")).expect("copy busybox");
            let list = std::process::Command::new(busybox).arg("--list").output().expect("busybox --list");
            for applet in String::from_utf8_lossy(&list.stdout).lines() {
                let _ = std::os::unix::fs::symlink("busybox", work.join("bin").join(applet));
            }
            std::fs::write(
                work.join("etc/passwd"),
                "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
            )
            .expect("passwd");
            std::fs::write(work.join("etc/group"), "root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n").expect("group");
            std::fs::set_permissions(work.join("tmp"), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).expect("chmod");
            // Another process may have won the race; either copy is fine.
            if std::fs::rename(&work, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&work);
            }
            dir
        })
        .clone()
}

/// A temporary engine root that, even when a test panics, kills its containers and
/// unmounts its root filesystems before the directory goes.
pub struct TestRoot {
    dir: tempfile::TempDir,
}

impl TestRoot {
    pub fn new() -> Self {
        TestRoot {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        let root = self.dir.path();
        for rt in ["runc", "runsc"] {
            let state = root.join("run").join(rt);
            if !state.exists() {
                continue;
            }
            let run = |args: &[&str]| {
                std::process::Command::new(rt)
                    .arg("--root")
                    .arg(&state)
                    .args(args)
                    .output()
            };
            if let Ok(out) = run(&["list", "-q"]) {
                for id in String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| !l.is_empty())
                {
                    let _ = run(&["kill", "--all", id, "KILL"]);
                    let _ = run(&["delete", "--force", id]);
                }
            }
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| Path::new(m).starts_with(root))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
        }
    }
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
        tokio::time::sleep(Duration::from_millis(3)).await;
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
