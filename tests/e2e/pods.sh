#!/usr/bin/env bash
# End-to-end: every Pod becomes a running instance. `nodeless up` (API server, scheduler, host
# agent on real runc/runsc and CNI) driven by kubectl 1.32, with test images in a local
# registry reached through --registry-mirror. Needs root.
source "$(dirname "$0")/lib/harness.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then echo "skipped: the host agent needs root"; echo "0 passed, 0 failed"; exit 0; fi
WORK=$(mktemp -d /tmp/nodeless-e2e-pods.XXXXXX)
DATA="$WORK/data"
PORT=$(free_port); RPORT=$(free_port); NPORT=$(free_port)
cleanup() {
  if [ -n "${NODELESS_PID:-}" ]; then
    kubectl delete pods --all -A --grace-period=0 --force --wait=false >/dev/null 2>&1
    sleep 1
  fi
  stop_nodeless
  # Nothing may outlive the test: remove any instance left behind.
  remove_instances "$DATA/engine"
  stop_registry
  rm -rf "$WORK"
}
trap cleanup EXIT
start_registry "$WORK/registry" "$RPORT" || exit 1
bash "$HERE/../../scripts/test-images.sh" "127.0.0.1:$RPORT" >/dev/null || { echo "cannot push test images"; exit 1; }
UP_FLAGS=(--registry-mirror "docker.io=http://127.0.0.1:$RPORT" --node-listen "127.0.0.1:$NPORT" --pool-capacity cpu=16,memory=32Gi)
start_nodeless "$DATA" "$PORT" "${UP_FLAGS[@]}" || exit 1
K() { kubectl "$@"; }
jp() { kubectl get "$@"; }

echo "== the virtual node"
eventually "kubectl get nodes shows one Ready virtual node" 20 bash -c "kubectl get nodes --no-headers | grep -E '^nodeless +Ready'"
expect_output "its capacity is the pool's" "^16 32Gi$" K get node nodeless -o 'jsonpath={.status.capacity.cpu} {.status.capacity.memory}'
check "it has a heartbeat Lease" K -n kube-node-lease get lease nodeless
expect_output "the gvisor RuntimeClass exists" "runsc" K get runtimeclass gvisor -o 'jsonpath={.handler}'

echo "== a Pod serving HTTP"
K create configmap settings --from-literal=greeting=hello >/dev/null
K create secret generic creds --from-literal=password=s3cret >/dev/null
check "kubectl apply a Pod" K apply -f "$HERE/pods/web.yaml"
eventually "it becomes Ready" 60 K wait --for=condition=Ready pod/web --timeout=2s
IP=$(K get pod web -o 'jsonpath={.status.podIP}')
expect_output "it has a podIP and hostIP" "^10\\.[0-9.]+ [0-9.]+$" K get pod web -o 'jsonpath={.status.podIP} {.status.hostIP}'
expect_output "it serves HTTP at its podIP" "hello from nodeless" curl -sf --max-time 5 "http://$IP/"
expect_output "the scheduler recorded its instance spec" "^0.5-1Gi$" K get pod web -o 'jsonpath={.metadata.annotations.nodeless\.dev/instance-spec}'
expect_output "it is bound to the virtual node" "^nodeless$" K get pod web -o 'jsonpath={.spec.nodeName}'
expect_output "container status is complete" "^true true 0 nodeless://.+ .*busybox|httpd.*@sha256:" K get pod web -o 'jsonpath={.status.containerStatuses[0].ready} {.status.containerStatuses[0].started} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].imageID}'
expect_output "events tell the story" "Scheduled.*Pulled|Pulled.*Scheduled" bash -c "kubectl get events --field-selector involvedObject.name=web -o 'jsonpath={range .items[*]}{.reason} {end}'"
expect_output "kubectl describe shows Started" "Started" K describe pod web

