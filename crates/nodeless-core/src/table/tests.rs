use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    duration::parse_time("2024-05-01T12:00:00Z").expect("valid")
}

fn table(group: &str, kind: &str, obj: &Value) -> Value {
    build_table(
        group,
        kind,
        None,
        &[obj],
        IncludeObject::Metadata,
        json!({"resourceVersion": "7"}),
        now(),
    )
}

fn row(t: &Value) -> Vec<Value> {
    t["rows"][0]["cells"].as_array().expect("cells").clone()
}

fn names(t: &Value) -> Vec<String> {
    t["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect()
}

fn wide(t: &Value) -> Vec<String> {
    let cols = t["columnDefinitions"].as_array().expect("columns");
    cols.iter()
        .filter(|c| c["priority"] == 1)
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn tables_carry_list_metadata_and_partial_object_metadata_rows() {
    let cm = json!({"metadata": {"name": "cfg", "namespace": "default", "creationTimestamp": "2024-05-01T11:59:58Z"},
                    "data": {"a": "1"}, "binaryData": {"b": "AA=="}});
    let t = table("", "ConfigMap", &cm);
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"]["resourceVersion"], "7");
    assert_eq!(names(&t), ["Name", "Data", "Age"]);
    assert_eq!(t["columnDefinitions"][0]["format"], "name");
    assert_eq!(t["rows"][0]["cells"], json!(["cfg", 2, "2s"]));
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": cm["metadata"]})
    );
}

#[test]
fn include_object_controls_what_rows_carry() {
    let cm = json!({"metadata": {"name": "cfg"}, "data": {}});
    let full = build_table(
        "",
        "ConfigMap",
        None,
        &[&cm],
        IncludeObject::Object,
        Value::Null,
        now(),
    );
    assert_eq!(full["rows"][0]["object"], cm);
    assert_eq!(full["metadata"], json!({}));
    let none = build_table(
        "",
        "ConfigMap",
        None,
        &[&cm],
        IncludeObject::None,
        Value::Null,
        now(),
    );
    assert_eq!(none["rows"][0]["object"], Value::Null);
    assert_eq!(IncludeObject::parse(""), Some(IncludeObject::Metadata));
    assert_eq!(IncludeObject::parse("None"), Some(IncludeObject::None));
    assert_eq!(IncludeObject::parse("bogus"), None);
}

#[test]
fn kinds_without_a_printer_get_the_default_table() {
    let role =
        json!({"metadata": {"name": "reader", "creationTimestamp": "2024-04-01T10:00:00+02:00"}});
    let t = table("rbac.authorization.k8s.io", "Role", &role);
    assert_eq!(names(&t), ["Name", "Created At"]);
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["reader", "2024-04-01T08:00:00Z"])
    );
    assert_eq!(columns_for("", "LimitRange").len(), 2);
    assert_eq!(
        columns_for("apiextensions.k8s.io", "CustomResourceDefinition")[1].name,
        "Created At"
    );
}

#[test]
fn every_builtin_kind_prints_as_many_cells_as_columns() {
    let obj = json!({"metadata": {"name": "x"}});
    for rt in crate::resource::builtins() {
        let t = table(&rt.group, &rt.kind, &obj);
        let columns = t["columnDefinitions"].as_array().expect("columns").len();
        let cells = t["rows"][0]["cells"].as_array().expect("cells").len();
        assert_eq!(columns, cells, "{}/{}", rt.group, rt.kind);
        assert_eq!(
            t["rows"][0]["cells"][names(&t).iter().position(|n| n == "Name").expect("name")],
            "x"
        );
    }
}

#[test]
fn deployments_show_ready_over_desired_and_wide_details() {
    let d = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-05-01T09:00:00Z"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                                      {"name": "log", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    });
    let t = table("apps", "Deployment", &d);
    assert_eq!(
        names(&t),
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(wide(&t), ["Containers", "Images", "Selector"]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "web",
            "2/3",
            3,
            2,
            "3h",
            "nginx,log",
            "nginx:1.27,busybox",
            "app=web"
        ])
    );
}

