//! Publishing the spot market: the catalogue in force, the current spot ratio and its
//! history, in the `SpotMarket` object `default` that billing reads.
//!
//! Passes compute the ratio; this task writes it at most once per [`MIN_INTERVAL`] (the
//! latest value wins), so a burst of placements costs one write a second, not one per Pod.
//! The history is what spot seconds are billed at, so the time of each point is when the
//! scheduler computed it, not when it was written.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::api::{Api, Patch, PatchParams, PostParams};
use nodeless_core::billing::{format_money, PriceCatalog, PriceHistory, PricePoint};
use nodeless_kube::billing::{
    format_time, parse_time, HistoryPoint, SpotMarket, SpotMarketSpec, SpotMarketStatus,
    MARKET_NAME,
};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// At most one market write per second.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Points of history kept in the object (a ratio changes only with utilisation above the knee).
pub const MAX_HISTORY: usize = 5000;

/// What one scheduling pass saw of the market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub ratio_ppm: u32,
    pub utilisation_ppm: u32,
    pub instances: BTreeMap<String, u32>,
}

/// The passes' side: hands the latest sample to the publisher.
#[derive(Clone)]
pub struct Market {
    tx: watch::Sender<Option<Sample>>,
}

impl Market {
    pub fn new() -> (Self, watch::Receiver<Option<Sample>>) {
        let (tx, rx) = watch::channel(None);
        (Market { tx }, rx)
    }

    /// Offers a sample; only a change of ratio, utilisation or counts wakes the publisher.
    pub fn offer(&self, sample: Sample) {
        self.tx.send_if_modified(|cur| {
            let same = cur.as_ref().is_some_and(|c| {
                c.ratio_ppm == sample.ratio_ppm
                    && c.utilisation_ppm == sample.utilisation_ppm
                    && c.instances == sample.instances
            });
            if !same {
                *cur = Some(sample);
            }
            !same
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("writing the SpotMarket object: {0}")]
    Write(#[from] kube::Error),
}

pub struct Publisher {
    pub client: kube::Client,
    pub catalog: PriceCatalog,
    pub notice: Duration,
}

impl Publisher {
    pub async fn run(self, mut rx: watch::Receiver<Option<Sample>>, shutdown: CancellationToken) {
        let mut history = loop {
            match self.ensure().await {
                Ok(h) => break h,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot prepare the spot market; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = rx.changed() => if r.is_err() { return },
            }
            let Some(sample) = rx.borrow_and_update().clone() else {
                continue;
            };
            history.push(
                PricePoint {
                    time: sample.at,
                    ratio_ppm: sample.ratio_ppm,
                },
                MAX_HISTORY,
            );
            match self.write(&sample, &history).await {
                Ok(()) => tracing::debug!(
                    ratio_ppm = sample.ratio_ppm,
                    utilisation_ppm = sample.utilisation_ppm,
                    "spot market published"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot publish the spot price; retrying");
                    rx.mark_changed();
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(MIN_INTERVAL) => {}
            }
        }
    }

    /// Creates the market (or brings its spec up to date) and returns its history so far.
    async fn ensure(&self) -> Result<PriceHistory, MarketError> {
        let api: Api<SpotMarket> = Api::all(self.client.clone());
        let spec = SpotMarketSpec {
            currency: self.catalog.currency.clone(),
            catalog: self.catalog.to_yaml(),
            notice_seconds: self.notice.as_secs(),
        };
        let existing = match api.get_opt(MARKET_NAME).await? {
            Some(m) => m,
            None => match api
                .create(
                    &PostParams::default(),
                    &SpotMarket::new(MARKET_NAME, spec.clone()),
                )
                .await
            {
                Ok(m) => m,
                Err(kube::Error::Api(e)) if e.code == 409 => api.get(MARKET_NAME).await?,
                Err(e) => return Err(e.into()),
            },
        };
        if existing.spec != spec {
            let patch = json!({ "spec": spec });
            api.patch(MARKET_NAME, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        let mut history = PriceHistory::new();
        for p in existing.status.map(|s| s.history).unwrap_or_default() {
            if let Some(time) = parse_time(&p.time) {
                history.push(
                    PricePoint {
                        time,
                        ratio_ppm: p.ratio_ppm,
                    },
                    MAX_HISTORY,
                );
            }
        }
        Ok(history)
    }

    async fn write(&self, sample: &Sample, history: &PriceHistory) -> Result<(), MarketError> {
        let api: Api<SpotMarket> = Api::all(self.client.clone());
        let spot = |hourly: u64| {
            let nanos = u128::from(hourly) * u128::from(sample.ratio_ppm) / 1_000_000;
            format_money(nanos, 9)
        };
        let status = SpotMarketStatus {
            ratio_ppm: sample.ratio_ppm,
            utilisation_ppm: sample.utilisation_ppm,
            spot_vcpu_hour: spot(self.catalog.vcpu_hour),
            spot_memory_gi_b_hour: spot(self.catalog.memory_gib_hour),
            updated: Some(format_time(sample.at)),
            history: history
                .points()
                .iter()
                .map(|p| HistoryPoint {
                    time: format_time(p.time),
                    ratio_ppm: p.ratio_ppm,
                })
                .collect(),
            instances: sample.instances.clone(),
        };
        let patch = json!({ "status": status });
        api.patch_status(MARKET_NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }
}
