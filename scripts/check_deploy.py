"""Checks of deploy/ that need no Docker engine and no cluster (run by scripts/check_deploy).

* Helm: `helm lint --strict` and `helm template` for several value sets; every rendered
  manifest parses and is checked for what the cluster would only say at apply time: names,
  selectors against pod labels, probes, references to ConfigMaps, Secrets and volumes, the
  replica bound, the KEDA target. Two Deployments: the workers (`sentiment-monitor worker`)
  and the API (`sentiment-monitor api`, `<fullname>-api`), each with its own Service, PDB and
  ServiceMonitor selecting its pods only, its probes on its own port, the same ConfigMap and
  Secret. What each pod's environment adds up to is loaded through the service's own
  `Settings`, so a value the worker or the API would reject fails here. Bad values must fail
  the render with a message.
* Compose: structure of deploy/compose/compose.yaml (services, images or builds, depends_on,
  volumes, bind-mount sources, ports, health checks), the workers and the API service, the
  Prometheus and Alertmanager files it mounts (promtool / amtool when installed).
* Dockerfiles: multi-stage on Debian, non-root, HEALTHCHECK on /healthz, both ports exposed,
  COPY sources exist.

Usage: python scripts/check_deploy.py HELM_BINARY
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "deploy" / "helm" / "sentiment-monitor"
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
KUBE_VERSION = "1.30.0"
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
KNOWN_KINDS = {
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("policy/v1", "PodDisruptionBudget"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
}

failures: list[str] = []


def check(condition: object, message: str) -> None:
    if not condition:
        failures.append(message)


# --- Helm -----------------------------------------------------------------------------------

RELEASE = "ci"
NAMESPACE = "default"  # what `helm template` renders .Release.Namespace as
WORKER = f"{RELEASE}-sentiment-monitor"  # the workers' Deployment, Service, PDB, ServiceMonitor, ConfigMap
API = f"{WORKER}-api"  # the API's Deployment, Service, PDB, ServiceMonitor
API_PARTS = {f"{kind}/{API}" for kind in ("Deployment", "Service", "PodDisruptionBudget")}

# (name, extra helm arguments, kinds or Kind/name that must be rendered, those that must not)
SCENARIOS: list[tuple[str, list[str], set[str], set[str]]] = [
    (
        "defaults",
        [],
        {"Deployment", "Service", "ConfigMap", "Secret", "ServiceAccount", "PodDisruptionBudget", *API_PARTS},
        {"ServiceMonitor", "ScaledObject", "Job"},
    ),
    (
        "full",
        ["-f", str(CHART / "ci" / "full-values.yaml")],
        {
            f"ServiceMonitor/{WORKER}",
            f"ServiceMonitor/{API}",
            "ScaledObject",
            "TriggerAuthentication",
            "Job",
            *API_PARTS,
        },
        set(),
    ),
    (
        "existing-secret",
        ["-f", str(CHART / "ci" / "existing-secret-values.yaml")],
        {"Deployment", "ServiceMonitor", f"Deployment/{API}", f"ServiceMonitor/{API}"},
        {"Secret", "PodDisruptionBudget"},
    ),
    (
        "api",
        ["-f", str(CHART / "ci" / "api-values.yaml")],
        {f"ServiceMonitor/{WORKER}", f"ServiceMonitor/{API}", *API_PARTS},
        {"ScaledObject"},
    ),
    (
        "no-api",
        ["--set", "api.enabled=false,serviceMonitor.enabled=true"],
        {f"Deployment/{WORKER}", f"Service/{WORKER}", f"ServiceMonitor/{WORKER}"},
        {*API_PARTS, f"ServiceMonitor/{API}"},
    ),
    ("cpu-autoscaling", ["--set", "autoscaling.enabled=true,autoscaling.maxReplicas=4"], {"ScaledObject"}, set()),
]
# (name, extra helm arguments, what the error must say)
MUST_FAIL: list[tuple[str, list[str], str]] = [
    ("more replicas than partitions", ["--set", "replicaCount=5"], "exceeds kafka.topicPartitions"),
    (
        "autoscaler above partitions",
        ["--set", "autoscaling.enabled=true,autoscaling.maxReplicas=8"],
        "exceeds kafka.topicPartitions",
    ),
    ("bootstrap without a port", ["--set", "kafka.bootstrap=kafka"], "bootstrap"),
    ("a setting that is not SM_*", ["--set", "config.LOG_LEVEL=INFO"], "LOG_LEVEL"),
    ("no Redis", ["--set", "redis.url="], "redis.url is required"),
    ("unknown security protocol", ["--set", "kafka.securityProtocol=TLS"], "securityProtocol"),
    ("the API's port through config", ["--set", "config.SM_API_PORT=8080"], "api.service.port"),
    ("the workers' port through config", ["--set", "config.SM_WEB_PORT=8080"], "service.port"),
    ("a Redis URL of another scheme", ["--set", "redis.url=http://redis:6379"], "redis/url"),
    ("an unknown api value", ["--set", "api.replica=3"], "replica"),
]


def helm(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("SM_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("SM_")]:
            del os.environ[key]
        os.environ.update(saved)


def load_settings(where: str, env: dict[str, str]) -> Any:
    """What the service's own settings class makes of a pod's environment (None: it refuses it)."""
    sys.path.insert(0, str(REPO))
    try:
        from stream_app.settings import Settings

        with environment(env):
            return Settings(_env_file=None)  # type: ignore[call-arg]
    except Exception as exc:
        check(False, f"{where}: the process would reject its settings: {exc}")
        return None
    finally:
        sys.path.remove(str(REPO))


EXISTING_SECRETS = {"existing-secret": "sentiment-monitor-credentials"}


def component(spec: dict[str, Any]) -> str:
    """'worker' or 'api': a Deployment's pod label app.kubernetes.io/component."""
    return str(spec["template"]["metadata"]["labels"].get("app.kubernetes.io/component", ""))


