# Shared helpers for the end-to-end scripts: start/stop nodeless, assertions, a summary line.
# shellcheck shell=bash
set -uo pipefail

NODELESS_BIN="${NODELESS_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/target/release/nodeless}"
PASSED=0
FAILED=0
FAILURES=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_nodeless DIR PORT [extra flags]: starts `nodeless up` in the background, waits for /readyz.
start_nodeless() {
  local dir=$1 port=$2; shift 2
  "$NODELESS_BIN" "${NODELESS_CMD:-up}" --data-dir "$dir" --listen "127.0.0.1:$port" "$@" >>"$dir.log" 2>&1 &
  NODELESS_PID=$!
  for _ in $(seq 1 200); do
    if curl -skf "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
      export KUBECONFIG="$dir/kubeconfig"
      return 0
    fi
    if ! kill -0 "$NODELESS_PID" 2>/dev/null; then
      echo "nodeless exited early:"; tail -20 "$dir.log"; return 1
    fi
    sleep 0.05
  done
  echo "nodeless did not become ready"; tail -20 "$dir.log"; return 1
}

stop_nodeless() {
  if [ -n "${NODELESS_PID:-}" ] && kill -0 "$NODELESS_PID" 2>/dev/null; then
    kill -TERM "$NODELESS_PID"
    wait "$NODELESS_PID" 2>/dev/null
  fi
  NODELESS_PID=
}

# remove_instances ENGINE_ROOT: removes every instance an engine root still holds and releases
# its spare network namespaces, so nothing outlives a test or benchmark.
remove_instances() {
  local root=$1
  "$NODELESS_BIN" runtime --root "$root" ps -a 2>/dev/null | awk 'NR>1{print $1}' | while read -r n; do
    "$NODELESS_BIN" runtime --root "$root" rm -f "$n" >/dev/null 2>&1
  done
  "$NODELESS_BIN" runtime --root "$root" prune >/dev/null 2>&1 || true
}

pass() { PASSED=$((PASSED + 1)); echo "  ok   $1"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$1"); echo "  FAIL $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/       /'; }

# check NAME COMMAND...: passes when the command succeeds.
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}

# expect_output NAME PATTERN COMMAND...: passes when the command's output (stdout+stderr) matches PATTERN (grep -E).
expect_output() {
  local name=$1 pattern=$2; shift 2
  local out
  out=$("$@" 2>&1)
  if grep -qE -- "$pattern" <<<"$out"; then pass "$name"; else fail "$name" "expected /$pattern/ in: $out"; fi
}

# expect_fail NAME PATTERN COMMAND...: passes when the command fails and says PATTERN.
expect_fail() {
  local name=$1 pattern=$2; shift 2
  local out
  if out=$("$@" 2>&1); then fail "$name" "expected failure, got: $out"; return; fi
  if grep -qE -- "$pattern" <<<"$out"; then pass "$name"; else fail "$name" "expected /$pattern/ in: $out"; fi
}

# eventually NAME SECONDS COMMAND...: retries until the command succeeds.
eventually() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs)) out
  while :; do
    if out=$("$@" 2>&1); then pass "$name"; return; fi
    if [ $SECONDS -ge $deadline ]; then fail "$name" "$out"; return; fi
    sleep 0.2
  done
}

summary() {
  echo
  for f in "${FAILURES[@]}"; do echo "failed: $f"; done
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# start_registry DIR PORT: Debian's docker-registry on 127.0.0.1:PORT with storage in DIR.
start_registry() {
  local dir=$1 port=$2
  mkdir -p "$dir/storage"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $dir/storage}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  REGISTRY_PID=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return 0
    sleep 0.05
  done
  echo "the registry did not start"; cat "$dir/registry.log"; return 1
}

stop_registry() {
  [ -n "${REGISTRY_PID:-}" ] && kill "$REGISTRY_PID" 2>/dev/null && wait "$REGISTRY_PID" 2>/dev/null
  REGISTRY_PID=
}
