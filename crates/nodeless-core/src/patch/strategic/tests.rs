use crate::patch::typegraph::TypeRef;
use crate::patch::PatchError;
use serde_json::{json, Value};

fn patch(group: &str, kind: &str, original: Value, patch: Value) -> Result<Value, PatchError> {
    let root = TypeRef::root(group, kind).expect("built-in kind");
    super::apply(&original, patch.to_string().as_bytes(), root)
}

fn pod_patch(original: Value, p: Value) -> Value {
    patch("", "Pod", original, p).expect("patch applies")
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("?"))
        .collect()
}

fn web_pod() -> Value {
    json!({
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1.0",
                    "args": ["--a", "--b"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "terminationMessagePath": "/dev/termination-log"
                },
                {"name": "sidecar", "image": "envoy:1"}
            ]
        }
    })
}

#[test]
fn containers_merge_by_name_keeping_untouched_fields() {
    let out = pod_patch(
        web_pod(),
        json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.1"}]}}),
    );
    let app = &out["spec"]["containers"][0];
    assert_eq!(app["image"], "nginx:1.1");
    assert_eq!(app["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(app["env"].as_array().map(Vec::len), Some(2));
    assert_eq!(names(&out["spec"]["containers"]), ["app", "sidecar"]);
}

#[test]
fn env_merges_by_name() {
    let p = json!({"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]}]}});
    let out = pod_patch(web_pod(), p);
    assert_eq!(
        out["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}])
    );
}

#[test]
fn ports_merge_by_container_port() {
    let p = json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]}});
    let out = pod_patch(web_pod(), p);
    assert_eq!(
        out["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}])
    );
}

#[test]
fn new_items_go_before_server_only_items_as_upstream() {
    // Upstream's mergeSortedSlice places an item the original lacked ahead of the
    // server-only items when no $setElementOrder says otherwise.
    let p = json!({"spec": {"containers": [{"name": "debug", "image": "busybox"}]}});
    let out = pod_patch(web_pod(), p);
    assert_eq!(
        names(&out["spec"]["containers"]),
        ["debug", "app", "sidecar"]
    );
}

#[test]
fn patched_existing_items_keep_their_place() {
    let p = json!({"spec": {"containers": [{"name": "sidecar", "image": "envoy:2"}]}});
    let out = pod_patch(web_pod(), p);
    assert_eq!(names(&out["spec"]["containers"]), ["app", "sidecar"]);
    assert_eq!(out["spec"]["containers"][1]["image"], "envoy:2");
}

#[test]
fn patch_delete_directive_removes_a_container() {
    let p = json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}});
    let out = pod_patch(web_pod(), p);
    assert_eq!(names(&out["spec"]["containers"]), ["app"]);
}

#[test]
fn patch_replace_directive_in_a_list_replaces_it() {
    let p =
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}});
    let out = pod_patch(web_pod(), p);
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "only", "image": "x"}])
    );
}

#[test]
fn patch_replace_directive_in_a_map_replaces_it() {
    let p = json!({"metadata": {"labels": {"$patch": "replace", "new": "1"}}});
    let out = pod_patch(web_pod(), p);
    assert_eq!(out["metadata"]["labels"], json!({"new": "1"}));
}

#[test]
fn patch_delete_directive_in_a_map_empties_it() {
    let p = json!({"metadata": {"labels": {"$patch": "delete"}}});
    let out = pod_patch(web_pod(), p);
    assert_eq!(out["metadata"]["labels"], json!({}));
}

#[test]
fn unknown_or_merge_directives_are_rejected() {
    let in_map = json!({"metadata": {"labels": {"$patch": "bogus"}}});
    assert!(matches!(
        patch("", "Pod", web_pod(), in_map),
        Err(PatchError::StrategicMergeFailed(_))
    ));
    let in_list = json!({"spec": {"containers": [{"name": "app", "$patch": "merge"}]}});
    assert!(matches!(
        patch("", "Pod", web_pod(), in_list),
        Err(PatchError::StrategicMergeFailed(_))
    ));
}

#[test]
fn null_deletes_a_label() {
    let out = pod_patch(web_pod(), json!({"metadata": {"labels": {"tier": null}}}));
    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn null_for_a_missing_key_is_ignored() {
    let out = pod_patch(
        web_pod(),
        json!({"metadata": {"annotations": null, "labels": {"nope": null}}}),
    );
    assert_eq!(out, web_pod());
}

#[test]
fn lists_without_merge_strategy_are_replaced() {
    let p = json!({"spec": {"containers": [{"name": "app", "args": ["--c"]}]}});
    let out = pod_patch(web_pod(), p);
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["--c"]));
}

