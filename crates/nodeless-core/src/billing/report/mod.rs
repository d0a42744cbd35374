//! Bills: instance line items grouped by pod, workload or namespace, and their JSON shape.
//!
//! The JSON form of [`Report`] is what the API server serves and what the CLI re-renders:
//!
//! ```json
//! {"currency": "USD", "since": "2024-05-01T00:00:00Z", "until": null,
//!  "generated": "2024-05-02T10:00:00Z", "by": "workload",
//!  "rows": [{"key": "default/Deployment/web", "instances": 2, "seconds": 7200,
//!            "cost": "0.080960000", "onDemandCost": "0.080960000", "spotCost": "0.000000000"}],
//!  "total": {"key": "TOTAL", ...},
//!  "items": [{"namespace": "default", "pod": "web-1", "uid": "…", "workload": "Deployment/web",
//!             "spec": "1-2Gi", "capacityType": "OnDemand", "hourly": "0.040480000",
//!             "start": "…", "end": null, "seconds": 3600, "cost": "0.040480000",
//!             "billedFrom": "…", "billedUntil": "…"}]}
//! ```
//!
//! Money is a decimal string with 9 places (exact nanos), so clients compare exactly.

mod render;

pub use render::{render, Format};

use super::ledger::{CapacityType, Charge, Window};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The key of the total row.
pub const TOTAL_KEY: &str = "TOTAL";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("unknown grouping {0:?}: use pod, workload or namespace")]
    UnknownGroupBy(String),
    #[error("unknown format {0:?}: use table, json or csv")]
    UnknownFormat(String),
}

/// One instance's charge in the report's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// The owning workload as `Kind/name` (`Deployment/web`), or `Pod/<name>` when unowned.
    pub workload: String,
    /// The instance spec, `2-4Gi`.
    pub spec: String,
    #[serde(rename = "capacityType")]
    pub capacity: CapacityType,
    /// The current hourly price in nanos: on-demand, or spot at the current ratio.
    #[serde(with = "crate::billing::money::nanos_text")]
    pub hourly: u64,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub charge: Charge,
}

/// How rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    Pod,
    Workload,
    Namespace,
}

impl FromStr for GroupBy {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, ReportError> {
        match s {
            "pod" => Ok(GroupBy::Pod),
            "workload" => Ok(GroupBy::Workload),
            "namespace" => Ok(GroupBy::Namespace),
            other => Err(ReportError::UnknownGroupBy(other.to_string())),
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupBy::Pod => "pod",
            GroupBy::Workload => "workload",
            GroupBy::Namespace => "namespace",
        })
    }
}

impl GroupBy {
    /// The row key of `item`: `ns/pod`, `ns/Kind/name` or `ns`.
    pub fn key(self, item: &LineItem) -> String {
        match self {
            GroupBy::Pod => format!("{}/{}", item.namespace, item.pod),
            GroupBy::Workload => format!("{}/{}", item.namespace, item.workload),
            GroupBy::Namespace => item.namespace.clone(),
        }
    }
}

/// The sum of the line items sharing a key; money in nanos.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub key: String,
    pub instances: u32,
    pub seconds: u64,
    #[serde(with = "crate::billing::money::nanos_text")]
    pub cost: u128,
    #[serde(with = "crate::billing::money::nanos_text")]
    pub on_demand_cost: u128,
    #[serde(with = "crate::billing::money::nanos_text")]
    pub spot_cost: u128,
}

impl Row {
    fn new(key: String) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    fn add(&mut self, item: &LineItem) {
        self.instances = self.instances.saturating_add(1);
        self.seconds = self.seconds.saturating_add(item.charge.seconds);
        self.cost = self.cost.saturating_add(item.charge.cost);
        let part = match item.capacity {
            CapacityType::OnDemand => &mut self.on_demand_cost,
            CapacityType::Spot => &mut self.spot_cost,
        };
        *part = part.saturating_add(item.charge.cost);
    }
}

/// A bill for one window, grouped one way, with the line items it sums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub currency: String,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub generated: DateTime<Utc>,
    pub by: GroupBy,
    /// Sorted by key.
    pub rows: Vec<Row>,
    pub total: Row,
    pub items: Vec<LineItem>,
}

/// Groups `items` (each instance's charge in `window`) into rows sorted by key. Every item
/// counts as an instance, so callers pass only the instances that overlap the window.
pub fn build(
    items: &[LineItem],
    by: GroupBy,
    window: Window,
    currency: &str,
    generated: DateTime<Utc>,
) -> Report {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut total = Row::new(TOTAL_KEY.to_string());
    for item in items {
        let key = by.key(item);
        rows.entry(key.clone())
            .or_insert_with(|| Row::new(key))
            .add(item);
        total.add(item);
    }
    Report {
        currency: currency.to_string(),
        since: window.since,
        until: window.until,
        generated,
        by,
        rows: rows.into_values().collect(),
        total,
        items: items.to_vec(),
    }
}

#[cfg(test)]
mod tests;