def pod_env(container: dict[str, Any], by_kind: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The SM_* environment a container starts with: its ConfigMaps and Secrets (envFrom, in
    order), then its own `env` values ($(POD_IP) as a sample address)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(by_kind.get("ConfigMap", {}).get(source["configMapRef"]["name"], {}).get("data") or {})
        if "secretRef" in source:
            secret = by_kind.get("Secret", {}).get(source["secretRef"]["name"])
            if secret:
                env.update(secret.get("stringData") or {})
            else:  # an existing Secret, not rendered
                env.setdefault("SM_REDIS_URL", "redis://from-the-existing-secret:6379/0")
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"]).replace("$(POD_IP)", "10.0.0.1")
    return env


def pod_checks(scenario: str, kind: str, name: str, spec: dict[str, Any], by_kind: dict[str, dict[str, Any]]) -> None:
    where = f"[{scenario}] {kind}/{name}"
    pod = spec["template"]["spec"]
    security = pod.get("securityContext", {})
    check(security.get("runAsNonRoot") is True, f"{where}: pod must run as non-root")
    check(security.get("runAsUser", 0) != 0, f"{where}: runAsUser must not be 0")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    secrets = set(by_kind.get("Secret", {}))
    config_maps = set(by_kind.get("ConfigMap", {}))
    existing = {s for s in [EXISTING_SECRETS.get(scenario)] if s}
    for volume in volumes.values():
        if "configMap" in volume:
            check(volume["configMap"]["name"] in config_maps, f"{where}: volume {volume['name']} names no ConfigMap")
    for container in pod["containers"]:
        cwhere = f"{where} container {container['name']}"
        check(container.get("image", "").count(":") == 1, f"{cwhere}: image must carry a tag")
        for mount in container.get("volumeMounts", []):
            check(mount["name"] in volumes, f"{cwhere}: mount {mount['name']} has no volume")
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                check(source["configMapRef"]["name"] in config_maps, f"{cwhere}: envFrom names a missing ConfigMap")
            if "secretRef" in source:
                ref = source["secretRef"]["name"]
                check(ref in secrets or ref in existing, f"{cwhere}: envFrom names a missing Secret {ref}")
        resources = container.get("resources", {})
        check(resources.get("requests") and resources.get("limits", {}).get("memory"), f"{cwhere}: resources unset")
        csec = container.get("securityContext", {})
        check(csec.get("allowPrivilegeEscalation") is False, f"{cwhere}: allowPrivilegeEscalation must be false")
        check(csec.get("readOnlyRootFilesystem") is True, f"{cwhere}: root file system must be read-only")
        check("/tmp" in {m["mountPath"] for m in container.get("volumeMounts", [])}, f"{cwhere}: /tmp not writable")
    if kind != "Deployment":
        return
    labels = spec["template"]["metadata"]["labels"]
    selector = spec["selector"]["matchLabels"]
    check(selector.items() <= labels.items(), f"{where}: selector does not match the pod labels")
    role = component(spec)
    check(role in ("worker", "api"), f"{where}: component label {role!r} is neither worker nor api")
    check(selector.get("app.kubernetes.io/component") == role, f"{where}: selector does not name the component")
    main = pod["containers"][0]
    check(main.get("args") == [role] and "command" not in main, f"{where}: does not run `sentiment-monitor {role}`")
    ports = {p["name"]: p["containerPort"] for p in main.get("ports", [])}
    check("http" in ports, f"{where}: no port named http")
    for probe, path in (("livenessProbe", "/healthz"), ("startupProbe", "/healthz"), ("readinessProbe", "/readyz")):
        got = main.get(probe, {}).get("httpGet", {})
        check(got.get("path") == path and got.get("port") in ("http", ports.get("http")), f"{where}: {probe} != {path}")
    env = pod_env(main, by_kind)
    check(env.get("SM_WEB_ALLOWED_HOSTS", "").startswith("10.0.0.1,"), f"{where}: the pod IP is not an allowed Host")
    settings = load_settings(where, env)
    gpu_limits = {k for k in main["resources"].get("limits", {}) if k.endswith("/gpu")}
    if role == "api":
        if settings is not None:
            check(settings.api_host == "0.0.0.0", f"{where}: SM_API_HOST must not be loopback in a pod")
            check(settings.api_port == ports.get("http"), f"{where}: SM_API_PORT {settings.api_port} != port http")
        check(spec.get("replicas", 1) >= 1, f"{where}: no API replicas")
        check(not gpu_limits and main["image"].endswith("-cpu"), f"{where}: the API asks for a GPU image or limit")
        check(not any("gpu" in key for key in pod.get("nodeSelector", {})), f"{where}: the API on GPU nodes")
        return
    if settings is not None:
        check(settings.web_host == "0.0.0.0", f"{where}: SM_WEB_HOST must not be loopback in a pod")
        check(settings.web_port == ports.get("http"), f"{where}: SM_WEB_PORT {settings.web_port} != port http")
    partitions = int(env["SM_TOPIC_PARTITIONS"])
    if "ScaledObject" in by_kind:
        check("replicas" not in spec, f"{where}: replicas must be left to KEDA when autoscaling")
    else:
        check(1 <= spec.get("replicas", 1) <= partitions, f"{where}: replicas not within 1..{partitions} partitions")
    if env.get("SM_PROVIDER") == "cuda":
        check(gpu_limits, f"{where}: GPU worker without a GPU limit")
        check(main["image"].endswith("-cuda"), f"{where}: GPU worker without the CUDA image")
        check(pod.get("nodeSelector"), f"{where}: GPU worker without a node selector")
    else:
        check(not gpu_limits and main["image"].endswith("-cpu"), f"{where}: CPU worker asks for a GPU image or limit")


def selected(selector: dict[str, str], deployments: dict[str, dict[str, Any]]) -> list[str]:
    """The Deployments whose pods a label selector picks."""
    return [
        name
        for name, d in deployments.items()
        if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]


def check_rendered(scenario: str, text: str, must: set[str], must_not: set[str]) -> None:
    docs = [d for d in yaml.safe_load_all(text) if d]
    by_kind: dict[str, dict[str, Any]] = {}
    for doc in docs:
        kind, api = doc.get("kind"), doc.get("apiVersion")
        name = doc.get("metadata", {}).get("name", "")
        check((api, kind) in KNOWN_KINDS, f"[{scenario}] unexpected {api} {kind}")
        check(DNS_1123.match(name) and len(name) <= 63, f"[{scenario}] {kind} name {name!r} is not DNS-1123")
        check(doc["metadata"].get("labels", {}).get("app.kubernetes.io/name"), f"[{scenario}] {kind}/{name} unlabelled")
        check(name not in by_kind.get(kind, {}), f"[{scenario}] two {kind}s named {name}")
        by_kind.setdefault(kind, {})[name] = doc
    rendered = set(by_kind) | {f"{kind}/{name}" for kind, docs in by_kind.items() for name in docs}
    check(must <= rendered, f"[{scenario}] missing {sorted(must - rendered)}")
    check(not (must_not & rendered), f"[{scenario}] should not render {sorted(must_not & rendered)}")
    for kind in ("ConfigMap", "Secret"):
        for name, doc in by_kind.get(kind, {}).items():
            data = doc.get("data") or doc.get("stringData") or {}
            check(all(isinstance(v, str) for v in data.values()), f"[{scenario}] {kind}/{name}: non-string values")
    for kind in ("Deployment", "Job"):
        for name, doc in by_kind.get(kind, {}).items():
            pod_checks(scenario, kind, name, doc["spec"], by_kind)
    deployments = by_kind.get("Deployment", {})
    roles = {component(d["spec"]): name for name, d in deployments.items()}
    check(roles.get("worker") == WORKER, f"[{scenario}] the workers' Deployment is not {WORKER}")
    check(roles.get("api") in (None, API), f"[{scenario}] the API's Deployment is not {API}")
    containers = {name: d["spec"]["template"]["spec"]["containers"][0] for name, d in deployments.items()}
    if API in containers and WORKER in containers:
        check(
            containers[API].get("envFrom") == containers[WORKER].get("envFrom"),
            f"[{scenario}] the API does not take its settings from the workers' ConfigMap and Secret",
        )
        shared = ("SM_REDIS_URL", "SM_REDIS_PREFIX", "SM_REDIS_SHARDS", "SM_WATCHLIST", "SM_WEB_TOKEN")
        worker_env, api_env = (pod_env(containers[n], by_kind) for n in (WORKER, API))
        for key in shared:
            check(worker_env.get(key) == api_env.get(key), f"[{scenario}] {key} differs between workers and API")
        api_volumes = {m["mountPath"] for m in containers[API].get("volumeMounts", [])}
        watchlist = api_env.get("SM_WATCHLIST")
        check(not watchlist or str(Path(watchlist).parent) in api_volumes, f"[{scenario}] the API lacks the watch-list")
    for name, pdb in by_kind.get("PodDisruptionBudget", {}).items():
        picks = selected(pdb["spec"]["selector"]["matchLabels"], deployments)
        check(picks == [name], f"[{scenario}] PDB {name} selects {picks}, not Deployment {name}")
    services = by_kind.get("Service", {})
    for name, service in services.items():
        picks = selected(service["spec"]["selector"], deployments)
        check(picks == [name], f"[{scenario}] Service {name} selects {picks}, not Deployment {name}")
        for target in picks:
            pod_ports = {p["name"]: p["containerPort"] for p in containers[target].get("ports", [])}
            for port in service["spec"]["ports"]:
                check(
                    port["targetPort"] in pod_ports or port["targetPort"] in pod_ports.values(),
                    f"[{scenario}] Service {name} port {port['name']} targets no port of {target}",
                )
                check(
                    port["port"] == pod_ports.get(port["targetPort"], port["targetPort"]),
                    f"[{scenario}] Service {name} port {port['port']} != the process's own port",
                )
            hosts = set(pod_env(containers[target], by_kind).get("SM_WEB_ALLOWED_HOSTS", "").split(","))
            for host in (name, f"{name}.{NAMESPACE}.svc"):
                check(host in hosts, f"[{scenario}] {target} would refuse Host {host} (SM_WEB_ALLOWED_HOSTS)")
    secrets = by_kind.get("Secret", {}).values()
    token = bool(EXISTING_SECRETS.get(scenario)) or any("SM_WEB_TOKEN" in (s.get("stringData") or {}) for s in secrets)
    scraped: set[str] = set()
    for name, monitor in by_kind.get("ServiceMonitor", {}).items():
        chosen = [
            s
            for s in services.values()
            if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]
        check(len(chosen) == 1, f"[{scenario}] ServiceMonitor {name} selects {len(chosen)} Services, not one")
        scraped |= {s["metadata"]["name"] for s in chosen}
        port_names = {p["name"] for s in chosen for p in s["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            check(
                endpoint["port"] in port_names and endpoint["path"] == "/metrics", f"[{scenario}] ServiceMonitor port"
            )
            if token:
                credentials = endpoint.get("authorization", {}).get("credentials", {})
                check(credentials.get("key") == "SM_WEB_TOKEN", f"[{scenario}] ServiceMonitor {name} without the token")
    if "ServiceMonitor" in by_kind:
        check(set(services) <= scraped, f"[{scenario}] Services no ServiceMonitor scrapes: {set(services) - scraped}")
    config = by_kind["ConfigMap"][WORKER]["data"]
    if API in services:
        url = f"http://{API}.{NAMESPACE}.svc:{services[API]['spec']['ports'][0]['port']}/dashboard"
        check(config.get("SM_DASHBOARD_URL", "").startswith(("https://", url)), f"[{scenario}] SM_DASHBOARD_URL")
    for name, scaled in by_kind.get("ScaledObject", {}).items():
        spec = scaled["spec"]
        check(spec["scaleTargetRef"]["name"] == WORKER, f"[{scenario}] ScaledObject {name} does not target the workers")
        check(spec["maxReplicaCount"] <= int(config["SM_TOPIC_PARTITIONS"]), f"[{scenario}] KEDA max above partitions")
        trigger = spec["triggers"][0]
        check(trigger["type"] == "kafka", f"[{scenario}] KEDA trigger is not kafka")
        check(trigger["metadata"]["consumerGroup"] == config["SM_APP_ID"], f"[{scenario}] KEDA consumer group")
        check(trigger["metadata"]["bootstrapServers"] == config["SM_KAFKA_BOOTSTRAP"], f"[{scenario}] KEDA bootstrap")
        ref = trigger.get("authenticationRef", {}).get("name")
        if ref:
            auth = by_kind.get("TriggerAuthentication", {}).get(ref)
            check(auth, f"[{scenario}] KEDA authenticationRef {ref} missing")
            for target in (auth or {}).get("spec", {}).get("secretTargetRef", []):
                secret = by_kind.get("Secret", {}).get(target["name"])
                known = target["name"] == "kafka-ca" or (secret and target["key"] in secret.get("stringData", {}))
                check(known, f"[{scenario}] KEDA secret {target['name']}/{target['key']} missing")


def check_helm(binary: str) -> None:
    lint = helm(binary, "lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART))
    check(lint.returncode == 0, f"helm lint --strict failed:\n{lint.stdout}{lint.stderr}")
    for values in sorted((CHART / "ci").glob("*.yaml")):
        lint = helm(binary, "lint", "--strict", "--kube-version", KUBE_VERSION, "-f", str(values), str(CHART))
        check(lint.returncode == 0, f"helm lint --strict -f {values.name} failed:\n{lint.stdout}{lint.stderr}")
    for scenario, args, must, must_not in SCENARIOS:
        rendered = helm(binary, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, *args)
        if rendered.returncode != 0:
            check(False, f"[{scenario}] helm template failed: {rendered.stderr}")
            continue
        check_rendered(scenario, rendered.stdout, must, must_not)
        print(f"helm template [{scenario}]: {len([d for d in yaml.safe_load_all(rendered.stdout) if d])} manifests")
    for scenario, args, message in MUST_FAIL:
        rendered = helm(binary, "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, *args)
        check(rendered.returncode != 0, f"helm template with {scenario} should fail")
        check(message in rendered.stderr, f"helm template with {scenario}: error lacks {message!r}: {rendered.stderr}")
    print(f"helm: lint --strict, {len(SCENARIOS)} value sets rendered and checked, {len(MUST_FAIL)} refused")


# --- Compose --------------------------------------------------------------------------------

COMPOSE_TOP = {"name", "services", "volumes", "networks", "configs", "secrets"}
SERVICE_KEYS = {
    "build", "image", "command", "entrypoint", "environment", "env_file", "volumes", "ports", "depends_on",
    "healthcheck", "restart", "profiles", "networks", "deploy", "user", "working_dir", "labels", "expose",
}  # fmt: skip
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def check_compose() -> None:
    base = COMPOSE.parent
    doc = yaml.safe_load(COMPOSE.read_text())
    extra = {k for k in doc if not k.startswith("x-")} - COMPOSE_TOP
    check(not extra, f"compose: unknown top-level keys {extra}")
    services: dict[str, dict[str, Any]] = doc["services"]
    named_volumes = set(doc.get("volumes") or {})
    published: dict[str, str] = {}
    for name, service in services.items():
        where = f"compose service {name}"
        check(not set(service) - SERVICE_KEYS, f"{where}: unknown keys {set(service) - SERVICE_KEYS}")
        check("image" in service or "build" in service, f"{where}: neither image nor build")
        image = service.get("image", "")
        check(not image or re.match(r"^[\w./-]+:[\w.-]+$", image), f"{where}: image {image!r} needs a pinned tag")
        if "build" in service:
            context = (base / service["build"]["context"]).resolve()
            check((context / service["build"]["dockerfile"]).is_file(), f"{where}: Dockerfile missing")
        for key in ("command", "entrypoint"):
            check(isinstance(service.get(key, []), list), f"{where}: {key} should be a list (exec form)")
        env = service.get("environment", {})
        check(isinstance(env, dict), f"{where}: environment should be a mapping")
        check(all(isinstance(v, str) for v in env.values()), f"{where}: environment values must be strings")
        depends = service.get("depends_on", {})
        for target in depends:
            check(target in services, f"{where}: depends_on unknown service {target}")
        if isinstance(depends, dict):
            for target, condition in depends.items():
                check(condition.get("condition") in CONDITIONS, f"{where}: depends_on {target} condition")
                if condition.get("condition") == "service_healthy":
                    check("healthcheck" in services.get(target, {}), f"{where}: {target} has no healthcheck")
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            check(target.startswith("/"), f"{where}: volume target {target} is not absolute")
            check(not mode or mode[0] in ("ro", "rw"), f"{where}: volume mode {mode}")
            if source.startswith((".", "/")):
                check((base / source).exists(), f"{where}: bind-mount source {source} does not exist")
            else:
                check(source in named_volumes, f"{where}: volume {source} is not declared")
        for port in service.get("ports", []):
            check(re.match(r"^127\.0\.0\.1:\d+:\d+$", str(port)), f"{where}: port {port!r} (bind to loopback)")
            host_port = str(port).split(":")[1] if str(port).count(":") == 2 else str(port)
            check(host_port not in published, f"{where}: host port {host_port} is {published.get(host_port)}'s too")
            published[host_port] = name
        health = service.get("healthcheck")
        if health:
            check(health["test"][0] in ("CMD", "CMD-SHELL"), f"{where}: healthcheck test form")
    workers = [n for n, s in services.items() if s.get("command") is None and "build" in s]
    check(len(workers) >= 2, f"compose: want two workers, found {workers}")
    for name in workers:
        settings = load_settings(f"compose service {name}", services[name]["environment"])
        if settings is not None:
            check(settings.web_host == "0.0.0.0", f"compose service {name}: SM_WEB_HOST is loopback")
            check(name in settings.web_allowed_hosts.split(","), f"compose service {name}: refuses Host {name}")
    apis = [n for n, s in services.items() if s.get("command") == ["api"]]
    check(apis == ["api"], f"compose: want one API service (command [api]) named api, found {apis}")
    api_port = check_compose_api(services) if apis == ["api"] else None
    for want in ("kafka", "redis", "prometheus", "alertmanager", "grafana"):
        check(want in services, f"compose: no {want} service")
    kafka_env = services["kafka"]["environment"]
    check("controller" in kafka_env.get("KAFKA_PROCESS_ROLES", ""), "compose: Kafka is not in KRaft mode")
    redis_cmd = services["redis"].get("command", [])
    check("--appendonly" in redis_cmd and "yes" in redis_cmd, "compose: Redis has no AOF persistence")
    check(any(v.split(":")[1] == "/data" for v in services["redis"]["volumes"]), "compose: Redis data not on a volume")
    prometheus = yaml.safe_load((base / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    check({f"{w}:6066" for w in workers} <= targets, f"compose: Prometheus scrapes {targets}, workers are {workers}")
    check(api_port is None or f"api:{api_port}" in targets, f"compose: Prometheus does not scrape api:{api_port}")
    grafana_mounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    provider = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/sentiment-monitor.yml").read_text())
    dashboards_path = provider["providers"][0]["options"]["path"]
    check(dashboards_path in grafana_mounts, f"compose: Grafana does not mount dashboards at {dashboards_path}")
    datasource = yaml.safe_load((base / "grafana-datasource.yml").read_text())["datasources"][0]
    check(datasource["url"] == "http://prometheus:9090" and datasource["isDefault"], "compose: Grafana datasource")
    check_compose_tools(base, prometheus)
    print(f"compose: {len(services)} services checked ({', '.join(services)})")


def check_compose_api(services: dict[str, dict[str, Any]]) -> int | None:
    """The API service: the workers' image and settings, `api` as its command, Redis (not Kafka)
    before it, its own port published and probed. Returns the port."""
    where = "compose service api"
    api, worker = services["api"], services["worker-1"]
    check(api.get("image") == worker.get("image"), f"{where}: not the workers' image")
    env, worker_env = api.get("environment", {}), worker.get("environment", {})
    for key in ("SM_REDIS_URL", "SM_REDIS_PREFIX", "SM_REDIS_SHARDS", "SM_WATCHLIST", "SM_WEB_TOKEN"):
        check(env.get(key) == worker_env.get(key), f"{where}: {key} differs from the workers'")
    depends = api.get("depends_on", {})
    check(isinstance(depends, dict) and depends.get("redis", {}).get("condition") == "service_healthy",
          f"{where}: should wait for a healthy Redis")  # fmt: skip
    settings = load_settings(where, env)
    if settings is None:
        return None
    port = settings.api_port
    check(settings.api_host == "0.0.0.0", f"{where}: SM_API_HOST is loopback: unreachable from other containers")
    check(any(str(p).endswith(f":{port}") for p in api.get("ports", [])), f"{where}: port {port} not published")
    check("api" in settings.web_allowed_hosts.split(","), f"{where}: refuses Host api (Prometheus scrapes it so)")
    test = " ".join(api.get("healthcheck", {}).get("test", []))
    check(f":{port}/healthz" in test, f"{where}: no healthcheck on :{port}/healthz")
    return port


def check_compose_tools(base: Path, prometheus: dict[str, Any]) -> None:
    """promtool and amtool (Debian's prometheus and prometheus-alertmanager) where installed."""
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    if promtool:
        with tempfile.TemporaryDirectory() as tmp:
            local = dict(prometheus)  # the rule files at their repository paths instead of the container's
            local["rule_files"] = [
                str(REPO / "deploy/prometheus/rules" / Path(p).name) for p in prometheus["rule_files"]
            ]
            path = Path(tmp) / "prometheus.yml"
            path.write_text(yaml.safe_dump(local))
            result = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
            check(result.returncode == 0, f"promtool check config (compose): {result.stdout}{result.stderr}")
    if amtool:
        result = subprocess.run(
            [amtool, "check-config", str(base / "alertmanager.yml")], capture_output=True, text=True
        )
        check(result.returncode == 0, f"amtool check-config (compose): {result.stdout}{result.stderr}")
    if not (promtool and amtool):
        print("compose: promtool/amtool not installed; Prometheus and Alertmanager files checked as YAML only")


# --- Dockerfiles ----------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def check_dockerfiles() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for name, extra in (("Dockerfile", "cpu"), ("Dockerfile.cuda", "gpu")):
        path = REPO / "deploy" / "docker" / name
        steps = dockerfile_instructions(path)
        where = f"deploy/docker/{name}"
        stages = [args for op, args in steps if op == "FROM"]
        check(len(stages) >= 2, f"{where}: not multi-stage")
        check(all(s.startswith("debian:") for s in stages), f"{where}: every stage should be on Debian: {stages}")
        final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
        users = [args for op, args in final if op == "USER"]
        check(users and users[-1].split(":")[0] not in ("0", "root"), f"{where}: final stage runs as root")
        health = [args for op, args in final if op == "HEALTHCHECK"]
        check(health and "/healthz" in health[0], f"{where}: no HEALTHCHECK on /healthz")
        exposed = {port for op, args in final if op == "EXPOSE" for port in args.split()}
        check({"6066", "6067"} <= exposed, f"{where}: does not EXPOSE 6066 (worker) and 6067 (API)")
        env = " ".join(args for op, args in final if op == "ENV")
        check("SM_API_HOST=0.0.0.0" in env, f"{where}: SM_API_HOST is not 0.0.0.0: `api` unreachable")
        check(health and "SM_API_PORT" in health[0], f"{where}: HEALTHCHECK misses the API's port (SM_API_PORT)")
        check(f'".[{extra}]"' in path.read_text() and extra in project["optional-dependencies"], f"{where}: extra")
        for op, args in steps:
            if op != "COPY" or "--from=" in args:
                continue
            *sources, _ = args.split()
            for source in sources:
                check((REPO / source).exists(), f"{where}: COPY source {source} does not exist")
    check(
        "onnxruntime-gpu" in (REPO / "deploy/docker/Dockerfile.cuda").read_text(), "Dockerfile.cuda: no onnxruntime-gpu"
    )
    print("dockerfiles: multi-stage, Debian, non-root, HEALTHCHECK /healthz, ports 6066 and 6067, COPY sources present")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    check_helm(sys.argv[1])
    check_compose()
    check_dockerfiles()
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    print(f"check_deploy: {'FAILED' if failures else 'OK'} ({len(failures)} problems)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
