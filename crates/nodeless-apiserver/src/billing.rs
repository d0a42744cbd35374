//! The cost report and the billing metrics, computed on request from the ledger in the
//! store: `UsageRecord`s (each instance's start and end), the `SpotMarket` (currency and
//! spot price history) and `Host` heartbeats (an instance whose host stopped reporting is
//! billed only up to its last heartbeat).
//!
//! - `GET /apis/cost.nodeless.dev/v1/report?by=pod|workload|namespace&since=&until=&namespace=`
//!   answers the JSON `Report` of `nodeless_core::billing::report`; `nodeless bill` reads it.
//! - `GET /metrics` answers Prometheus text: cost and billed seconds per namespace and
//!   capacity type, running instances, the spot price and the pool's utilisation.
//!
//! Nothing is stored: every figure is a pure function of recorded facts, so the report, the
//! metrics and any client computing from the same objects agree to the nanounit.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use http::{Response, StatusCode};
use nodeless_core::billing::report::{build, GroupBy, LineItem, Report, ReportError};
use nodeless_core::billing::{
    charge, format_money, parse_money, spot_hourly, CapacityType, PriceHistory, PricePoint, Usage,
    Window,
};
use nodeless_core::StatusError;
use nodeless_store::ListOptions;
use serde_json::Value;

use crate::handlers::Query;
use crate::respond::{self, Body};
use crate::rest::Api;

pub const REPORT_PATH: &str = "/apis/cost.nodeless.dev/v1/report";
const GROUP: &str = "billing.nodeless.dev";
const VERSION: &str = "v1alpha1";
/// A host silent this long is not confirming its instances (the agents' heartbeat timeout).
const HEARTBEAT_TIMEOUT: chrono::Duration = chrono::Duration::seconds(40);
/// The currency before the scheduler first published the market.
const NO_MARKET_CURRENCY: &str = "USD";

/// What the ledger holds at one moment.
struct Ledger {
    currency: String,
    ratio_ppm: u32,
    utilisation_ppm: Option<u32>,
    items: Vec<LineItem>,
}

pub fn serve_report(api: &Api, query: &Query) -> Response<Body> {
    match report(api, query, Utc::now()) {
        Ok(r) => respond::json_response(StatusCode::OK, &r),
        Err(e) => crate::respond::error_response(&e),
    }
}

fn report(api: &Api, query: &Query, now: DateTime<Utc>) -> Result<Report, StatusError> {
    let by: GroupBy = query
        .get("by")
        .map(|b| b.parse())
        .transpose()
        .map_err(|e: ReportError| StatusError::bad_request(e.to_string()))?
        .unwrap_or(GroupBy::Namespace);
    let time = |key: &str| -> Result<Option<DateTime<Utc>>, StatusError> {
        query
            .get(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        StatusError::bad_request(format!(
                            "{key}={v:?} is not an RFC 3339 time (e.g. 2026-11-26T05:00:00Z): {e}"
                        ))
                    })
            })
            .transpose()
    };
    let window = Window {
        since: time("since")?,
        until: time("until")?,
    };
    if let (Some(s), Some(u)) = (window.since, window.until) {
        if u < s {
            return Err(StatusError::bad_request(format!(
                "until ({u}) is before since ({s})"
            )));
        }
    }
    let mut ledger = read(api, window, now);
    if let Some(ns) = query.get("namespace").filter(|n| !n.is_empty()) {
        ledger.items.retain(|i| &i.namespace == ns);
    }
    Ok(build(&ledger.items, by, window, &ledger.currency, now))
}