#[test]
fn set_element_order_reorders_containers() {
    let p =
        json!({"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}});
    let out = pod_patch(web_pod(), p);
    assert_eq!(names(&out["spec"]["containers"]), ["sidecar", "app"]);
    assert_eq!(out["spec"]["containers"][1]["image"], "nginx:1.0");
}

#[test]
fn set_element_order_places_new_items_and_keeps_server_only_ones() {
    let mut original = web_pod();
    original["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}, {"name": "INJECTED", "value": "x"}, {"name": "B", "value": "2"}]);
    let p = json!({"spec": {"containers": [{
        "name": "app",
        "$setElementOrder/env": [{"name": "B"}, {"name": "NEW"}, {"name": "A"}],
        "env": [{"name": "NEW", "value": "n"}]
    }]}});
    let out = pod_patch(original, p);
    // INJECTED stood before B in the live list, so upstream's interleaving keeps it first.
    assert_eq!(
        names(&out["spec"]["containers"][0]["env"]),
        ["INJECTED", "B", "NEW", "A"]
    );
}

#[test]
fn an_item_added_while_another_is_deleted_lands_after_server_only_items() {
    // Upstream reads the live order from storage the merge reused (the deletion frees a slot
    // the new item is written into), so "three" ends up after the server-only "four".
    let original = json!({"spec": {"containers": [{"name": "one"}, {"name": "two", "image": "b"}, {"name": "four", "image": "c"}]}});
    let p = json!({"spec": {
        "$setElementOrder/containers": [{"name": "two"}, {"name": "three"}],
        "containers": [{"name": "three"}, {"name": "one", "$patch": "delete"}]
    }});
    let out = pod_patch(original, p);
    assert_eq!(names(&out["spec"]["containers"]), ["two", "four", "three"]);
}

#[test]
fn primitive_merge_lists_take_the_patch_order_for_patched_values() {
    let original = json!({"metadata": {"finalizers": ["1", "2", "3"]}});
    let out = pod_patch(
        original.clone(),
        json!({"metadata": {"finalizers": ["3", "1", "2"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["3", "1", "2"]));
    let out = pod_patch(original, json!({"metadata": {"finalizers": ["3", "1"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["2", "3", "1"]));
}

#[test]
fn set_element_order_must_agree_with_the_patch_list() {
    let p = json!({"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
        "containers": [{"name": "sidecar", "image": "s"}, {"name": "app", "image": "a"}]
    }});
    assert!(matches!(
        patch("", "Pod", web_pod(), p),
        Err(PatchError::StrategicMergeFailed(_))
    ));
}

#[test]
fn retain_keys_switching_rolling_update_to_recreate_drops_rolling_update() {
    let deployment = json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
        }
    });
    let p = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let out = patch("apps", "Deployment", deployment, p).expect("applies");
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(out["spec"]["replicas"], 2);
}

#[test]
fn retain_keys_on_a_volume_switches_its_source() {
    let mut pod = web_pod();
    pod["spec"]["volumes"] = json!([
        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
        {"name": "data", "emptyDir": {}}
    ]);
    let p = json!({"spec": {
        "$setElementOrder/volumes": [{"name": "cfg"}, {"name": "data"}],
        "volumes": [{"$retainKeys": ["name", "secret"], "name": "cfg", "secret": {"secretName": "s"}}]
    }});
    let out = pod_patch(pod, p);
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "cfg", "secret": {"secretName": "s"}}, {"name": "data", "emptyDir": {}}])
    );
}

#[test]
fn retain_keys_must_list_every_patched_key() {
    let deployment = json!({"spec": {"strategy": {"type": "RollingUpdate"}}});
    let p = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate", "rollingUpdate": {}}}});
    let err = patch("apps", "Deployment", deployment, p).expect_err("rejected");
    assert!(matches!(err, PatchError::InvalidStrategicPatch(_)), "{err}");
    assert_eq!(err.to_string(), "invalid patch format of retainKeys");
}

#[test]
fn primitive_merge_lists_union_and_delete() {
    let original = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}});
    let out = pod_patch(
        original.clone(),
        json!({"metadata": {"finalizers": ["c", "a"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let out = pod_patch(
        original,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn deletion_lists_follow_upstream_quirks() {
    let original = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}, "spec": {"containers": [{"name": "c", "args": ["x", "y"]}]}});
    // A null deletion list deletes the field; a non-list one is ignored.
    let out = pod_patch(
        original.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": null}}),
    );
    assert_eq!(out["metadata"].get("finalizers"), None);
    let out = pod_patch(
        original.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
    );
    assert_eq!(out, original);
    // Deletion applies to lists without the merge strategy too.
    let p =
        json!({"spec": {"containers": [{"name": "c", "$deleteFromPrimitiveList/args": ["x"]}]}});
    assert_eq!(
        pod_patch(original, p)["spec"]["containers"][0]["args"],
        json!(["y"])
    );
}

#[test]
fn new_values_lose_nulls_and_directive_maps_as_upstream() {
    let original = json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "app"}]}});
    let p = json!({"spec": {
        "securityContext": {"$patch": "delete"},
        "affinity": {"nodeAffinity": null, "podAffinity": {"$patch": "replace"}},
        "tolerations": [{"key": "a", "value": null}, {"$patch": "delete"}],
        "containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": null}}}]
    }});
    let out = pod_patch(original, p);
    assert_eq!(out["spec"].get("securityContext"), None);
    assert_eq!(out["spec"]["affinity"], json!({}));
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "a"}]));
    assert_eq!(
        out["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "1"}})
    );
}

