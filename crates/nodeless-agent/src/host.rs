//! The agent's presence in the API: the Host object the scheduler places instances on and
//! the API server proxies to, the token that endpoint expects, the `gvisor` RuntimeClass,
//! and the heartbeat that keeps the Host alive.

use std::collections::BTreeMap;

use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::ByteString;
use kube::api::{Api, Patch, PatchParams, PostParams};
use nodeless_kube::host::{HostCrdError, HEARTBEAT_INTERVAL};
use nodeless_kube::names::{
    GVISOR_HANDLER, GVISOR_RUNTIME_CLASS, HOST_CERT_KEY, HOST_TOKEN_KEY, HOST_TOKEN_SECRET_PREFIX,
    SYSTEM_NAMESPACE,
};
use nodeless_kube::{Host, HostSpec};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Crd(#[from] HostCrdError),
    #[error("creating the gvisor RuntimeClass: {0}")]
    RuntimeClass(#[source] kube::Error),
    #[error("storing the node endpoint token in secret {SYSTEM_NAMESPACE}/{name}: {source}")]
    Token {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("registering host {name}: {source}")]
    Register {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The heartbeat this host's Host object shows, if it was registered before.
pub async fn last_heartbeat(
    client: &kube::Client,
    name: &str,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let api: Api<Host> = Api::all(client.clone());
    let host = api.get_opt(name).await.ok().flatten()?;
    host.status?.heartbeat_time.map(|t| t.0)
}

/// Registers this host: CRD, RuntimeClass, a fresh token and the Host object. Returns the
/// token the node endpoint must demand.
/// Registers this host and its node endpoint's credentials: a fresh bearer token, returned,
/// and the endpoint's certificate (`cert_pem`), which the API server pins.
pub async fn register(
    client: &kube::Client,
    config: &AgentConfig,
    cert_pem: &str,
) -> Result<String, HostError> {
    nodeless_kube::host::ensure_crd(client).await?;
    nodeless_kube::host::ensure::<nodeless_kube::billing::UsageRecord>(client).await?;
    ensure_runtime_class(client).await?;
    let token = new_token();
    let secret_name = format!("{HOST_TOKEN_SECRET_PREFIX}{}", config.host_name);
    store_token(client, &secret_name, &token, cert_pem)
        .await
        .map_err(|source| HostError::Token {
            name: secret_name.clone(),
            source,
        })?;
    upsert_host(client, config, &secret_name)
        .await
        .map_err(|source| HostError::Register {
            name: config.host_name.clone(),
            source,
        })?;
    Ok(token)
}

async fn ensure_runtime_class(client: &kube::Client) -> Result<(), HostError> {
    let api: Api<RuntimeClass> = Api::all(client.clone());
    let rc = RuntimeClass {
        metadata: ObjectMeta {
            name: Some(GVISOR_RUNTIME_CLASS.into()),
            ..Default::default()
        },
        handler: GVISOR_HANDLER.into(),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &rc).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(HostError::RuntimeClass(e)),
    }
}

/// 32 random bytes, hex: the bearer token of this agent run.
fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn store_token(
    client: &kube::Client,
    name: &str,
    token: &str,
    cert_pem: &str,
) -> Result<(), kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
    let data = BTreeMap::from([
        (
            HOST_TOKEN_KEY.to_string(),
            ByteString(token.as_bytes().to_vec()),
        ),
        (
            HOST_CERT_KEY.to_string(),
            ByteString(cert_pem.as_bytes().to_vec()),
        ),
    ]);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(SYSTEM_NAMESPACE.into()),
            ..Default::default()
        },
        data: Some(data.clone()),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let patch = json!({ "data": data });
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// `16`, `1500m`: the shortest exact CPU quantity.
pub fn cpu_quantity(millis: u64) -> Quantity {
    if millis.is_multiple_of(1000) {
        Quantity((millis / 1000).to_string())
    } else {
        Quantity(format!("{millis}m"))
    }
}

/// `32Gi`, `512Mi`, or bytes: the shortest exact memory quantity.
pub fn memory_quantity(bytes: u64) -> Quantity {
    for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return Quantity(format!("{}{unit}", bytes / size));
        }
    }
    Quantity(bytes.to_string())
}

fn host_spec(config: &AgentConfig, secret_name: &str) -> HostSpec {
    HostSpec {
        address: config.address.to_string(),
        endpoint: config.node_endpoint.clone(),
        token_secret: secret_name.to_string(),
        capacity: BTreeMap::from([
            ("cpu".to_string(), cpu_quantity(config.capacity_cpu_millis)),
            (
                "memory".to_string(),
                memory_quantity(config.capacity_memory_bytes),
            ),
        ]),
        runtimes: config.runtimes.clone(),
    }
}

async fn upsert_host(
    client: &kube::Client,
    config: &AgentConfig,
    secret_name: &str,
) -> Result<(), kube::Error> {
    let api: Api<Host> = Api::all(client.clone());
    let spec = host_spec(config, secret_name);
    let host = Host::new(&config.host_name, spec.clone());
    match api.create(&PostParams::default(), &host).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let patch = json!({ "spec": spec });
            api.patch(
                &config.host_name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        }
        Err(e) => return Err(e),
    }
    heartbeat_once(&api, &config.host_name).await
}

async fn heartbeat_once(api: &Api<Host>, name: &str) -> Result<(), kube::Error> {
    let patch = json!({ "status": { "heartbeatTime": Time(Utc::now()) } });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

/// Renews the Host's `status.heartbeatTime` every [`HEARTBEAT_INTERVAL`] until `shutdown`.
/// A failed beat is logged and retried at the next tick: the scheduler tolerates a few.
pub async fn heartbeat(client: kube::Client, host_name: String, shutdown: CancellationToken) {
    let api: Api<Host> = Api::all(client);
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = heartbeat_once(&api, &host_name).await {
            tracing::warn!(host = %host_name, error = %e, "host heartbeat failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_print_as_short_exact_quantities() {
        assert_eq!(cpu_quantity(16_000).0, "16");
        assert_eq!(cpu_quantity(1_500).0, "1500m");
        assert_eq!(memory_quantity(32 << 30).0, "32Gi");
        assert_eq!(memory_quantity(1536 << 20).0, "1536Mi");
        assert_eq!(memory_quantity(1000).0, "1000");
    }

    #[test]
    fn tokens_are_long_random_hex() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
