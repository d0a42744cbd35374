//! `nodeless bill`: the cost report, from the API server's ledger, as a table, JSON or CSV.
//!
//! The API server computes the figures (`GET /apis/cost.nodeless.dev/v1/report`) from the
//! durable usage records and spot price history, so this command, the API and the metrics
//! always agree; here they are only fetched and rendered.

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::Args;
use nodeless_core::billing::report::{render, Format, GroupBy, Report};

use crate::components::{self, KubeconfigArgs};

#[derive(Args, Debug)]
pub struct BillArgs {
    #[command(flatten)]
    kube: KubeconfigArgs,
    /// Start of the period: an RFC 3339 time, or a duration ago (`90m`, `24h`) [default: the beginning].
    #[arg(long)]
    since: Option<String>,
    /// End of the period, as --since [default: now].
    #[arg(long)]
    until: Option<String>,
    /// Rows per pod, workload (Deployment, StatefulSet, Job…) or namespace.
    #[arg(long, default_value = "pod")]
    by: String,
    /// Only this namespace's instances.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// table, json or csv.
    #[arg(long, short = 'o', default_value = "table")]
    output: String,
}

pub async fn run(args: BillArgs) -> anyhow::Result<u8> {
    let by: GroupBy = args.by.parse()?;
    let format: Format = args.output.parse()?;
    let now = Utc::now();
    let mut query = vec![("by".to_string(), by.to_string())];
    for (key, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = value {
            query.push((key.to_string(), time_arg(key, v, now)?.to_rfc3339()));
        }
    }
    if let Some(ns) = &args.namespace {
        query.push(("namespace".into(), ns.clone()));
    }
    let query: String = form_urlencoded(&query);
    let client = components::client(args.kube.kubeconfig.as_deref()).await?;
    let request = http::Request::get(format!("/apis/cost.nodeless.dev/v1/report?{query}"))
        .body(Vec::new())
        .context("building the report request")?;
    let text = match client.request_text(request).await {
        Ok(t) => t,
        Err(kube::Error::Api(e)) if e.code == 404 => {
            bail!("this cluster serves no cost report: `nodeless bill` needs a nodeless API server")
        }
        Err(e) => return Err(e).context("fetching the cost report"),
    };
    let report: Report = serde_json::from_str(&text).context("reading the cost report")?;
    print!("{}", render(&report, &report.items, format));
    Ok(0)
}

/// An RFC 3339 time, or a duration before `now` (`30s`, `15m`, `2h`, `1h30m`).
fn time_arg(flag: &str, value: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let ago = value
        .chars()
        .any(|c| c.is_ascii_alphabetic())
        .then(|| nodeless_core::billing::parse_duration(value))
        .flatten()
        .and_then(|d| chrono::Duration::from_std(d).ok());
    match ago {
        Some(d) => Ok(now - d),
        None => bail!(
            "--{flag} {value:?}: give an RFC 3339 time (2026-11-26T05:00:00Z) or a duration ago (90m, 24h)"
        ),
    }
}

fn form_urlencoded(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_a_duration_ago() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T05:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        let t = time_arg("since", "90m", now).expect("duration");
        assert_eq!(t.to_rfc3339(), "2026-11-26T03:30:00+00:00");
        let t = time_arg("since", "2026-11-26T01:00:00+01:00", now).expect("time");
        assert_eq!(t.to_rfc3339(), "2026-11-26T00:00:00+00:00");
        assert!(time_arg("since", "yesterday", now).is_err());
        assert!(time_arg("since", "5", now).is_err());
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            percent("2026-11-26T05:00:00+00:00"),
            "2026-11-26T05%3A00%3A00%2B00%3A00"
        );
    }
}
