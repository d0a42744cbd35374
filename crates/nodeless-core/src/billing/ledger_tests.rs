use super::*;
use crate::billing::market::PricePoint;
use chrono::TimeZone;

const HOURLY: u64 = 40_480_000; // 0.04048 per hour

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0)
        .single()
        .expect("valid time")
}

fn t_ms(ms: i64) -> DateTime<Utc> {
    t(0) + TimeDelta::milliseconds(ms)
}

fn usage(start: DateTime<Utc>, end: Option<DateTime<Utc>>, capacity: CapacityType) -> Usage {
    Usage {
        start,
        end,
        confirmed_until: None,
        hourly_on_demand: HOURLY,
        capacity,
    }
}

fn on_demand(start: i64, end: Option<i64>) -> Usage {
    usage(t(start), end.map(t), CapacityType::OnDemand)
}

fn all() -> Window {
    Window::default()
}

fn window(since: Option<i64>, until: Option<i64>) -> Window {
    Window {
        since: since.map(t),
        until: until.map(t),
    }
}

fn history(points: &[(i64, u32)]) -> PriceHistory {
    let points: Vec<PricePoint> = points
        .iter()
        .map(|&(s, r)| PricePoint {
            time: t(s),
            ratio_ppm: r,
        })
        .collect();
    points.into()
}

fn none() -> PriceHistory {
    PriceHistory::new()
}

#[test]
fn an_hour_on_demand_costs_the_hourly_price_exactly() {
    let c = charge(&on_demand(0, Some(3600)), &none(), all(), t(9999));
    assert_eq!(c.seconds, 3600);
    assert_eq!(c.cost, 40_480_000);
    assert_eq!(crate::billing::format_money(c.cost, 9), "0.040480000");
    assert_eq!((c.billed_from, c.billed_until), (t(0), t(3600)));
}

#[test]
fn one_second_is_rounded_half_up_to_the_nano() {
    // 40_480_000 / 3600 = 11_244.44...
    let c = charge(&on_demand(0, Some(1)), &none(), all(), t(10));
    assert_eq!((c.seconds, c.cost), (1, 11_244));
    let mut u = on_demand(0, Some(1));
    u.hourly_on_demand = 1800; // half a nano per second
    assert_eq!(charge(&u, &none(), all(), t(10)).cost, 1);
}

#[test]
fn an_ended_instance_pays_for_every_second_it_began() {
    let u = usage(t(0), Some(t_ms(1_001)), CapacityType::OnDemand);
    let c = charge(&u, &none(), all(), t(100));
    assert_eq!(c.seconds, 2);
    assert_eq!(c.billed_until, t(2));
}

#[test]
fn a_running_instance_pays_only_for_whole_seconds_elapsed() {
    let u = on_demand(0, None);
    assert_eq!(charge(&u, &none(), all(), t_ms(1_999)).seconds, 1);
    assert_eq!(charge(&u, &none(), all(), t(2)).seconds, 2);
    assert_eq!(charge(&u, &none(), all(), t_ms(999)).seconds, 0);
}

#[test]
fn nothing_is_charged_when_the_life_ends_before_it_starts() {
    let c = charge(&on_demand(10, Some(5)), &none(), all(), t(100));
    assert_eq!((c.seconds, c.cost), (0, 0));
    assert_eq!((c.billed_from, c.billed_until), (t(10), t(10)));
    assert_eq!(
        charge(&on_demand(10, None), &none(), all(), t(3)).seconds,
        0
    );
}

#[test]
fn a_silent_host_is_billed_until_its_last_heartbeat() {
    let mut u = on_demand(0, None);
    u.confirmed_until = Some(t(60));
    assert_eq!(charge(&u, &none(), all(), t(600)).seconds, 60);
    // A heartbeat in the future of `now` never bills ahead of it.
    u.confirmed_until = Some(t(900));
    assert_eq!(charge(&u, &none(), all(), t(600)).seconds, 600);
    // Once ended, the recorded end is what counts.
    u.end = Some(t(120));
    assert_eq!(charge(&u, &none(), all(), t(600)).seconds, 120);
}

#[test]
fn recomputing_after_a_restart_gives_the_same_charge() {
    // Whatever calls `charge` keeps no running total; a restarted reporter recomputes
    // from the same records and cannot count a second twice.
    let u = usage(t(0), Some(t(7_200)), CapacityType::Spot);
    let h = history(&[(-50, 300_000), (1_000, 500_000)]);
    let first = charge(&u, &h, window(Some(0), Some(5_000)), t(10_000));
    let again = charge(&u, &h, window(Some(0), Some(5_000)), t(20_000));
    assert_eq!(first, again);
}

#[test]
fn a_window_takes_the_seconds_that_start_inside_it() {
    let u = usage(t_ms(500), Some(t(100)), CapacityType::OnDemand);
    // Seconds start at 0.5, 1.5, ...: the window [10, 20) holds those at 10.5 .. 19.5.
    let c = charge(&u, &none(), window(Some(10), Some(20)), t(1000));
    assert_eq!(c.seconds, 10);
    assert_eq!(
        (c.billed_from, c.billed_until),
        (t_ms(10_500), t_ms(20_500))
    );
    let before = charge(&u, &none(), window(None, Some(-5)), t(1000));
    assert_eq!(before.seconds, 0);
    let after = charge(&u, &none(), window(Some(200), None), t(1000));
    assert_eq!(after.seconds, 0);
    let inverted = charge(&u, &none(), window(Some(50), Some(20)), t(1000));
    assert_eq!((inverted.seconds, inverted.cost), (0, 0));
}

