//! Leader election between copies of `run_all` against a real nodeless API server.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use nodeless_controllers::{run_all, ControllersConfig};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[path = "endpoints_support/mod.rs"]
mod support;

use support::{cluster, create, eventually};

const LEASE: &str = "nodeless-controllers";

struct Copy {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

fn start(client: &Client, identity: &str) -> Copy {
    let config = ControllersConfig {
        lease_name: LEASE.into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(2),
    };
    let shutdown = CancellationToken::new();
    let run = run_all(client.clone(), config, shutdown.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = run.await {
            eprintln!("run_all failed: {e}");
        }
    });
    Copy { shutdown, task }
}

fn holder(l: &Lease) -> Option<String> {
    l.spec.as_ref()?.holder_identity.clone()
}

/// Waits until `svc`'s Endpoints exist: some copy's controllers are acting.
async fn controllers_act(client: &Client, svc: &str) -> anyhow::Result<()> {
    create::<Service>(
        client,
        "default",
        json!({
            "metadata": {"name": svc},
            "spec": {"selector": {"app": svc}, "ports": [{"port": 80}]}
        }),
    )
    .await?;
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    eventually("the leader's controllers act", || async {
        Ok(eps.get_opt(svc).await?)
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_copy_leads_and_the_other_takes_over_when_it_stops() -> anyhow::Result<()> {
    let c = cluster().await?;
    let client = &c.client;
    let a = start(client, "copy-a");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    eventually("copy-a holds the lease", || async {
        let l = leases.get_opt(LEASE).await?;
        Ok(l.filter(|l| holder(l).as_deref() == Some("copy-a")))
    })
    .await?;
    let b = start(client, "copy-b");
    controllers_act(client, "first").await?;
    // copy-b waits while copy-a renews, for longer than a lease duration.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let l = leases.get(LEASE).await?;
    assert_eq!(holder(&l).as_deref(), Some("copy-a"));
    let spec = l.spec.clone().expect("spec");
    assert_eq!(spec.lease_duration_seconds, Some(2));
    assert_eq!(spec.lease_transitions, Some(0));
    assert!(spec.acquire_time.is_some() && spec.renew_time.is_some());

    // copy-a stops and gives the lease up: copy-b takes over well before it would expire.
    a.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), a.task).await??;
    let started = std::time::Instant::now();
    let l = eventually("copy-b holds the lease", || async {
        let l = leases.get(LEASE).await?;
        Ok((holder(&l).as_deref() == Some("copy-b")).then_some(l))
    })
    .await?;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(l.spec.and_then(|s| s.lease_transitions), Some(1));
    controllers_act(client, "second").await?;
    b.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), b.task).await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_loses_its_lease_stops_acting_and_competes_again() -> anyhow::Result<()> {
    let c = cluster().await?;
    let client = &c.client;
    let a = start(client, "copy-a");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    controllers_act(client, "before").await?;
    // Someone else grabs the lease (and then never renews it).
    let grab = json!({"spec": {"holderIdentity": "intruder",
                               "renewTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)}});
    leases
        .patch(LEASE, &PatchParams::default(), &Patch::Merge(&grab))
        .await?;
    // copy-a notices at its next renewal, waits out the intruder's lease, and leads again.
    let l = eventually("copy-a leads again", || async {
        let l = leases.get(LEASE).await?;
        let transitions = l.spec.as_ref().and_then(|s| s.lease_transitions);
        Ok((holder(&l).as_deref() == Some("copy-a") && transitions == Some(1)).then_some(l))
    })
    .await?;
    assert!(l.spec.and_then(|s| s.acquire_time).is_some());
    controllers_act(client, "after").await?;
    a.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), a.task).await??;
    Ok(())
}
