#!/usr/bin/env bash
# End-to-end: per-second billing and spot instances under `nodeless up`, driven by kubectl
# 1.32 and `nodeless bill`. An on-demand and a spot Deployment share a 4-vCPU pool; on-demand
# demand grows, spot Pods get the notice, end BidFailed and come back when capacity returns;
# a kill -9 of nodeless up in the middle leaves the ledger exact. Needs root.
source "$(dirname "$0")/lib/harness.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then echo "skipped: the host agent needs root"; echo "0 passed, 0 failed"; exit 0; fi
WORK=$(mktemp -d /tmp/nodeless-e2e-billing.XXXXXX)
DATA="$WORK/data"
PORT=$(free_port); RPORT=$(free_port); NPORT=$(free_port)
cleanup() {
  if [ -n "${NODELESS_PID:-}" ]; then
    kubectl delete deploy --all --wait=false >/dev/null 2>&1
    kubectl delete pods --all --grace-period=0 --force --wait=false >/dev/null 2>&1
    sleep 1
  fi
  stop_nodeless
  cp "$DATA.log" "${TMPDIR:-/tmp}/nodeless-e2e-billing.log" 2>/dev/null
  remove_instances "$DATA/engine"
  stop_registry
  rm -rf "$WORK"
}
trap cleanup EXIT
start_registry "$WORK/registry" "$RPORT" || exit 1
bash "$HERE/../../scripts/test-images.sh" "127.0.0.1:$RPORT" >/dev/null || { echo "cannot push test images"; exit 1; }
UP_FLAGS=(--registry-mirror "docker.io=http://127.0.0.1:$RPORT" --node-listen "127.0.0.1:$NPORT"
  --pool-capacity cpu=4,memory=16Gi --spot-notice 5s --cost-interval 2s --price-catalog "$HERE/billing/catalog.yaml")
start_nodeless "$DATA" "$PORT" "${UP_FLAGS[@]}" || exit 1
K() { kubectl "$@"; }
BILL() { "$NODELESS_BIN" bill "$@"; }
running() { kubectl get pods -l "app=$1" --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l; }
# json_check PYTHON: runs a Python check over `nodeless bill -o json --by pod` as `r`.
json_check() { BILL -o json --by pod -n default | python3 -c "import json,sys,math,datetime,decimal; r=json.load(sys.stdin); $1"; }

echo "== bad input"
expect_fail "nodeless bill refuses an unknown grouping" "use pod, workload or namespace" BILL --by colour
expect_fail "and a malformed time" "RFC 3339 time" BILL --since yesterday
expect_fail "nodeless up refuses a malformed notice" "give a duration" "$NODELESS_BIN" up --data-dir "$WORK/x" --spot-notice soon
expect_fail "a bad spot strategy is refused at create, naming the annotation" "k8s.aliyun.com/eci-spot-strategy" \
  kubectl run badspot --image=busybox --annotations=k8s.aliyun.com/eci-spot-strategy=Cheap -- sleep 1

echo "== spot price limits and fallback"
check "spot Pods with price limits" K apply -f "$HERE/billing/pricing.yaml"
eventually "one within its limit runs on spot" 60 bash -c "kubectl get pod -n pricing capped -o jsonpath='{.status.phase} {.metadata.annotations.nodeless\.dev/capacity-type}' | grep -x 'Running spot'"
eventually "one below the spot price falls back to on-demand" 60 bash -c "kubectl get pod -n pricing thrifty -o jsonpath='{.status.phase} {.metadata.annotations.nodeless\.dev/capacity-type}' | grep -x 'Running on-demand'"
eventually "one below the spot price without fallback waits, saying why" 20 bash -c \
  "kubectl get events -n pricing --field-selector involvedObject.name=cheapskate,reason=FailedScheduling -o jsonpath='{.items[*].message}' | grep 'above the pod.s limit of 0.001000 USD/h'"