echo "== pods/proxy"
expect_output "pods/proxy reaches the Pod's first container port" "hello from nodeless" K get --raw /api/v1/namespaces/default/pods/web/proxy/
expect_output "pods/proxy to a named port" "hello from nodeless" K get --raw /api/v1/namespaces/default/pods/web:http/proxy/
PROXY_PORT=$(free_port)
kubectl proxy --port="$PROXY_PORT" >/dev/null 2>&1 &
PROXY_PID=$!
eventually "kubectl proxy serves the Pod" 20 bash -c "curl -sf --max-time 2 http://127.0.0.1:$PROXY_PORT/api/v1/namespaces/default/pods/web:80/proxy/ | grep -q 'hello from nodeless'"
kill "$PROXY_PID" 2>/dev/null || true
# https: is TLS to the Pod (unverified, as upstream); web serves plain HTTP, so it fails, saying so.
expect_output "pods/proxy with https: speaks TLS to the Pod" "pod default/web cannot be reached at .*:80" K get --raw /api/v1/namespaces/default/pods/https:web:80/proxy/

echo "== downward API, configMap and secret"
expect_output "fieldRef env" "^POD_NAME=web$" K exec web -- sh -c 'echo POD_NAME=$POD_NAME'
expect_output "status.podIP env is the Pod's IP" "^$IP$" K exec web -- sh -c 'echo $POD_IP'
expect_output "\$(POD_IP) in another env value expands to the IP" "^$IP:80$" K exec web -- sh -c 'echo $LISTEN'
expect_output "status.hostIP env" "^[0-9]+\\.[0-9.]+$" K exec web -- sh -c 'echo $HOST_IP'
expect_output "configMap and secret env" "^hello s3cret 1$" K exec web -- sh -c 'echo $GREETING $PASSWORD $CPU_LIMIT'
expect_output "configMap volume" "^hello$" K exec web -- cat /etc/settings/greeting
expect_output "secret volume" "^s3cret$" K exec web -- cat /etc/creds/password
expect_output "downwardAPI volume" 'app="web"' K exec web -- cat /etc/podinfo/labels
K create configmap settings --from-literal=greeting=bonjour -o yaml --dry-run=client | K apply -f - >/dev/null 2>&1
eventually "a configMap update reaches the mounted volume" 90 bash -c "kubectl exec web -- cat /etc/settings/greeting | grep -x bonjour"

echo "== logs, exec, port-forward, cp"
curl -sf "http://$IP/nope" >/dev/null 2>&1
expect_output "exec with stdin" "^piped$" bash -c "echo piped | kubectl exec -i web -- cat"
K exec web -- sh -c 'exit 3' >/dev/null 2>&1; code=$?
if [ "$code" = 3 ]; then pass "exec returns the command's exit code"; else fail "exec returns the command's exit code" "got $code"; fi
expect_output "exec -it gets a terminal" "^b'/dev/pts/[0-9]+\\\\r\\\\n'$" python3 "$HERE/lib/in_pty.py" kubectl exec -it web -- tty
K run talker --image=busybox --restart=Never -- sh -c 'for i in 1 2 3; do echo line-$i; done; sleep 1; echo late; sleep 3600' >/dev/null
eventually "kubectl logs" 30 bash -c "kubectl logs talker | grep -x line-3"
expect_output "logs --tail" "^line-3$" bash -c "kubectl logs talker --tail=1 | head -1 | grep -v late || kubectl logs talker --tail=2 | head -1"
expect_output "logs --timestamps" "^20[0-9-]+T[0-9:.]+Z line-1$" bash -c "kubectl logs talker --timestamps | head -1"
expect_output "logs -c names the container" "line-1" K logs talker -c talker
expect_output "logs -f follows" "late" timeout 5 kubectl logs -f talker
expect_output "logs --since" "line" K logs talker --since=1h
PF_PORT=$(free_port)
K port-forward pod/web "$PF_PORT:80" >"$WORK/pf.log" 2>&1 &
PF_PID=$!
eventually "port-forward reaches the Pod" 15 curl -sf --max-time 3 "http://127.0.0.1:$PF_PORT/"
kill $PF_PID 2>/dev/null; wait $PF_PID 2>/dev/null
echo "copied in" >"$WORK/cp-in.txt"
check "kubectl cp into a Pod" K cp "$WORK/cp-in.txt" web:/tmp/cp-in.txt
expect_output "the file is there" "^copied in$" K exec web -- cat /tmp/cp-in.txt
K exec web -- sh -c 'echo made inside > /tmp/cp-out.txt'
check "kubectl cp out of a Pod" K cp web:/tmp/cp-out.txt "$WORK/cp-out.txt"
expect_output "the copy has the Pod's contents" "^made inside$" cat "$WORK/cp-out.txt"
K run ticker --image=busybox --restart=Never -- sh -c 'while true; do echo tick; sleep 0.5; done' >/dev/null
eventually "the ticker runs" 30 bash -c "kubectl get pod ticker -o 'jsonpath={.status.phase}' | grep -x Running"
expect_output "kubectl attach streams the container's output as it comes" "^tick$" timeout 4 kubectl attach ticker

