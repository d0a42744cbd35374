//! Root-only: instances under gVisor (runsc, default platform), with and without a network.

mod instance_common;
mod support;

use std::sync::Arc;
use std::time::Duration;

use instance_common::*;
use nodeless_engine::instance::{Engine, EngineError, InstancePhase, InstanceSpec, RuntimeKind};

fn runsc_installed() -> bool {
    nodeless_engine::sandbox::RuntimeBinary::locate(
        RuntimeKind::Runsc,
        std::path::Path::new("/tmp"),
    )
    .is_ok()
}

#[tokio::test]
async fn gvisor_runs_a_container_under_its_own_kernel_with_exit_codes() {
    require_root!();
    if !runsc_installed() {
        eprintln!("skipped: runsc is not installed");
        return;
    }
    let root = TestRoot::new();
    let engine = engine(root.path());
    let mut spec = InstanceSpec::single("t-gv", "t-gv", "busybox");
    spec.runtime = RuntimeKind::Runsc;
    spec.memory_bytes = 64 << 20;
    spec.containers[0].command = cmd(&["sh", "-c", "dmesg | head -1; echo $GREETING; exit 5"]);
    spec.containers[0]
        .env
        .push(("GREETING".into(), "hi".into()));
    engine.create(spec).await.expect("create");
    let st = wait_for(&engine, "t-gv", Duration::from_secs(60), |s| {
        s.phase.is_finished()
    })
    .await;
    assert_eq!(exit_code(&st, 0), Some(5), "{st:#?}");
    assert_eq!(st.phase, InstancePhase::Failed);
    let logs = log_text(&engine, "t-gv", "t-gv", false).await;
    // gVisor's kernel log starts with its own banner, not the host's.
    assert!(logs.contains("gVisor"), "{logs}");
    assert!(logs.ends_with("hi\n"), "{logs}");
    engine.remove("t-gv").await.expect("remove");
}

#[tokio::test]
async fn gvisor_instances_join_the_cni_network() {
    require_root!();
    if !runsc_installed() {
        eprintln!("skipped: runsc is not installed");
        return;
    }
    let net = support::network::TestNetwork::new(23, false);
    let root = TestRoot::new();
    let engine = engine_with(root.path(), Arc::new(net.net.clone()));
    let mut spec = InstanceSpec::single("t-gvnet", "t-gvnet", "busybox");
    spec.runtime = RuntimeKind::Runsc;
    spec.containers[0].command =
        cmd(&["sh", "-c", "ip -4 addr show eth0 | grep -o 'inet [0-9.]*'"]);
    let created = engine.create(spec).await.expect("create");
    let st = wait_for(&engine, "t-gvnet", Duration::from_secs(60), |s| {
        s.phase.is_finished()
    })
    .await;
    assert_eq!(exit_code(&st, 0), Some(0), "{st:#?}");
    let ip = created.ip.expect("ip");
    assert_eq!(
        log_text(&engine, "t-gvnet", "t-gvnet", false).await,
        format!("inet {ip}\n")
    );
    engine.remove("t-gvnet").await.expect("remove");
}

#[tokio::test]
async fn a_missing_runtime_is_a_clear_error_before_anything_is_set_up() {
    let root = TestRoot::new();
    let mut cfg = test_config(root.path());
    cfg.root = root.path().to_path_buf();
    let runtimes = Arc::new(NoRuntimes);
    let mut images = nodeless_engine::instance::LocalImages::default();
    images.images.insert("busybox".into(), busybox_image());
    let parts = nodeless_engine::instance::EngineParts {
        config: cfg,
        images: Arc::new(images),
        network: Arc::new(nodeless_engine::instance::NoNetwork),
        runtimes,
        mounter: Arc::new(nodeless_engine::sandbox::rootfs::HostMounter),
        cgroups: Default::default(),
    };
    let engine = nodeless_engine::instance::LocalEngine::open(parts).expect("open");
    let mut spec = InstanceSpec::single("t-none", "t-none", "busybox");
    spec.runtime = RuntimeKind::Runsc;
    let err = engine.create(spec).await.expect_err("no runtime");
    assert!(matches!(err, EngineError::Runtime(_)), "{err}");
    assert!(err.to_string().contains("runsc is not installed"), "{err}");
    assert!(engine.list().await.expect("list").is_empty());
}

struct NoRuntimes;

impl nodeless_engine::instance::RuntimeLocator for NoRuntimes {
    fn runtime(
        &self,
        kind: RuntimeKind,
    ) -> Result<Arc<dyn nodeless_engine::sandbox::Runtime>, nodeless_engine::sandbox::RuntimeError>
    {
        Err(nodeless_engine::sandbox::RuntimeError::NotInstalled {
            kind,
            searched: "nowhere".into(),
            hint: "install it",
        })
    }
}