#[test]
fn deleting_from_an_absent_primitive_list_changes_nothing() {
    let original = json!({"metadata": {"name": "x"}});
    let out = pod_patch(
        original.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    );
    assert_eq!(out, original);
}

#[test]
fn owner_references_merge_by_uid() {
    let original = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "rs-a"}]}});
    let p = json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "rs-b"}, {"uid": "1", "controller": true}]}});
    let out = patch("apps", "ReplicaSet", original, p).expect("applies");
    assert_eq!(
        out["metadata"]["ownerReferences"],
        json!([{"uid": "2", "name": "rs-b"}, {"uid": "1", "name": "rs-a", "controller": true}])
    );
}

#[test]
fn status_conditions_merge_by_type() {
    let original = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Scheduled", "status": "True"}]}});
    let p = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let out = pod_patch(original, p);
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "Scheduled", "status": "True"}])
    );
}

#[test]
fn pod_template_of_a_deployment_is_a_pod_spec() {
    let deployment = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}}}});
    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "3"}]}}}});
    let out = patch("apps", "Deployment", deployment, p).expect("applies");
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "1"}, {"name": "b", "image": "3"}])
    );
}

#[test]
fn untyped_kinds_merge_maps_and_replace_lists() {
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {}});
    let out = patch("", "ConfigMap", cm, json!({"data": {"b": null, "c": "3"}})).expect("applies");
    assert_eq!(out["data"], json!({"a": "1", "c": "3"}));
}

#[test]
fn pdb_selector_is_replaced_whole() {
    let pdb = json!({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "fe"}}}});
    let p = json!({"spec": {"selector": {"matchLabels": {"app": "api"}}}});
    let out = patch("policy", "PodDisruptionBudget", pdb, p).expect("applies");
    assert_eq!(
        out["spec"]["selector"],
        json!({"matchLabels": {"app": "api"}})
    );
}

#[test]
fn values_added_where_nothing_was_have_directives_resolved() {
    let original = json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "app"}]}});
    let p = json!({"spec": {"containers": [{
        "name": "app",
        "$setElementOrder/env": [{"name": "A"}],
        "env": [{"name": "A", "value": "1", "valueFrom": null}, {"name": "GONE", "$patch": "delete"}]
    }]}});
    let out = pod_patch(original, p);
    assert_eq!(
        out["spec"]["containers"][0],
        json!({"name": "app", "env": [{"name": "A", "value": "1"}]})
    );
}

#[test]
fn a_value_of_another_type_is_replaced() {
    let out = pod_patch(
        json!({"spec": {"nodeSelector": "oops"}}),
        json!({"spec": {"nodeSelector": {"a": "b"}}}),
    );
    assert_eq!(out["spec"]["nodeSelector"], json!({"a": "b"}));
}

#[test]
fn merge_list_items_without_the_merge_key_are_rejected() {
    let p = json!({"spec": {"containers": [{"image": "nameless"}]}});
    let err = patch("", "Pod", web_pod(), p).expect_err("no merge key");
    assert!(
        err.to_string()
            .contains("does not contain declared merge key: name"),
        "{err}"
    );
}

