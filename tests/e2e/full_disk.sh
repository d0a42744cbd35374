#!/usr/bin/env bash
# End-to-end: a full disk gives clients a clear error, the server keeps running, and what was
# acknowledged before stays readable. Needs root (mounts a small tmpfs).
source "$(dirname "$0")/lib/harness.sh"
# The API tier: the API server alone (tests/e2e/pods.sh runs the whole of `nodeless up`).
export NODELESS_CMD=apiserver

if [ "$(id -u)" != 0 ]; then echo "skipped: needs root to mount a small filesystem"; echo "0 passed, 0 failed"; exit 0; fi
WORK=$(mktemp -d /tmp/nodeless-e2e-disk.XXXXXX)
mount -t tmpfs -o size=4m tmpfs "$WORK" || { echo "cannot mount tmpfs"; exit 1; }
DIR="$WORK/data"
PORT=$(free_port)
trap 'stop_nodeless; umount "$WORK"; rm -rf "$WORK"' EXIT
start_nodeless "$DIR" "$PORT" || exit 1
TOKEN=$(cat "$DIR/pki/admin.token")
API="https://127.0.0.1:$PORT/api/v1/namespaces/default/configmaps"
blob=$(head -c 60000 /dev/zero | tr '\0' 'x')
check "an object written before the disk fills" kubectl create configmap early --from-literal=k=v
last=""
for i in $(seq 1 200); do
  last=$(curl -sk -w '\n%{http_code}' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"fill-$i\"},\"data\":{\"b\":\"$blob\"}}" "$API")
  code=$(tail -1 <<<"$last")
  [ "$code" = 201 ] || break
done
expect_output "a write to a full disk gets 507" "^507$" tail -1 <<<"$last"
expect_output "the error says the storage is full" "storage is full" echo "$last"
check "the server keeps answering" curl -skf "https://127.0.0.1:$PORT/readyz"
expect_output "acknowledged objects stay readable" "^v$" kubectl get configmap early -o 'jsonpath={.data.k}'
summary
