#!/usr/bin/env bash
# End-to-end: the API server driven by the installed kubectl, as a user would drive a cluster.
source "$(dirname "$0")/lib/harness.sh"
# The API tier: the API server alone (tests/e2e/pods.sh runs the whole of `nodeless up`).
export NODELESS_CMD=apiserver

WORK=$(mktemp -d /tmp/nodeless-e2e-api.XXXXXX)
DIR="$WORK/data"
PORT=$(free_port)
trap 'stop_nodeless; rm -rf "$WORK"' EXIT
start_nodeless "$DIR" "$PORT" || exit 1
K() { kubectl --request-timeout=20s "$@"; }

echo "== discovery, health and auth"
expect_output "built-in namespaces exist" "kube-system" K get namespaces
expect_output "kubectl api-resources lists deployments" "deployments +deploy +apps/v1 +true +Deployment" K api-resources
expect_output "version is served" "Server Version: v1.32" K version
expect_output "requests without credentials get 401" "^401$" curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT/api/v1/namespaces"
expect_output "explain reads the OpenAPI document" "maxSurge" K explain deployment.spec.strategy.rollingUpdate
expect_output "auth can-i answers for the admin" "^yes$" K auth can-i create deployments
expect_output "auth whoami names the admin" "nodeless-admin" K auth whoami

echo "== create, get, list with selectors"
check "create a namespace" K create namespace team-a
check "create a configmap" K -n team-a create configmap settings --from-literal=mode=fast
expect_output "get it back" "^fast$" K -n team-a get configmap settings -o 'jsonpath={.data.mode}'
expect_output "configmap table columns" "NAME +DATA +AGE" K -n team-a get configmaps
for i in 1 2 3; do K -n team-a create configmap "tier-$i" >/dev/null && K -n team-a label configmap "tier-$i" "tier=t$i" >/dev/null; done
expect_output "set-based label selector" "^tier-1 tier-3$" bash -c "kubectl -n team-a get cm -l 'tier in (t1,t3)' -o jsonpath='{.items[*].metadata.name}'"
expect_output "not-equal label selector" "tier-2" bash -c "kubectl -n team-a get cm -l 'tier!=t1,tier' -o name"
expect_output "field selector on name" "^configmap/tier-2$" K -n team-a get cm --field-selector metadata.name=tier-2 -o name
expect_fail "unsupported field selector is refused" "not a known field selector" K -n team-a get cm --field-selector spec.foo=bar
check "generateName makes a name" bash -c "kubectl -n team-a create -f - <<<'{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"generateName\":\"gen-\"}}' | grep -E 'configmap/gen-[a-z0-9]{5} created'"

echo "== pagination"
for i in $(seq 1 23); do echo "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"page-$i\",\"labels\":{\"page\":\"yes\"}}}"; done | K -n team-a create -f - >/dev/null
expect_output "chunked list returns every item" "^23$" bash -c "kubectl -n team-a get cm -l page=yes --chunk-size=5 -o name | wc -l"

echo "== apply, three-way merge and prune"
cat >"$WORK/web.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: team-a
  labels: {app: web, stage: beta}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        ports: [{containerPort: 80}]
      - name: sidecar
        image: busybox
YAML
expect_output "apply creates" "deployment.apps/web created" K apply -f "$WORK/web.yaml"
expect_output "apply again is unchanged" "deployment.apps/web unchanged" K apply -f "$WORK/web.yaml"
expect_output "defaults are set (strategy)" "^RollingUpdate 25% 25%$" K -n team-a get deploy web -o 'jsonpath={.spec.strategy.type} {.spec.strategy.rollingUpdate.maxSurge} {.spec.strategy.rollingUpdate.maxUnavailable}'
expect_output "defaults are set (pod template)" "^Always ClusterFirst IfNotPresent$" K -n team-a get deploy web -o 'jsonpath={.spec.template.spec.restartPolicy} {.spec.template.spec.dnsPolicy} {.spec.template.spec.containers[0].imagePullPolicy}'
expect_output "generation starts at 1" "^1$" K -n team-a get deploy web -o 'jsonpath={.metadata.generation}'
sed -e 's/nginx:1.25/nginx:1.26/' -e 's/labels: {app: web, stage: beta}/labels: {app: web}/' -e 's/, {name: B, value: "2"}//' "$WORK/web.yaml" >"$WORK/web2.yaml"
expect_output "apply a change is configured" "deployment.apps/web configured" K apply -f "$WORK/web2.yaml"
expect_output "image updated, env B pruned, sidecar kept" "^nginx:1.26 A busybox$" K -n team-a get deploy web -o 'jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].env[*].name} {.spec.template.spec.containers[1].image}'
expect_output "label pruned" "^web$" K -n team-a get deploy web -o 'jsonpath={.metadata.labels.app}{.metadata.labels.stage}'
expect_output "generation bumped by the spec change" "^2$" K -n team-a get deploy web -o 'jsonpath={.metadata.generation}'
expect_output "deployment table columns" "NAME +READY +UP-TO-DATE +AVAILABLE +AGE" K -n team-a get deploy
expect_output "wide columns" "CONTAINERS +IMAGES +SELECTOR" K -n team-a get deploy -o wide

