#!/usr/bin/env bash
# End-to-end: the operator CLI `nodeless runtime` against real runc/runsc, CNI and a local
# registry, as an operator would use it on a host. Needs root.
source "$(dirname "$0")/lib/harness.sh"

if [ "$(id -u)" != 0 ]; then echo "skipped: the instance engine needs root"; echo "0 passed, 0 failed"; exit 0; fi
WORK=$(mktemp -d /tmp/nodeless-e2e-runtime.XXXXXX)
RPORT=$(free_port)
ROOT="$WORK/engine"
trap 'for n in web; do "$NODELESS_BIN" runtime --root "$ROOT" rm -f "$n" >/dev/null 2>&1; done; "$NODELESS_BIN" runtime --root "$ROOT" prune >/dev/null 2>&1; stop_registry; rm -rf "$WORK"' EXIT
start_registry "$WORK/registry" "$RPORT" || exit 1
bash "$(dirname "$0")/../../scripts/test-images.sh" "127.0.0.1:$RPORT" >/dev/null || { echo "cannot push test images"; exit 1; }
# A wrapper on disk, so pipelines and `bash -c` can use it too.
printf '#!/bin/sh\nexec "%s" runtime --root "%s" --registry-mirror "docker.io=http://127.0.0.1:%s" "$@"\n' "$NODELESS_BIN" "$ROOT" "$RPORT" >"$WORK/R"
chmod +x "$WORK/R"
R() { "$WORK/R" "$@"; }

echo "== images"
check "pull through the mirror" R pull busybox
expect_output "images lists it" "busybox" R images
expect_fail "a missing image names the image and the registry's answer" "nope.*(manifest unknown|not found|404)" R pull "127.0.0.1:$RPORT/library/nope:1"

echo "== attached runs"
expect_output "run streams output" "^hello$" R run --rm busybox -- echo hello
R run --rm busybox -- sh -c 'exit 3' >/dev/null 2>&1; code=$?
if [ "$code" = 3 ]; then pass "run exits with the container's exit code"; else fail "run exits with the container's exit code" "got $code"; fi
expect_output "env and args reach the container" "^v=42$" R run --rm --env V=42 busybox -- sh -c 'echo v=$V'
expect_output "the instance has its own network" "inet 10\\." R run --rm busybox -- ip -4 addr show eth0
R run --rm --memory 16Mi busybox -- sh -c 'a=$(head -c 67108864 /dev/zero | tr "\\0" a); echo survived' >"$WORK/oom.out" 2>&1; code=$?
if [ "$code" = 137 ] && ! grep -q survived "$WORK/oom.out"; then pass "memory limit is enforced (OOM kill, exit 137)"; else fail "memory limit is enforced (OOM kill, exit 137)" "exit $code: $(cat "$WORK/oom.out")"; fi
if command -v runsc >/dev/null; then
  expect_output "gVisor runs the same image" "^gvisor$" R run --rm --runtime runsc busybox -- echo gvisor
else
  fail "gVisor runs the same image" "runsc is not installed"
fi

echo "== detached instances"
check "run --detach" R run --detach --name web busybox -- sh -c 'mkdir -p /www && echo hi >/www/index.html && exec httpd -f -p 8080 -h /www'
eventually "ps shows it running with an IP" 10 bash -c "'$WORK/R' ps | grep -E '^web .*Up.*10\\.'"
ip=$(R ps | awk '/^web /{for(i=1;i<=NF;i++) if ($i ~ /^10\./) print $i}')
eventually "the host reaches it at its IP" 10 curl -sf "http://$ip:8080/index.html"
expect_output "exec runs in the instance" "^hi$" R exec web -- cat /www/index.html
expect_output "exec -i passes stdin" "^abc$" bash -c "echo abc | '$WORK/R' exec -i web -- cat"
R exec web -- sh -c 'exit 7' >/dev/null 2>&1; code=$?
if [ "$code" = 7 ]; then pass "exec exits with the command's exit code"; else fail "exec exits with the command's exit code" "got $code"; fi
check "logs" R logs web
check "stop" R stop web
expect_output "ps -a shows it exited" "^web " R ps -a
check "rm" R rm web
if R ps -a | grep -q '^web '; then fail "it is gone" "$(R ps -a)"; else pass "it is gone"; fi
check "rmi" R rmi busybox

summary
