use super::*;
use serde_json::json;

#[test]
fn cluster_ip_service_gets_affinity_ports_and_families() {
    let s = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"selector": {"app": "web"},
        "ports": [{"port": 80}, {"port": 443, "targetPort": "https", "protocol": "TCP"}, {"port": 53, "protocol": "UDP", "targetPort": 0}]}}),
    );
    let spec = &s["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(spec["ports"][1]["targetPort"], "https");
    assert_eq!(
        spec["ports"][2],
        json!({"port": 53, "protocol": "UDP", "targetPort": 53})
    );
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert!(spec.get("externalTrafficPolicy").is_none());
    assert!(
        spec.get("clusterIP").is_none(),
        "allocation is the registry's"
    );
}

#[test]
fn load_balancer_and_external_name_services_differ() {
    let lb = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.example"}]}}}),
    );
    assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(
        lb["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
    assert_eq!(lb["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP");
    assert!(lb["status"]["loadBalancer"]["ingress"][1]
        .get("ipMode")
        .is_none());
    let ext = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"type": "ExternalName", "externalName": "db.example",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}}),
    );
    for absent in [
        "internalTrafficPolicy",
        "ipFamilyPolicy",
        "ipFamilies",
        "externalTrafficPolicy",
        "sessionAffinityConfig",
    ] {
        assert!(ext["spec"].get(absent).is_none(), "{absent}");
    }
}

#[test]
fn secret_namespace_and_claim_defaults() {
    assert_eq!(defaulted("", "v1", "Secret", json!({}))["type"], "Opaque");
    assert_eq!(
        defaulted("", "v1", "Secret", json!({"type": "kubernetes.io/tls"}))["type"],
        "kubernetes.io/tls"
    );
    let ns = defaulted(
        "",
        "v1",
        "Namespace",
        json!({"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "other"}}}),
    );
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );
    assert_eq!(ns["status"]["phase"], "Active");
    assert!(
        ns.get("spec").is_none(),
        "the finalizer is the registry's, on create only"
    );
    let terminating = defaulted(
        "",
        "v1",
        "Namespace",
        json!({"metadata": {"name": "t"}, "status": {"phase": "Terminating"}}),
    );
    assert_eq!(terminating["status"]["phase"], "Terminating");
    let pvc = defaulted(
        "",
        "v1",
        "PersistentVolumeClaim",
        json!({"spec": {"accessModes": ["ReadWriteOnce"]}}),
    );
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["status"]["phase"], "Pending");
}

#[test]
fn namespace_on_create_adds_the_kubernetes_finalizer_once() {
    let mut ns = json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["example.com/x"]}, "status": {"phase": "Terminating"}});
    namespace_on_create(&mut ns);
    namespace_on_create(&mut ns);
    assert_eq!(
        ns["spec"]["finalizers"],
        json!(["example.com/x", "kubernetes"])
    );
    assert_eq!(ns["status"], json!({"phase": "Active"}));
    let mut bare = json!({"metadata": {"name": "b"}});
    namespace_on_create(&mut bare);
    assert_eq!(bare["spec"]["finalizers"], json!(["kubernetes"]));
}

#[test]
fn endpoints_node_and_limit_range_defaults() {
    let ep = defaulted(
        "",
        "v1",
        "Endpoints",
        json!({"subsets": [{"ports": [{"port": 80}]}]}),
    );
    assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
    let node = defaulted(
        "",
        "v1",
        "Node",
        json!({"status": {"capacity": {"cpu": "4"}}}),
    );
    assert_eq!(node["status"]["allocatable"], json!({"cpu": "4"}));
    let lr = defaulted(
        "",
        "v1",
        "LimitRange",
        json!({"spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "100m", "ephemeral-storage": "1Gi"}, "default": {"memory": "512Mi"}},
        {"type": "Pod", "max": {"cpu": "4"}}]}}),
    );
    let item = &lr["spec"]["limits"][0];
    assert_eq!(item["default"], json!({"memory": "512Mi", "cpu": "2"}));
    assert_eq!(
        item["defaultRequest"],
        json!({"memory": "512Mi", "cpu": "2", "ephemeral-storage": "1Gi"})
    );
    assert!(lr["spec"]["limits"][1].get("default").is_none());
}

#[test]
fn networking_discovery_rbac_scheduling_and_storage_defaults() {
    let np = defaulted(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        json!({"spec": {"podSelector": {},
        "egress": [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 443}]}]}}),
    );
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        np["spec"]["egress"][0]["ports"],
        json!([{"port": 53, "protocol": "UDP"}, {"port": 443, "protocol": "TCP"}])
    );
    let ic = defaulted(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        json!({"spec": {"parameters": {"kind": "X", "name": "y"}}}),
    );
    assert_eq!(ic["spec"]["parameters"]["scope"], "Cluster");
    let es = defaulted(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        json!({"addressType": "IPv4", "ports": [{"port": 80}]}),
    );
    assert_eq!(
        es["ports"][0],
        json!({"port": 80, "name": "", "protocol": "TCP"})
    );
    let rb = defaulted(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        json!({"roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "d"}]}),
    );
    assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert!(rb["subjects"][1].get("apiGroup").is_none());
    let pc = defaulted(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        json!({"value": 10}),
    );
    assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
    let sc = defaulted(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        json!({"provisioner": "x", "reclaimPolicy": "Retain"}),
    );
    assert_eq!(sc["reclaimPolicy"], "Retain");
    assert_eq!(sc["volumeBindingMode"], "Immediate");
}

#[test]
fn crd_gets_names_conversion_and_stored_versions() {
    let crd = defaulted(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        json!({"spec": {"group": "example.com",
        "names": {"plural": "foos", "kind": "Foo"}, "scope": "Namespaced",
        "versions": [{"name": "v1beta1", "served": true, "storage": false}, {"name": "v1", "served": true, "storage": true}]}}),
    );
    assert_eq!(crd["spec"]["names"]["singular"], "foo");
    assert_eq!(crd["spec"]["names"]["listKind"], "FooList");
    assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    let webhook = defaulted(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        json!({"spec": {"conversion": {"strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {"service": {"name": "s", "namespace": "n"}}}}}}),
    );
    assert_eq!(
        webhook["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"],
        443
    );
}

#[test]
fn secret_string_data_is_folded_into_data() {
    let s = defaulted(
        "",
        "v1",
        "Secret",
        json!({"data": {"a": "eA==", "b": "eA=="}, "stringData": {"b": "hello", "c": "c"}}),
    );
    assert_eq!(s["data"]["a"], "eA==");
    assert_eq!(s["data"]["b"], "aGVsbG8=");
    assert_eq!(s["data"]["c"], "Yw==");
    assert!(s.get("stringData").is_none());
}