echo "== patch and scale"
check "strategic merge patch merges containers by name" K -n team-a patch deploy web -p '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.36"}]}}}}'
expect_output "other container untouched by the patch" "^nginx:1.26 busybox:1.36$" K -n team-a get deploy web -o 'jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[1].image}'
check "merge patch" K -n team-a patch deploy web --type=merge -p '{"metadata":{"annotations":{"team":"a"}}}'
check "json patch" K -n team-a patch deploy web --type=json -p '[{"op":"replace","path":"/spec/replicas","value":4}]'
expect_fail "json patch test failure is reported" "test|Test" K -n team-a patch deploy web --type=json -p '[{"op":"test","path":"/spec/replicas","value":9}]'
check "scale" K -n team-a scale deploy web --replicas=3
expect_output "scale changed spec.replicas" "^3$" K -n team-a get deploy web -o 'jsonpath={.spec.replicas}'
expect_fail "server-side apply says it is not supported" "server-side apply" K apply --server-side -f "$WORK/web.yaml"

echo "== status is separate from spec"
check "status write through the subresource" K -n team-a patch deploy web --subresource=status --type=merge -p '{"status":{"replicas":7}}'
expect_output "status written" "^7$" K -n team-a get deploy web -o 'jsonpath={.status.replicas}'
K -n team-a patch deploy web --type=merge -p '{"status":{"replicas":1}}' >/dev/null 2>&1
expect_output "main resource write leaves status alone" "^7$" K -n team-a get deploy web -o 'jsonpath={.status.replicas}'

echo "== validation and bad input"
expect_fail "deployment without selector" "spec.selector: Required value" bash -c "kubectl create -f - <<<'{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"nosel\"},\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}}}'"
expect_fail "selector that does not match the template" "selector. does not match template .labels" bash -c "kubectl create -f - <<<'{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"badsel\"},\"spec\":{\"selector\":{\"matchLabels\":{\"a\":\"x\"}},\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}}}'"
expect_fail "invalid name" "RFC 1123" K create configmap Bad_Name
expect_fail "unknown field is refused (strict validation)" "unknown field \"spec.replica\"" bash -c "kubectl apply -f - <<<'{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"typo\"},\"spec\":{\"replica\":1,\"selector\":{\"matchLabels\":{\"a\":\"b\"}},\"template\":{\"metadata\":{\"labels\":{\"a\":\"b\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"x\"}]}}}}'"
expect_output "malformed JSON is a 400" "^400$" curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$DIR/pki/admin.token")" -H 'Content-Type: application/json' -d '{"apiVersion": "v1", "kind": ' "https://127.0.0.1:$PORT/api/v1/namespaces/default/configmaps"
expect_output "wrong type is a 400 naming the field" "replicas" curl -sk -H "Authorization: Bearer $(cat "$DIR/pki/admin.token")" -H 'Content-Type: application/json' -d '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"t"},"spec":{"replicas":"two"}}' "https://127.0.0.1:$PORT/apis/apps/v1/namespaces/default/deployments"
head -c 3200000 /dev/zero | tr '\0' 'a' | python3 -c 'import sys,json; print(json.dumps({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"huge"},"data":{"a":sys.stdin.read()}}))' >"$WORK/huge.json"
expect_output "bodies over 3 MiB get 413" "^413$" curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$DIR/pki/admin.token")" -H 'Content-Type: application/json' --data-binary @"$WORK/huge.json" "https://127.0.0.1:$PORT/api/v1/namespaces/default/configmaps"
head -c 2000000 /dev/zero | tr '\0' 'a' | python3 -c 'import sys,json; print(json.dumps({"apiVersion":"apps/v1","kind":"ControllerRevision","metadata":{"name":"big"},"revision":1,"data":{"a":sys.stdin.read()}}))' >"$WORK/big.json"
expect_output "objects over the store limit get a clear 413" "too large to store" curl -sk -H "Authorization: Bearer $(cat "$DIR/pki/admin.token")" -H 'Content-Type: application/json' --data-binary @"$WORK/big.json" "https://127.0.0.1:$PORT/apis/apps/v1/namespaces/default/controllerrevisions"
expect_output "unknown resource is a 404" "^404$" curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$DIR/pki/admin.token")" "https://127.0.0.1:$PORT/api/v1/widgets"