check "on-demand demand raises utilisation to 75%" K apply -f "$HERE/billing/filler.yaml"
eventually "the spot price rises above the capped Pod's limit: it gets notice" 20 bash -c \
  "kubectl get events -n pricing --field-selector involvedObject.name=capped,reason=SpotToBeReleased -o jsonpath='{.items[*].message}' | grep 'spot price rose to 0.025920 USD/h'"
eventually "and is released: Failed, BidFailed" 30 bash -c "kubectl get pod -n pricing capped -o jsonpath='{.status.phase}/{.status.reason}' | grep -x Failed/BidFailed"
check "clear the pricing namespace" K delete pods -n pricing --all --grace-period=1
eventually "the pool is empty again" 30 bash -c "[ -z \"\$(kubectl get pods -n pricing --no-headers 2>/dev/null)\" ]"

echo "== on-demand and spot share the pool"
check "an on-demand Deployment (1 × 1-2Gi)" K apply -f "$HERE/billing/ondemand.yaml"
eventually "its Pod runs" 60 bash -c "[ \$(kubectl get pods -l app=steady --field-selector=status.phase=Running --no-headers | wc -l) = 1 ]"
check "a spot Deployment (3 × 1-2Gi, ASK annotations)" K apply -f "$HERE/billing/spot.yaml"
eventually "its 3 Pods run on the rest of the pool" 60 bash -c "[ \$(kubectl get pods -l app=batch --field-selector=status.phase=Running --no-headers | wc -l) = 3 ]"
STEADY=$(K get pods -l app=steady -o jsonpath='{.items[0].metadata.name}')
expect_output "the on-demand Pod says so, with its spec and price (describe)" "capacity-type: on-demand.*hourly-price: 0.043200000.*instance-spec: 1-2Gi" \
  bash -c "kubectl describe pod $STEADY | tr '\\n' ' '"
expect_output "the spot Pods run on spot" "^spot spot spot$" \
  bash -c "kubectl get pods -l app=batch -o jsonpath='{range .items[*]}{.metadata.annotations.nodeless\\.dev/capacity-type}{\" \"}{end}' | xargs"
eventually "describe shows what the spot Pod has cost so far" 20 bash -c \
  "kubectl describe pods -l app=batch | grep -E 'nodeless.dev/cost: 0\.[0-9]{6} USD for [0-9]+s \(spot, 0\.043200 USD/h\)'"
eventually "a usage record per instance" 20 bash -c "[ \$(kubectl get usagerecords --no-headers | wc -l) = 4 ]"
eventually "the market shows the pool full and spot at the on-demand price" 20 bash -c \
  "kubectl get spotmarket default -o jsonpath='{.status.utilisationPpm} {.status.ratioPpm}' | grep -x '1000000 1000000'"
expect_output "the market publishes the catalogue in force" "vcpuHour: 0.036" K get spotmarket default -o jsonpath='{.spec.catalog}'
expect_output "and its price history" "ratioPpm" K get spotmarket default -o jsonpath='{.status.history}'

echo "== on-demand demand grows: spot instances are warned, then released"
check "scale the on-demand Deployment to 3" K scale deploy/steady --replicas=3
eventually "2 spot Pods get the SpotToBeReleased condition" 10 bash -c \
  "[ \$(kubectl get pods -l app=batch -o jsonpath='{range .items[*]}{.status.conditions[?(@.type==\"SpotToBeReleased\")].status}{\"\\n\"}{end}' | grep -c True) = 2 ]"
expect_output "and the SpotToBeReleased event says when and why" "SpotToBeReleased.*will be released at .*on-demand instances need its capacity" \
  bash -c "kubectl get events --field-selector reason=SpotToBeReleased -o jsonpath='{range .items[*]}{.reason} {.message}{\"\\n\"}{end}'"
expect_output "the waiting on-demand Pods say spot capacity is being reclaimed" "reclaiming spot capacity" \
  bash -c "kubectl get events --field-selector reason=FailedScheduling -o jsonpath='{.items[*].message}'"
