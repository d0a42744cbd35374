//! Load limits and durability: excess load gets 429 with Retry-After; acknowledged writes
//! survive a restart on the same data directory.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;

mod support;

use support::{client_for, config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_concurrent_requests_get_429_with_retry_after() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let limits = nodeless_apiserver::server::Limits {
        max_inflight: 1,
        max_mutating: 1,
        ..Default::default()
    };
    let config = config(dir.path(), limits);
    let running = nodeless_apiserver::start(config).await?;
    let client = client_for(&running).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let cms = cms.clone();
            tokio::spawn(async move {
                let cm: ConfigMap =
                    serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}}))
                        .expect("cm");
                cms.create(&PostParams::default(), &cm).await
            })
        })
        .collect();
    let mut throttled = 0;
    let mut created = 0;
    for t in tasks {
        match t.await? {
            Ok(_) => created += 1,
            Err(kube::Error::Api(s)) if s.code == 429 => throttled += 1,
            Err(e) => anyhow::bail!("unexpected error: {e}"),
        }
    }
    assert!(
        throttled > 0,
        "64 concurrent creates against a limit of 1 must see 429s"
    );
    assert!(created > 0, "some creates must get through");
    running.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = config(dir.path(), Default::default());
    let running = nodeless_apiserver::start(config.clone()).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client_for(&running).await?, "default");
    let mut last_rv = 0i64;
    for i in 0..50 {
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("keep{i}")}, "data": {"i": i.to_string()}}),
        )?;
        let out = cms.create(&PostParams::default(), &cm).await?;
        last_rv = out
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or("0")
            .parse()?;
    }
    running.shutdown().await;
    let running = nodeless_apiserver::start(config).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client_for(&running).await?, "default");
    for i in 0..50 {
        let cm = cms.get(&format!("keep{i}")).await?;
        assert_eq!(
            cm.data.and_then(|d| d.get("i").cloned()),
            Some(i.to_string())
        );
    }
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "after"}}))?;
    let rv: i64 = cms
        .create(&PostParams::default(), &cm)
        .await?
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()?;
    assert!(
        rv > last_rv,
        "revisions never go backwards across a restart"
    );
    running.shutdown().await;
    Ok(())
}
