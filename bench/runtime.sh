#!/usr/bin/env bash
# Instance engine benchmark (issue 3): cold and warm start of `busybox true` through
# `nodeless runtime`, against bare `runc run` of an equivalent bundle and `podman run --rm`,
# plus 100 warm instances started concurrently. Needs root, docker-registry, skopeo, runc, podman.
# Usage: ./x bench runtime [RUNS]   (default 20 per series; prints a markdown table)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
[[ $(id -u) == 0 ]] || { echo "bench runtime: run as root" >&2; exit 1; }
for bin in docker-registry skopeo runc podman python3; do
  command -v "$bin" >/dev/null || { echo "bench runtime: $bin missing (scripts/engine-deps.sh)" >&2; exit 1; }
done

# The timing loops and the cleanup, in Python for sub-millisecond clocks and concurrency.
write_timer() {
  cat >"$1" <<'PY'
import glob, json, os, shutil, subprocess, sys, time

NODELESS = os.environ.get("NODELESS_BIN", "target/release/nodeless")
IMAGE = "busybox"


def engine(root, registry):
    return [NODELESS, "runtime", "--root", root, "--registry-mirror", f"docker.io=http://{registry}"]


def quiet(cmd, check=True):
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr.decode(errors='replace')}")


def timed(cmd):
    t0 = time.perf_counter()
    quiet(cmd)
    return (time.perf_counter() - t0) * 1000.0


def series(make_cmd, runs, warmup=2, pause=0.3, between=None):
    """Milliseconds per run; the pause lets background work (the network pool's refill,
    podman's cleanup) settle as it would between separate invocations."""
    out = []
    for i in range(warmup + runs):
        ms = timed(make_cmd(i))
        if i >= warmup:
            out.append(ms)
        if between:
            between(i)
        time.sleep(pause)
    return out


def pct(ms, q):
    s = sorted(ms)
    return s[round((len(s) - 1) * q)]


def drain_spares(root):
    """Detaches the spare network namespaces a root's warm pool holds: CNI DEL through the
    chain in reverse, then the namespace itself."""
    for path in glob.glob(f"{root}/network/instances/*.json"):
        try:
            st = json.load(open(path))
        except (OSError, ValueError):
            continue
        chain = st["chain"]
        for plugin in reversed(chain["plugins"]):
            conf = dict(plugin, name=chain["name"], cniVersion=chain["cniVersion"])
            env = dict(os.environ, CNI_COMMAND="DEL", CNI_CONTAINERID=st["id"], CNI_NETNS=st["netns"],
                       CNI_IFNAME="eth0", CNI_PATH="/usr/lib/cni:/opt/cni/bin")
            binary = next((f"{d}/{plugin['type']}" for d in ("/usr/lib/cni", "/opt/cni/bin")
                           if os.path.exists(f"{d}/{plugin['type']}")), None)
            if binary:
                subprocess.run([binary], input=json.dumps(conf).encode(), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "delete", os.path.basename(st["netns"])],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.remove(path)


def remove_root(root, registry):
    # Instances first (their own removal detaches their networks), then the spares, then files.
    if os.path.isdir(root):
        ps = subprocess.run(engine(root, registry) + ["ps", "-a"], capture_output=True, text=True)
        for line in ps.stdout.splitlines()[1:]:
            quiet(engine(root, registry) + ["rm", "-f", line.split()[0]], check=False)
        drain_spares(root)
        subprocess.run(["rm", "-rf", "--one-file-system", root])


