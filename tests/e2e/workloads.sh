#!/usr/bin/env bash
# End-to-end: workload controllers, Services and cluster DNS under `nodeless up`, driven by
# kubectl 1.32, with test images in a local registry. Needs root.
source "$(dirname "$0")/lib/harness.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then echo "skipped: the host agent needs root"; echo "0 passed, 0 failed"; exit 0; fi
WORK=$(mktemp -d /tmp/nodeless-e2e-workloads.XXXXXX)
DATA="$WORK/data"
PORT=$(free_port); RPORT=$(free_port); NPORT=$(free_port)
cleanup() {
  if [ -n "${NODELESS_PID:-}" ]; then
    kubectl delete deploy,sts,job,cronjob --all --wait=false >/dev/null 2>&1
    kubectl delete pods --all -A --grace-period=0 --force --wait=false >/dev/null 2>&1
    sleep 1
  fi
  stop_nodeless
  remove_instances "$DATA/engine"
  stop_registry
  rm -rf "$WORK"
}
trap cleanup EXIT
start_registry "$WORK/registry" "$RPORT" || exit 1
bash "$HERE/../../scripts/test-images.sh" "127.0.0.1:$RPORT" >/dev/null || { echo "cannot push test images"; exit 1; }
UP_FLAGS=(--registry-mirror "docker.io=http://127.0.0.1:$RPORT" --node-listen "127.0.0.1:$NPORT" --pool-capacity cpu=32,memory=64Gi)
start_nodeless "$DATA" "$PORT" "${UP_FLAGS[@]}" || exit 1
K() { kubectl "$@"; }
# (Debian's busybox wget crashes with -T; `timeout` bounds each request instead.)
in_client() { kubectl exec client -- sh -c "$1"; }

echo "== a Deployment behind a Service"
check "apply a 3-replica Deployment and its Service" K apply -f "$HERE/workloads/web.yaml"
check "kubectl rollout status finishes" K rollout status deploy/web --timeout=90s
expect_output "3 Pods are ready" "^3/3$" bash -c "kubectl get deploy web --no-headers | awk '{print \$2}'"
expect_output "one ReplicaSet with the template hash" "^web-[a-z0-9]+ 3 3 3$" bash -c "kubectl get rs -l app=web --no-headers | awk '{print \$1, \$2, \$3, \$4}'"
eventually "the Service's EndpointSlice lists the 3 Pods" 20 bash -c "[ \$(kubectl get endpointslices -l kubernetes.io/service-name=web -o jsonpath='{.items[*].endpoints[*].addresses[0]}' | wc -w) = 3 ]"
expect_output "Endpoints too" "([0-9.]+:80,?){3}|[0-9.]+:80,[0-9.]+:80 \\+ 1 more" K get endpoints web --no-headers
check "a client Pod" K apply -f "$HERE/workloads/client.yaml"
eventually "the client runs" 60 bash -c "kubectl get pod client -o 'jsonpath={.status.phase}' | grep -x Running"
CIP=$(K get svc web -o 'jsonpath={.spec.clusterIP}')
expect_output "the ClusterIP answers from an instance" "hello from nodeless" in_client "timeout 3 wget -q -O- http://$CIP/"
expect_output "the ClusterIP answers from the host" "hello from nodeless" curl -sf --max-time 3 "http://$CIP/"
expect_output "services/proxy reaches an endpoint by port name" "hello from nodeless" K get --raw /api/v1/namespaces/default/services/web:http/proxy/
expect_output "and by port number" "hello from nodeless" K get --raw /api/v1/namespaces/default/services/web:80/proxy/
# As upstream: with no port, only an unnamed Service port matches, and this one is named.
expect_output "with no port, a named Service port is not chosen" "no endpoints available" K get --raw /api/v1/namespaces/default/services/web/proxy/
expect_output "services/proxy to a port the Service lacks is a 503 saying so" "no service port 81" K get --raw /api/v1/namespaces/default/services/web:81/proxy/
expect_output "the Service answers by DNS name" "hello from nodeless" in_client "timeout 3 wget -q -O- http://web.default.svc.cluster.local/"
expect_output "and by its short name (search domains)" "hello from nodeless" in_client "timeout 3 wget -q -O- http://web/"
expect_output "resolv.conf has the cluster DNS, search domains and ndots" "nameserver 10.96.0.10.*search default.svc.cluster.local svc.cluster.local cluster.local.*ndots:5" bash -c "kubectl exec client -- cat /etc/resolv.conf | tr '\\n' ' '"
expect_output "an unknown name is NXDOMAIN" "NXDOMAIN|can't resolve|not found" bash -c "kubectl exec client -- nslookup nope.default.svc.cluster.local 2>&1"