#[test]
fn services_show_type_ips_and_ports() {
    let svc = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                 "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}],
                 "selector": {"app": "web"}}
    });
    let t = table("", "Service", &svc);
    assert_eq!(
        names(&t),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "web",
            "NodePort",
            "10.96.0.10",
            "<none>",
            "80:30080/TCP,53/UDP",
            "60m",
            "app=web"
        ])
    );
    let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "protocol": "TCP"}]}});
    let cells = &table("", "Service", &lb)["rows"][0]["cells"];
    assert_eq!(
        (cells[2].clone(), cells[3].clone(), cells[4].clone()),
        (json!("<none>"), json!("<pending>"), json!("443/TCP"))
    );
    let headless = json!({"metadata": {"name": "h"}, "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}});
    assert_eq!(
        table("", "Service", &headless)["rows"][0]["cells"][4],
        "<none>"
    );
}

#[test]
fn jobs_show_status_completions_and_duration() {
    let done = json!({
        "metadata": {"name": "pi", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
        "status": {"succeeded": 1, "startTime": "2024-05-01T11:00:00Z", "completionTime": "2024-05-01T11:00:42Z",
                   "conditions": [{"type": "Complete", "status": "True"}]}
    });
    let t = table("batch", "Job", &done);
    assert_eq!(
        names(&t)[..5],
        ["Name", "Status", "Completions", "Duration", "Age"]
    );
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["pi", "Complete", "1/1", "42s", "60m", "pi", "perl", "<none>"])
    );
    let running = json!({"metadata": {"name": "w"}, "spec": {"parallelism": 3},
                         "status": {"startTime": "2024-05-01T11:57:00Z", "succeeded": 1}});
    let cells = &table("batch", "Job", &running)["rows"][0]["cells"];
    assert_eq!(
        (cells[1].clone(), cells[2].clone(), cells[3].clone()),
        (json!("Running"), json!("1/1 of 3"), json!("3m"))
    );
    let failed = json!({"metadata": {"name": "f"}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
    assert_eq!(
        table("batch", "Job", &failed)["rows"][0]["cells"][1],
        "Failed"
    );
}

#[test]
fn cron_jobs_show_schedule_and_last_run() {
    let cj = json!({"metadata": {"name": "c"}, "spec": {"schedule": "*/5 * * * *", "suspend": false},
                    "status": {"active": [{"name": "c-1"}], "lastScheduleTime": "2024-05-01T11:55:00Z"}});
    let t = table("batch", "CronJob", &cj);
    assert_eq!(
        row(&t)[..6],
        [
            json!("c"),
            json!("*/5 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(1),
            json!("5m")
        ]
    );
}

#[test]
fn workload_kinds_print_upstream_columns() {
    assert_eq!(
        names(&table("apps", "StatefulSet", &json!({})))[..3],
        ["Name", "Ready", "Age"]
    );
    assert_eq!(
        names(&table("apps", "DaemonSet", &json!({})))[..8],
        [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Up-to-date",
            "Available",
            "Node Selector",
            "Age"
        ]
    );
    let rs = json!({"metadata": {"name": "web-1"}, "spec": {"replicas": 2}, "status": {"replicas": 2, "readyReplicas": 1}});
    assert_eq!(
        row(&table("apps", "ReplicaSet", &rs))[..4],
        [json!("web-1"), json!(2), json!(2), json!(1)]
    );
    let cr = json!({"metadata": {"name": "web-abc", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u", "controller": true}]}, "revision": 2});
    assert_eq!(
        row(&table("apps", "ControllerRevision", &cr))[..3],
        [json!("web-abc"), json!("statefulset.apps/web"), json!(2)]
    );
}

#[test]
fn core_kinds_print_their_summaries() {
    let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "", "b": ""}});
    assert_eq!(
        row(&table("", "Secret", &secret))[..3],
        [json!("s"), json!("Opaque"), json!(2)]
    );
    let ns = json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}});
    assert_eq!(table("", "Namespace", &ns)["rows"][0]["cells"][1], "Active");
    let node = json!({"metadata": {"name": "vk-1", "labels": {"node-role.kubernetes.io/virtual": ""}},
                      "spec": {"unschedulable": true},
                      "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.32.0"},
                                 "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}]}});
    let cells = &table("", "Node", &node)["rows"][0]["cells"];
    assert_eq!(cells[1], "Ready,SchedulingDisabled");
    assert_eq!(cells[2], "virtual");
    assert_eq!(
        (cells[4].clone(), cells[5].clone(), cells[6].clone()),
        (json!("v1.32.0"), json!("192.168.1.2"), json!("<none>"))
    );
    let ep = json!({"metadata": {"name": "web"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                    "ports": [{"port": 80}, {"port": 443}]}]});
    assert_eq!(
        table("", "Endpoints", &ep)["rows"][0]["cells"][1],
        "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."
    );
    let quota = json!({"metadata": {"name": "q"}, "status": {"hard": {"limits.cpu": "2", "pods": "10"}, "used": {"pods": "3"}}});
    assert_eq!(
        row(&table("", "ResourceQuota", &quota))[1..3],
        [json!("pods: 3/10"), json!("limits.cpu: 0/2")]
    );
}