#[test]
fn malformed_strategic_patches_are_errors_not_panics() {
    let cases = [
        json!([{"spec": {}}]),
        json!("string"),
        json!({"spec": {"containers": [["nested"]]}}),
        json!({"spec": {"containers": [{"name": "x"}, "mixed"]}}),
        json!({"spec": {"$setElementOrder/containers": "nope"}}),
        json!({"spec": {"$setElementOrderX/containers": []}}),
        json!({"spec": {"$setElementOrder/containers": [{"name": "app"}], "containers": {"a": 1}}}),
        json!({"spec": {"$setElementOrder/containers": ["app"]}}),
        json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
        json!({"metadata": {"labels": {"$retainKeys": "app"}}}),
        json!({"spec": {"containers": [{"name": "app", "$patch": 7}]}}),
        json!({"spec": {"containers": [{"$patch": "delete"}]}}),
        json!({"$patch": ["delete"]}),
    ];
    for p in cases {
        let result = patch("", "Pod", web_pod(), p.clone());
        assert!(result.is_err(), "{p} should fail but gave {result:?}");
    }
    // A map where the original has a list is a change of type: upstream replaces the value
    // and leaves the rejection to typed decoding.
    let odd = pod_patch(web_pod(), json!({"spec": {"containers": {"name": "app"}}}));
    assert_eq!(odd["spec"]["containers"], json!({"name": "app"}));
}

#[test]
fn top_level_replace_replaces_the_object() {
    let out = pod_patch(
        web_pod(),
        json!({"$patch": "replace", "metadata": {"name": "web"}}),
    );
    assert_eq!(out, json!({"metadata": {"name": "web"}}));
}

/// What kubectl apply (client side, kubectl v1.32) sends after a config change: the
/// three-way patch computed from last-applied, the new config and the live object, with
/// `$setElementOrder` lists, `$patch: delete` for removed list items, nulls for removed
/// fields and `$retainKeys` for the strategy switch.
#[test]
fn kubectl_apply_three_way_patch_updates_and_prunes_like_upstream() {
    let live = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "team": "a"},
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                "kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}\n"
            }
        },
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.25",
                            "imagePullPolicy": "IfNotPresent",
                            "env": [{"name": "MODE", "value": "dev"}, {"name": "OLD", "value": "x"}],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        },
                        {"name": "injected-proxy", "image": "proxy:1"}
                    ],
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "terminationGracePeriodSeconds": 30
                }
            }
        },
        "status": {"replicas": 2}
    });
    // last-applied had labels {app, team}, env [MODE, OLD], port 80, default strategy;
    // the new config drops label team and env OLD, adds env LEVEL and port 443, bumps the
    // image and switches to Recreate.
    let kubectl_patch = json!({
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}\n"},
            "labels": {"team": null}
        },
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": "MODE"}, {"name": "LEVEL"}],
                    "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
                    "env": [{"name": "LEVEL", "value": "debug"}, {"$patch": "delete", "name": "OLD"}],
                    "image": "nginx:1.27",
                    "name": "web",
                    "ports": [{"containerPort": 443}]
                }]
            }}
        }
    });
    let out = patch("apps", "Deployment", live.clone(), kubectl_patch).expect("applies");

    assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        out["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"new\":true}\n"
    );
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    let containers = &out["spec"]["template"]["spec"]["containers"];
    // The container kubectl does not manage stays, after the ones it orders.
    assert_eq!(names(containers), ["web", "injected-proxy"]);
    let web = &containers[0];
    assert_eq!(web["image"], "nginx:1.27");
    assert_eq!(
        web["env"],
        json!([{"name": "MODE", "value": "dev"}, {"name": "LEVEL", "value": "debug"}])
    );
    assert_eq!(
        web["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}])
    );
    assert_eq!(web["terminationMessagePolicy"], "File");
    assert_eq!(out["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(out["status"], live["status"]);
}

#[test]
fn kubectl_apply_removing_a_container_sends_a_delete_directive() {
    let live = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "a"}, {"name": "worker", "image": "b"}
    ]}}}});
    let kubectl_patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{"$patch": "delete", "name": "worker"}]
    }}}});
    let out = patch("apps", "Deployment", live, kubectl_patch).expect("applies");
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "a"}])
    );
}