echo "== a rolling update with maxUnavailable 0"
# One request at a time for 30 s, through DNS and the ClusterIP (no `timeout` per request:
# its watcher processes would pile up; the whole exec is bounded instead).
timeout 60 kubectl exec client -- sh -c 'ok=0; fail=0; end=$(( $(date +%s) + 30 )); while [ $(date +%s) -lt $end ]; do if wget -q -O /dev/null http://web/; then ok=$((ok+1)); else fail=$((fail+1)); fi; sleep 0.02; done; echo "$ok $fail"' >"$WORK/load.out" 2>&1 &
LOAD=$!
sleep 2
check "kubectl set image starts a rollout" K set image deploy/web web=busybox
check "the rollout completes" K rollout status deploy/web --timeout=90s
wait $LOAD
read -r ok fails <"$WORK/load.out"
echo "       requests during the rollout: ${ok:-0} answered, ${fails:-?} failed"
if [ "${fails:-1}" = 0 ] && [ "${ok:-0}" -gt 20 ]; then pass "no request failed during the rollout"; else fail "no request failed during the rollout" "$(cat "$WORK/load.out")"; fi
expect_output "two revisions in the history" "^1 .*2 " bash -c "kubectl rollout history deploy/web | awk 'NR>2 && NF {printf \"%s \", \$1}'"
check "kubectl rollout undo" K rollout undo deploy/web
check "the undo rolls out" K rollout status deploy/web --timeout=90s
expect_output "the old image is back" "^httpd$" K get deploy web -o 'jsonpath={.spec.template.spec.containers[0].image}'
expect_output "and serves again" "hello from nodeless" in_client "timeout 3 wget -q -O- http://web/"
check "kubectl scale" K scale deploy/web --replicas=1
eventually "scaled down to 1 Pod" 30 bash -c "[ \$(kubectl get pods -l app=web --no-headers | grep -c Running) = 1 ]"

echo "== a StatefulSet and its headless Service"
check "apply a StatefulSet" K apply -f "$HERE/workloads/db.yaml"
check "kubectl rollout status sts" K rollout status sts/db --timeout=90s
expect_output "Pods have stable names" "^db-0 db-1$" bash -c "kubectl get pods -l app=db -o jsonpath='{.items[*].metadata.name}' | tr ' ' '\\n' | sort | tr '\\n' ' ' | sed 's/ \$//'"
expect_output "db-0 reaches db-1 by name" "I am db-1" kubectl exec db-0 -- sh -c 'nc db-1.db 5000 </dev/null'
expect_output "the headless Service resolves to the Pods" "Address.*10\\.88\\..*Address.*10\\.88\\." bash -c "kubectl exec client -- nslookup db.default.svc.cluster.local 2>&1 | tr '\\n' ' '"
K delete pod db-1 --wait=false >/dev/null
eventually "a deleted StatefulSet Pod comes back with its name" 60 bash -c "kubectl get pod db-1 -o 'jsonpath={.status.phase}' | grep -x Running"

echo "== Jobs and CronJobs"
check "create a Job" K create job hello --image=busybox -- sh -c 'echo hello from a job'
check "it completes" K wait --for=condition=complete job/hello --timeout=90s
expect_output "its Pod's log" "hello from a job" K logs job/hello
cat <<'YAML' | K apply -f - >/dev/null
apiVersion: batch/v1
kind: Job
metadata: {name: indexed}
spec:
  completions: 3
  parallelism: 2
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: [sh, -c, 'echo index $JOB_COMPLETION_INDEX']}]
YAML
check "an Indexed Job with completions 3 and parallelism 2 completes" K wait --for=condition=complete job/indexed --timeout=120s
expect_output "each index ran once" "^3/3$" K get job indexed -o 'jsonpath={.status.succeeded}/{.spec.completions}'
K create job failing --image=busybox -- sh -c 'exit 1' >/dev/null
K patch job failing --type=merge -p '{"spec":{"backoffLimit":1}}' >/dev/null 2>&1
eventually "a failing Job stops at its backoffLimit" 120 bash -c "kubectl get job failing -o 'jsonpath={.status.conditions[?(@.type==\"Failed\")].reason}' | grep -E 'BackoffLimitExceeded'"
check "create a CronJob" K create cronjob tick --image=busybox --schedule='* * * * *' -- sh -c 'echo tick'
eventually "the CronJob fires within a minute" 75 bash -c "kubectl get jobs -o jsonpath='{.items[*].metadata.ownerReferences[0].name}' | grep -w tick"

echo "== restarts and deletion"
K scale deploy/web --replicas=3 >/dev/null
K set env deploy/web ROLL=1 >/dev/null
sleep 1
kill -9 "$NODELESS_PID"; wait "$NODELESS_PID" 2>/dev/null; NODELESS_PID=
start_nodeless "$DATA" "$PORT" "${UP_FLAGS[@]}" || exit 1
check "after kill -9 mid-rollout, the rollout still completes" K rollout status deploy/web --timeout=120s
expect_output "with exactly 3 Pods, no duplicates" "^3$" bash -c "kubectl get pods -l app=web --no-headers | grep -vc Terminating"
check "deleting the Deployment" K delete deploy web --timeout=60s
eventually "removes its ReplicaSets and Pods" 60 bash -c "[ -z \"\$(kubectl get rs,pods -l app=web --no-headers 2>/dev/null)\" ]"

summary
