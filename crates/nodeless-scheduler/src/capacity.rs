//! Choosing capacity for a waiting Pod — on-demand, or spot on free room within its price
//! limit — and reclaiming spot instances: when their price rises above their limit, or when
//! an on-demand Pod does not fit. A reclaimed instance is given notice (its release time on
//! the Pod, a `SpotToBeReleased` condition and event); the host agent releases it then.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use nodeless_core::billing::{format_money, over_limit, spot_hourly, SpotInstance, SpotPolicy};
use nodeless_core::instance_spec::InstanceSpec;
use nodeless_kube::billing::format_time;
use nodeless_kube::events::pod_reference;
use nodeless_kube::names::{SPOT_RELEASE_AT_ANNOTATION, SPOT_TO_BE_RELEASED};
use nodeless_kube::EventType;
use serde_json::json;
use tokio::task::JoinSet;

use crate::placement::{Pool, Request};
use crate::pods::pod_key;
use crate::scheduler::{uid, Outcome, Scheduler, State};
use crate::spot::reclaim_for;

/// Where and on what capacity a Pod is bound, and at what price.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) host: String,
    pub(crate) spec: InstanceSpec,
    /// `None` on-demand; `Some(protected until)` on spot.
    pub(crate) spot: Option<chrono::DateTime<Utc>>,
    pub(crate) hourly_on_demand: u64,
}

/// What one pass knows of spot capacity while it places waiting Pods.
pub(crate) struct Round<'a> {
    pub(crate) now: chrono::DateTime<Utc>,
    /// The spot price as parts per million of on-demand.
    pub(crate) ratio: u32,
    pub(crate) by_uid: HashMap<&'a str, &'a Arc<Pod>>,
    pub(crate) spots: Vec<SpotInstance>,
    /// Spot instances given notice (this pass or before): they count as freed.
    pub(crate) releasing: HashSet<String>,
    /// An on-demand Pod found no room: spot Pods wait, so they do not take what it frees.
    pub(crate) on_demand_short: bool,
}

impl Scheduler {
    /// Gives notice to spot instances past protection whose price rose above their limit.
    pub(crate) fn reclaim_over_limit(
        &self,
        round: &mut Round,
        state: &mut State,
        tasks: &mut JoinSet<Outcome>,
    ) {
        for victim in over_limit(&round.spots, round.ratio, round.now) {
            if !round.releasing.insert(victim.clone()) {
                continue;
            }
            let Some(pod) = round.by_uid.get(victim.as_str()) else {
                continue;
            };
            let hourly = round
                .spots
                .iter()
                .find(|s| s.uid == victim)
                .map(|s| spot_hourly(s.hourly_on_demand, round.ratio))
                .unwrap_or(0);
            let reason = format!(
                "the spot price rose to {} {}/h, above the pod's limit",
                format_money(u128::from(hourly), 6),
                self.economy.catalog.currency
            );
            state.releasing.insert(victim.clone());
            tasks.spawn(self.notice((*pod).clone(), reason));
        }
    }

    /// Where and on what capacity a waiting Pod runs, or why it waits. An on-demand Pod
    /// (or a spot Pod falling back to on-demand) that does not fit reclaims spot capacity.
    pub(crate) fn plan(
        &self,
        round: &mut Round,
        state: &mut State,
        tasks: &mut JoinSet<Outcome>,
        pool: &mut Pool,
        request: Request<'_>,
        policy: Option<SpotPolicy>,
    ) -> Result<Plan, String> {
        let spec = request.spec;
        let hourly = self
            .economy
            .catalog
            .hourly_on_demand(spec)
            .map_err(|e| e.to_string())?;
        let mut no_spot = None;
        if let Some(p) = &policy {
            match self.spot_room(pool, request, p, hourly, round) {
                Ok(plan) => return Ok(plan),
                Err(why) if !p.fallback => return Err(why),
                Err(why) => no_spot = Some(why),
            }
        }
        let short = match pool.place(request) {
            Ok(host) => {
                return Ok(Plan {
                    host,
                    spec: spec.clone(),
                    spot: None,
                    hourly_on_demand: hourly,
                })
            }
            Err(e) => e.to_string(),
        };
        round.on_demand_short = true;
        let message = match no_spot {
            Some(why) => format!("{why}; falling back to on-demand: {short}"),
            None => short,
        };
        let need = (spec.millicpu, spec.memory_mib);
        let Some((host, victims)) =
            reclaim_for(need, pool, &round.spots, &round.releasing, round.now)
        else {
            return Err(message);
        };
        // The room being freed is this Pod's: later Pods must not count it.
        pool.count(&host, spec);
        for v in victims {
            if let Some(p) = round.by_uid.get(v.as_str()) {
                state.releasing.insert(v.clone());
                let reason = "on-demand instances need its capacity".to_string();
                tasks.spawn(self.notice((*p).clone(), reason));
            }
            round.releasing.insert(v);
        }
        Err(format!(
            "{message}; reclaiming spot capacity on host {host} for it"
        ))
    }

