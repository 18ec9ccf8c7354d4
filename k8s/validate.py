#!/usr/bin/env python3
"""Offline checks of the Kubernetes deliverables; run by k8s/validate.sh (which sets up the venv
and renders the kustomizations first). Every check prints one line; any failure exits 1.

Usage: validate.py --rendered DIR --versions 1.29.0,1.37.0 [--per-file] [--sidecar-bin PATH]

examples/shared-redis (Valkey for shared.redis) is checked as well: its config is the base's plus
`shared`, the sidecar's URL variable and projected password file, Valkey's Deployment, Service
and NetworkPolicy, and `llm-sidecar check` on its config with the URL variable set (and refusing
it without).
"""

import argparse
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import yaml
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

ROOT = Path(__file__).resolve().parent.parent          # the repository
K8S = ROOT / "k8s"

SIDECAR = "llm-sidecar"
INJECT_LABEL = ("llm-sidecar/injected", "true")
CONFIGMAP = "llm-sidecar-config"
SECRET = "llm-sidecar-keys"
ADMIN_PORT = 9901
ADMIN_TOKEN_ENV = "LLM_SIDECAR_ADMIN_TOKEN"
RESOURCES = {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}
MOUNTS = {  # mount path -> (volume source kind, name of the ConfigMap/Secret or None, readOnly)
    "/etc/llm-sidecar": ("configMap", CONFIGMAP, True),
    "/var/run/secrets/llm": ("secret", SECRET, True),
    "/var/lib/llm-sidecar": ("emptyDir", None, False),
    "/tmp": ("emptyDir", None, False),
}
ROUTES = {"/anthropic", "/openai", "/gemini", "/openrouter"}
# examples/shared-redis: Valkey's Deployment, Service, NetworkPolicy and Secret share this name.
SHARED_EXAMPLE = K8S / "examples" / "shared-redis"
REDIS = "llm-sidecar-redis"
REDIS_URL_ENV = "LLM_SIDECAR_REDIS_URL"
REDIS_POLICIES = {"volatile-ttl", "allkeys-lru"}   # every key the sidecar writes has a TTL

# The metrics the sidecar exports (src/metrics.rs), with their labels.
METRICS = {
    "requests_total": {"route", "pool", "status_class"},
    "request_duration_seconds": {"route", "pool"},
    "upstream_ttfb_seconds": {"route", "pool"},
    "overhead_seconds": {"route", "pool"},
    "upstream_attempts_total": {"pool", "account", "outcome"},
    "tokens_total": {"pool", "account", "kind"},
    "cost_usd_total": {"pool", "account"},
    "inflight_requests": {"pool"},
    "queue_depth": {"pool", "account"},
    "account_state": {"pool", "account", "state"},
    "account_health_score": {"pool", "account"},
    "account_budget_used_ratio": {"pool", "account"},
    "sessions": {"pool", "account"},
    "retries_total": {"pool"},
    "retry_budget_exhausted_total": {"pool"},
    "ratelimited_total": {"scope"},
    "config_reloads_total": {"result"},
    "config_last_reload_success_timestamp_seconds": set(),
    "request_log_dropped_total": set(),
    "notifications_dropped_total": set(),
}
HISTOGRAMS = {"request_duration_seconds", "upstream_ttfb_seconds", "overhead_seconds"}
LABEL_VALUES = {
    "status_class": {"0", "1xx", "2xx", "3xx", "4xx", "5xx"},
    "state": {"healthy", "cooling_down", "open", "half_open", "broken_key"},
    "kind": {"input", "output", "cache_read", "cache_write"},
    "outcome": {"ok", "failure", "rate_limited", "key_broken", "connect_error", "timeout"},
    "scope": {"client", "account", "pool"},
    "result": {"success", "error"},
}
# Labels Prometheus adds to every scraped series (PodMonitor: namespace, pod, container, ...).
TARGET_LABELS = {"namespace", "pod", "container", "job", "instance", "endpoint", "service"}

passed = 0
failures = []


def ok(msg):
    global passed
    passed += 1
    print(f"  ok   {msg}")


def fail(msg):
    failures.append(msg)
    print(f"  FAIL {msg}")