echo "== attach with input and a terminal"
expect_output "kubectl run -i --rm: stdin reaches the container, which reads EOF after it (stdinOnce)" "^got:hello$" \
  bash -c "echo hello | timeout 60 kubectl run once --image=busybox -i --rm --restart=Never -- sh -c 'read x; echo got:\$x'"
eventually "run --rm removed the Pod" 30 bash -c "! kubectl get pod once >/dev/null 2>&1"
check "a Pod with stdin: true" K apply -f "$HERE/pods/reader.yaml"
eventually "it runs" 30 bash -c "kubectl get pod reader -o 'jsonpath={.status.phase}' | grep -x Running"
expect_output "kubectl attach -i: a session's input reaches the running container" "^line:one$" \
  bash -c "(echo one; sleep 1) | timeout 5 kubectl attach -i reader; true"
expect_output "a second session's input reaches it too (no stdinOnce: stdin stays open)" "^line:two$" \
  bash -c "(echo two; sleep 1) | timeout 5 kubectl attach -i reader; true"
expect_fail "attach -i to a container without stdin: true is refused" "was not created with stdin: true" \
  bash -c "echo x | kubectl attach -i ticker"
# kubectl -t needs a terminal: script(1) gives it one, 91 columns by 27 rows. The input waits
# in the terminal until kubectl has attached and reads it.
(sleep 3; printf 'echo typed-$((6*7)); stty size\n'; sleep 2; printf 'exit 3\n'; sleep 1) |
  timeout 90 script -qec "stty cols 91 rows 27; kubectl run tty1 -it --rm --restart=Never --image=busybox -- sh" /dev/null \
  >"$WORK/tty.out" 2>&1 || true
expect_output "kubectl run -it: the shell runs on a terminal and gets the input" "^typed-42" cat "$WORK/tty.out"
expect_output "the terminal has the client's size" "^27 91" cat "$WORK/tty.out"
expect_output "the shell's exit code comes back" "terminated \(Error\)" cat "$WORK/tty.out"
EP=$(kubectl get hosts -o jsonpath='{.items[0].spec.endpoint}')
expect_output "the host agent's node endpoint is https" "^https://" echo "$EP"
expect_output "it answers over TLS (401 without the agent's token)" "^401$" \
  curl -sk -o /dev/null -w '%{http_code}' "$EP/containerLogs/default/web/x/y"
expect_fail "it does not answer plain HTTP" "" curl -sf --max-time 3 "${EP/https/http}/containerLogs/default/web/x/y"