    /// Places a spot Pod on free capacity at an acceptable price, or says why not.
    fn spot_room(
        &self,
        pool: &mut Pool,
        request: Request<'_>,
        policy: &SpotPolicy,
        hourly: u64,
        round: &Round,
    ) -> Result<Plan, String> {
        if round.on_demand_short {
            return Err(
                "no spot capacity: on-demand instances are waiting for the free capacity".into(),
            );
        }
        let price = spot_hourly(hourly, round.ratio);
        if let Some(limit) = crate::spot::hourly_limit(policy) {
            if price > limit {
                let currency = &self.economy.catalog.currency;
                return Err(format!(
                    "the spot price of {} is {} {currency}/h, above the pod's limit of {} {currency}/h",
                    request.spec,
                    format_money(u128::from(price), 6),
                    format_money(u128::from(limit), 6),
                ));
            }
        }
        let host = pool
            .place(request)
            .map_err(|e| format!("no spot capacity: {e}"))?;
        let protection = chrono::Duration::from_std(policy.protection).unwrap_or_default();
        Ok(Plan {
            host,
            spec: request.spec.clone(),
            spot: Some(round.now + protection),
            hourly_on_demand: hourly,
        })
    }

    /// Warns a spot Pod that its instance will be released after the notice period: the
    /// release time on the Pod (which the host agent acts on), a `SpotToBeReleased`
    /// condition and event.
    fn notice(
        &self,
        pod: Arc<Pod>,
        reason: String,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'static {
        let (client, recorder) = (self.client.clone(), self.recorder.clone());
        let notice = chrono::Duration::from_std(self.economy.notice).unwrap_or_default();
        async move {
            let uid = uid(&pod).to_string();
            let at = Utc::now() + notice;
            let message = format!(
                "the spot instance will be released at {} ({reason})",
                format_time(at)
            );
            tracing::info!(pod = %pod_key(&pod), notice = %message, "spot release decided");
            let written = write_notice(client, &pod, at, &message).await;
            if let Err(e) = &written {
                tracing::warn!(pod = %pod_key(&pod), error = %e, "cannot write the spot release notice");
            } else {
                let object = pod_reference(&pod, None);
                recorder
                    .record(&object, EventType::Warning, SPOT_TO_BE_RELEASED, &message)
                    .await;
            }
            Outcome::Noticed {
                uid,
                written: written.is_ok(),
            }
        }
    }
}

/// The release time on the Pod's metadata, then the SpotToBeReleased condition on its status.
async fn write_notice(
    client: kube::Client,
    pod: &Pod,
    at: chrono::DateTime<Utc>,
    message: &str,
) -> Result<(), kube::Error> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client, namespace);
    let meta = json!({
        "metadata": {
            "uid": pod.metadata.uid,
            "annotations": { SPOT_RELEASE_AT_ANNOTATION: format_time(at) }
        }
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&meta))
        .await?;
    let status = json!({
        "status": {
            "conditions": [{
                "type": SPOT_TO_BE_RELEASED,
                "status": "True",
                "reason": SPOT_TO_BE_RELEASED,
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": Time(Utc::now()),
            }]
        }
    });
    api.patch_status(name, &PatchParams::default(), &Patch::Strategic(&status))
        .await
        .map(|_| ())
}
