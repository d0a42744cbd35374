use super::*;
use chrono::TimeZone;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0)
        .single()
        .expect("valid time")
}

fn point(secs: i64, ratio_ppm: u32) -> PricePoint {
    PricePoint {
        time: t(secs),
        ratio_ppm,
    }
}

fn history(points: &[(i64, u32)]) -> PriceHistory {
    points
        .iter()
        .map(|&(s, r)| point(s, r))
        .collect::<Vec<_>>()
        .into()
}

#[test]
fn the_ratio_is_the_floor_up_to_the_knee() {
    let p = SpotParams::default();
    assert_eq!(spot_ratio_ppm(0, &p), 100_000);
    assert_eq!(spot_ratio_ppm(500_000, &p), 100_000);
}

#[test]
fn the_ratio_rises_linearly_to_on_demand_at_full_utilisation() {
    let p = SpotParams::default();
    assert_eq!(spot_ratio_ppm(750_000, &p), 550_000);
    assert_eq!(spot_ratio_ppm(1_000_000, &p), 1_000_000);
    assert_eq!(spot_ratio_ppm(500_001, &p), 100_001);
    assert_eq!(
        spot_ratio_ppm(2_000_000, &p),
        1_000_000,
        "over-full is full"
    );
}

#[test]
fn out_of_range_parameters_are_clamped() {
    let p = SpotParams {
        floor_ppm: 3_000_000,
        knee_ppm: 5_000_000,
    };
    assert_eq!(spot_ratio_ppm(0, &p), 1_000_000);
    let p = SpotParams {
        floor_ppm: 0,
        knee_ppm: 1_000_000,
    };
    assert_eq!(spot_ratio_ppm(999_999, &p), 0);
    assert_eq!(spot_ratio_ppm(1_000_000, &p), 1_000_000);
}

#[test]
fn utilisation_is_the_larger_of_cpu_and_memory() {
    assert_eq!(utilisation_ppm(1000, 4000, 3072, 4096), 750_000);
    assert_eq!(utilisation_ppm(3000, 4000, 1024, 4096), 750_000);
    assert_eq!(utilisation_ppm(5000, 4000, 0, 4096), 1_000_000);
}

#[test]
fn a_resource_without_capacity_is_full_only_if_used() {
    assert_eq!(utilisation_ppm(0, 0, 0, 0), 0);
    assert_eq!(utilisation_ppm(1, 0, 0, 4096), 1_000_000);
    assert_eq!(utilisation_ppm(0, 0, 1024, 4096), 250_000);
}

#[test]
fn an_empty_history_prices_spot_at_on_demand() {
    assert_eq!(PriceHistory::new().ratio_at(t(0)), 1_000_000);
}

#[test]
fn the_ratio_at_a_time_is_the_last_point_at_or_before_it() {
    let h = history(&[(10, 200_000), (20, 300_000)]);
    assert_eq!(h.ratio_at(t(0)), 200_000, "before the first point");
    assert_eq!(h.ratio_at(t(10)), 200_000);
    assert_eq!(h.ratio_at(t(19)), 200_000);
    assert_eq!(h.ratio_at(t(20)), 300_000);
    assert_eq!(h.ratio_at(t(1000)), 300_000);
    assert!(!h.covers(t(9)) && h.covers(t(10)));
}

#[test]
fn push_records_only_changes_in_time_order() {
    let mut h = PriceHistory::new();
    assert!(h.push(point(10, 100_000), 10));
    assert!(!h.push(point(11, 100_000), 10), "same ratio");
    assert!(!h.push(point(5, 900_000), 10), "older than the last point");
    assert!(h.push(point(12, 200_000), 10));
    assert_eq!(h.points(), &[point(10, 100_000), point(12, 200_000)]);
}

#[test]
fn a_point_at_the_time_of_the_last_replaces_it() {
    let mut h = history(&[(10, 100_000), (12, 200_000)]);
    assert!(h.push(point(12, 300_000), 10));
    assert_eq!(h.points(), &[point(10, 100_000), point(12, 300_000)]);
    assert!(h.push(point(12, 100_000), 10));
    assert_eq!(
        h.points(),
        &[point(10, 100_000)],
        "merged into the unchanged ratio"
    );
}

#[test]
fn dropping_old_points_keeps_later_ratios_exact() {
    let mut h = PriceHistory::new();
    for (i, ratio) in [100_000, 200_000, 300_000, 400_000].into_iter().enumerate() {
        h.push(point(10 * i as i64, ratio), 3);
    }
    assert_eq!(h.points().len(), 3);
    assert_eq!(h.points()[0], point(10, 200_000));
    for (secs, ratio) in [(10, 200_000), (19, 200_000), (20, 300_000), (35, 400_000)] {
        assert_eq!(h.ratio_at(t(secs)), ratio, "at {secs}");
    }
    assert!(!h.covers(t(5)));
}

#[test]
fn a_history_from_any_list_is_sorted_and_deduplicated() {
    let h = history(&[(20, 300_000), (10, 100_000), (15, 100_000), (30, 300_000)]);
    assert_eq!(h.points(), &[point(10, 100_000), point(20, 300_000)]);
}

#[test]
fn histories_serialize_as_a_list_of_points() {
    let h = history(&[(10, 100_000)]);
    let json = serde_json::to_value(&h).expect("serialize");
    assert_eq!(
        json,
        serde_json::json!([{"time": "2023-11-14T22:13:30Z", "ratioPpm": 100_000}])
    );
    let back: PriceHistory = serde_json::from_value(json).expect("deserialize");
    assert_eq!(back, h);
}