echo "== optimistic concurrency and dry run"
K -n team-a get cm settings -o json >"$WORK/settings.json"
check "update with the current resourceVersion" K -n team-a label cm settings fresh=yes
expect_fail "update with a stale resourceVersion conflicts" "the object has been modified" K replace -f "$WORK/settings.json"
check "server dry run" K -n team-a create configmap dry --dry-run=server
expect_fail "dry run stored nothing" "not found" K -n team-a get configmap dry

expect_fail "server dry run of an existing name conflicts" "already exists" K -n team-a create configmap settings --dry-run=server
expect_fail "built-in namespaces are protected" "may not be deleted" K delete namespace default --wait=false

echo "== eviction honours PodDisruptionBudgets"
K -n team-a run evictee --image=busybox --labels=app=evictee >/dev/null
K -n team-a patch pod evictee --subresource=status --type=merge -p '{"status":{"phase":"Running"}}' >/dev/null
K -n team-a create pdb evictee --selector=app=evictee --min-available=1 >/dev/null
TOKEN=$(cat "$DIR/pki/admin.token")
expect_output "eviction that would break the budget gets 429" "^429$" curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"evictee","namespace":"team-a"}}' "https://127.0.0.1:$PORT/api/v1/namespaces/team-a/pods/evictee/eviction"
check "the pod is still there" K -n team-a get pod evictee
K -n team-a delete pdb evictee >/dev/null
expect_output "eviction without a budget deletes the pod" "^201$" curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"evictee","namespace":"team-a"}}' "https://127.0.0.1:$PORT/api/v1/namespaces/team-a/pods/evictee/eviction"

echo "== kubectl's typed commands (protobuf bodies)"
check "create secret" K -n team-a create secret generic creds --from-literal=password=s3cret
expect_output "secret data is base64" "^czNjcmV0$" K -n team-a get secret creds -o 'jsonpath={.data.password}'
check "create deployment" K -n team-a create deployment typed --image=nginx --replicas=2
check "create job" K -n team-a create job once --image=busybox
check "create cronjob" K -n team-a create cronjob tick --image=busybox --schedule='*/5 * * * *'
check "create service" K -n team-a create service clusterip typed --tcp=80:8080
expect_output "a ClusterIP is allocated" "^10\.(9[6-9]|10[0-9]|11[01])\." K -n team-a get svc typed -o 'jsonpath={.spec.clusterIP}'
check "autoscale (autoscaling/v1, stored as v2)" K -n team-a autoscale deployment typed --max=3 --cpu-percent=60
expect_output "the HPA reads back through v2" "averageUtilization\":60" K -n team-a get hpa typed -o 'jsonpath={.spec.metrics}'
expect_output "hpa table columns" "NAME +REFERENCE +TARGETS +MINPODS +MAXPODS +REPLICAS +AGE" K -n team-a get hpa

echo "== watch"
K -n team-a get cm --watch-only --output-watch-events >"$WORK/watch.out" 2>&1 &
WPID=$!
sleep 1
K -n team-a create configmap watched >/dev/null
K -n team-a delete configmap watched >/dev/null
eventually "watch sees ADDED and DELETED" 10 bash -c "grep -qE 'ADDED +watched' '$WORK/watch.out' && grep -qE 'DELETED +watched' '$WORK/watch.out'"
kill $WPID 2>/dev/null; wait $WPID 2>/dev/null

echo "== custom resources"
cat >"$WORK/crd.yaml" <<'YAML'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}, scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}}
    additionalPrinterColumns:
    - {name: Size, type: string, jsonPath: .spec.size}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: string, enum: [small, large]}
              replicas: {type: integer, minimum: 0, maximum: 10}
          status:
            type: object
            properties: {replicas: {type: integer}}
