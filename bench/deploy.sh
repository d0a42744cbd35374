#!/usr/bin/env bash
# Workload benchmark (issue 5): a 500-replica Deployment from `kubectl apply` to all Pods
# Running (readyReplicas = 500), and scaled back to zero (no Pod left), under `nodeless up`
# on this machine with the image cached. Needs root, docker-registry, kubectl.
# Usage: ./x bench deploy [REPLICAS]   (default 500)
set -euo pipefail
cd "$(dirname "$0")/.."
replicas="${1:-500}"
[[ $(id -u) == 0 ]] || { echo "bench deploy: run as root" >&2; exit 1; }
source tests/e2e/lib/harness.sh
WORK=$(mktemp -d /tmp/nodeless-bench-deploy.XXXXXX)
DATA="$WORK/data"
PORT=$(free_port); RPORT=$(free_port); NPORT=$(free_port)
cleanup() {
  if [ -n "${NODELESS_PID:-}" ]; then
    kubectl delete deploy --all --wait=false >/dev/null 2>&1 || true
    kubectl delete pods --all --grace-period=0 --force >/dev/null 2>&1 || true
  fi
  stop_nodeless
  remove_instances "$DATA/engine"
  stop_registry
  rm -rf "$WORK"
}
trap cleanup EXIT
start_registry "$WORK/registry" "$RPORT"
bash scripts/test-images.sh "127.0.0.1:$RPORT" >/dev/null
start_nodeless "$DATA" "$PORT" --registry-mirror "docker.io=http://127.0.0.1:$RPORT" \
  --node-listen "127.0.0.1:$NPORT" --pool-capacity cpu=1000,memory=2000Gi
kubectl run warm --image=busybox --restart=Never -- true >/dev/null
kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/warm --timeout=120s >/dev/null
kubectl delete pod warm --wait >/dev/null

now() { date +%s.%N; }
cat >"$WORK/deploy.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: bench}
spec:
  replicas: $replicas
  selector: {matchLabels: {app: bench}}
  template:
    metadata: {labels: {app: bench}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - {name: app, image: busybox, command: [sleep, "3600"], resources: {requests: {cpu: 100m, memory: 128Mi}}}
YAML
t0=$(now)
kubectl apply -f "$WORK/deploy.yaml" >/dev/null
# One watching kubectl, not a kubectl every 0.2 s: each run costs ~0.1 s of CPU, which took
# ~7% of this 2-core machine away from the Pods being measured.
kubectl wait deploy/bench --for=jsonpath='{.status.readyReplicas}'="$replicas" --timeout=300s >/dev/null
t1=$(now)
kubectl scale deploy/bench --replicas=0 >/dev/null
# Polled: `kubectl wait --for=delete` waits for the Pods one after another (~0.1 s each).
until [ -z "$(kubectl get pods -l app=bench --no-headers 2>/dev/null)" ]; do sleep 0.2; done
t2=$(now)
echo "| measure | result |"
echo "|---|---|"
printf '| %s-replica Deployment: `kubectl apply` to all Pods Running (readyReplicas) | %.1f s |\n' "$replicas" "$(python3 -c "print($t1 - $t0)")"
printf '| scaled to zero: until no Pod is listed | %.1f s |\n' "$(python3 -c "print($t2 - $t1)")"
