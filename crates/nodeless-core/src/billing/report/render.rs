//! A report as a kubectl-like table, JSON, or CSV.

use super::{GroupBy, LineItem, Report, ReportError, Row, TOTAL_KEY};
use crate::billing::money::format_money;
use std::str::FromStr;

/// Decimals of money in tables, where people read it.
const TABLE_DECIMALS: u32 = 6;
/// Decimals of money in CSV and JSON, where tools sum it: exact nanos.
const EXACT_DECIMALS: u32 = 9;
const COLUMN_GAP: &str = "   ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

impl FromStr for Format {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, ReportError> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            other => Err(ReportError::UnknownFormat(other.to_string())),
        }
    }
}

/// Renders `report`; `items` are the line items listed in JSON and describing each pod in
/// the `--by pod` table and CSV (normally `&report.items`).
pub fn render(report: &Report, items: &[LineItem], format: Format) -> String {
    match format {
        Format::Table => table(report, items),
        Format::Json => json(report, items),
        Format::Csv => csv(report, items),
    }
}

fn json(report: &Report, items: &[LineItem]) -> String {
    let mut value = serde_json::to_value(report).unwrap_or_default();
    if let Some(slot) = value.get_mut("items") {
        *slot = serde_json::to_value(items).unwrap_or_default();
    }
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// The leading columns naming a row, split from its key.
fn key_columns(by: GroupBy, key: &str) -> Vec<String> {
    match by {
        GroupBy::Namespace => vec![key.to_string()],
        GroupBy::Pod | GroupBy::Workload => {
            let (namespace, rest) = key.split_once('/').unwrap_or((key, ""));
            vec![namespace.to_string(), rest.to_string()]
        }
    }
}

/// The specs and capacity types of the items in a `--by pod` row, distinct, in item order.
fn pod_columns(key: &str, items: &[LineItem]) -> [String; 2] {
    let mut specs: Vec<&str> = Vec::new();
    let mut capacities: Vec<String> = Vec::new();
    for item in items.iter().filter(|i| GroupBy::Pod.key(i) == key) {
        if !specs.contains(&item.spec.as_str()) {
            specs.push(&item.spec);
        }
        let capacity = item.capacity.to_string();
        if !capacities.contains(&capacity) {
            capacities.push(capacity);
        }
    }
    [specs.join(","), capacities.join(",")]
}

fn table(report: &Report, items: &[LineItem]) -> String {
    let by = report.by;
    let mut lines: Vec<Vec<String>> = Vec::new();
    let money = |n| format_money(n, TABLE_DECIMALS);
    let header: &[&str] = match by {
        GroupBy::Pod => &["NAMESPACE", "POD", "SPEC", "CAPACITY", "SECONDS", "COST"],
        GroupBy::Workload => &["NAMESPACE", "WORKLOAD", "INSTANCES", "SECONDS", "COST"],
        GroupBy::Namespace => &["NAMESPACE", "INSTANCES", "SECONDS", "COST"],
    };
    lines.push(header.iter().map(|h| h.to_string()).collect());
    let counts = |row: &Row| match by {
        GroupBy::Pod => pod_columns(&row.key, items).to_vec(),
        _ => vec![row.instances.to_string()],
    };
    for row in &report.rows {
        let mut line = key_columns(by, &row.key);
        line.extend(counts(row));
        line.extend([row.seconds.to_string(), money(row.cost)]);
        lines.push(line);
    }
    let mut total = vec![TOTAL_KEY.to_string()];
    total.resize(key_columns(by, "").len(), String::new());
    match by {
        GroupBy::Pod => total.extend([String::new(), String::new()]),
        _ => total.push(report.total.instances.to_string()),
    }
    total.extend([report.total.seconds.to_string(), money(report.total.cost)]);
    lines.push(total);
    align(&lines)
}

/// Pads every column but the last to its widest cell, kubectl style.
fn align(lines: &[Vec<String>]) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .filter_map(|l| l.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c + 1 < line.len() {
                let pad = widths[c] - cell.chars().count();
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
                text.push_str(COLUMN_GAP);
            } else {
                text.push_str(cell);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// A header line and one line per row (no total: spreadsheets sum), money exact to the nano.
fn csv(report: &Report, items: &[LineItem]) -> String {
    let by = report.by;
    let mut header: Vec<&str> = match by {
        GroupBy::Pod => vec!["namespace", "pod", "spec", "capacityType"],
        GroupBy::Workload => vec!["namespace", "workload"],
        GroupBy::Namespace => vec!["namespace"],
    };
    header.extend(["instances", "seconds", "cost", "onDemandCost", "spotCost"]);
    let mut out = csv_line(header.iter().map(|h| h.to_string()));
    let money = |n| format_money(n, EXACT_DECIMALS);
    for row in &report.rows {
        let mut line = key_columns(by, &row.key);
        if by == GroupBy::Pod {
            line.extend(pod_columns(&row.key, items));
        }
        line.extend([
            row.instances.to_string(),
            row.seconds.to_string(),
            money(row.cost),
            money(row.on_demand_cost),
            money(row.spot_cost),
        ]);
        out.push_str(&csv_line(line));
    }
    out
}

/// RFC 4180: a field holding a comma, quote or line break is quoted, quotes doubled.
fn csv_line(fields: impl IntoIterator<Item = String>) -> String {
    let quoted: Vec<String> = fields
        .into_iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect();
    format!("{}\n", quoted.join(","))
}
