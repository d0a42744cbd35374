//! The `Host` resource: a machine of the instance pool, as its host agent reports it.
//!
//! Hosts are cluster-scoped objects of the `hosts.nodeless.dev` CRD, never Nodes: users see
//! one virtual node, and the pool behind it is nodeless's business. The agent creates its
//! Host at start and renews `status.heartbeatTime`; the scheduler places instances on Hosts
//! whose heartbeat is fresh; the API server proxies `pods/log`, `exec`, `attach` and
//! `portforward` to `spec.endpoint` (`https://`) with the token in the Secret named by
//! `spec.tokenSecret`, trusting only the certificate stored beside it (`tls.crt`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How long a Host may go without a heartbeat before nothing new is placed on it.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(40);
/// How often agents renew it.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "nodeless.dev",
    version = "v1alpha1",
    kind = "Host",
    status = "HostStatus",
    shortname = "nh",
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.address"}"#,
    printcolumn = r#"{"name":"CPU","type":"string","jsonPath":".spec.capacity.cpu"}"#,
    printcolumn = r#"{"name":"Memory","type":"string","jsonPath":".spec.capacity.memory"}"#,
    printcolumn = r#"{"name":"Heartbeat","type":"date","jsonPath":".status.heartbeatTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HostSpec {
    /// The host's IP as instances and users see it (a Pod's `status.hostIP`).
    pub address: String,
    /// The agent's node-side endpoint, e.g. `http://127.0.0.1:10250`.
    pub endpoint: String,
    /// Name of the Secret in `kube-system` whose `token` the endpoint expects as a bearer token.
    pub token_secret: String,
    /// What may be placed here (after overcommit): `cpu` and `memory` quantities.
    pub capacity: std::collections::BTreeMap<String, Quantity>,
    /// OCI runtimes this host has: `runc`, `runsc`.
    #[serde(default)]
    pub runtimes: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    /// Last time the agent said it is alive.
    pub heartbeat_time: Option<Time>,
}

impl Host {
    /// Whether the agent reported within [`HEARTBEAT_TIMEOUT`] of `now`.
    pub fn is_alive(&self, now: DateTime<Utc>) -> bool {
        let Some(Time(beat)) = self.status.as_ref().and_then(|s| s.heartbeat_time.clone()) else {
            return false;
        };
        let timeout = chrono::Duration::from_std(HEARTBEAT_TIMEOUT).unwrap_or_default();
        now.signed_duration_since(beat) <= timeout
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostCrdError {
    #[error("creating the {crd} CustomResourceDefinition: {source}")]
    Create {
        crd: String,
        #[source]
        source: kube::Error,
    },
    #[error("the {crd} CustomResourceDefinition did not become Established: {why}")]
    NotEstablished { crd: String, why: String },
}

/// Creates the `hosts.nodeless.dev` CRD when missing and waits until it is served.
pub async fn ensure_crd(client: &kube::Client) -> Result<(), HostCrdError> {
    ensure::<Host>(client).await
}

/// Creates `K`'s CRD when missing and waits until it is served.
pub async fn ensure<K: CustomResourceExt>(client: &kube::Client) -> Result<(), HostCrdError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = K::crd_name();
    match crds.create(&PostParams::default(), &K::crd()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(source) => {
            return Err(HostCrdError::Create {
                crd: name.into(),
                source,
            })
        }
    }
    let cond = kube::runtime::conditions::is_crd_established();
    let wait = kube::runtime::wait::await_condition(crds, name, cond);
    let not_established = |why: String| HostCrdError::NotEstablished {
        crd: name.into(),
        why,
    };
    match tokio::time::timeout(Duration::from_secs(30), wait).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(not_established(e.to_string())),
        Err(_) => Err(not_established("timed out after 30 s".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(beat: Option<DateTime<Utc>>) -> Host {
        let mut h = Host::new(
            "h1",
            HostSpec {
                address: "10.0.0.1".into(),
                endpoint: "http://10.0.0.1:10250".into(),
                token_secret: "nodeless-host-h1".into(),
                capacity: Default::default(),
                runtimes: vec!["runc".into()],
            },
        );
        h.status = Some(HostStatus {
            heartbeat_time: beat.map(Time),
        });
        h
    }

    #[test]
    fn a_host_is_alive_only_within_the_heartbeat_timeout() {
        let now = Utc::now();
        assert!(host(Some(now - chrono::Duration::seconds(5))).is_alive(now));
        assert!(!host(Some(now - chrono::Duration::seconds(60))).is_alive(now));
        assert!(!host(None).is_alive(now));
    }

    #[test]
    fn the_crd_is_cluster_scoped_with_a_status_subresource() {
        let crd = Host::crd();
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.group, "nodeless.dev");
        let v = &crd.spec.versions[0];
        assert!(v
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some());
    }
}
