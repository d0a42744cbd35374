use super::*;
use chrono::TimeZone;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0)
        .single()
        .expect("valid time")
}

fn item(
    ns: &str,
    pod: &str,
    workload: &str,
    capacity: CapacityType,
    seconds: u64,
    cost: u128,
) -> LineItem {
    LineItem {
        namespace: ns.into(),
        pod: pod.into(),
        uid: format!("uid-{pod}"),
        workload: workload.into(),
        spec: "1-2Gi".into(),
        capacity,
        hourly: 40_480_000,
        start: t(0),
        end: None,
        charge: Charge {
            seconds,
            cost,
            billed_from: t(0),
            billed_until: t(seconds as i64),
        },
    }
}

fn items() -> Vec<LineItem> {
    vec![
        item(
            "prod",
            "web-b",
            "Deployment/web",
            CapacityType::Spot,
            3600,
            4_048_000,
        ),
        item("dev", "job-x", "Job/x", CapacityType::OnDemand, 10, 112_444),
        item(
            "prod",
            "web-a",
            "Deployment/web",
            CapacityType::OnDemand,
            3600,
            40_480_000,
        ),
        item(
            "prod",
            "lone",
            "Pod/lone",
            CapacityType::OnDemand,
            1,
            11_244,
        ),
    ]
}

fn report(by: GroupBy) -> Report {
    let window = Window {
        since: Some(t(0)),
        until: None,
    };
    build(&items(), by, window, "USD", t(7200))
}

#[test]
fn rows_group_by_workload_and_sort_by_key() {
    let r = report(GroupBy::Workload);
    let keys: Vec<&str> = r.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["dev/Job/x", "prod/Deployment/web", "prod/Pod/lone"]);
    let web = &r.rows[1];
    assert_eq!((web.instances, web.seconds), (2, 7200));
    assert_eq!(
        (web.cost, web.on_demand_cost, web.spot_cost),
        (44_528_000, 40_480_000, 4_048_000)
    );
}

#[test]
fn rows_group_by_pod_and_namespace() {
    let keys = |by| -> Vec<String> { report(by).rows.into_iter().map(|r| r.key).collect() };
    assert_eq!(
        keys(GroupBy::Pod),
        ["dev/job-x", "prod/lone", "prod/web-a", "prod/web-b"]
    );
    assert_eq!(keys(GroupBy::Namespace), ["dev", "prod"]);
}

#[test]
fn the_total_sums_every_item_whatever_the_grouping() {
    for by in [GroupBy::Pod, GroupBy::Workload, GroupBy::Namespace] {
        let r = report(by);
        assert_eq!(r.total.key, "TOTAL");
        assert_eq!(r.total.instances, 4);
        assert_eq!(r.total.seconds, 7211);
        assert_eq!(r.total.cost, 44_651_688);
        assert_eq!(r.rows.iter().map(|r| r.cost).sum::<u128>(), r.total.cost);
    }
}

#[test]
fn groupings_and_formats_parse_and_list_the_choices() {
    assert_eq!("workload".parse::<GroupBy>(), Ok(GroupBy::Workload));
    assert_eq!("csv".parse::<Format>(), Ok(Format::Csv));
    let err = "node".parse::<GroupBy>().expect_err("unknown").to_string();
    assert_eq!(
        err,
        "unknown grouping \"node\": use pod, workload or namespace"
    );
    let err = "yaml".parse::<Format>().expect_err("unknown").to_string();
    assert_eq!(err, "unknown format \"yaml\": use table, json or csv");
}

#[test]
fn the_table_by_pod_aligns_columns_and_ends_with_the_total() {
    let r = report(GroupBy::Pod);
    let text = render(&r, &r.items, Format::Table);
    let want = "\
NAMESPACE   POD     SPEC    CAPACITY    SECONDS   COST
dev         job-x   1-2Gi   on-demand   10        0.000112
prod        lone    1-2Gi   on-demand   1         0.000011
prod        web-a   1-2Gi   on-demand   3600      0.040480
prod        web-b   1-2Gi   spot        3600      0.004048
TOTAL                                   7211      0.044652
";
    assert_eq!(text, want);
}

