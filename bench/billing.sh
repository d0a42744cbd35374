#!/usr/bin/env bash
# Billing and spot benchmark (issue 6), on `nodeless up` on this machine:
#  1. Spot reclaim: a 4-vCPU pool full of spot Pods, on-demand demand of 2 instances arrives,
#     ROUNDS times. Per victim: reclaim decision (the scheduler's log) → the SpotToBeReleased
#     event seen by a watching client; end of notice (the Pod's release time) → instance
#     stopped (its usage record's end, the engine's stop time).
#  2. Ledger overhead: 500 running instances, steady state, 60 s: CPU of the nodeless process
#     and store writes per second, with the cost meter at its default 60 s interval and with
#     it idle (24 h), the difference being what billing costs at steady state.
# Needs root, docker-registry. Usage: ./x bench billing [ROUNDS] [INSTANCES]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
instances="${2:-500}"
[[ $(id -u) == 0 ]] || { echo "bench billing: run as root" >&2; exit 1; }
source tests/e2e/lib/harness.sh
WORK=$(mktemp -d /tmp/nodeless-bench-billing.XXXXXX)
PORT=$(free_port); RPORT=$(free_port); NPORT=$(free_port)
registry="127.0.0.1:$RPORT"
DATA=
cleanup() {
  [ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null
  if [ -n "${NODELESS_PID:-}" ]; then
    kubectl delete deploy --all --wait=false >/dev/null 2>&1 || true
    kubectl delete pods --all --grace-period=0 --force >/dev/null 2>&1 || true
  fi
  stop_nodeless
  if [ -n "$DATA" ]; then
    remove_instances "$DATA/engine"
  fi
  stop_registry
  rm -rf "$WORK"
}
trap cleanup EXIT
start_registry "$WORK/registry" "$RPORT"
bash scripts/test-images.sh "$registry" >/dev/null
deployment() { # NAME REPLICAS CPU MEMORY SPOT
  local annotations=""
  [ "$5" = spot ] && annotations='annotations: {nodeless.dev/spot-strategy: SpotAsPriceGo, nodeless.dev/spot-duration: "0"}'
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1}
spec:
  replicas: $2
  selector: {matchLabels: {app: $1}}
  template:
    metadata:
      labels: {app: $1}
      $annotations
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
        resources: {requests: {cpu: "$3", memory: $4}}
YAML
}
count() { kubectl get pods -l "app=$1" --field-selector="status.phase=$2" --no-headers 2>/dev/null | wc -l; }
wait_count() { # APP PHASE N SECONDS
  local deadline=$((SECONDS + $4))
  until [ "$(count "$1" "$2")" -ge "$3" ]; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for $3 $1 pods $2" >&2; exit 1; }
    sleep 0.2
  done
}

echo "## 1. spot reclaim ($rounds rounds, 2 victims each, notice 3s)"
DATA="$WORK/reclaim"
NODELESS_LOG=info start_nodeless "$DATA" "$PORT" --registry-mirror "docker.io=http://$registry" \
  --node-listen "127.0.0.1:$NPORT" --pool-capacity cpu=4,memory=16Gi --spot-notice 3s
deployment batch 4 1 2Gi spot | kubectl apply -f - >/dev/null
wait_count batch Running 4 120
# Every SpotToBeReleased event, stamped when this client sees it.
kubectl get events --watch-only -o jsonpath='{.reason} {.involvedObject.name}{"\n"}' 2>/dev/null |
  python3 -u -c 'import sys,time
for l in sys.stdin:
    if l.startswith("SpotToBeReleased"): print("%.3f %s" % (time.time(), l.split()[1]), flush=True)' >"$WORK/seen" &
WATCH_PID=$!
sleep 1
for r in $(seq 1 "$rounds"); do
  deployment steady 2 1 2Gi ondemand | kubectl apply -f - >/dev/null
  wait_count steady Running 2 60
  kubectl delete deploy steady --wait=false >/dev/null
  wait_count batch Running 4 60
  kubectl delete pods -l app=batch --field-selector=status.phase=Failed --wait=false >/dev/null
  sleep 1
done
kill "$WATCH_PID" 2>/dev/null; WATCH_PID=
kubectl get usagerecords -o json >"$WORK/records.json"
python3 - "$DATA.log" "$WORK/seen" <<'PY'
import sys, re, datetime, statistics
log, seen = sys.argv[1:3]
def ts(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
decided = {}
for line in open(log):
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    m = re.match(r"(\S+)\s+INFO .*spot release decided pod=default/(\S+)", line)
    if m: decided[m.group(2)] = ts(m.group(1))
notice = []
for line in open(seen):
    t, pod = line.split()
    if pod in decided: notice.append((float(t) - decided[pod]) * 1000)
print(f"| reclaim decision → SpotToBeReleased event seen by a client | p50 {statistics.median(notice):.0f} ms, max {max(notice):.0f} ms ({len(notice)} victims) |")
PY
python3 - "$WORK/records.json" "$DATA.log" <<'PY'
import sys, json, re, datetime, statistics
records, log = sys.argv[1:3]
def ts(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
at = {}
for line in open(log):
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    m = re.search(r"spot release decided pod=default/(\S+) notice=the spot instance will be released at (\S+)", line)
    if m: at[m.group(1)] = ts(m.group(2))
gaps = []
for r in json.load(open(records))["items"]:
    if r.get("status", {}).get("endReason") == "BidFailed" and r["spec"]["pod"] in at:
        gaps.append((ts(r["status"]["endTime"]) - at[r["spec"]["pod"]]) * 1000)
print(f"| end of notice → instance stopped (graceful, app exits on SIGTERM) | p50 {statistics.median(gaps):.0f} ms, max {max(gaps):.0f} ms ({len(gaps)} victims) |")
PY
kubectl delete deploy --all >/dev/null
kubectl delete pods --all --grace-period=0 --force >/dev/null 2>&1 || true
stop_nodeless
remove_instances "$DATA/engine"

steady_state() { # COST_INTERVAL
  DATA="$WORK/ledger-$1"
  start_nodeless "$DATA" "$PORT" --registry-mirror "docker.io=http://$registry" \
    --node-listen "127.0.0.1:$NPORT" --pool-capacity cpu=1000,memory=2000Gi --cost-interval "$1"
  deployment many "$instances" 250m 512Mi ondemand | kubectl apply -f - >/dev/null
  wait_count many Running "$instances" 600
  sleep 10
  local rv0 rv1 cpu0 cpu1 t0 t1 hz
  hz=$(getconf CLK_TCK)
  rv0=$(kubectl get --raw '/api/v1/namespaces/default/pods?limit=1' | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
  cpu0=$(awk '{print $14 + $15}' "/proc/$NODELESS_PID/stat"); t0=$(date +%s.%N)
  sleep 60
  rv1=$(kubectl get --raw '/api/v1/namespaces/default/pods?limit=1' | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
  cpu1=$(awk '{print $14 + $15}' "/proc/$NODELESS_PID/stat"); t1=$(date +%s.%N)
  python3 -c "print('| $instances running instances, cost meter every $1: nodeless CPU | %.1f%% of one core |' % (100.0 * ($cpu1 - $cpu0) / $hz / ($t1 - $t0)))"
  python3 -c "print('| … store writes (all resources) | %.2f /s |' % (($rv1 - $rv0) / ($t1 - $t0)))"
  kubectl delete deploy many --wait=false >/dev/null
  kubectl delete pods --all --grace-period=0 --force >/dev/null 2>&1 || true
  stop_nodeless
  remove_instances "$DATA/engine"
}
echo "## 2. ledger overhead at steady state"
steady_state 60s
steady_state 24h
