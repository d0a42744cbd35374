//! The billing resources: the ledger of instances and the spot market, both in the API so
//! every component (and `nodeless bill`, and any client) reads the same durable facts.
//!
//! - `UsageRecord` (`usagerecords.billing.nodeless.dev`, namespaced, named by the Pod's uid so a
//!   Pod can never have two): written by the host agent that ran the instance — its start when
//!   the instance was created (the engine's own creation time, so a record written late, after
//!   an agent crash, still starts at the right second) and its end when it was released. Cost
//!   is never stored: it is computed from these times, the price locked at creation and the
//!   spot price history, so a crash or restart can neither lose a second nor count one twice.
//! - `SpotMarket` (`spotmarkets.billing.nodeless.dev`, cluster-scoped, one object `default`):
//!   written by the scheduler — the price catalogue in force, the spot price (as a fraction of
//!   on-demand) that follows the pool's utilisation, and its history.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "billing.nodeless.dev";
pub const VERSION: &str = "v1alpha1";
/// The one SpotMarket object.
pub const MARKET_NAME: &str = "default";
/// Label on each UsageRecord naming the host that ran the instance (agents list their own).
pub const RECORD_HOST_LABEL: &str = "billing.nodeless.dev/host";

/// One instance's life, as the ledger knows it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "billing.nodeless.dev",
    version = "v1alpha1",
    kind = "UsageRecord",
    namespaced,
    status = "UsageRecordStatus",
    shortname = "usage",
    printcolumn = r#"{"name":"Pod","type":"string","jsonPath":".spec.pod"}"#,
    printcolumn = r#"{"name":"Spec","type":"string","jsonPath":".spec.instanceSpec"}"#,
    printcolumn = r#"{"name":"Capacity","type":"string","jsonPath":".spec.capacityType"}"#,
    printcolumn = r#"{"name":"Start","type":"string","jsonPath":".spec.startTime"}"#,
    printcolumn = r#"{"name":"End","type":"string","jsonPath":".status.endTime"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecordSpec {
    pub pod: String,
    #[serde(rename = "podUID")]
    pub pod_uid: String,
    /// `Kind/name` of the workload that owns the Pod (a ReplicaSet's Deployment), or `Pod/name`.
    pub workload: String,
    pub host: String,
    /// The rounded instance spec billed, e.g. `2-4Gi`.
    pub instance_spec: String,
    /// `OnDemand` or `Spot`.
    pub capacity_type: String,
    /// The on-demand price per hour of this spec when the instance was placed, as a decimal
    /// in the market's currency; a spot instance pays it times the spot ratio of each second.
    pub hourly_on_demand: String,
    /// RFC 3339 with milliseconds: when the engine created the instance.
    pub start_time: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecordStatus {
    /// RFC 3339 with milliseconds: when the instance stopped running (released).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Why: `Succeeded`, `Failed`, `Deleted`, `BidFailed`, `Lost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
}

/// The spot market of the pool.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "billing.nodeless.dev",
    version = "v1alpha1",
    kind = "SpotMarket",
    status = "SpotMarketStatus",
    printcolumn = r#"{"name":"Currency","type":"string","jsonPath":".spec.currency"}"#,
    printcolumn = r#"{"name":"Spot-vCPU-Hour","type":"string","jsonPath":".status.spotVcpuHour"}"#,
    printcolumn = r#"{"name":"Ratio-PPM","type":"integer","jsonPath":".status.ratioPpm"}"#,
    printcolumn = r#"{"name":"Utilisation-PPM","type":"integer","jsonPath":".status.utilisationPpm"}"#,
    printcolumn = r#"{"name":"Updated","type":"date","jsonPath":".status.updated"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SpotMarketSpec {
    pub currency: String,
    /// The price catalogue in force, as YAML (see `nodeless-core`'s `billing::catalog`).
    pub catalog: String,
    /// How long before release a spot instance is warned.
    pub notice_seconds: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpotMarketStatus {
    /// The spot price as parts per million of the on-demand price.
    pub ratio_ppm: u32,
    /// The pool's utilisation (the larger of CPU and memory) in parts per million.
    pub utilisation_ppm: u32,
    /// Spot prices per vCPU-hour and GiB-hour, as decimals.
    #[serde(default)]
    pub spot_vcpu_hour: String,
    #[serde(default)]
    pub spot_memory_gi_b_hour: String,
    /// RFC 3339: when the ratio was last computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// Every change of the ratio, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryPoint>,
    /// Running instances by capacity type (`OnDemand`, `Spot`), for metrics.
    #[serde(default)]
    pub instances: BTreeMap<String, u32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPoint {
    /// RFC 3339 with milliseconds.
    pub time: String,
    pub ratio_ppm: u32,
}

/// RFC 3339 with milliseconds, as the ledger writes times.
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn records_are_namespaced_and_the_market_is_cluster_scoped() {
        assert_eq!(UsageRecord::crd().spec.scope, "Namespaced");
        assert_eq!(SpotMarket::crd().spec.scope, "Cluster");
        assert_eq!(UsageRecord::crd().spec.group, GROUP);
    }

    #[test]
    fn times_round_trip_with_milliseconds() {
        let t = parse_time("2026-11-26T05:00:01.250Z").expect("valid");
        assert_eq!(format_time(t), "2026-11-26T05:00:01.250Z");
    }
}