#[test]
fn events_print_object_and_message() {
    let ev = json!({"metadata": {"name": "web.1"}, "type": "Normal", "reason": "Scheduled",
                    "involvedObject": {"kind": "Pod", "name": "web"}, "message": " assigned \n",
                    "source": {"component": "nodeless-scheduler"}, "lastTimestamp": "2024-05-01T11:59:00Z",
                    "firstTimestamp": "2024-05-01T11:50:00Z", "count": 2});
    let t = table("", "Event", &ev);
    assert_eq!(names(&t)[..4], ["Last Seen", "Type", "Reason", "Object"]);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "60s",
            "Normal",
            "Scheduled",
            "pod/web",
            "",
            "nodeless-scheduler",
            "assigned",
            "10m",
            2,
            "web.1"
        ])
    );
    let new = json!({"metadata": {"name": "e"}, "regarding": {"kind": "Pod", "name": "web"}, "note": "hi",
                     "reportingController": "kubelet", "reportingInstance": "vk-1", "eventTime": "2024-05-01T11:59:30Z"});
    assert_eq!(
        table("events.k8s.io", "Event", &new)["rows"][0]["cells"],
        json!([
            "30s",
            "",
            "",
            "pod/web",
            "",
            "kubelet, vk-1",
            "hi",
            "30s",
            1,
            "e"
        ])
    );
}

#[test]
fn other_groups_print_their_columns() {
    let hpa = json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 80}}}]},
        "status": {"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
        "current": {"averageUtilization": 35}}}]}});
    assert_eq!(
        row(&table("autoscaling", "HorizontalPodAutoscaler", &hpa))[..6],
        [
            json!("h"),
            json!("Deployment/web"),
            json!("cpu: 35%/80%"),
            json!("1"),
            json!(5),
            json!(2)
        ]
    );
    let v1 = json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}});
    assert_eq!(
        table("autoscaling", "HorizontalPodAutoscaler", &v1)["rows"][0]["cells"][2],
        "cpu: <unknown>/50%"
    );
    let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
    assert_eq!(
        row(&table("policy", "PodDisruptionBudget", &pdb))[..4],
        [json!("p"), json!("50%"), json!("N/A"), json!(1)]
    );
    let ing = json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example"}],
        "tls": [{}]}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
    assert_eq!(
        row(&table("networking.k8s.io", "Ingress", &ing))[..5],
        [
            json!("i"),
            json!("nginx"),
            json!("a.example"),
            json!("1.2.3.4"),
            json!("80, 443")
        ]
    );
    let slice = json!({"metadata": {"name": "web-x"}, "addressType": "IPv4", "ports": [{"port": 80}],
        "endpoints": [{"addresses": ["10.0.0.1"]}]});
    assert_eq!(
        row(&table("discovery.k8s.io", "EndpointSlice", &slice))[..4],
        [
            json!("web-x"),
            json!("IPv4"),
            json!("80"),
            json!("10.0.0.1")
        ]
    );
    let rc = json!({"metadata": {"name": "gvisor"}, "handler": "runsc"});
    assert_eq!(
        table("node.k8s.io", "RuntimeClass", &rc)["rows"][0]["cells"][1],
        "runsc"
    );
    let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "ctrl-1"}});
    assert_eq!(
        table("coordination.k8s.io", "Lease", &lease)["rows"][0]["cells"][1],
        "ctrl-1"
    );
    let ic = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}});
    assert_eq!(
        row(&table("networking.k8s.io", "IngressClass", &ic))[..3],
        [
            json!("nginx"),
            json!("k8s.io/ingress-nginx"),
            json!("<none>")
        ]
    );
    let sc = json!({"metadata": {"name": "local", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "nodeless.dev/local"});
    assert_eq!(
        row(&table("storage.k8s.io", "StorageClass", &sc))[..5],
        [
            json!("local (default)"),
            json!("nodeless.dev/local"),
            json!("Delete"),
            json!("Immediate"),
            json!(false)
        ]
    );
    let rb = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}, {"kind": "User", "name": "u"}]});
    assert_eq!(
        table("rbac.authorization.k8s.io", "RoleBinding", &rb)["rows"][0]["cells"],
        json!(["b", "Role/r", "<unknown>", "u", "", "ns:sa"])
    );
}