pub fn serve_metrics(api: &Api) -> Response<Body> {
    let now = Utc::now();
    let ledger = read(api, Window::default(), now);
    let mut by_ns: BTreeMap<(String, CapacityType), (u128, u64)> = BTreeMap::new();
    let mut running: BTreeMap<CapacityType, u64> =
        [(CapacityType::OnDemand, 0), (CapacityType::Spot, 0)].into();
    for item in &ledger.items {
        let e = by_ns
            .entry((item.namespace.clone(), item.capacity))
            .or_default();
        e.0 += item.charge.cost;
        e.1 += item.charge.seconds;
        if item.end.is_none() {
            *running.entry(item.capacity).or_default() += 1;
        }
    }
    let cur = escape(&ledger.currency);
    let mut out = String::new();
    out.push_str(
        "# HELP nodeless_cost_total What instances have cost so far, in the catalogue currency.\n",
    );
    out.push_str("# TYPE nodeless_cost_total counter\n");
    for ((ns, cap), (cost, _)) in &by_ns {
        let _ = writeln!(
            out,
            "nodeless_cost_total{{namespace=\"{}\",capacity_type=\"{cap}\",currency=\"{cur}\"}} {}",
            escape(ns),
            format_money(*cost, 9)
        );
    }
    out.push_str("# HELP nodeless_billed_seconds_total Instance-seconds billed so far.\n");
    out.push_str("# TYPE nodeless_billed_seconds_total counter\n");
    for ((ns, cap), (_, seconds)) in &by_ns {
        let _ = writeln!(
            out,
            "nodeless_billed_seconds_total{{namespace=\"{}\",capacity_type=\"{cap}\"}} {seconds}",
            escape(ns)
        );
    }
    out.push_str("# HELP nodeless_instances Instances running now, by capacity type.\n");
    out.push_str("# TYPE nodeless_instances gauge\n");
    for (cap, n) in &running {
        let _ = writeln!(out, "nodeless_instances{{capacity_type=\"{cap}\"}} {n}");
    }
    out.push_str(
        "# HELP nodeless_spot_price_ratio The spot price as a fraction of the on-demand price.\n",
    );
    out.push_str("# TYPE nodeless_spot_price_ratio gauge\n");
    let _ = writeln!(
        out,
        "nodeless_spot_price_ratio {}",
        f64::from(ledger.ratio_ppm) / 1e6
    );
    if let Some(u) = ledger.utilisation_ppm {
        out.push_str("# HELP nodeless_pool_utilisation_ratio Capacity of the pool in use (the larger of CPU and memory).\n");
        out.push_str("# TYPE nodeless_pool_utilisation_ratio gauge\n");
        let _ = writeln!(
            out,
            "nodeless_pool_utilisation_ratio {}",
            f64::from(u) / 1e6
        );
    }
    // `json_bytes` writes any body with the content type it is given.
    respond::json_bytes(
        StatusCode::OK,
        out.into_bytes(),
        "text/plain; version=0.0.4",
    )
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Every instance's charge in `window`, from the store's current state.
fn read(api: &Api, window: Window, now: DateTime<Utc>) -> Ledger {
    let market = objects(api, "spotmarkets")
        .into_iter()
        .find(|m| m.pointer("/metadata/name").and_then(Value::as_str) == Some("default"));
    let currency = market
        .as_ref()
        .and_then(|m| m.pointer("/spec/currency").and_then(Value::as_str))
        .unwrap_or(NO_MARKET_CURRENCY)
        .to_string();
    let mut history = PriceHistory::new();
    for p in market
        .as_ref()
        .and_then(|m| m.pointer("/status/history").and_then(Value::as_array))
        .into_iter()
        .flatten()
    {
        let time = p.get("time").and_then(Value::as_str).and_then(parse_time);
        let ratio = p
            .get("ratioPpm")
            .and_then(Value::as_u64)
            .and_then(|r| u32::try_from(r).ok());
        if let (Some(time), Some(ratio_ppm)) = (time, ratio) {
            history.push(PricePoint { time, ratio_ppm }, usize::MAX);
        }
    }
    let ratio_ppm = history.ratio_at(now);
    let utilisation_ppm = market
        .as_ref()
        .and_then(|m| m.pointer("/status/utilisationPpm").and_then(Value::as_u64))
        .and_then(|u| u32::try_from(u).ok());
    let heartbeats: BTreeMap<String, Option<DateTime<Utc>>> = host_objects(api)
        .into_iter()
        .map(|h| {
            let name = str_at(&h, "/metadata/name").to_string();
            let beat = parse_time(str_at(&h, "/status/heartbeatTime"));
            (name, beat)
        })
        .collect();
    let mut items = Vec::new();
    for r in objects(api, "usagerecords") {
        let Some(start) = parse_time(str_at(&r, "/spec/startTime")) else {
            continue;
        };
        let end = parse_time(str_at(&r, "/status/endTime"));
        let capacity = if str_at(&r, "/spec/capacityType") == "Spot" {
            CapacityType::Spot
        } else {
            CapacityType::OnDemand
        };
        let hourly_on_demand = parse_money(str_at(&r, "/spec/hourlyOnDemand"), 9).unwrap_or(0);
        // A running instance is billed to now while its host reports, else to the host's
        // last heartbeat (or not at all, if the host never reported).
        let confirmed_until = match (end, heartbeats.get(str_at(&r, "/spec/host"))) {
            (Some(_), _) => None,
            (None, Some(Some(beat))) if now - *beat <= HEARTBEAT_TIMEOUT => None,
            (None, Some(Some(beat))) => Some(*beat),
            (None, _) => Some(start),
        };
        let usage = Usage {
            start,
            end,
            confirmed_until,
            hourly_on_demand,
            capacity,
        };
        let charge = charge(&usage, &history, window, now);
        let overlaps = charge.seconds > 0
            || (window.since.is_none_or(|s| end.is_none_or(|e| e > s))
                && window.until.is_none_or(|u| start < u));
        if !overlaps {
            continue;
        }
        let hourly = match capacity {
            CapacityType::OnDemand => hourly_on_demand,
            CapacityType::Spot => spot_hourly(hourly_on_demand, ratio_ppm),
        };
        items.push(LineItem {
            namespace: str_at(&r, "/metadata/namespace").to_string(),
            pod: str_at(&r, "/spec/pod").to_string(),
            uid: str_at(&r, "/spec/podUID").to_string(),
            workload: str_at(&r, "/spec/workload").to_string(),
            spec: str_at(&r, "/spec/instanceSpec").to_string(),
            capacity,
            hourly,
            start,
            end,
            charge,
        });
    }
    Ledger {
        currency,
        ratio_ppm,
        utilisation_ppm,
        items,
    }
}

fn objects(api: &Api, plural: &str) -> Vec<std::sync::Arc<Value>> {
    list(api, GROUP, VERSION, plural)
}

fn host_objects(api: &Api) -> Vec<std::sync::Arc<Value>> {
    list(api, "nodeless.dev", "v1alpha1", "hosts")
}

fn list(api: &Api, group: &str, version: &str, plural: &str) -> Vec<std::sync::Arc<Value>> {
    let Some(rt) = api.registry.lookup(group, version, plural) else {
        return Vec::new();
    };
    let opts = ListOptions {
        prefix: rt.key_prefix(),
        limit: None,
        continue_from: None,
        filter: None,
    };
    api.cache
        .list(&opts)
        .map(|page| page.items.into_iter().map(|o| o.value).collect())
        .unwrap_or_default()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
