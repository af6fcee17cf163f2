#!/usr/bin/env python3
"""Offline checks of Switchboard's Kubernetes manifests (run by scripts/check-deploy.sh).

For deploy/base and every overlay under deploy/overlays:

1. render it with the pinned `kustomize` (and, when a `kubectl` is given, with `kubectl kustomize`
   too: both must produce the same objects);
2. validate every object offline against the Kubernetes JSON schemas bundled by
   kubernetes-validate (strict: unknown fields fail), for the oldest and the newest Kubernetes
   version we support; the custom resources (KEDA ScaledObject, Prometheus Operator PodMonitor and
   PrometheusRule) against the checked-in schemas in deploy/tests/schemas — said explicitly;
3. check what the schemas cannot: the security settings of every pod and container, probes on
   the services' real endpoints and port, resources, references between objects, that every
   environment variable is one the service reads (parsed from its config.rs and crates/bus), that
   all services agree on the stream settings (each one brings the streams to its own settings at
   start), that the gateway and the dialer agree on the answer mode and the ring timeout, grace periods that cover each service's drain, the KEDA trigger's stream and consumer
   (parsed from crates/bus), alert expressions using only metrics that exist and runbooks that
   exist in docs/operations.md, and the per-environment rules of dev and prod.

Exit status 0 when everything holds, 1 with every problem listed otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

# Oldest and newest Kubernetes the manifests are validated against. 1.30 is the floor: the
# gateway's preStop uses the kubelet's `sleep` action (on by default from 1.30), since the
# distroless image has no sleep binary.
K8S_VERSIONS = ("1.30.0", "1.37.0")

SERVICES = ("gateway", "router", "dialer")

# Custom resources: (apiVersion, kind) -> checked-in schema file.
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda-v1alpha1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor-monitoring-v1.json",
}

# Secrets the manifests reference but never contain (operators create them; docs/operations.md
# says how). Only an overlay that generates its own (dev) may reference others.
EXTERNAL_SECRETS = {"switchboard-tenants", "switchboard-router-db", "switchboard-nats"}

# Metrics that come from outside the services, as the alerts use them:
# prometheus-nats-exporter with the NATS Helm chart's arguments (-prefix=nats -jsz=all), see
# collector/jsz.go there; and kube-state-metrics' Deployment metrics.
EXTERNAL_METRICS = {
    "nats_consumer_num_pending",
    "nats_consumer_num_ack_pending",
    "nats_consumer_num_redelivered",
    "nats_consumer_num_waiting",
    "nats_consumer_delivered_stream_seq",
    "nats_consumer_ack_floor_stream_seq",
    "nats_stream_total_messages",
    "nats_stream_total_bytes",
    "nats_stream_last_seq",
    "nats_server_total_message_bytes",
    "nats_server_max_storage",
    "nats_server_jetstream_disabled",
    "kube_deployment_spec_replicas",
    "kube_deployment_status_replicas_available",
}

PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "offset", "bool", "rate", "irate", "increase", "delta", "idelta",
    "histogram_quantile", "label_replace", "label_join", "abs", "absent", "absent_over_time",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "last_over_time", "present_over_time", "stddev_over_time",
    "predict_linear", "deriv", "clamp_min", "clamp_max", "vector", "scalar", "time",
    "changes", "resets", "round", "ceil", "floor", "sort", "sort_desc", "le",
}


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{where}: {what}")


# ---------------------------------------------------------------------------------------------
# What the code says (parsed from the Rust sources, never edited here)
# ---------------------------------------------------------------------------------------------


def env_names(repo: Path) -> dict[str, set[str]]:
    """The environment variables each service reads: its config.rs plus the shared NatsArgs and
    StreamArgs of crates/bus (flattened into every service's Config)."""
    shared = set()
    for f in ("crates/bus/src/connect.rs", "crates/bus/src/streams.rs"):
        shared |= set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', (repo / f).read_text()))
    names = {}
    for svc in SERVICES:
        text = (repo / f"services/{svc}/src/config.rs").read_text()
        if "NatsArgs" not in text or "StreamArgs" not in text:
            raise SystemExit(f"services/{svc}/src/config.rs no longer flattens NatsArgs/StreamArgs")
        names[svc] = set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', text)) | shared
    return names


def env_allowed(name: str, svc: str, known: dict[str, set[str]]) -> bool:
    # RUST_LOG: the log filter (crates/telemetry); OTEL_*: OpenTelemetry's standard variables.
    return name in known[svc] or name == "RUST_LOG" or name.startswith("OTEL_")


def consumers(repo: Path) -> dict[str, tuple[str, str]]:
    """Durable consumer name -> (stream name, function) from crates/bus."""
    streams = dict(
        re.findall(r'pub const ([A-Z_]+): &str = "([^"]+)";', (repo / "crates/bus/src/streams.rs").read_text())
    )
    text = (repo / "crates/bus/src/consumers.rs").read_text()
    found = {}
    for fn, name, stream in re.findall(
        r"pub fn (router_inbound)\(\)[^{]*\{.*?name:\s*\"([^\"]+)\",\s*stream:\s*([A-Z_]+)", text, re.S
    ):
        found[name] = (streams.get(stream, stream), fn)
    # The dialer's two consumers share dialer_spec(name, ...) with stream CALLS.
    if re.search(r"fn dialer_spec\(.*?stream:\s*CALLS", text, re.S):
        for name in re.findall(r'dialer_spec\(\s*"([^"]+)"', text):
            found[name] = (streams["CALLS"], "dialer_spec")
    return found


def exported_metrics(repo: Path) -> tuple[set[str], str]:
    """Metric families the services register (prometheus-client: Registry::with_prefix + register)
    and every string literal of the sources (for other styles of registration)."""
    families: set[str] = set()
    literals: list[str] = []
    for f in sorted(list(repo.glob("services/*/src/**/*.rs")) + list(repo.glob("crates/*/src/**/*.rs"))):
        text = f.read_text()
        literals.append(text)
        prefixes = re.findall(r'with_prefix\(\s*"([a-z0-9_:]+)"\s*\)', text)
        names = re.findall(r'\.register(?:_with_unit)?\(\s*"([a-z0-9_:]+)"', text)
        for p in prefixes or [""]:
            for n in names:
                families.add(f"{p}_{n}" if p else n)
    return families, "\n".join(literals)


def metric_exists(name: str, families: set[str], sources: str) -> bool:
    if name in EXTERNAL_METRICS:
        return True
    candidates = {name}
    for suffix in ("_total", "_bucket", "_sum", "_count", "_created", "_info"):
        if name.endswith(suffix):
            candidates.add(name[: -len(suffix)])
    if candidates & families:
        return True
    return any(f'"{c}"' in sources for c in candidates)


def promql_metrics(expr: str) -> set[str]:
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", e))
    return {n for n in names if n not in PROMQL_WORDS and "_" in n and not re.match(r"^\d", n)}


def heading_anchors(markdown: str) -> set[str]:
    anchors = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            text = m.group(1).strip().lower()
            text = re.sub(r"[^\w\- ]", "", text)
            anchors.add(text.replace(" ", "-"))
    return anchors


# ---------------------------------------------------------------------------------------------
# Rendering and schemas
# ---------------------------------------------------------------------------------------------


def render(cmd: list[str], problems: Problems, where: str) -> list[dict] | None:
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        problems.add(where, f"`{' '.join(cmd)}` failed:\n{run.stderr.strip()}")
        return None
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def key(doc: dict) -> tuple[str, str, str]:
    return (doc.get("kind", "?"), doc.get("metadata", {}).get("namespace", ""), doc.get("metadata", {}).get("name", "?"))


def validate_schemas(docs: list[dict], schemas_dir: Path, problems: Problems, where: str, notes: list[str]) -> None:
    for doc in docs:
        name = "/".join(key(doc)[::2])
        crd = CRD_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
        if crd:
            schema = json.loads((schemas_dir / crd).read_text())
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
            for err in errors:
                problems.add(where, f"{name}: {err.message} at {'/'.join(map(str, err.absolute_path))} "
                             f"(custom resource, checked-in schema {crd})")
            notes.append(f"{where}: {name}: custom resource, not in the Kubernetes schemas; "
                         f"validated against deploy/tests/schemas/{crd}")
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                problems.add(where, f"{name}: no schema for {doc.get('apiVersion')} {doc.get('kind')} "
                             f"in Kubernetes {version} (and no checked-in one)")
                break
            except kubernetes_validate.ValidationError as err:
                problems.add(where, f"{name}: Kubernetes {version} schema: {err.message} "
                             f"at {'/'.join(map(str, err.absolute_path))}")
                break


# ---------------------------------------------------------------------------------------------
# Policy
# ---------------------------------------------------------------------------------------------


def quantity(value, cpu: bool) -> float | None:
    s = str(value)
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?", s)
    if not m:
        return None
    n, unit = float(m.group(1)), m.group(2) or ""
    if cpu:
        return n / 1000 if unit == "m" else (n if unit == "" else None)
    scale = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    return n * scale[unit] if unit in scale else None


def matches(selector: dict, labels: dict) -> bool:
    wanted = (selector or {}).get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def effective_env(container: dict, configmaps: dict[str, dict]) -> tuple[dict[str, object], list[str]]:
    """Variable -> value (a string, or a ("secret"|"configmap", name, key) reference), with `env`
    overriding `envFrom` as Kubernetes does; plus the names of unresolvable ConfigMaps."""
    env: dict[str, object] = {}
    missing = []
    for src in container.get("envFrom") or []:
        if "configMapRef" in src:
            ref = src["configMapRef"]
            cm = configmaps.get(ref["name"])
            if cm is None:
                if not ref.get("optional"):
                    missing.append(ref["name"])
                continue
            for k, v in (cm.get("data") or {}).items():
                env[src.get("prefix", "") + k] = v
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            vf = e["valueFrom"]
            if "secretKeyRef" in vf:
                env[e["name"]] = ("secret", vf["secretKeyRef"]["name"], vf["secretKeyRef"]["key"])
            elif "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                cm = configmaps.get(ref["name"])
                if cm is None or ref["key"] not in (cm.get("data") or {}):
                    if not ref.get("optional"):
                        missing.append(f"{ref['name']}/{ref['key']}")
                    continue
                env[e["name"]] = cm["data"][ref["key"]]
            else:
                env[e["name"]] = ("field", "", "")
        else:
            env[e["name"]] = ""
    return env, missing


def num(env: dict, name: str, default: int) -> int:
    v = env.get(name)
    return int(v) if isinstance(v, str) and v.isdigit() else default


def drain_bound_secs(svc: str, env: dict) -> float:
    """The longest a service can take to drain after SIGTERM, from its settings (defaults from
    config.rs), plus a margin for draining the NATS connection."""
    if svc == "router":
        return num(env, "SWITCHBOARD_FRESHNESS_TIMEOUT_MS", 5000) / 1000 + 10
    if svc == "gateway":
        sync = env.get("SWITCHBOARD_ANSWER_MODE") == "sync"
        return (num(env, "SWITCHBOARD_PUBLISH_TIMEOUT_MS", 4000)
                + (num(env, "SWITCHBOARD_SYNC_DEADLINE_MS", 5000) if sync else 0)) / 1000 + 5
    attempts = num(env, "SWITCHBOARD_CARRIER_MAX_ATTEMPTS", 4)
    per = num(env, "SWITCHBOARD_CARRIER_TIMEOUT_MS", 5000) + num(env, "SWITCHBOARD_CARRIER_BACKOFF_MAX_MS", 2000)
    return attempts * per / 1000 + 10


STREAM_SETTINGS = {
    "SWITCHBOARD_STREAM_REPLICAS": "1",
    "SWITCHBOARD_STREAM_MAX_AGE_DAYS": "400",
    "SWITCHBOARD_STREAM_DUPLICATE_WINDOW_SECS": "7200",
    "NATS_URL": "nats://127.0.0.1:4222",
}


def check_policy(target: str, docs: list[dict], ctx: dict, problems: Problems) -> None:
    profile = Path(target).name if "overlays" in target else "base"
    where = target
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    secrets = {d["metadata"]["name"] for d in by_kind.get("Secret", [])}
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    known_env = ctx["env"]

    for kind in ("StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet"):
        for d in by_kind.get(kind, []):
            problems.add(where, f"{kind}/{d['metadata']['name']}: unexpected workload kind; extend the checks first")

    expected = {f"switchboard-{s}" for s in SERVICES}
    if set(deployments) != expected:
        problems.add(where, f"Deployments are {sorted(deployments)}, expected {sorted(expected)}")

    def secret_ok(name: str, optional: bool, at: str) -> None:
        if name in secrets or optional:
            return
        if profile == "dev":
            problems.add(where, f"{at}: Secret {name} is not generated by the dev overlay")
        elif name not in EXTERNAL_SECRETS:
            problems.add(where, f"{at}: Secret {name} is neither rendered nor one of the documented "
                         f"external Secrets {sorted(EXTERNAL_SECRETS)}")

    stream_settings: dict[str, dict[str, str]] = {}
    svc_env: dict[str, dict] = {}
    for name, dep in sorted(deployments.items()):
        at = f"Deployment/{name}"
        svc = name.removeprefix("switchboard-")
        spec = dep["spec"]
        tpl = spec["template"]
        pod = tpl["spec"]
        labels = tpl["metadata"].get("labels") or {}
        if not matches(spec.get("selector"), labels):
            problems.add(where, f"{at}: selector does not match the pod template's labels")
        strategy = spec.get("strategy") or {}
        if strategy.get("type") != "RollingUpdate" or str((strategy.get("rollingUpdate") or {}).get("maxUnavailable")) not in ("0", "0%"):
            problems.add(where, f"{at}: needs a RollingUpdate with maxUnavailable 0 (no capacity lost during upgrades)")

        # Pod security.
        psc = pod.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            problems.add(where, f"{at}: pod securityContext.runAsNonRoot must be true")
        for k in ("runAsUser", "runAsGroup"):
            if not isinstance(psc.get(k), int) or isinstance(psc.get(k), bool) or psc.get(k) <= 0:
                problems.add(where, f"{at}: pod securityContext.{k} must be a numeric non-zero id")
        if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.add(where, f"{at}: pod securityContext.seccompProfile.type must be RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            problems.add(where, f"{at}: automountServiceAccountToken must be false (the services never call the API)")
        for k in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(k):
                problems.add(where, f"{at}: {k} must not be set")
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for v in volumes.values():
            if "hostPath" in v:
                problems.add(where, f"{at}: hostPath volume {v['name']}")
            if "configMap" in v and v["configMap"]["name"] not in configmaps and not v["configMap"].get("optional"):
                problems.add(where, f"{at}: volume {v['name']}: ConfigMap {v['configMap']['name']} is not rendered")
            if "secret" in v:
                secret_ok(v["secret"]["secretName"], bool(v["secret"].get("optional")), f"{at} volume {v['name']}")
        if profile == "prod":
            anti = ((pod.get("affinity") or {}).get("podAntiAffinity") or {})
            terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [
                t.get("podAffinityTerm", {}) for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
            if not any(matches(t.get("labelSelector"), labels) and t.get("topologyKey") for t in terms):
                problems.add(where, f"{at}: prod needs pod anti-affinity over nodes selecting its own pods")

        containers = pod.get("containers") or []
        if len(containers) != 1:
            problems.add(where, f"{at}: expected exactly one container, found {len(containers)}")
        for c in containers + (pod.get("initContainers") or []):
            cat = f"{at} container {c['name']}"
            csc = c.get("securityContext") or {}
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.add(where, f"{cat}: allowPrivilegeEscalation must be false")
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.add(where, f"{cat}: readOnlyRootFilesystem must be true")
            if csc.get("privileged"):
                problems.add(where, f"{cat}: privileged")
            caps = csc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                problems.add(where, f"{cat}: capabilities must drop ALL")
            if caps.get("add"):
                problems.add(where, f"{cat}: adds capabilities {caps['add']}")
            if "runAsUser" in csc and (not isinstance(csc["runAsUser"], int) or csc["runAsUser"] == 0):
                problems.add(where, f"{cat}: runAsUser must be numeric and non-zero")
            if csc.get("runAsNonRoot") is False:
                problems.add(where, f"{cat}: runAsNonRoot overridden to false")
            image = c.get("image", "")
            tag = image.rsplit("/", 1)[-1]
            if "@sha256:" not in image and (":" not in tag or tag.endswith(":latest")):
                problems.add(where, f"{cat}: image {image!r} needs a pinned tag or digest (not latest)")
            res = c.get("resources") or {}
            for kind_ in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    v = (res.get(kind_) or {}).get(r)
                    if v is None:
                        problems.add(where, f"{cat}: resources.{kind_}.{r} is not set")
                    elif quantity(v, r == "cpu") is None:
                        problems.add(where, f"{cat}: resources.{kind_}.{r} {v!r} is not a quantity")
            for r in ("cpu", "memory"):
                req, lim = (res.get("requests") or {}).get(r), (res.get("limits") or {}).get(r)
                if req is not None and lim is not None:
                    qr, ql = quantity(req, r == "cpu"), quantity(lim, r == "cpu")
                    if qr is not None and ql is not None and qr > ql:
                        problems.add(where, f"{cat}: {r} request {req} exceeds its limit {lim}")
            mounts = c.get("volumeMounts") or []
            for m in mounts:
                v = volumes.get(m["name"])
                if v is None:
                    problems.add(where, f"{cat}: volumeMount {m['name']} has no volume")
                elif not m.get("readOnly") and not ({"emptyDir", "persistentVolumeClaim", "ephemeral"} & set(v)):
                    problems.add(where, f"{cat}: mount {m['mountPath']} of {m['name']} should be readOnly")

        if not containers:
            continue
        c = containers[0]
        cat = f"{at} container {c['name']}"
        env, missing = effective_env(c, configmaps)
        for m in missing:
            problems.add(where, f"{cat}: ConfigMap {m} is not rendered")
        for src in c.get("envFrom") or []:
            if "secretRef" in src:
                secret_ok(src["secretRef"]["name"], bool(src["secretRef"].get("optional")), cat)
        for e in c.get("env") or []:
            ref = ((e.get("valueFrom") or {}).get("secretKeyRef"))
            if ref:
                secret_ok(ref["name"], bool(ref.get("optional")), f"{cat} env {e['name']}")
        if svc not in SERVICES:
            continue
        svc_env[svc] = env
        for n in sorted(env):
            if not env_allowed(n, svc, known_env):
                problems.add(where, f"{cat}: environment variable {n} is not read by switchboard-{svc} "
                             f"(services/{svc}/src/config.rs, crates/bus)")
        stream_settings[name] = {k: (env.get(k, d) if isinstance(env.get(k, d), str) else "<ref>")
                                 for k, d in STREAM_SETTINGS.items()}

        # HTTP port, probes.
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
        addr = env.get("SWITCHBOARD_HTTP_ADDR", "0.0.0.0:8080")
        http_port = int(str(addr).rsplit(":", 1)[-1]) if isinstance(addr, str) else None
        if ports.get("http") != http_port:
            problems.add(where, f"{cat}: containerPort 'http' ({ports.get('http')}) differs from "
                         f"SWITCHBOARD_HTTP_ADDR's port ({http_port})")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            p = c.get(probe)
            if not p:
                problems.add(where, f"{cat}: {probe} is missing")
                continue
            get = p.get("httpGet") or {}
            port = get.get("port")
            port = ports.get(port) if isinstance(port, str) else port
            if get.get("path") != path or port != http_port:
                problems.add(where, f"{cat}: {probe} must GET {path} on the HTTP port {http_port} "
                             f"(has {get.get('path')} on {get.get('port')})")
        startup = c.get("startupProbe")
        if startup and (startup.get("httpGet") or {}).get("path") not in ("/healthz",):
            problems.add(where, f"{cat}: startupProbe should GET /healthz")

        # Writable places: the SQLite projection must live on a writable volume.
        db = env.get("DATABASE_URL")
        if svc == "router":
            if isinstance(db, str) and db.startswith("sqlite:"):
                path = re.sub(r"^sqlite:(//)?", "", db).split("?", 1)[0]
                writable = [m["mountPath"] for m in c.get("volumeMounts") or []
                            if not m.get("readOnly") and "emptyDir" in volumes.get(m["name"], {})
                            or not m.get("readOnly") and "persistentVolumeClaim" in volumes.get(m["name"], {})]
                if not path.startswith("/") or not any(path.startswith(w.rstrip("/") + "/") for w in writable):
                    problems.add(where, f"{cat}: SQLite file {path} is not on a writable volume (the root "
                                 f"filesystem is read-only)")
                if profile == "prod":
                    problems.add(where, f"{cat}: prod must use PostgreSQL for the projection, not SQLite")
            elif isinstance(db, tuple):
                if db[0] != "secret":
                    problems.add(where, f"{cat}: DATABASE_URL must come from a Secret")
            elif isinstance(db, str) and db.startswith("postgres"):
                problems.add(where, f"{cat}: a PostgreSQL URL (with its password) must come from a Secret, not a ConfigMap")
            elif db is None:
                problems.add(where, f"{cat}: DATABASE_URL is not set (the default is a relative SQLite path on the read-only root)")
        if svc in ("gateway", "dialer"):
            if "SWITCHBOARD_TENANTS_FILE" in env:
                tf = str(env["SWITCHBOARD_TENANTS_FILE"])
                if not any(tf.startswith(m["mountPath"].rstrip("/") + "/") for m in c.get("volumeMounts") or []):
                    problems.add(where, f"{cat}: SWITCHBOARD_TENANTS_FILE {tf} is not on a mounted volume")
            elif "SWITCHBOARD_TENANTS_JSON" not in env:
                problems.add(where, f"{cat}: no tenants (SWITCHBOARD_TENANTS_FILE or _JSON)")
            if not env.get("SWITCHBOARD_PUBLIC_BASE_URL"):
                problems.add(where, f"{cat}: SWITCHBOARD_PUBLIC_BASE_URL is required")

        # Grace period covers the drain.
        grace = pod.get("terminationGracePeriodSeconds", 30)
        pre = ((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)
        bound = drain_bound_secs(svc, env) + pre
        if grace < bound:
            problems.add(where, f"{at}: terminationGracePeriodSeconds {grace} < {bound:g} s "
                         f"(preStop {pre} s + the longest drain from its settings + margin)")
        if svc == "gateway" and pre < 3:
            problems.add(where, f"{cat}: needs a preStop sleep so the endpoint leaves the Service "
                         f"before the gateway stops accepting")

    # All services must agree on the streams: each brings CALLS and SETTINGS to its own settings.
    if len({json.dumps(v, sort_keys=True) for v in stream_settings.values()}) > 1:
        problems.add(where, f"services disagree on NATS/stream settings (each would update the "
                     f"streams to its own at start): {stream_settings}")
    replicas_setting = {v["SWITCHBOARD_STREAM_REPLICAS"] for v in stream_settings.values()}
    gw, dl = svc_env.get("gateway", {}), svc_env.get("dialer", {})
    # The gateway answers step 0 in sync mode and the dialer every other step: both must read the
    # same answer mode and ring timeout (one name each in both services; defaults from config.rs).
    if gw and dl:
        for setting, default in (("SWITCHBOARD_ANSWER_MODE", "async"), ("SWITCHBOARD_RING_TIMEOUT_SECS", "20")):
            values = {svc: env.get(setting, default) for svc, env in (("gateway", gw), ("dialer", dl))}
            if values["gateway"] != values["dialer"]:
                problems.add(where, f"the gateway and the dialer must agree on {setting} "
                             f"(put it in the shared ConfigMap switchboard-answer): {values}")
        if gw.get("SWITCHBOARD_ANSWER_MODE", "async") not in ("async", "sync"):
            problems.add(where, f"SWITCHBOARD_ANSWER_MODE must be async or sync, "
                         f"not {gw.get('SWITCHBOARD_ANSWER_MODE')!r}")

    # Services and PDBs.
    for s in by_kind.get("Service", []):
        at = f"Service/{s['metadata']['name']}"
        sel = s["spec"].get("selector") or {}
        targets = [d for d in deployments.values()
                   if sel and all((d["spec"]["template"]["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())]
        if len(targets) != 1:
            problems.add(where, f"{at}: selector matches {len(targets)} Deployments, expected 1")
            continue
        cports = {p.get("name"): p["containerPort"] for c in targets[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []}
        for p in s["spec"].get("ports") or []:
            tp = p.get("targetPort", p["port"])
            if (isinstance(tp, str) and tp not in cports) or (isinstance(tp, int) and tp not in cports.values()):
                problems.add(where, f"{at}: targetPort {tp} is not a port of {targets[0]['metadata']['name']}")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    for name, dep in deployments.items():
        labels = dep["spec"]["template"]["metadata"].get("labels") or {}
        covering = [p for p in pdbs if matches(p["spec"].get("selector"), labels)]
        if len(covering) != 1:
            problems.add(where, f"Deployment/{name}: covered by {len(covering)} PodDisruptionBudgets, expected 1")
            continue
        pspec = covering[0]["spec"]
        replicas = dep["spec"].get("replicas", 1)
        if "minAvailable" in pspec and isinstance(pspec["minAvailable"], int) and pspec["minAvailable"] >= replicas:
            problems.add(where, f"PodDisruptionBudget/{covering[0]['metadata']['name']}: minAvailable "
                         f"{pspec['minAvailable']} >= {replicas} replicas blocks every node drain")
        if str(pspec.get("maxUnavailable", "1")) in ("0", "0%"):
            problems.add(where, f"PodDisruptionBudget/{covering[0]['metadata']['name']}: maxUnavailable 0 blocks every node drain")

    # Autoscalers.
    scaled: dict[str, str] = {}
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref.get("kind") != "Deployment" or ref.get("name") not in deployments:
            problems.add(where, f"HorizontalPodAutoscaler/{hpa['metadata']['name']}: targets {ref}, not a rendered Deployment")
        scaled.setdefault(ref.get("name"), f"HPA {hpa['metadata']['name']}")
    bus_consumers = ctx["consumers"]
    for so in by_kind.get("ScaledObject", []):
        at = f"ScaledObject/{so['metadata']['name']}"
        target = so["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            problems.add(where, f"{at}: targets {target}, not a rendered Deployment")
        if target in scaled:
            problems.add(where, f"{at}: {target} is already scaled by {scaled[target]}")
        scaled[target] = at
        for t in so["spec"].get("triggers") or []:
            if t["type"] != "nats-jetstream":
                continue
            md = t["metadata"]
            consumer = md.get("consumer")
            if consumer not in bus_consumers:
                problems.add(where, f"{at}: consumer {consumer!r} is not defined in crates/bus (known: {sorted(bus_consumers)})")
            elif md.get("stream") != bus_consumers[consumer][0]:
                problems.add(where, f"{at}: consumer {consumer} reads stream {bus_consumers[consumer][0]}, not {md.get('stream')!r}")
            if target == "switchboard-router" and consumer != "router":
                problems.add(where, f"{at}: the router must scale on its own consumer 'router'")
            for k in ("natsServerMonitoringEndpoint", "lagThreshold"):
                if not md.get(k):
                    problems.add(where, f"{at}: trigger metadata {k} is required")

    # Monitoring.
    for rule in by_kind.get("PrometheusRule", []):
        for group in rule["spec"].get("groups") or []:
            for r in group.get("rules") or []:
                if "alert" not in r:
                    continue
                at = f"PrometheusRule/{rule['metadata']['name']} alert {r['alert']}"
                for m in sorted(promql_metrics(str(r["expr"]))):
                    if not metric_exists(m, ctx["metrics"], ctx["sources"]):
                        problems.add(where, f"{at}: metric {m} is not exported by the services nor by the "
                                     f"NATS exporter / kube-state-metrics")
                if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                    problems.add(where, f"{at}: needs a severity label (critical, warning or info)")
                ann = r.get("annotations") or {}
                if not ann.get("summary"):
                    problems.add(where, f"{at}: needs a summary annotation")
                rb = ann.get("runbook", "")
                want = f"docs/operations.md#runbook-{r['alert'].lower()}"
                if rb != want:
                    problems.add(where, f"{at}: runbook annotation must be {want}")
                elif f"runbook-{r['alert'].lower()}" not in ctx["anchors"]:
                    problems.add(where, f"{at}: docs/operations.md has no section 'Runbook: {r['alert']}'")

    # Per environment.
    ns = [d for d in by_kind.get("Namespace", [])]
    if profile in ("dev", "prod"):
        if len(ns) != 1 or (ns[0]["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce") != "restricted":
            problems.add(where, "the overlay's Namespace must enforce the restricted Pod Security Standard")
        for d in docs:
            if d["kind"] != "Namespace" and d["metadata"].get("namespace") != (ns[0]["metadata"]["name"] if ns else None):
                problems.add(where, f"{d['kind']}/{d['metadata']['name']}: not in the overlay's namespace")
    if profile == "dev":
        for name, dep in deployments.items():
            if dep["spec"].get("replicas", 1) != 1:
                problems.add(where, f"Deployment/{name}: dev runs one replica")
        if replicas_setting != {"1"}:
            problems.add(where, f"dev (single-node NATS) needs SWITCHBOARD_STREAM_REPLICAS=1, has {replicas_setting}")
    if profile == "prod":
        router = deployments.get("switchboard-router", {})
        so = [s for s in by_kind.get("ScaledObject", []) if s["spec"]["scaleTargetRef"]["name"] == "switchboard-router"]
        if router.get("spec", {}).get("replicas", 1) < 3:
            problems.add(where, "prod needs at least 3 routers")
        if len(so) != 1 or so[0]["spec"].get("minReplicaCount", 0) < 3 or not any(
                t["type"] == "nats-jetstream" for t in so[0]["spec"].get("triggers") or []):
            problems.add(where, "prod needs a KEDA ScaledObject (nats-jetstream trigger, minReplicaCount >= 3) on the router")
        for name, dep in deployments.items():
            if dep["spec"].get("replicas", 1) < 2:
                problems.add(where, f"Deployment/{name}: prod needs at least 2 replicas")
        if replicas_setting != {"3"}:
            problems.add(where, f"prod (3-node NATS) needs SWITCHBOARD_STREAM_REPLICAS=3, has {replicas_setting}")
        if not by_kind.get("PrometheusRule"):
            problems.add(where, "prod needs the PrometheusRule")


# ---------------------------------------------------------------------------------------------
# The container build (hadolint lints it; these are the properties we rely on)
# ---------------------------------------------------------------------------------------------


def check_dockerfile(repo: Path, problems: Problems) -> None:
    where = "deploy/Dockerfile"
    text = (repo / where).read_text()
    lines = re.sub(r"\\\n", " ", text).splitlines()
    args = dict(re.findall(r"^ARG\s+([A-Z_]+)=(\S+)", text, re.M))
    stages: dict[str, dict] = {}
    current = None
    for line in lines:
        m = re.match(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            image = re.sub(r"\$\{?([A-Z_]+)\}?", lambda v: args.get(v.group(1), v.group(0)), m.group(1))
            current = {"from": image, "user": None, "entrypoint": None, "run": []}
            stages[m.group(2) or f"#{len(stages)}"] = current
            continue
        if current is None:
            continue
        if line.startswith("USER "):
            current["user"] = line.split(None, 1)[1].strip()
        elif line.startswith("ENTRYPOINT "):
            current["entrypoint"] = line.split(None, 1)[1].strip()
        elif line.startswith("RUN "):
            current["run"].append(line)
    if len(stages) < 2:
        problems.add(where, "must be a multi-stage build")

    def user_of(name: str) -> str | None:
        seen = set()
        while name in stages and name not in seen:
            seen.add(name)
            if stages[name]["user"]:
                return stages[name]["user"]
            name = stages[name]["from"]
        return None

    for svc in SERVICES:
        st = stages.get(svc)
        if st is None:
            problems.add(where, f"no target stage {svc!r}")
            continue
        user = user_of(svc) or ""
        uid = user.split(":")[0]
        if not uid.isdigit() or int(uid) == 0:
            problems.add(where, f"stage {svc}: USER must be a numeric non-root id (is {user!r})")
        if not (st["entrypoint"] or "").startswith("[") or f"switchboard-{svc}" not in (st["entrypoint"] or ""):
            problems.add(where, f"stage {svc}: ENTRYPOINT must exec switchboard-{svc} (exec form)")
    for name, st in stages.items():
        base = st["from"]
        if base not in stages and (base.endswith(":latest") or ":" not in base.rsplit("/", 1)[-1]):
            problems.add(where, f"stage {name}: base image {base!r} must be pinned")
    runtime = [st["from"] for n, st in stages.items() if n in SERVICES]
    for base in set(runtime):
        root = base
        while root in stages:
            root = stages[root]["from"]
        if "distroless" not in root and "slim" not in root:
            problems.add(where, f"runtime base {root!r} should be distroless or debian-slim")
    builds = [r for st in stages.values() for r in st["run"] if "cargo build" in r]
    if not builds or not all("--locked" in r and "--release" in r for r in builds):
        problems.add(where, "cargo build must run with --release --locked")
    ignore = (repo / ".dockerignore").read_text().splitlines() if (repo / ".dockerignore").exists() else []
    if not ignore:
        problems.add(".dockerignore", "missing: the build context would include target/ and .tools/")
    elif "**/target" not in ignore or "!Cargo.lock" not in ignore:
        problems.add(".dockerignore", "must exclude **/target and keep Cargo.lock (--locked needs it)")


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--kustomize", required=True, help="the pinned kustomize binary")
    ap.add_argument("--kubectl", help="also render with `kubectl kustomize` and compare")
    ap.add_argument("targets", nargs="*", help="kustomization directories (default: base and every overlay)")
    args = ap.parse_args()
    repo = args.repo.resolve()
    deploy = repo / "deploy"
    targets = [Path(t) for t in args.targets] or [deploy / "base"] + sorted(p for p in (deploy / "overlays").iterdir() if p.is_dir())

    ctx = {
        "env": env_names(repo),
        "consumers": consumers(repo),
        "anchors": heading_anchors((repo / "docs/operations.md").read_text()),
    }
    ctx["metrics"], ctx["sources"] = exported_metrics(repo)
    if "router" not in ctx["consumers"]:
        raise SystemExit("could not find the router's consumer in crates/bus/src/consumers.rs")

    problems = Problems()
    notes: list[str] = []
    check_dockerfile(repo, problems)
    for target in targets:
        rel = str(target.resolve().relative_to(repo))
        docs = render([args.kustomize, "build", str(target)], problems, rel)
        if docs is None:
            continue
        if args.kubectl:
            other = render([args.kubectl, "kustomize", str(target)], problems, rel)
            if other is not None:
                a = sorted(json.dumps(d, sort_keys=True) for d in docs)
                b = sorted(json.dumps(d, sort_keys=True) for d in other)
                if a != b:
                    problems.add(rel, "`kustomize build` and `kubectl kustomize` render different objects")
        validate_schemas(docs, deploy / "tests" / "schemas", problems, rel, notes)
        check_policy(rel, docs, ctx, problems)
        kinds = {}
        for d in docs:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
        print(f"  {rel}: {len(docs)} objects ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})")

    for n in sorted(set(notes)):
        print(f"  note: {n}")
    if problems.items:
        print(f"\n{len(problems.items)} problem(s):", file=sys.stderr)
        for p in problems.items:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"  all {len(targets)} kustomizations render, validate (Kubernetes {' and '.join(K8S_VERSIONS)}) "
          f"and pass the checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