echo "== init containers"
check "a Pod with init containers" K apply -f "$HERE/pods/init.yaml"
eventually "it completes" 60 bash -c "kubectl get pod with-init -o 'jsonpath={.status.phase}' | grep -x Succeeded"
expect_output "init containers ran in order before the main one" "^one two$" bash -c "kubectl logs with-init | tr '\\n' ' ' | sed 's/ \$//'"
expect_output "init container statuses are Completed" "Completed Completed" K get pod with-init -o 'jsonpath={.status.initContainerStatuses[*].state.terminated.reason}'

echo "== failures"
K run crasher --image=busybox -- sh -c 'echo boom; exit 1' >/dev/null
eventually "a crashing container reaches CrashLoopBackOff" 90 bash -c "kubectl get pod crasher -o 'jsonpath={.status.containerStatuses[0].state.waiting.reason}' | grep -x CrashLoopBackOff"
expect_output "restartCount grows" "^[1-9]" K get pod crasher -o 'jsonpath={.status.containerStatuses[0].restartCount}'
expect_output "logs --previous shows the last run" "boom" K logs crasher --previous
expect_output "a BackOff event is recorded" "BackOff" bash -c "kubectl get events --field-selector involvedObject.name=crasher -o 'jsonpath={.items[*].reason}'"
K run badimage --image=127.0.0.1:$RPORT/library/does-not-exist:1 >/dev/null
eventually "a bad image reaches ImagePullBackOff" 60 bash -c "kubectl get pod badimage -o 'jsonpath={.status.containerStatuses[0].state.waiting.reason}' | grep -x ImagePullBackOff"
expect_output "the Failed event names the image" "does-not-exist" bash -c "kubectl get events --field-selector involvedObject.name=badimage,reason=Failed -o 'jsonpath={.items[*].message}'"
K run huge --image=busybox --overrides='{"spec":{"containers":[{"name":"huge","image":"busybox","resources":{"requests":{"cpu":"64"}}}]}}' -- sleep 1 >/dev/null 2>&1
eventually "a Pod that does not fit stays Pending with FailedScheduling" 20 bash -c "kubectl get events --field-selector involvedObject.name=huge,reason=FailedScheduling -o 'jsonpath={.items[*].message}' | grep -i cpu"
expect_output "its PodScheduled condition says Unschedulable" "Unschedulable" K get pod huge -o 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].reason}'

echo "== refused at admission"
refuse() {
  local field=$1 overrides=$2
  expect_fail "$field is refused with a clear error" "$field" K run "refused-$RANDOM" --image=busybox --restart=Never --overrides="$overrides" -- true
}
refuse privileged '{"spec":{"containers":[{"name":"c","image":"busybox","securityContext":{"privileged":true}}]}}'
refuse hostNetwork '{"spec":{"hostNetwork":true}}'
refuse hostPID '{"spec":{"hostPID":true}}'
refuse hostIPC '{"spec":{"hostIPC":true}}'
refuse hostPort '{"spec":{"containers":[{"name":"c","image":"busybox","ports":[{"containerPort":80,"hostPort":8080}]}]}}'
refuse hostPath '{"spec":{"containers":[{"name":"c","image":"busybox"}],"volumes":[{"name":"h","hostPath":{"path":"/"}}]}}'
expect_fail "a DaemonSet is refused" "DaemonSet" bash -c "kubectl create -f - <<'YAML'
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: busybox}]}
YAML"
expect_fail "a NodePort Service is refused" "NodePort" K create service nodeport np --tcp=80:80

echo "== gVisor"
if command -v runsc >/dev/null; then
  K run sandboxed --image=busybox --restart=Never --overrides='{"spec":{"runtimeClassName":"gvisor"}}' -- sh -c 'dmesg 2>/dev/null | head -1; echo done' >/dev/null
  eventually "a gVisor Pod runs to completion" 60 bash -c "kubectl get pod sandboxed -o 'jsonpath={.status.phase}' | grep -x Succeeded"
  expect_output "it ran under gVisor" "gVisor|done" K logs sandboxed
else
  fail "a gVisor Pod runs" "runsc is not installed"
fi

