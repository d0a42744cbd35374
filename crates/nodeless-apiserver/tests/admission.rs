//! What a nodeless platform cannot run is refused at the API, through a real client (kube-rs),
//! with a 4xx Status that names the field and the alternative.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

mod support;

use support::cluster;

fn typed<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

fn pod_spec(extra: Value) -> Value {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    spec
}

fn deployment(name: &str, spec: Value) -> Deployment {
    typed(json!({
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec}
        }
    }))
}

/// Asserts a 403 whose message names `field` and contains `alternative`.
fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, kube::Error>,
    field: &str,
    alternative: &str,
) {
    match result {
        Err(kube::Error::Api(s)) => {
            assert_eq!(
                (s.code, s.reason.as_str()),
                (403, "Forbidden"),
                "{}",
                s.message
            );
            assert!(
                s.message.contains(&format!("{field}: ")),
                "no {field} in: {}",
                s.message
            );
            assert!(
                s.message.contains(alternative),
                "no {alternative:?} in: {}",
                s.message
            );
        }
        other => panic!("expected a refusal naming {field}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_objects_are_refused_naming_the_field_and_the_alternative() -> anyhow::Result<()>
{
    let c = cluster().await?;
    let pp = PostParams::default();

    let mut privileged = pod_spec(json!({}));
    privileged["containers"][0]["securityContext"] = json!({"privileged": true});
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let pod: Pod = typed(json!({"metadata": {"name": "priv"}, "spec": privileged}));
    assert_refused(
        pods.create(&pp, &pod).await,
        "spec.containers[0].securityContext.privileged",
        "securityContext.capabilities.add",
    );

    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let host_net = deployment("hostnet", pod_spec(json!({"hostNetwork": true})));
    assert_refused(
        deployments.create(&pp, &host_net).await,
        "spec.template.spec.hostNetwork",
        "Service of type LoadBalancer",
    );

    let daemonsets: Api<DaemonSet> = Api::namespaced(c.client.clone(), "default");
    let ds: DaemonSet = typed(json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": pod_spec(json!({}))}
        }
    }));
    assert_refused(
        daemonsets.create(&pp, &ds).await,
        "spec",
        "sidecar container",
    );

    let services: Api<Service> = Api::namespaced(c.client.clone(), "default");
    let svc = |name: &str, kind: &str| -> Service {
        typed(
            json!({"metadata": {"name": name}, "spec": {"type": kind, "selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        )
    };
    assert_refused(
        services.create(&pp, &svc("np", "NodePort")).await,
        "spec.type",
        "type LoadBalancer",
    );

    // Nothing refused was stored; the alternatives are admitted.
    assert!(pods.get_opt("priv").await?.is_none());
    assert!(daemonsets.get_opt("agent").await?.is_none());
    services.create(&pp, &svc("lb", "LoadBalancer")).await?;
    let mut capable = pod_spec(json!({}));
    capable["containers"][0]["securityContext"] = json!({"capabilities": {"add": ["NET_ADMIN"]}});
    pods.create(
        &pp,
        &typed(json!({"metadata": {"name": "cap"}, "spec": capable})),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_that_adds_a_host_path_volume_is_refused() -> anyhow::Result<()> {
    let c = cluster().await?;
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", pod_spec(json!({}))),
        )
        .await?;
    let patch = json!({"spec": {"template": {"spec": {"volumes": [{"name": "logs", "hostPath": {"path": "/var/log"}}]}}}});
    let result = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await;
    assert_refused(
        result,
        "spec.template.spec.volumes[0].hostPath",
        "use an emptyDir volume",
    );
    let stored = deployments.get("web").await?;
    let volumes = stored
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.volumes);
    assert!(
        volumes.is_none(),
        "the refused update was stored: {volumes:?}"
    );
    Ok(())
}