YAML
check "create a CRD" K apply -f "$WORK/crd.yaml"
check "the CRD becomes Established" K wait --for condition=established --timeout=20s crd/widgets.example.com
eventually "widgets are discoverable" 10 bash -c "kubectl api-resources | grep -q '^widgets '"
check "create a widget" bash -c "kubectl -n team-a apply -f - <<<'{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"w1\"},\"spec\":{\"size\":\"small\",\"replicas\":1}}'"
expect_output "printer columns are shown" "NAME +SIZE +REPLICAS" K -n team-a get wd
expect_output "printer column values" "w1 +small +1" K -n team-a get widgets
widget_errors=$(kubectl -n team-a apply -f - 2>&1 <<<'{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w2"},"spec":{"size":"huge","replicas":50}}')
expect_output "schema violation: enum" 'spec.size: Unsupported value: "huge"' echo "$widget_errors"
expect_output "schema violation: maximum, in the same response" "spec.replicas: Invalid value: 50" echo "$widget_errors"
check "scale a custom resource" K -n team-a scale widget w1 --replicas=5
expect_output "scale reached the custom resource" "^5$" K -n team-a get widget w1 -o 'jsonpath={.spec.replicas}'

echo "== garbage collection and cascading deletion"
owner_uid=$(K -n team-a create configmap owner -o jsonpath='{.metadata.uid}')
mkdep() { K -n team-a create -f - <<<"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"$1\",\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"owner\",\"uid\":\"$owner_uid\",\"blockOwnerDeletion\":true}]}}" >/dev/null; }
mkdep dep-1
check "background deletion of the owner" K -n team-a delete configmap owner
eventually "the dependent is collected" 10 bash -c "! kubectl -n team-a get configmap dep-1 2>/dev/null"
owner_uid=$(K -n team-a create configmap owner -o jsonpath='{.metadata.uid}')
mkdep dep-2
check "orphaning deletion" K -n team-a delete configmap owner --cascade=orphan
eventually "the owner is gone" 10 bash -c "! kubectl -n team-a get configmap owner 2>/dev/null"
expect_output "the orphan stays, without its owner reference" "^dep-2:$" K -n team-a get configmap dep-2 -o 'jsonpath={.metadata.name}:{.metadata.ownerReferences}'
owner_uid=$(K -n team-a create configmap owner -o jsonpath='{.metadata.uid}')
mkdep dep-3
check "foreground deletion waits for dependents" K -n team-a delete configmap owner --cascade=foreground --timeout=20s
expect_fail "the dependent went first" "not found" K -n team-a get configmap dep-3

echo "== namespace deletion"
check "delete the namespace" K delete namespace team-a --wait=false
expect_output "the namespace is Terminating meanwhile or gone" "Terminating|not found" K get namespace team-a
eventually "the namespace and its contents are gone" 30 bash -c "! kubectl get namespace team-a 2>/dev/null"
expect_fail "creating in a missing namespace fails" "not found" K -n team-a create configmap x

echo "== durability: kill -9 during writes"
K create namespace durable >/dev/null
ACKED="$WORK/acked"
: >"$ACKED"
( for i in $(seq 1 400); do
    if kubectl -n durable create configmap "d-$i" >/dev/null 2>&1; then echo "d-$i" >>"$ACKED"; fi
  done ) &
WRITER=$!
sleep 2
kill -9 "$NODELESS_PID"; wait "$NODELESS_PID" 2>/dev/null; NODELESS_PID=
wait "$WRITER" 2>/dev/null
acked=$(wc -l <"$ACKED")
start_nodeless "$DIR" "$PORT" || exit 1
present=$(K -n durable get cm -o name | sed 's#configmap/##' | sort)
missing=$(sort "$ACKED" | comm -23 - <(echo "$present"))
if [ "$acked" -gt 0 ] && [ -z "$missing" ]; then pass "all $acked acknowledged writes survived kill -9"; else fail "acknowledged writes survived kill -9" "acked=$acked missing=$missing"; fi

echo "== restart with SIGTERM resumes"
rv_before=$(K get ns durable -o 'jsonpath={.metadata.resourceVersion}')
stop_nodeless
start_nodeless "$DIR" "$PORT" || exit 1
expect_output "data is there after a clean restart" "durable" K get namespaces
expect_output "a watch from before the restart's history gets 410 Gone" "\"code\":410" curl -sk -m 5 -H "Authorization: Bearer $(cat "$DIR/pki/admin.token")" "https://127.0.0.1:$PORT/api/v1/namespaces/durable/configmaps?watch=1&resourceVersion=1"
check "resource versions never go backwards" bash -c "K() { kubectl \"\$@\"; }; rv=\$(kubectl create configmap after-restart -o jsonpath='{.metadata.resourceVersion}'); [ \"\$rv\" -gt \"$rv_before\" ]"

summary
