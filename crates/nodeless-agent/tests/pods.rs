//! The agent against the real nodeless API server, over the engine's fake: Pods placed on
//! this host get instances and true status, deletion ends them, and a missing ConfigMap
//! shows as the kubelet shows it.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, Config};
use nodeless_agent::AgentConfig;
use nodeless_engine::fake::FakeEngine;
use nodeless_engine::instance::Engine;
use nodeless_kube::Host;
use serde_json::json;
use tokio_util::sync::CancellationToken;

const HOST: &str = "h1";

struct Setup {
    client: Client,
    engine: Arc<FakeEngine>,
    shutdown: CancellationToken,
    agent: tokio::task::JoinHandle<Result<(), nodeless_agent::AgentError>>,
    _server: nodeless_apiserver::Running,
    _dir: tempfile::TempDir,
}

async fn setup() -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let server = nodeless_apiserver::start(nodeless_apiserver::Config {
        data_dir: dir.path().to_path_buf(),
        listen: ([127, 0, 0, 1], 0).into(),
        limits: Default::default(),
    })
    .await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&server.kubeconfig)?;
    let cfg = Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = Client::try_from(cfg)?;
    let engine = Arc::new(FakeEngine::new());
    let config = AgentConfig {
        host_name: HOST.into(),
        address: "127.0.0.1".parse()?,
        node_endpoint: "http://127.0.0.1:1".into(),
        node_listen: ([127, 0, 0, 1], 0).into(),
        capacity_cpu_millis: 16_000,
        capacity_memory_bytes: 32 << 30,
        runtimes: vec!["runc".into()],
        cluster_dns: vec![],
        cluster_domain: "cluster.local".into(),
    };
    let shutdown = CancellationToken::new();
    let dyn_engine: Arc<dyn Engine> = engine.clone();
    let agent = tokio::spawn(nodeless_agent::run_with(
        client.clone(),
        dyn_engine,
        config,
        HashSet::new(),
        shutdown.clone(),
    ));
    let hosts: Api<Host> = Api::all(client.clone());
    eventually("the host is registered", || async {
        hosts.get_opt(HOST).await.ok().flatten().is_some()
    })
    .await;
    Ok(Setup {
        client,
        engine,
        shutdown,
        agent,
        _server: server,
        _dir: dir,
    })
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A Pod bound to the virtual node and placed on this host, as the scheduler leaves it.
fn placed_pod(name: &str, container: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {
            "nodeless.dev/host": HOST, "nodeless.dev/instance-spec": "1-2Gi"}},
        "spec": {"nodeName": "nodeless", "containers": [container]}
    }))
    .expect("pod")
}

