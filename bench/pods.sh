#!/usr/bin/env bash
# Pod startup benchmark (issue 4): `nodeless up` on this machine, image cached; Pods created
# one at a time at 5/s (startup latency p50/p99, creation → all containers running, seen
# through a watch), then a burst created at once (time until all Running, control-plane
# memory); and in the same run `podman run -d` of the same number of containers of the same
# image. Needs root, docker-registry, skopeo, runc, podman.
# Usage: ./x bench pods [SERIAL_PODS] [BURST_PODS]   (default 100 and 500)
set -euo pipefail
cd "$(dirname "$0")/.."
serial="${1:-100}"
burst="${2:-500}"
[[ $(id -u) == 0 ]] || { echo "bench pods: run as root" >&2; exit 1; }
for bin in docker-registry skopeo runc podman kubectl; do
  command -v "$bin" >/dev/null || { echo "bench pods: $bin missing (scripts/engine-deps.sh)" >&2; exit 1; }
done
source tests/e2e/lib/harness.sh
cargo build --release --quiet -p nodeless --example podbench
PODBENCH="$(dirname "$NODELESS_BIN")/examples/podbench"

WORK=$(mktemp -d /tmp/nodeless-bench-pods.XXXXXX)
DATA="$WORK/data"
PORT=$(free_port); RPORT=$(free_port); NPORT=$(free_port)
registry="127.0.0.1:$RPORT"
cleanup() {
  podman ps -aq --filter label=nodeless-bench=1 | xargs -r podman rm -f -t 0 >/dev/null 2>&1 || true
  if [ -n "${NODELESS_PID:-}" ]; then kubectl delete pods --all --grace-period=0 --force >/dev/null 2>&1 || true; fi
  stop_nodeless
  remove_instances "$DATA/engine"
  stop_registry
  rm -rf "$WORK"
}
trap cleanup EXIT
start_registry "$WORK/registry" "$RPORT"
bash scripts/test-images.sh "$registry" >/dev/null
# A pool big enough for the burst (500 × 0.25 vCPU / 0.5 GiB specs); the instances themselves
# only sleep.
start_nodeless "$DATA" "$PORT" --registry-mirror "docker.io=http://$registry" \
  --node-listen "127.0.0.1:$NPORT" --pool-capacity cpu=1000,memory=2000Gi
# Warm the image cache (and the network pool) with one Pod.
kubectl run warm --image=busybox --restart=Never -- true >/dev/null
kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/warm --timeout=120s >/dev/null
kubectl delete pod warm --wait >/dev/null

echo "| nodeless (\`$(nproc)\` cores) | result |"
echo "|---|---|"
"$PODBENCH" "$DATA/kubeconfig" "$NODELESS_PID" "$serial" "$burst"

# podman, same image from the same registry, same count, 16 at a time.
podman pull --quiet --tls-verify=false "$registry/library/busybox:latest" >/dev/null
t0=$(date +%s.%N)
seq 1 "$burst" | xargs -P 16 -I{} podman run -d --label nodeless-bench=1 \
  --ulimit nofile=1024:20000 --ulimit nproc=4096:4096 \
  "$registry/library/busybox:latest" sleep 3600 >/dev/null
t1=$(date +%s.%N)
running=$(podman ps -q --filter label=nodeless-bench=1 | wc -l)
printf '| podman: %s `podman run -d` (16 at a time): all running | %.2f s (%s running) |\n' "$burst" "$(python3 -c "print($t1 - $t0)")" "$running"
