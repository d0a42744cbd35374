//! Keeps each running Pod's `nodeless.dev/cost` annotation current, so `kubectl describe
//! pod` shows what the instance has cost so far next to its spec and capacity type.
//!
//! The figure is the API server's cost report (`/apis/cost.nodeless.dev/v1/report`), the
//! same one `nodeless bill` prints, fetched once per interval for all Pods; only Pods whose
//! figure changed are written. Against an API server that serves no report the meter stops.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use nodeless_core::billing::format_money;
use nodeless_core::billing::report::Report;
use nodeless_kube::names::COST_ANNOTATION;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub struct Meter {
    pub client: kube::Client,
    pub interval: Duration,
}

impl Meter {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut shown: HashMap<String, String> = HashMap::new();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.report().await {
                Ok(report) => self.annotate(&report, &mut shown).await,
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    tracing::info!(
                        "the API server serves no cost report; pods get no cost annotation"
                    );
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "cannot read the cost report"),
            }
        }
    }

    async fn report(&self) -> Result<Report, kube::Error> {
        let request = http::Request::get("/apis/cost.nodeless.dev/v1/report?by=pod")
            .body(Vec::new())
            .map_err(kube::Error::HttpError)?;
        self.client.request(request).await
    }

    async fn annotate(&self, report: &Report, shown: &mut HashMap<String, String>) {
        let mut live = HashMap::new();
        for item in report.items.iter().filter(|i| i.end.is_none()) {
            let text = format!(
                "{} {} for {}s ({}, {} {}/h)",
                format_money(item.charge.cost, 6),
                report.currency,
                item.charge.seconds,
                item.capacity,
                format_money(u128::from(item.hourly), 6),
                report.currency
            );
            if shown.get(&item.uid) != Some(&text) {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &item.namespace);
                let patch = json!({
                    "metadata": {"uid": item.uid, "annotations": {COST_ANNOTATION: text}}
                });
                match api
                    .patch(&item.pod, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                    Err(e) => {
                        tracing::debug!(pod = %item.pod, error = %e, "cannot write the cost annotation");
                        continue;
                    }
                }
            }
            live.insert(item.uid.clone(), text);
        }
        *shown = live;
    }
}