#[test]
fn the_table_by_workload_counts_instances() {
    let r = report(GroupBy::Workload);
    let text = render(&r, &r.items, Format::Table);
    let want = "\
NAMESPACE   WORKLOAD         INSTANCES   SECONDS   COST
dev         Job/x            1           10        0.000112
prod        Deployment/web   2           7200      0.044528
prod        Pod/lone         1           1         0.000011
TOTAL                        4           7211      0.044652
";
    assert_eq!(text, want);
}

#[test]
fn the_table_by_namespace_has_one_name_column() {
    let r = report(GroupBy::Namespace);
    let text = render(&r, &r.items, Format::Table);
    assert!(
        text.starts_with("NAMESPACE   INSTANCES   SECONDS   COST\n"),
        "{text}"
    );
    assert!(
        text.ends_with("TOTAL       4           7211      0.044652\n"),
        "{text}"
    );
}

#[test]
fn a_pod_recreated_with_another_spec_lists_both() {
    let mut items = items();
    let mut again = items[2].clone();
    again.uid = "uid-2".into();
    again.spec = "2-4Gi".into();
    again.capacity = CapacityType::Spot;
    items.push(again);
    let r = build(&items, GroupBy::Pod, Window::default(), "USD", t(0));
    let text = render(&r, &r.items, Format::Table);
    assert!(
        text.contains("prod        web-a   1-2Gi,2-4Gi   on-demand,spot   7200"),
        "{text}"
    );
}

#[test]
fn csv_has_a_header_and_exact_money() {
    let r = report(GroupBy::Workload);
    let text = render(&r, &r.items, Format::Csv);
    let want = "\
namespace,workload,instances,seconds,cost,onDemandCost,spotCost
dev,Job/x,1,10,0.000112444,0.000112444,0.000000000
prod,Deployment/web,2,7200,0.044528000,0.040480000,0.004048000
prod,Pod/lone,1,1,0.000011244,0.000011244,0.000000000
";
    assert_eq!(text, want);
}

#[test]
fn csv_quotes_fields_as_rfc_4180_says() {
    let mut items = items();
    items[2].spec = "a,\"b\"".into();
    let r = build(&items, GroupBy::Pod, Window::default(), "USD", t(0));
    let text = render(&r, &r.items, Format::Csv);
    assert!(
        text.starts_with("namespace,pod,spec,capacityType,instances,"),
        "{text}"
    );
    assert!(
        text.contains("prod,web-a,\"a,\"\"b\"\"\",on-demand,1,3600,"),
        "{text}"
    );
}

#[test]
fn json_has_the_documented_shape() {
    let r = report(GroupBy::Workload);
    let v: serde_json::Value =
        serde_json::from_str(&render(&r, &r.items, Format::Json)).expect("json");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "currency",
            "since",
            "until",
            "generated",
            "by",
            "rows",
            "total",
            "items"
        ]
    );
    assert_eq!(v["by"], "workload");
    assert_eq!(v["until"], serde_json::Value::Null);
    assert_eq!(
        v["rows"][1],
        serde_json::json!({"key": "prod/Deployment/web", "instances": 2, "seconds": 7200,
            "cost": "0.044528000", "onDemandCost": "0.040480000", "spotCost": "0.004048000"})
    );
    let item = &v["items"][0];
    assert_eq!(item["capacityType"], "Spot");
    assert_eq!(item["cost"], "0.004048000");
    assert_eq!(item["hourly"], "0.040480000");
    assert_eq!(item["seconds"], 3600);
    assert_eq!(item["workload"], "Deployment/web");
}

#[test]
fn json_round_trips_so_the_cli_can_re_render_it() {
    for by in [GroupBy::Pod, GroupBy::Workload, GroupBy::Namespace] {
        let r = report(by);
        let back: Report =
            serde_json::from_str(&render(&r, &r.items, Format::Json)).expect("parse");
        assert_eq!(back, r);
        assert_eq!(
            render(&back, &back.items, Format::Table),
            render(&r, &r.items, Format::Table)
        );
    }
}

#[test]
fn an_empty_report_still_has_a_header_and_total() {
    let r = build(&[], GroupBy::Namespace, Window::default(), "USD", t(0));
    let text = render(&r, &r.items, Format::Table);
    assert_eq!(
        text,
        "NAMESPACE   INSTANCES   SECONDS   COST\nTOTAL       0           0         0.000000\n"
    );
}