def concurrent(root, registry, n=100):
    """Starts n `run -d` at once; returns (ms until every CLI returned, ms until `ps` shows all
    running, ms to remove them all)."""
    base = engine(root, registry)
    names = [f"bench-c{i}" for i in range(n)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(base + ["run", "-d", "--name", nm, IMAGE, "--", "sleep", "600"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for nm in names]
    returned = None
    running = None
    deadline = t0 + 120
    while time.perf_counter() < deadline:
        if returned is None and all(p.poll() is not None for p in procs):
            returned = (time.perf_counter() - t0) * 1000.0
            failed = [p for p in procs if p.returncode != 0]
            if failed:
                print(f"{len(failed)} of {n} `run -d` failed: {failed[0].stderr.read().decode()[-500:]}",
                      file=sys.stderr)
        ps = subprocess.run(base + ["ps"], capture_output=True, text=True).stdout
        # STATUS reads like docker's: "Up 3 seconds" once the container runs.
        count = sum(1 for line in ps.splitlines()[1:] if " Up " in line)
        if count >= n:
            running = (time.perf_counter() - t0) * 1000.0
            break
        time.sleep(0.05)
    for p in procs:
        p.wait()
    if returned is None:
        returned = (time.perf_counter() - t0) * 1000.0
    t1 = time.perf_counter()
    rms = [subprocess.Popen(base + ["rm", "-f", nm], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for nm in names]
    for p in rms:
        p.wait()
    removed = (time.perf_counter() - t1) * 1000.0
    return returned, running, removed


def run(work, registry, runs):
    runs = int(runs)
    rows = []

    def cold_cmd(i):
        return engine(f"{work}/cold-{i}", registry) + ["run", "--rm", IMAGE, "--", "true"]

    cold = series(cold_cmd, runs, warmup=0, between=lambda i: remove_root(f"{work}/cold-{i}", registry))
    rows.append(("nodeless, cold (pull + unpack + run, fresh --root)", cold))

    warm_root = f"{work}/warm"
    warm = series(lambda i: engine(warm_root, registry) + ["run", "--rm", IMAGE, "--", "true"], runs)
    rows.append(("nodeless, warm (cached image, CNI network)", warm))

    runc_state = f"{work}/runc-state"
    bare = series(lambda i: ["runc", "--root", runc_state, "run", "--bundle", f"{work}/bundle", f"bench-{i}"], runs)
    rows.append(("bare `runc run` (prepared bundle, no network)", bare))

    podman = series(lambda i: ["podman", "run", "--rm", "--ulimit", "nofile=1024:20000", "--ulimit",
                               "nproc=4096:4096", f"{registry}/library/busybox:latest", "true"], runs)
    rows.append(("`podman run --rm` (cached image, netavark bridge)", podman))

    returned, running, removed = concurrent(warm_root, registry)

    print()
    print("| measure | p50 | p99 | runs |")
    print("|---|---|---|---|")
    for name, ms in rows:
        print(f"| {name} | {pct(ms, 0.5):.0f} ms | {pct(ms, 0.99):.0f} ms | {len(ms)} |")
    run_s = "not all running within 120 s" if running is None else f"{running / 1000:.2f} s"
    print(f"| 100 warm instances, concurrent `run -d`: all CLIs returned | {returned / 1000:.2f} s | | 1 |")
    print(f"| 100 warm instances, concurrent `run -d`: all Running per `ps` | {run_s} | | 1 |")
    print(f"| 100 instances, concurrent `rm -f` | {removed / 1000:.2f} s | | 1 |")
    w, b, p = pct(warm, 0.5), pct(bare, 0.5), pct(podman, 0.5)
    print()
    print(f"warm p50 / podman p50 = {w / p:.2f} (bar < 1: {'met' if w < p else 'not met'})")
    print(f"warm p50 / runc p50 = {w / b:.2f} (bar <= 2: {'met' if w <= 2 * b else 'not met'})")


def cleanup(work):
    for root in glob.glob(f"{work}/cold-*") + [f"{work}/warm"]:
        remove_root(root, "127.0.0.1:1")
    subprocess.run(["runc", "--root", f"{work}/runc-state", "list", "-q"], capture_output=True)


if __name__ == "__main__":
    {"run": run, "cleanup": cleanup}[sys.argv[1]](*sys.argv[2:])
PY
}

work=$(mktemp -d /tmp/nodeless-bench-runtime.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
registry=127.0.0.1:$port
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: $registry
EOF
write_timer "$work/bench.py"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!

# Everything the benchmark leaves behind: instances, the engine's spare network namespaces
# (the CLI keeps a warm pool per root and has no drain command), podman's copy of the image.
cleanup() {
  set +e
  python3 "$work/bench.py" cleanup "$work" >/dev/null 2>&1
  podman rmi -f "$registry/library/busybox:latest" >/dev/null 2>&1
  kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

for _ in $(seq 1 100); do curl -sf "http://$registry/v2/" >/dev/null && break; sleep 0.1; done
scripts/test-images.sh "$registry" >/dev/null

# The bare-runc bundle: the same image's single layer, `true` as the process, no terminal.
skopeo copy --quiet --insecure-policy --src-tls-verify=false \
  "docker://$registry/library/busybox:latest" "oci:$work/oci:busybox"
mkdir -p "$work/bundle/rootfs"
layer=$(python3 -c '
import json, sys
d = sys.argv[1]
idx = json.load(open(f"{d}/index.json"))
m = json.load(open(d + "/blobs/sha256/" + idx["manifests"][0]["digest"].split(":")[1]))
print(d + "/blobs/sha256/" + m["layers"][0]["digest"].split(":")[1])' "$work/oci")
tar -xzf "$layer" -C "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
json.dump(c, open(p, "w"))
EOF

podman pull --quiet --tls-verify=false "$registry/library/busybox:latest" >/dev/null

echo "nodeless runtime benchmark: $(nproc) cores, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$work/bench.py" run "$work" "$registry" "$runs"
echo
echo "load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