#[test]
fn pod_rows_carry_completed_conditions() {
    let p = json!({"metadata": {"name": "p"}, "spec": {"containers": []}, "status": {"phase": "Failed"}});
    let t = table("", "Pod", &p);
    assert_eq!(t["rows"][0]["conditions"][0]["type"], "Completed");
    assert_eq!(t["rows"][0]["conditions"][0]["message"], "The pod failed.");
    assert_eq!(
        wide(&t),
        ["IP", "Node", "Nominated Node", "Readiness Gates"]
    );
}

fn column(name: &str, type_: &str, path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        json_path: path.into(),
        ..Default::default()
    }
}

#[test]
fn custom_resources_use_their_printer_columns() {
    let cols = vec![
        column("Replicas", "integer", ".spec.replicas"),
        column(
            "Ready",
            "string",
            ".status.conditions[?(@.type==\"Ready\")].status",
        ),
        column("Tags", "string", ".spec.tags"),
        column("Paused", "boolean", ".spec.paused"),
        PrinterColumn {
            priority: 1,
            description: "when".into(),
            ..column("Started", "date", ".status.startedAt")
        },
        column("Missing", "string", ".spec.nothing"),
    ];
    let w = json!({"metadata": {"name": "w1"}, "spec": {"replicas": 2, "tags": ["a", "b"], "paused": true},
                   "status": {"startedAt": "2024-05-01T10:00:00Z",
                              "conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}]}});
    let t = build_table(
        "example.com",
        "Widget",
        Some(&cols),
        &[&w],
        IncludeObject::Metadata,
        json!({}),
        now(),
    );
    assert_eq!(
        names(&t),
        ["Name", "Replicas", "Ready", "Tags", "Paused", "Started", "Missing"]
    );
    assert_eq!(
        t["columnDefinitions"][1]["description"],
        "Custom resource definition column (in JSONPath format): .spec.replicas"
    );
    assert_eq!(t["columnDefinitions"][5]["description"], "when");
    assert_eq!(t["columnDefinitions"][5]["priority"], 1);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "w1",
            2,
            "False",
            "[\"a\",\"b\"]",
            true,
            "2024-05-01T10:00:00Z",
            null
        ])
    );
}

#[test]
fn custom_resources_without_columns_get_an_age_column() {
    let w = json!({"metadata": {"name": "w1", "creationTimestamp": "2024-05-01T10:00:00Z"}});
    let t = build_table(
        "example.com",
        "Widget",
        Some(&[]),
        &[&w],
        IncludeObject::None,
        json!({}),
        now(),
    );
    assert_eq!(names(&t), ["Name", "Age"]);
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(t["rows"][0]["cells"], json!(["w1", "2024-05-01T10:00:00Z"]));
}

#[test]
fn printer_columns_are_read_from_crd_json() {
    let c = PrinterColumn::from_json(
        &json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "priority": 1}),
    );
    assert_eq!(
        c,
        PrinterColumn {
            name: "Age".into(),
            type_: "date".into(),
            priority: 1,
            json_path: ".metadata.creationTimestamp".into(),
            ..Default::default()
        }
    );
}