fn condition(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placed_pod_runs_and_graceful_deletion_removes_its_instance_and_the_pod(
) -> anyhow::Result<()> {
    let s = setup().await?;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let created = pods
        .create(
            &PostParams::default(),
            &placed_pod("web", json!({"name": "app", "image": "busybox:1.36"})),
        )
        .await?;
    let uid = created.metadata.uid.clone().expect("uid");
    eventually("the pod is running and ready", || async {
        let Ok(p) = pods.get("web").await else {
            return false;
        };
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            && condition(&p, "Ready").as_deref() == Some("True")
    })
    .await;
    let pod = pods.get("web").await?;
    let status = pod.status.expect("status");
    assert!(status
        .pod_ip
        .as_deref()
        .is_some_and(|ip| ip.starts_with("10.88.")));
    assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
    assert!(status.start_time.is_some());
    for c in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert_eq!(
            status
                .conditions
                .iter()
                .flatten()
                .find(|x| x.type_ == c)
                .map(|x| x.status.as_str()),
            Some("True"),
            "{c}"
        );
    }
    let cs = &status.container_statuses.expect("container statuses")[0];
    assert_eq!(cs.name, "app");
    assert!(cs.ready);
    assert!(cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some());
    assert_eq!(
        cs.container_id.as_deref(),
        Some(format!("nodeless://{uid}-app").as_str())
    );
    let spec = s.engine.spec(&uid).expect("instance");
    assert_eq!(spec.name, "default/web");
    assert_eq!(spec.cpu_millis, 1000);

    let events: Api<Event> = Api::namespaced(s.client.clone(), "default");
    eventually("started events are recorded", || async {
        let Ok(list) = events.list(&ListParams::default()).await else {
            return false;
        };
        let reasons: Vec<String> = list.items.iter().filter_map(|e| e.reason.clone()).collect();
        ["Pulled", "Created", "Started"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r))
    })
    .await;

    pods.delete("web", &DeleteParams::default()).await?;
    eventually("the pod object is gone", || async {
        matches!(pods.get_opt("web").await, Ok(None))
    })
    .await;
    let calls = s.engine.calls();
    assert!(calls.contains(&format!("stop {uid}")), "{calls:?}");
    assert!(calls.contains(&format!("remove {uid}")), "{calls:?}");
    assert!(s.engine.list().await?.is_empty());
    s.shutdown.cancel();
    s.agent.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_reading_a_missing_config_map_waits_with_create_container_config_error_until_it_exists(
) -> anyhow::Result<()> {
    let s = setup().await?;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let container = json!({"name": "app", "image": "busybox:1.36", "env": [
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}]});
    pods.create(&PostParams::default(), &placed_pod("cfg", container))
        .await?;
    eventually("the container waits on its configmap", || async {
        let Ok(p) = pods.get("cfg").await else {
            return false;
        };
        let waiting = p
            .status
            .and_then(|s| s.container_statuses)
            .and_then(|cs| cs.into_iter().next())
            .and_then(|c| c.state)
            .and_then(|s| s.waiting);
        waiting.is_some_and(|w| {
            w.reason.as_deref() == Some("CreateContainerConfigError")
                && w.message.as_deref() == Some("configmap \"settings\" not found")
        })
    })
    .await;
    assert!(s.engine.list().await?.is_empty());

    let cms: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings"}, "data": {"mode": "prod"}}))?;
    cms.create(&PostParams::default(), &cm).await?;
    eventually("the pod runs once its configmap exists", || async {
        pods.get("cfg")
            .await
            .ok()
            .and_then(|p| p.status)
            .and_then(|s| s.phase)
            .as_deref()
            == Some("Running")
    })
    .await;
    let uid = pods.get("cfg").await?.metadata.uid.expect("uid");
    let env = s.engine.spec(&uid).expect("instance").containers[0]
        .env
        .clone();
    assert!(env.contains(&("MODE".to_string(), "prod".to_string())));
    s.shutdown.cancel();
    s.agent.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_other_hosts_are_left_alone_and_a_restarted_agent_adopts_running_instances(
) -> anyhow::Result<()> {
    let s = setup().await?;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let mut other = placed_pod("elsewhere", json!({"name": "app", "image": "busybox:1.36"}));
    other
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("nodeless.dev/host".into(), "h2".into());
    pods.create(&PostParams::default(), &other).await?;
    pods.create(
        &PostParams::default(),
        &placed_pod("mine", json!({"name": "app", "image": "busybox:1.36"})),
    )
    .await?;
    eventually("my pod runs", || async {
        pods.get("mine")
            .await
            .ok()
            .and_then(|p| p.status)
            .and_then(|s| s.phase)
            .as_deref()
            == Some("Running")
    })
    .await;
    assert_eq!(
        s.engine.list().await?.len(),
        1,
        "only this host's pod runs here"
    );

    // A new agent over the same engine adopts the instance instead of creating another.
    s.shutdown.cancel();
    s.agent.await??;
    let creates = |calls: Vec<String>| calls.iter().filter(|c| c.starts_with("create")).count();
    let before = creates(s.engine.calls());
    let shutdown = CancellationToken::new();
    let dyn_engine: Arc<dyn Engine> = s.engine.clone();
    let config = AgentConfig {
        host_name: HOST.into(),
        address: "127.0.0.1".parse()?,
        node_endpoint: "http://127.0.0.1:1".into(),
        node_listen: ([127, 0, 0, 1], 0).into(),
        capacity_cpu_millis: 16_000,
        capacity_memory_bytes: 32 << 30,
        runtimes: vec!["runc".into()],
        cluster_dns: vec![],
        cluster_domain: "cluster.local".into(),
    };
    let agent = tokio::spawn(nodeless_agent::run_with(
        s.client.clone(),
        dyn_engine,
        config,
        HashSet::new(),
        shutdown.clone(),
    ));
    // Deleting the pod through the new agent proves it owns the adopted instance.
    pods.delete("mine", &DeleteParams::default()).await?;
    eventually("the adopted pod is deleted", || async {
        matches!(pods.get_opt("mine").await, Ok(None))
    })
    .await;
    assert_eq!(creates(s.engine.calls()), before, "no second instance");
    assert!(s.engine.list().await?.is_empty());
    shutdown.cancel();
    agent.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_map_reaches_the_running_pods_volume() -> anyhow::Result<()> {
    let s = setup().await?;
    let cms: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let cm = |mode: &str| -> anyhow::Result<ConfigMap> {
        Ok(serde_json::from_value(json!({
            "metadata": {"name": "app-config"}, "data": {"mode": mode}}))?)
    };
    cms.create(&PostParams::default(), &cm("one")?).await?;
    let mut pod = placed_pod(
        "vol",
        json!({"name": "app", "image": "busybox:1.36",
               "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}]}),
    );
    if let Some(spec) = pod.spec.as_mut() {
        spec.volumes = Some(vec![serde_json::from_value(json!({
            "name": "config", "configMap": {"name": "app-config"}}))?]);
    }
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let uid = pods
        .create(&PostParams::default(), &pod)
        .await?
        .metadata
        .uid
        .expect("uid");
    let mode_file = |engine: &FakeEngine| -> Option<Vec<u8>> {
        let spec = engine.spec(&uid)?;
        match &spec.volumes.first()?.source {
            nodeless_engine::instance::VolumeSource::Files { files } => files
                .iter()
                .find(|f| f.path == "mode")
                .map(|f| f.contents.clone()),
            _ => None,
        }
    };
    eventually("the instance has the first contents", || async {
        mode_file(&s.engine).as_deref() == Some(b"one".as_slice())
    })
    .await;
    let mut changed = cms.get("app-config").await?;
    changed.data = Some([("mode".to_string(), "two".to_string())].into());
    cms.replace("app-config", &PostParams::default(), &changed)
        .await?;
    eventually("the volume has the new contents", || async {
        mode_file(&s.engine).as_deref() == Some(b"two".as_slice())
    })
    .await;
    assert!(s
        .engine
        .calls()
        .contains(&format!("update_volume {uid} config")));
    s.shutdown.cancel();
    s.agent.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_pull_shows_err_image_pull_then_image_pull_back_off() -> anyhow::Result<()> {
    let s = setup().await?;
    s.engine.fail_next_create("manifest unknown");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &placed_pod("bad", json!({"name": "app", "image": "nope:1"})),
    )
    .await?;
    let reason = || async {
        pods.get("bad")
            .await
            .ok()
            .and_then(|p| p.status)
            .and_then(|s| s.container_statuses)
            .and_then(|cs| cs.into_iter().next())
            .and_then(|c| c.state)
            .and_then(|s| s.waiting)
            .and_then(|w| w.reason)
    };
    eventually("the pull error shows", || async {
        reason().await.as_deref() == Some("ErrImagePull")
    })
    .await;
    eventually("the pull backs off", || async {
        reason().await.as_deref() == Some("ImagePullBackOff")
    })
    .await;
    s.shutdown.cancel();
    s.agent.await??;
    Ok(())
}

/// Throughput over the fake engine: the agent side of the 500-Pod benchmark. Run with
/// `cargo test --release -p nodeless-agent --test pods -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark; run by hand"]
async fn five_hundred_pods_placed_at_once_all_run() -> anyhow::Result<()> {
    const PODS: usize = 500;
    let s = setup().await?;
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let start = std::time::Instant::now();
    let creates = (0..PODS).map(|i| {
        let pods = pods.clone();
        async move {
            let pod = placed_pod(
                &format!("p{i}"),
                json!({"name": "app", "image": "busybox:1.36"}),
            );
            pods.create(&PostParams::default(), &pod).await
        }
    });
    for r in futures::future::join_all(creates).await {
        r?;
    }
    let created = start.elapsed();
    for _ in 0..1200 {
        let list = pods.list(&ListParams::default()).await?;
        let running = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if running == PODS {
            eprintln!(
                "{PODS} pods created in {created:?}, all running after {:?}",
                start.elapsed()
            );
            s.shutdown.cancel();
            s.agent.await??;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not all pods ran within 2 minutes");
}