#[test]
fn adjacent_windows_add_up_to_their_union_exactly() {
    let h = history(&[
        (-100, 100_000),
        (333, 730_000),
        (1_000, 250_000),
        (2_777, 990_000),
    ]);
    for capacity in [CapacityType::OnDemand, CapacityType::Spot] {
        let mut u = usage(t_ms(250), Some(t_ms(3_999_700)), capacity);
        u.hourly_on_demand = 98_740_001;
        let whole = charge(&u, &h, all(), t(10_000));
        let cuts = [
            -10, 7, 8, 100, 333, 334, 999, 1_500, 2_777, 3_001, 3_999, 50_000,
        ];
        let mut bounds = vec![None];
        bounds.extend(cuts.iter().map(|&c| Some(c)));
        bounds.push(None);
        let (mut seconds, mut cost) = (0, 0);
        for pair in bounds.windows(2) {
            let c = charge(&u, &h, window(pair[0], pair[1]), t(10_000));
            seconds += c.seconds;
            cost += c.cost;
        }
        assert_eq!((seconds, cost), (whole.seconds, whole.cost), "{capacity}");
    }
}

#[test]
fn an_hour_in_any_window_costs_the_hourly_price_exactly() {
    let u = on_demand(0, Some(10 * 3600));
    let c = charge(
        &u,
        &none(),
        window(Some(1_234), Some(1_234 + 3600)),
        t(99_999),
    );
    assert_eq!(c.cost, 40_480_000);
}

#[test]
fn spot_seconds_are_priced_at_the_ratio_in_force_when_they_start() {
    let u = usage(t(0), Some(t(3600)), CapacityType::Spot);
    let h = history(&[(-500, 100_000), (1800, 500_000)]);
    let c = charge(&u, &h, all(), t(9999));
    // Half an hour at 10% and half an hour at 50%: 0.3 × 0.04048.
    assert_eq!(c.cost, 12_144_000);
    assert_eq!(c.seconds, 3600);
}

#[test]
fn a_price_change_inside_a_second_applies_from_the_next_second() {
    let mut u = usage(t(0), Some(t(2)), CapacityType::Spot);
    u.hourly_on_demand = 3_600_000_000; // a million nanos per second at the full price
    let h = history(&[(-5, 1_000_000), (0, 1_000_000)]);
    assert_eq!(charge(&u, &h, all(), t(9)).cost, 2_000_000);
    let mut h = PriceHistory::new();
    h.push(
        PricePoint {
            time: t(-5),
            ratio_ppm: 1_000_000,
        },
        10,
    );
    h.push(
        PricePoint {
            time: t_ms(500),
            ratio_ppm: 500_000,
        },
        10,
    );
    // Second 0 began at the full price; second 1 at half.
    assert_eq!(charge(&u, &h, all(), t(9)).cost, 1_500_000);
}

#[test]
fn spot_before_the_first_point_uses_the_first_ratio() {
    let u = usage(t(0), Some(t(3600)), CapacityType::Spot);
    let c = charge(&u, &history(&[(7_200, 250_000)]), all(), t(9999));
    assert_eq!(c.cost, 10_120_000);
}

#[test]
fn spot_without_history_is_billed_at_on_demand() {
    let u = usage(t(0), Some(t(3600)), CapacityType::Spot);
    assert_eq!(charge(&u, &none(), all(), t(9999)).cost, 40_480_000);
}

#[test]
fn on_demand_ignores_the_spot_history() {
    let h = history(&[(0, 100_000)]);
    assert_eq!(
        charge(&on_demand(0, Some(3600)), &h, all(), t(9999)).cost,
        40_480_000
    );
}

#[test]
fn months_of_spot_are_priced_by_segment() {
    // Ninety days with a price change every hour; per-second pricing would take 7.7M steps.
    let hours = 90 * 24;
    let points: Vec<(i64, u32)> = (0..hours)
        .map(|h| (h * 3600, if h % 2 == 0 { 100_000 } else { 300_000 }))
        .collect();
    let h = history(&points);
    let u = usage(t(0), Some(t(hours * 3600)), CapacityType::Spot);
    let c = charge(&u, &h, all(), t(hours * 3600));
    assert_eq!(c.seconds, (hours * 3600) as u64);
    // Every two hours cost 0.4 × 0.04048.
    assert_eq!(c.cost, (hours as u128 / 2) * 16_192_000);
}

#[test]
fn capacity_types_display_and_serialize() {
    assert_eq!(CapacityType::OnDemand.to_string(), "on-demand");
    assert_eq!(CapacityType::Spot.to_string(), "spot");
    assert_eq!(
        serde_json::to_string(&CapacityType::OnDemand).expect("json"),
        "\"OnDemand\""
    );
    assert_eq!(
        serde_json::to_string(&CapacityType::Spot).expect("json"),
        "\"Spot\""
    );
}

#[test]
fn charges_serialize_money_as_exact_decimal_text() {
    let c = charge(&on_demand(0, Some(3600)), &none(), all(), t(9999));
    let json = serde_json::to_value(&c).expect("json");
    assert_eq!(json["cost"], "0.040480000");
    assert_eq!(json["billedFrom"], "2023-11-14T22:13:20Z");
    let back: Charge = serde_json::from_value(json).expect("back");
    assert_eq!(back, c);
}