echo "== graceful deletion"
K apply -f "$HERE/pods/graceful.yaml" >/dev/null
eventually "the graceful Pod runs" 30 bash -c "kubectl get pod graceful -o 'jsonpath={.status.phase}' | grep -x Running"
start=$SECONDS
check "kubectl delete waits for the Pod to stop" K delete pod graceful --timeout=30s
took=$((SECONDS - start))
if [ $took -lt 15 ]; then pass "it stopped on SIGTERM, not at the grace deadline (${took}s)"; else fail "it stopped on SIGTERM" "took ${took}s"; fi
expect_fail "the Pod object is gone" "NotFound" K get pod graceful
check "force deletion" K delete pod talker --grace-period=0 --force
eventually "the force-deleted Pod's instance goes" 20 bash -c "! '$NODELESS_BIN' runtime --root '$DATA/engine' ps | grep -q 'default/talker'"

echo "== restart of nodeless up"
before=$(K get pod web -o 'jsonpath={.status.containerStatuses[0].containerID} {.status.containerStatuses[0].state.running.startedAt}')
stop_nodeless
expect_output "the instance kept running while nodeless was down" "hello from nodeless" curl -sf --max-time 5 "http://$IP/"
start_nodeless "$DATA" "$PORT" "${UP_FLAGS[@]}" || exit 1
eventually "the Pod is Ready again" 30 K wait --for=condition=Ready pod/web --timeout=2s
expect_output "it is the same container, not restarted" "^$before$" K get pod web -o 'jsonpath={.status.containerStatuses[0].containerID} {.status.containerStatuses[0].state.running.startedAt}'

echo "== instances lost while nodeless was down (as in a host reboot)"
K run survivor --image=busybox -- sleep 3600 >/dev/null
K run oneshot --image=busybox --restart=Never -- sleep 3600 >/dev/null
eventually "both run" 60 K wait --for=condition=Ready pod/survivor pod/oneshot --timeout=2s
survivor_uid=$(K get pod survivor -o 'jsonpath={.metadata.uid}')
oneshot_uid=$(K get pod oneshot -o 'jsonpath={.metadata.uid}')
survivor_started=$(K get pod survivor -o 'jsonpath={.status.containerStatuses[0].state.running.startedAt}')
expect_output "its container has a start time to compare" "^[0-9]" echo "$survivor_started"
stop_nodeless
# A reboot ends every process: each instance's shim, then its container.
for pair in "$survivor_uid survivor" "$oneshot_uid oneshot"; do
  set -- $pair
  pkill -9 -f "instances/$1/shim.json" || true
  runc --root "$DATA/engine/run/runc" kill "$1-$2" KILL >/dev/null 2>&1 || true
done
start_nodeless "$DATA" "$PORT" "${UP_FLAGS[@]}" || exit 1
eventually "the restartPolicy Always Pod runs again, started anew" 60 bash -c \
  "kubectl get pod survivor -o 'jsonpath={.status.phase} {.status.containerStatuses[0].state.running.startedAt}' | grep -E '^Running [0-9]' | grep -vqF '$survivor_started'"
eventually "the restartPolicy Never Pod ends Failed" 60 bash -c \
  "kubectl get pod oneshot -o 'jsonpath={.status.phase}' | grep -x Failed"
expect_output "its container ended as the kubelet reports a lost one" "^137 ContainerStatusUnknown$" \
  K get pod oneshot -o 'jsonpath={.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.terminated.reason}'
check "the Failed Pod can be deleted" K delete pod oneshot --timeout=30s
expect_output "no Pod is stuck Pending or Terminating" "^$" bash -c "kubectl get pods --no-headers | grep -v huge | grep -E 'Pending|Terminating|Unknown'"
check "delete everything" K delete pod --all --timeout=60s
eventually "no instance is left behind" 30 bash -c "[ \$('$NODELESS_BIN' runtime --root '$DATA/engine' ps -a | wc -l) -le 1 ]"

summary