# The 1 s bar is measured by `./x bench billing`; here, with second-resolution server times on
# a possibly busy CI machine, a few seconds' slack.
check "the notice was given within 5 s of the new on-demand Pods' creation (server times)" python3 - <<'PY'
import json, subprocess, datetime
def t(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
pods = lambda app: json.loads(subprocess.check_output(["kubectl", "get", "pods", "-l", "app=" + app, "-o", "json"]))["items"]
created = max(t(p["metadata"]["creationTimestamp"]) for p in pods("steady"))
noticed = [t(c["lastTransitionTime"]) for p in pods("batch") for c in p["status"].get("conditions", []) if c["type"] == "SpotToBeReleased"]
assert len(noticed) == 2 and all((n - created).total_seconds() <= 5 for n in noticed), (created, noticed)
PY
eventually "after the notice the 2 spot Pods end Failed with reason BidFailed" 30 bash -c \
  "[ \$(kubectl get pods -l app=batch -o jsonpath='{range .items[*]}{.status.phase}/{.status.reason}{\"\\n\"}{end}' | grep -c Failed/BidFailed) = 2 ]"
eventually "the 3 on-demand Pods run" 60 bash -c "[ \$(kubectl get pods -l app=steady --field-selector=status.phase=Running --no-headers | wc -l) = 3 ]"
eventually "the spot Deployment replaced them: 2 Pods wait for spot capacity" 30 bash -c \
  "[ \$(kubectl get pods -l app=batch --field-selector=status.phase=Pending --no-headers | wc -l) = 2 ]"
expect_output "they say there is no spot capacity" "no spot capacity" \
  bash -c "kubectl get events --field-selector reason=FailedScheduling -o jsonpath='{.items[*].message}'"
eventually "the released instances' records end with BidFailed" 20 bash -c "[ \$(kubectl get usagerecords -o jsonpath='{range .items[*]}{.status.endReason}{\"\\n\"}{end}' | grep -c BidFailed) = 2 ]"
check "each BidFailed record ends when its container stopped (to the second)" python3 - <<'PY'
import json, subprocess, datetime
def t(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
pods = json.loads(subprocess.check_output(["kubectl", "get", "pods", "-l", "app=batch", "-o", "json"]))["items"]
recs = {r["metadata"]["name"]: r for r in json.loads(subprocess.check_output(["kubectl", "get", "usagerecords", "-o", "json"]))["items"]}
n = 0
for p in pods:
    if p["status"].get("reason") != "BidFailed": continue
    fin = t(p["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"])
    end = t(recs[p["metadata"]["uid"]]["status"]["endTime"])
    assert abs((end - fin).total_seconds()) <= 1.0, (p["metadata"]["name"], end, fin)
    n += 1
assert n == 2, n
PY

echo "== kill -9 of nodeless up: the ledger stays exact"
kubectl get usagerecords -o json | python3 -c "import json,sys; print(json.dumps(sorted((r['metadata']['name'], r['spec']['startTime'], r.get('status',{}).get('endTime')) for r in json.load(sys.stdin)['items'])))" >"$WORK/records.before"
kill -9 "$NODELESS_PID"; wait "$NODELESS_PID" 2>/dev/null; NODELESS_PID=
sleep 3
start_nodeless "$DATA" "$PORT" "${UP_FLAGS[@]}" || exit 1
eventually "the on-demand Pods still run after the restart" 30 bash -c "[ \$(kubectl get pods -l app=steady --field-selector=status.phase=Running --no-headers | wc -l) = 3 ]"
sleep 2
check "no record was lost, duplicated, restarted or ended by the crash" bash -c \
  "kubectl get usagerecords -o json | python3 -c \"import json,sys; print(json.dumps(sorted((r['metadata']['name'], r['spec']['startTime'], r.get('status',{}).get('endTime')) for r in json.load(sys.stdin)['items'])))\" | diff - $WORK/records.before"

echo "== capacity returns: spot Pods run again"
check "scale the on-demand Deployment back to 1" K scale deploy/steady --replicas=1
# The restarted controllers first wait out the killed process's leader Lease (15 s).
eventually "the 2 waiting spot Pods run" 120 bash -c "[ \$(kubectl get pods -l app=batch --field-selector=status.phase=Running --no-headers | wc -l) = 3 ] || { kubectl get deploy,rs,pods -o wide; false; }"
eventually "their records are spot" 20 bash -c "[ \$(kubectl get usagerecords -o jsonpath='{range .items[*]}{.spec.capacityType}{\"\\n\"}{end}' | grep -c Spot) = 5 ]"

echo "== the bill"
check "delete both Deployments" K delete deploy steady batch
eventually "every Pod is gone or finished" 60 bash -c "[ -z \"\$(kubectl get pods --no-headers 2>/dev/null | grep -v -e Error -e Completed -e Failed -e BidFailed)\" ]"
eventually "every record is closed" 30 bash -c "[ -z \"\$(kubectl get usagerecords -o jsonpath='{range .items[*]}{.metadata.name} {.status.endTime}{\"\\n\"}{end}' | awk 'NF<2')\" ]"
check "each instance is billed exactly its lifetime, rounded up to the second" json_check '
for i in r["items"]:
    s = datetime.datetime.fromisoformat(i["start"].replace("Z","+00:00")); e = datetime.datetime.fromisoformat(i["end"].replace("Z","+00:00"))
    assert i["seconds"] == math.ceil((e - s).total_seconds()), i
assert len(r["items"]) == 8, len(r["items"])'
check "on-demand costs are seconds x hourly price, to the nanounit" json_check '
D = decimal.Decimal
for i in r["items"]:
    if i["capacityType"] != "OnDemand": continue
    want = (D(i["seconds"]) * D("0.0432") / 3600).quantize(D("0.000000001"), rounding=decimal.ROUND_HALF_UP)
    assert D(i["cost"]) == want, (i, want)'
check "spot seconds cost no more than on-demand ones" json_check '
D = decimal.Decimal
for i in r["items"]:
    if i["capacityType"] == "Spot": assert D(i["cost"]) <= D(i["seconds"]) * D("0.0432") / 3600 + D("0.000000001"), i'
check "the on-demand Pod that lived through the kill -9 is billed across it" json_check '
i = [i for i in r["items"] if i["pod"] == "'"$STEADY"'"][0]
assert i["seconds"] > 20, i'
check "the total is the sum of the items" json_check '
D = decimal.Decimal
assert D(r["total"]["cost"]) == sum(D(i["cost"]) for i in r["items"]), r["total"]'
expect_output "--by workload groups per Deployment" "default +Deployment/batch +5 " BILL --by workload
expect_output "(both of them)" "default +Deployment/steady +3 " BILL --by workload
expect_output "--by namespace" "default +8 " BILL --by namespace
expect_output "CSV has a header" "^namespace,instances,seconds,cost" bash -c "BILL() { \"$NODELESS_BIN\" bill \"\$@\"; }; BILL --by namespace -o csv | head -1"
check "the API serves the same report" bash -c "diff <(kubectl get --raw '/apis/cost.nodeless.dev/v1/report?by=pod&namespace=default' | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[\"total\"])') <(\"$NODELESS_BIN\" bill -o json --by pod -n default | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r[\"total\"])')"
expect_output "--since after everything ended bills nothing" "TOTAL +0 +0 " BILL --by namespace --since "$(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)"
expect_output "Prometheus metrics: cost per namespace and capacity type" 'nodeless_cost_total\{namespace="default",capacity_type="spot",currency="USD"\} 0\.[0-9]+' K get --raw /metrics
# The market is published asynchronously (at most once a second) after the pool empties.
eventually "and the spot price, back at the floor" 15 bash -c "kubectl get --raw /metrics | grep -x 'nodeless_spot_price_ratio 0.2'"

summary