def check(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        fail(msg + (f": {detail}" if detail else ""))
    return cond


def rel(p):
    return os.path.relpath(p, ROOT)


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---------------------------------------------------------------------------------------------
def check_yaml_files():
    print("YAML files under k8s/ parse")
    for p in sorted(K8S.rglob("*.yaml")):
        try:
            docs = load_docs(p)
            check(bool(docs), f"{rel(p)} parses ({len(docs)} document(s))", "empty")
        except yaml.YAMLError as e:
            fail(f"{rel(p)} does not parse: {e}")


def check_kustomizations():
    print("kustomization files: kinds, and every referenced file exists and parses")
    for k in sorted(K8S.rglob("kustomization.yaml")):
        d = load_docs(k)[0]
        kind, api = d.get("kind", "Kustomization"), d.get("apiVersion", "kustomize.config.k8s.io/v1beta1")
        want = {"Kustomization": "kustomize.config.k8s.io/v1beta1", "Component": "kustomize.config.k8s.io/v1alpha1"}
        check(want.get(kind) == api, f"{rel(k)}: {kind} {api}")
        known = {"apiVersion", "kind", "resources", "components", "patches", "images", "configMapGenerator",
                 "secretGenerator", "labels", "namespace", "namePrefix", "nameSuffix", "replacements"}
        check(set(d) <= known, f"{rel(k)}: only known fields", str(set(d) - known))
        refs = [("resource", r) for r in d.get("resources", [])]
        refs += [("component", c) for c in d.get("components", [])]
        refs += [("patch", p["path"]) for p in d.get("patches", []) if "path" in p]
        for g in d.get("configMapGenerator", []) + d.get("secretGenerator", []):
            refs += [("generator file", f.split("=", 1)[-1]) for f in g.get("files", [])]
        for what, r in refs:
            target = (k.parent / r).resolve()
            if target.is_dir():
                inner = target / "kustomization.yaml"
                check(inner.is_file(), f"{rel(k)}: {what} {r} is a kustomization directory")
            elif check(target.is_file(), f"{rel(k)}: {what} {r} exists"):
                if what != "generator file":
                    load_docs(target)  # parse errors were reported above
                    inside = str(target).startswith(str(k.parent.resolve()) + os.sep)
                    check(inside, f"{rel(k)}: {what} {r} is inside the kustomization (kustomize refuses others)")
        if kind == "Component":
            for p in d.get("patches", []):
                check(p.get("target", {}).get("kind") == "Deployment", f"{rel(k)}: patch {p.get('path')} targets kind Deployment")
        if d.get("images"):
            check(all(i.get("name") == SIDECAR for i in d["images"]), f"{rel(k)}: images entries name {SIDECAR}")


# ---------------------------------------------------------------------------------------------
def schema_validate(doc, source, versions):
    """kubernetes-validate (strict: unknown fields are errors) against each version."""
    kind = doc.get("kind")
    name = doc.get("metadata", {}).get("name")
    for v in versions:
        try:
            got = kubernetes_validate.validate(doc, v, strict=True)
            ok(f"{source}: {kind}/{name} valid (strict) against Kubernetes {got}")
        except ValidationError as e:
            path = ".".join(str(x) for x in e.path)
            fail(f"{source}: {kind}/{name} invalid against Kubernetes {v}: {path}: {e.message}")
        except SchemaNotFoundError as e:
            if doc.get("apiVersion") == "monitoring.coreos.com/v1" and kind == "PodMonitor":
                check_podmonitor(doc, source)
                return  # once, not per version
            fail(f"{source}: {e.message}")


def check_podmonitor(doc, source):
    """No schema for the Prometheus Operator CRD here: a structural check of the fields used."""
    spec = doc.get("spec", {})
    allowed_spec = {"selector", "podMetricsEndpoints", "namespaceSelector", "jobLabel", "podTargetLabels",
                    "sampleLimit", "targetLimit", "attachMetadata"}
    allowed_ep = {"port", "portNumber", "path", "scheme", "interval", "scrapeTimeout", "honorLabels",
                  "honorTimestamps", "relabelings", "metricRelabelings", "params", "enableHttp2",
                  "followRedirects", "filterRunning", "authorization", "basicAuth", "bearerTokenSecret", "tlsConfig"}
    eps = spec.get("podMetricsEndpoints") or []
    good = (set(spec) <= allowed_spec and isinstance(spec.get("selector", {}).get("matchLabels"), dict)
            and eps and all(isinstance(e, dict) and set(e) <= allowed_ep for e in eps)
            and set(doc) <= {"apiVersion", "kind", "metadata", "spec"})
    check(good, f"{source}: PodMonitor/{doc['metadata'].get('name')} structure (CRD, no schema: fields checked by hand)",
          json.dumps(spec))
    check(spec.get("selector", {}).get("matchLabels") == {INJECT_LABEL[0]: INJECT_LABEL[1]},
          f"{source}: PodMonitor selects {INJECT_LABEL[0]}={INJECT_LABEL[1]}")
    check(any(e.get("port") == "admin" and e.get("path") == "/metrics" for e in eps),
          f"{source}: PodMonitor scrapes port admin, path /metrics")
    for e in eps:
        for key in ("interval", "scrapeTimeout"):
            if key in e:
                check(re.fullmatch(r"(\d+(ms|s|m|h))+", e[key]) is not None, f"{source}: PodMonitor {key} {e[key]} is a duration")


def self_test_validator(versions):
    """The validator must reject a broken sidecar, or a green run means nothing."""
    print("self-test: the schema validator rejects broken manifests")
    base = load_docs(K8S / "base" / "deployment.yaml")[0]
    for what, mutate in [
        ("an unknown container field", lambda c: c.update({"restartPolicyy": "Always"})),
        ("a port that is not a number", lambda c: c["ports"][0].update({"containerPort": "admin"})),
    ]:
        d = copy.deepcopy(base)
        mutate(d["spec"]["template"]["spec"]["initContainers"][0])
        try:
            kubernetes_validate.validate(d, versions[0], strict=True)
            fail(f"validator accepted {what}")
        except ValidationError:
            ok(f"validator rejects {what}")


# ---------------------------------------------------------------------------------------------
def sidecar_container(dep):
    spec = dep["spec"]["template"]["spec"]
    found = [c for c in spec.get("initContainers", []) if c["name"] == SIDECAR]
    return found[0] if found else None


def check_deployment(dep, source, config):
    name = dep["metadata"]["name"]
    where = f"{source}: Deployment/{name}"
    tpl = dep["spec"]["template"]
    spec = tpl["spec"]
    c = sidecar_container(dep)
    if not check(c is not None, f"{where}: has init container {SIDECAR}"):
        return
    check(all(x["name"] != SIDECAR for x in spec.get("containers", [])), f"{where}: {SIDECAR} is not also a regular container")
    check(c.get("restartPolicy") == "Always", f"{where}: {SIDECAR} has restartPolicy Always (native sidecar)")
    check(tpl["metadata"].get("labels", {}).get(INJECT_LABEL[0]) == INJECT_LABEL[1],
          f"{where}: pod label {INJECT_LABEL[0]}: \"{INJECT_LABEL[1]}\"")
    ports = {p.get("name"): p for p in c.get("ports", [])}
    check(ports.get("admin", {}).get("containerPort") == ADMIN_PORT, f"{where}: named port admin = {ADMIN_PORT}")

    def probe(kind, path):
        p = c.get(kind, {}).get("httpGet", {})
        check(p.get("path") == path and p.get("port") in ("admin", ADMIN_PORT), f"{where}: {kind} GET {path} on the admin port", json.dumps(p))
    probe("startupProbe", "/readyz")
    probe("readinessProbe", "/readyz")
    probe("livenessProbe", "/healthz")
    check(c.get("resources") == RESOURCES, f"{where}: resources {json.dumps(RESOURCES)}", json.dumps(c.get("resources")))
    sc = c.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 65532 and sc.get("readOnlyRootFilesystem") is True
          and sc.get("allowPrivilegeEscalation") is False and sc.get("capabilities", {}).get("drop") == ["ALL"]
          and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault" and not sc.get("privileged")
          and not sc.get("capabilities", {}).get("add"),
          f"{where}: securityContext non-root 65532, read-only root, no privilege escalation, drop ALL, RuntimeDefault", json.dumps(sc))
    env = {e["name"]: e for e in c.get("env", [])}
    ref = env.get(ADMIN_TOKEN_ENV, {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(ref.get("name") == SECRET and ref.get("key") == "admin-token",
          f"{where}: {ADMIN_TOKEN_ENV} from Secret {SECRET} key admin-token")
    check(config["admin"].get("token_env") == ADMIN_TOKEN_ENV, f"{where}: the config's admin.token_env is the variable set here")
    args = c.get("args") or []
    cfg_path = args[args.index("--config") + 1] if "--config" in args else "/etc/llm-sidecar/sidecar.yaml"
    check(cfg_path == "/etc/llm-sidecar/sidecar.yaml", f"{where}: runs with --config {cfg_path}")

    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for path, (kind, ref_name, ro) in MOUNTS.items():
        m = mounts.get(path)
        if not check(m is not None, f"{where}: {SIDECAR} mounts {path}"):
            continue
        v = volumes.get(m["name"], {})
        src = v.get(kind)
        good = src is not None and (ref_name is None or src.get("name", src.get("secretName")) == ref_name)
        if kind == "secret" and "projected" in v:   # examples/shared-redis: the Secret plus the Redis password
            good = {"name": ref_name} in [s.get("secret") for s in v["projected"].get("sources", [])]
        check(good, f"{where}: {path} is {kind}{' ' + ref_name if ref_name else ''}", json.dumps(v))
        check(bool(m.get("readOnly")) == ro, f"{where}: {path} {'read-only' if ro else 'writable'}")
        check("subPath" not in m, f"{where}: {path} mounted without subPath (updates reach the pod)")
    log = (config.get("log") or {}).get("sqlite", "")
    check(log.startswith("/var/lib/llm-sidecar/"), f"{where}: request log {log} is on the writable emptyDir")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    drain = parse_seconds(str((config.get("server") or {}).get("shutdown_grace", "10s")))
    check(grace >= drain + 10, f"{where}: terminationGracePeriodSeconds {grace} leaves room for shutdown_grace {drain:g}s")
    # The app containers' base URLs point at the sidecar's routes.
    listen = config.get("listen", "127.0.0.1:8080")
    for app in spec.get("containers", []):
        for e in app.get("env", []):
            if e["name"].endswith("_BASE_URL"):
                url = e.get("value", "")
                good = url.startswith(f"http://{listen}/") and ("/" + url.split("/")[3]) in ROUTES
                check(good, f"{where}: container {app['name']} {e['name']}={url} reaches a sidecar route")


def parse_seconds(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", s.strip())
    if not m:
        return float("inf")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def check_config(cm, source, secret_keys):
    """The sidecar.yaml inside the ConfigMap."""
    where = f"{source}: ConfigMap/{cm['metadata']['name']} sidecar.yaml"
    cfg = yaml.safe_load(cm["data"]["sidecar.yaml"])
    check(cfg.get("listen", "127.0.0.1:8080").startswith("127.0.0.1:"), f"{where}: proxy on loopback")
    check(cfg.get("admin", {}).get("listen") == f"0.0.0.0:{ADMIN_PORT}" and cfg["admin"].get("token_env"),
          f"{where}: admin on 0.0.0.0:{ADMIN_PORT} with token_env")
    routes = {r["match"]["path_prefix"]: r["pool"] for r in cfg.get("routes", [])}
    check(ROUTES <= set(routes), f"{where}: routes {sorted(ROUTES)}", str(sorted(routes)))
    pools = cfg.get("pools", {})
    check(all(p in pools for p in routes.values()), f"{where}: every route's pool exists")
    for pname, pool in pools.items():
        for a in pool.get("accounts", []):
            kf = a.get("key_file", "")
            check(kf.startswith("/var/run/secrets/llm/") and "key_env" not in a,
                  f"{where}: {pname}/{a['name']} key_file under /var/run/secrets/llm", kf)
            if secret_keys is not None:
                check(kf.rsplit("/", 1)[-1] in secret_keys, f"{where}: {pname}/{a['name']} key {kf.rsplit('/', 1)[-1]} is in secret.example.yaml")
    return cfg


def run_sidecar_check(config_text, binary, what="the ConfigMap's sidecar.yaml", extra_env=None, fails_with=None):
    """`llm-sidecar check` on the config, with placeholder key files and token (and extra_env).
    With fails_with: the check must fail and name that path (proves the binary checks it)."""
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp, "keys")
        keys.mkdir()
        text = config_text.replace("/var/run/secrets/llm/", f"{keys}/").replace("/var/lib/llm-sidecar/", f"{tmp}/")
        for k in re.findall(re.escape(str(keys)) + r"/([A-Za-z0-9._-]+)", text):
            (keys / k).write_text(" ci-placeholder\n")
        cfg = Path(tmp, "sidecar.yaml")
        cfg.write_text(text)
        env = {k: v for k, v in os.environ.items() if k != REDIS_URL_ENV}   # only extra_env sets it
        env.update({ADMIN_TOKEN_ENV: "ci-admin-token"}, **(extra_env or {}))
        r = subprocess.run([binary, "check", "--config", str(cfg)], env=env, capture_output=True, text=True)
        out = (r.stdout + r.stderr).strip().replace(str(cfg), "sidecar.yaml")
        name = rel(binary) if str(binary).startswith(str(ROOT)) else binary
        if fails_with:
            check(r.returncode != 0 and fails_with in out, f"`{name} check` refuses {what} (names {fails_with})", out)
        else:
            check(r.returncode == 0, f"`{name} check` accepts {what} ({out.splitlines()[0] if out else ''})", out)


def check_shared(docs, source, cfg, base_cfg, sidecar_dep):
    """examples/shared-redis: the config's shared.redis, the sidecar's URL variable and password
    file, and Valkey's Deployment, Service and NetworkPolicy agree with each other. Returns the
    sidecar's Deployment with the overlay's additions undone (to compare it with the base's)."""
    where = f"{source}: shared.redis"
    r = (cfg.get("shared") or {}).get("redis") or {}
    check(r.get("url_env") == REDIS_URL_ENV and "url" not in r, f"{where}: url_env {REDIS_URL_ENV} (no URL in the config)", json.dumps(r))
    pf = r.get("password_file", "")
    check(pf.startswith("/var/run/secrets/llm/") and "password_env" not in r, f"{where}: password_file under /var/run/secrets/llm", pf)
    check({k: v for k, v in cfg.items() if k != "shared"} == base_cfg, f"{where}: the rest of the config is base/configmap.yaml's")

    def one(kind):
        return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == REDIS), None)
    dep, svc, np = one("Deployment"), one("Service"), one("NetworkPolicy")
    if not check(dep is not None and svc is not None and np is not None, f"{source}: Deployment, Service and NetworkPolicy {REDIS}"):
        return None
    w = f"{source}: Deployment/{REDIS}"
    tpl, spec = dep["spec"]["template"], dep["spec"]["template"]["spec"]
    pod_labels = tpl["metadata"].get("labels", {})
    check(dep["spec"].get("replicas") == 1 and dep["spec"].get("strategy", {}).get("type") == "Recreate", f"{w}: 1 replica, Recreate")
    check(pod_labels.get(INJECT_LABEL[0]) != INJECT_LABEL[1] and not spec.get("initContainers"), f"{w}: no sidecar, not labelled for one")
    check(spec.get("automountServiceAccountToken") is False, f"{w}: no service account token")
    c = spec["containers"][0] if len(spec.get("containers", [])) == 1 else {}
    check(re.fullmatch(r"(valkey/valkey|redis):\d+\.\d+\.\d+(-[a-z0-9.]+)?", c.get("image", "")) is not None,
          f"{w}: image {c.get('image')} pinned to a release")
    args = c.get("args") or []
    opts = {args[i][2:]: args[i + 1] for i in range(0, len(args) - 1, 2) if args[i].startswith("--")}
    check(opts.get("save") == "" and opts.get("appendonly") == "no", f"{w}: no persistence (--save \"\" --appendonly no)", json.dumps(args))
    env = {e["name"]: e for e in c.get("env", [])}
    m = re.fullmatch(r"\$\((\w+)\)", opts.get("requirepass", ""))
    ref = env.get(m.group(1) if m else "", {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(ref == {"name": REDIS, "key": "password"}, f"{w}: --requirepass from Secret {REDIS} key password", json.dumps(ref))
    policy = opts.get("maxmemory-policy")
    check(policy in REDIS_POLICIES, f"{w}: --maxmemory-policy {policy} in {sorted(REDIS_POLICIES)}")
    res = c.get("resources", {})
    check(all(res.get(a, {}).get(b) for a in ("requests", "limits") for b in ("cpu", "memory")), f"{w}: cpu and memory requests and limits")

    def size(q):   # 64mb / 128Mi -> bytes (the Redis and the Kubernetes way)
        mm = re.fullmatch(r"(\d+)\s*([kmg]b?|[KMG]i)?", str(q or ""), re.I)
        if not mm:
            return None
        unit = (mm.group(2) or "").lower()
        return int(mm.group(1)) * {"": 1, "k": 1000, "kb": 1024, "ki": 1024, "m": 10**6, "mb": 2**20, "mi": 2**20,
                                    "g": 10**9, "gb": 2**30, "gi": 2**30}[unit]
    mem, limit = size(opts.get("maxmemory")), size(res.get("limits", {}).get("memory"))
    check(mem and limit and mem <= limit * 3 // 4, f"{w}: --maxmemory {opts.get('maxmemory')} leaves a quarter of the limit {res.get('limits', {}).get('memory')}")
    sc, psc = c.get("securityContext", {}), spec.get("securityContext", {})
    check((sc.get("runAsNonRoot") or psc.get("runAsNonRoot")) is True and sc.get("runAsUser", psc.get("runAsUser")) not in (None, 0)
          and sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
          and sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add") and not sc.get("privileged")
          and "RuntimeDefault" in (sc.get("seccompProfile", {}).get("type"), psc.get("seccompProfile", {}).get("type")),
          f"{w}: securityContext non-root, read-only root, no privilege escalation, drop ALL, RuntimeDefault", json.dumps(sc))
    ready, live = c.get("readinessProbe", {}), c.get("livenessProbe", {})
    check("ping" in " ".join(ready.get("exec", {}).get("command", [])) and ("tcpSocket" in live or "exec" in live),
          f"{w}: readiness pings, liveness probes the server")
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    check(opts.get("port", "6379") == "6379" and 6379 in ports.values(), f"{w}: serves 6379")

    ws = f"{source}: Service/{REDIS}"
    sel = svc["spec"].get("selector") or {}
    check(sel and sel.items() <= pod_labels.items() and svc["spec"].get("type", "ClusterIP") == "ClusterIP", f"{ws}: ClusterIP selecting Valkey's pods")
    sp = svc["spec"].get("ports", [{}])[0]
    target = sp.get("targetPort", sp.get("port"))
    check(ports.get(target, target) == 6379, f"{ws}: port {sp.get('port')} reaches the container's 6379")

    wn = f"{source}: NetworkPolicy/{REDIS}"
    npsel = np["spec"].get("podSelector", {}).get("matchLabels") or {}
    check(npsel and npsel.items() <= pod_labels.items() and "Ingress" in np["spec"].get("policyTypes", []), f"{wn}: applies to Valkey's pods (ingress)")
    rules = np["spec"].get("ingress", [])
    froms = [f for rule in rules for f in rule.get("from", [])]
    check(rules and all(rule.get("from") for rule in rules) and froms == [{"podSelector": {"matchLabels": {INJECT_LABEL[0]: INJECT_LABEL[1]}}}] * len(froms),
          f"{wn}: only pods labelled {INJECT_LABEL[0]}={INJECT_LABEL[1]} (this namespace) may connect", json.dumps(rules))
    check(all(rule.get("ports") and all(p.get("port") in (6379, "redis") for p in rule["ports"]) for rule in rules), f"{wn}: only to 6379")

    if sidecar_dep is None or sidecar_container(sidecar_dep) is None:
        fail(f"{source}: no sidecar to point at {REDIS}")
        return None
    wd = f"{source}: Deployment/{sidecar_dep['metadata']['name']}"
    sc_env = {e["name"]: e for e in sidecar_container(sidecar_dep).get("env", [])}
    url = sc_env.get(REDIS_URL_ENV, {}).get("value", "")
    u = urlsplit(url)
    check(u.scheme in ("redis", "rediss") and (u.hostname or "").split(".")[0] == REDIS and (u.port or 6379) == sp.get("port")
          and u.password is None, f"{wd}: {REDIS_URL_ENV}={url} is Service {REDIS}:{sp.get('port')}, no password in it")
    vol = next((v for v in sidecar_dep["spec"]["template"]["spec"].get("volumes", []) if v["name"] == SECRET), {})
    sources = vol.get("projected", {}).get("sources", [])
    want = [{"secret": {"name": SECRET}},
            {"secret": {"name": REDIS, "items": [{"key": "password", "path": pf.rsplit("/", 1)[-1]}]}}]
    check(sorted(json.dumps(x, sort_keys=True) for x in sources) == sorted(json.dumps(x, sort_keys=True) for x in want)
          and not vol.get("secret"),
          f"{wd}: volume {SECRET} projects Secret {SECRET} and {REDIS}/password as {pf}", json.dumps(vol))
    # The sidecar as the base has it: without the URL variable, the keys volume a plain Secret.
    undone = copy.deepcopy(sidecar_dep)
    c2 = sidecar_container(undone)
    c2["env"] = [e for e in c2.get("env", []) if e["name"] != REDIS_URL_ENV]
    for v in undone["spec"]["template"]["spec"].get("volumes", []):
        if v["name"] == SECRET and "projected" in v:
            mode = v.pop("projected").get("defaultMode")
            v["secret"] = {"secretName": SECRET, **({"defaultMode": mode} if mode is not None else {})}
    return undone


# ---------------------------------------------------------------------------------------------
def check_manifests(args):
    versions = args.versions
    secret_doc = load_docs(K8S / "base" / "secret.example.yaml")[0]
    print("secret.example.yaml (not in the kustomization: validated on its own)")
    schema_validate(secret_doc, "k8s/base/secret.example.yaml", versions)
    sdata = secret_doc.get("stringData", {})
    check(secret_doc["metadata"]["name"] == SECRET, f"Secret is named {SECRET}")
    check(bool(sdata) and all(str(v).startswith("REPLACE-ME") for v in sdata.values()) and "data" not in secret_doc,
          "every Secret value is a REPLACE-ME placeholder in stringData")
    check("admin-token" in sdata, "the Secret has admin-token")
    secret_keys = set(sdata)
    redis_secret = load_docs(SHARED_EXAMPLE / "secret.example.yaml")[0]
    print(f"{rel(SHARED_EXAMPLE / 'secret.example.yaml')} (not in the kustomization: validated on its own)")
    schema_validate(redis_secret, rel(SHARED_EXAMPLE / "secret.example.yaml"), versions)
    rdata = redis_secret.get("stringData", {})
    check(redis_secret["metadata"]["name"] == REDIS and set(rdata) == {"password"} and "data" not in redis_secret
          and str(rdata["password"]).startswith("REPLACE-ME"), f"Secret {REDIS}: only password, a REPLACE-ME placeholder in stringData")
    shared_runs = []   # (source, config text, URL) for `llm-sidecar check`

    base_cm = load_docs(K8S / "base" / "configmap.yaml")[0]
    base_cfg = yaml.safe_load(base_cm["data"]["sidecar.yaml"])
    comp_cm = load_docs(K8S / "components" / "inject" / "configmap.yaml")[0]
    check(base_cm == comp_cm, "components/inject/configmap.yaml is identical to base/configmap.yaml")

    if args.per_file:
        print("per-file mode (no kustomize): each manifest validated on its own")
        sets = {}
        for p in [K8S / "base" / "configmap.yaml", K8S / "base" / "deployment.yaml", K8S / "base" / "podmonitor.yaml",
                  K8S / "components" / "inject" / "configmap.yaml", K8S / "examples" / "inject-into-app" / "deployment.yaml"]:
            sets.setdefault(rel(p), load_docs(p))
        # The component's patch is partial: it is checked by merging nothing, only by the rules below.
        rendered = {"k8s/base (files)": sets["k8s/base/configmap.yaml"] + sets["k8s/base/deployment.yaml"] + sets["k8s/base/podmonitor.yaml"]}
        patch = load_docs(K8S / "components" / "inject" / "sidecar-patch.yaml")[0]
        print("component patch (partial Deployment: rules only)")
        cfg = check_config(comp_cm, "k8s/components/inject", secret_keys)
        check_deployment(patch, "k8s/components/inject/sidecar-patch.yaml", cfg)
        patch_sidecar = ("k8s/components/inject/sidecar-patch.yaml", patch)
        for name, docs in sets.items():
            if name.startswith("k8s/examples"):
                for d in docs:
                    schema_validate(d, name, versions)
        rendered["k8s/examples/shared-redis (files)"] = load_docs(SHARED_EXAMPLE / "configmap-patch.yaml") + [
            d for f in ("deployment.yaml", "service.yaml", "networkpolicy.yaml") for d in load_docs(SHARED_EXAMPLE / "valkey" / f)]
        shared_patch = load_docs(SHARED_EXAMPLE / "sidecar-patch.yaml")[0]   # partial: its env and volume only
    else:
        rendered = {}
        for f in sorted(Path(args.rendered).glob("*.yaml")):
            rendered[f"kustomize build {f.stem.replace('__', '/')}"] = load_docs(f)

    sidecars = {}
    for source, docs in rendered.items():
        print(f"{source}: {len(docs)} objects")
        cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
        cfg = None
        if check(CONFIGMAP in cms, f"{source}: has ConfigMap {CONFIGMAP}"):
            cfg = check_config(cms[CONFIGMAP], source, secret_keys)
        shared = cfg is not None and "shared" in cfg
        for d in docs:
            schema_validate(d, source, versions)
            if d["kind"] == "Deployment" and d["metadata"]["name"] == REDIS:
                check(shared, f"{source}: Valkey comes with shared.redis in the config")
            elif d["kind"] == "Deployment" and cfg is not None:
                check_deployment(d, source, cfg)
                sidecars[f"{source} {d['metadata']['name']}"] = d
        if shared:
            with_sidecar = [k for k in sidecars if k.startswith(source + " ")]
            if args.per_file:
                dep = shared_patch
            else:
                check(len(with_sidecar) == 1, f"{source}: one Deployment with the sidecar", str(with_sidecar))
                dep = sidecars[with_sidecar[0]] if with_sidecar else None
            undone = check_shared(docs, source, cfg, base_cfg, dep)
            if undone is not None and not args.per_file:
                sidecars[with_sidecar[0]] = undone   # compared with the base's sidecar below
            url = next((e.get("value") for e in (sidecar_container(dep) or {}).get("env", []) if e["name"] == REDIS_URL_ENV), None) if dep else None
            shared_runs.append((source, cms[CONFIGMAP]["data"]["sidecar.yaml"], url))
        kinds = {d["kind"] for d in docs}
        check("Secret" not in kinds, f"{source}: ships no Secret (real keys are never overwritten by apply)")

    if args.per_file:
        sidecars[patch_sidecar[0]] = patch_sidecar[1]
    check(any(s for s, _, _ in shared_runs), "examples/shared-redis was checked (shared.redis, Valkey, sidecar)")
    # The component must inject exactly the sidecar the base shows, and keep the app's own parts.
    if len(sidecars) >= 2:
        print("the component injects the same sidecar as the base, and keeps the app's own parts")
        items = list(sidecars.items())
        (n0, d0) = items[0]
        c0 = sidecar_container(d0)
        v0 = {v["name"]: v for v in d0["spec"]["template"]["spec"]["volumes"] if v["name"].startswith(SIDECAR)}
        for n, d in items[1:]:
            check(sidecar_container(d) == c0, f"{n}: sidecar container identical to {n0}")
            v = {x["name"]: x for x in d["spec"]["template"]["spec"]["volumes"] if x["name"].startswith(SIDECAR)}
            check(v == v0, f"{n}: sidecar volumes identical to {n0}")
    example = load_docs(K8S / "examples" / "inject-into-app" / "deployment.yaml")[0]
    for n, d in sidecars.items():
        if d["metadata"]["name"] == example["metadata"]["name"]:
            spec, espec = d["spec"]["template"]["spec"], example["spec"]["template"]["spec"]
            check(spec["containers"] == espec["containers"], f"{n}: the app's containers are untouched")
            names = {v["name"] for v in spec["volumes"]}
            check({v["name"] for v in espec.get("volumes", [])} <= names, f"{n}: the app's own volumes are kept")
            check(d["spec"]["selector"] == example["spec"]["selector"], f"{n}: the selector is untouched")

    if args.sidecar_bin:
        print(f"the real binary checks the config ({args.sidecar_bin})")
        run_sidecar_check(base_cm["data"]["sidecar.yaml"], args.sidecar_bin)
        for source, text, url in shared_runs:
            run_sidecar_check(text, args.sidecar_bin, f"{source}'s sidecar.yaml with {REDIS_URL_ENV}={url}",
                              extra_env={REDIS_URL_ENV: url or ""})
            run_sidecar_check(text, args.sidecar_bin, f"{source}'s sidecar.yaml without {REDIS_URL_ENV}",
                              fails_with="shared.redis.url_env")
    else:
        print("llm-sidecar check: skipped (no binary: set LLM_SIDECAR_BIN or build target/debug/llm-sidecar)")


# ---------------------------------------------------------------------------------------------
def check_dashboard():
    import promql_parser as pp

    path = K8S / "grafana" / "llm-sidecar-dashboard.json"
    print(f"{rel(path)}")
    d = json.loads(path.read_text())
    check(d.get("schemaVersion", 0) >= 36, f"schemaVersion {d.get('schemaVersion')} >= 36")
    tvars = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    ds = tvars.get("datasource", {})
    check(ds.get("type") == "datasource" and ds.get("query") == "prometheus", "variable datasource: type datasource, prometheus")
    for name in ("pool", "account"):
        v = tvars.get(name, {})
        q = v.get("query", {})
        q = q.get("query", "") if isinstance(q, dict) else q
        check(v.get("type") == "query" and q.startswith("label_values(") and v.get("datasource", {}).get("uid") == "${datasource}",
              f"variable {name}: label_values query on ${{datasource}}", q)

    panels = []

    def collect(ps):
        for p in ps:
            panels.append(p)
            collect(p.get("panels", []))
    collect(d.get("panels", []))
    ids = [p["id"] for p in panels]
    check(len(ids) == len(set(ids)), f"{len(panels)} panels with unique ids")
    check(all("gridPos" in p for p in panels), "every panel has a gridPos")

    exprs = [(v["name"], v["query"]["query"] if isinstance(v["query"], dict) else v["query"])
             for v in tvars.values() if v.get("type") == "query"]
    wrong_ds, no_query = [], []
    for p in panels:
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            wrong_ds.append(p["title"])
        targets = p.get("targets", [])
        if not targets:
            no_query.append(p["title"])
        for t in targets:
            if t.get("datasource", {}).get("uid") != "${datasource}":
                wrong_ds.append(f"{p['title']} {t['refId']}")
            exprs.append((f"panel '{p['title']}' {t['refId']}", t["expr"]))
    check(not wrong_ds, "every panel and query uses ${datasource}", str(wrong_ds))
    check(not no_query, "every panel has queries", str(no_query))

    used = set()
    bad = []
    for where, expr in exprs:
        e = expr
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", e.strip(), re.S)
        by_label = None
        if m:
            e, by_label = m.group(1), m.group(2)
        e = (e.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$__interval", "1m"))
        e = re.sub(r"\$\{?\w+\}?", ".*", e)
        try:
            ast = pp.parse(e)
        except Exception as ex:  # the parser raises ValueError and friends
            bad.append(f"{where}: does not parse: {ex}: {expr}")
            continue
        names, labels_avail, problems = [], set(TARGET_LABELS), []

        def pre(n):
            if isinstance(n, pp.VectorSelector):
                names.append(n.name)
                base = n.name[len("llm_sidecar_"):] if n.name and n.name.startswith("llm_sidecar_") else None
                suffix = None
                if base is not None and base not in METRICS:
                    for s in ("_bucket", "_sum", "_count"):
                        if base.endswith(s) and base[: -len(s)] in HISTOGRAMS:
                            base, suffix = base[: -len(s)], s
                if base is None or base not in METRICS:
                    problems.append(f"unknown metric {n.name}")
                    return
                if base in HISTOGRAMS and suffix is None:
                    problems.append(f"histogram {n.name} used without _bucket/_sum/_count")
                used.add(base)
                avail = METRICS[base] | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set())
                labels_avail.update(avail)
                for mt in n.matchers.matchers:
                    if mt.name not in avail:
                        problems.append(f"{n.name} has no label {mt.name}")
                    elif mt.name in LABEL_VALUES and str(mt.op).endswith(("Equal", "Re")) and "." not in mt.value:
                        vals = set(mt.value.split("|"))
                        if not vals <= LABEL_VALUES[mt.name]:
                            problems.append(f"{n.name}: {mt.name} has no value(s) {sorted(vals - LABEL_VALUES[mt.name])}")
            if isinstance(n, pp.AggregateExpr) and n.modifier is not None:
                grouping.append(list(n.modifier.labels))
        grouping = []
        pp.walk(ast, pre)
        for g in grouping:
            for lab in g:
                if lab not in labels_avail:
                    problems.append(f"grouping by {lab}, which none of its metrics has")
        if by_label and by_label not in labels_avail:
            problems.append(f"label_values of {by_label}, which the metric has not")
        if not names:
            problems.append("selects no metric")
        if problems:
            bad.append(f"{where}: " + "; ".join(problems))
    check(not bad, f"{len(exprs)} PromQL expressions parse and use only the sidecar's metrics and labels", "\n    ".join(bad))
    missing = set(METRICS) - used
    check(not missing, f"every one of the {len(METRICS)} metrics is shown", str(sorted(missing)))


# ---------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rendered", help="directory of kustomize outputs (name__with__slashes.yaml)")
    ap.add_argument("--versions", default="1.29.0,1.37.0")
    ap.add_argument("--per-file", action="store_true")
    ap.add_argument("--sidecar-bin")
    ap.add_argument("--only", choices=["manifests", "dashboard", "all"], default="all")
    args = ap.parse_args()
    args.versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    if any(tuple(int(x) for x in v.split(".")[:2]) < (1, 29) for v in args.versions):
        sys.exit("native sidecars need Kubernetes >= 1.29: validate against 1.29 or later")

    if args.only in ("manifests", "all"):
        check_yaml_files()
        check_kustomizations()
        self_test_validator(args.versions)
        check_manifests(args)
    if args.only in ("dashboard", "all"):
        check_dashboard()

    print()
    if failures:
        print(f"k8s validation FAILED: {len(failures)} of {passed + len(failures)} checks failed:")
        for f in failures:
            print(f"  - {f}")
        sys.exit(1)
    print(f"k8s validation: all {passed} checks passed")


if __name__ == "__main__":
    main()
