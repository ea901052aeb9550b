"""Read the reference deployment (fixtures/k8s) into a TwinSpec, and apply experiment overrides.

The chain that identifies the model servers follows the architecture itself: Envoy's listener
routes to one cluster -> that cluster resolves a headless Service by DNS -> the Service selects
the model Deployment -> the ScaledObject must target that Deployment. Every Kubernetes object is
checked against the Kubernetes schemas (strict: unknown fields are errors), the Envoy bootstrap
against the typed Envoy API, the ScaledObject against KEDA's fields.

Twin-only knobs (restart delay, time scale) are not Kubernetes facts: they are TwinSpec defaults
changed by flags through `apply_overrides`, never read from the manifests.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from loadgate.config import validate
from loadgate.errors import UserError
from loadgate.twin.envoy_bootstrap import edit_bootstrap
from loadgate.twin.envoy_config import ModelCluster, model_cluster_facts, validate_bootstrap
from loadgate.twin.k8s_files import (
    LOADER,
    Doc,
    K8sPart,
    check_kubernetes_schema,
    part,
    read_manifests,
)
from loadgate.twin.kubelet import ProbeSpec
from loadgate.twin.scaledobject import ScaledObject, autoscaler_spec
from loadgate.twin.spec import KubeObjects, TwinSpec

ENVOY_CONFIG_KEYS = ("envoy.yaml", "envoy.yml", "envoy.json")
# Container env vars (or flags) that carry the model server's numbers, in one place.
ENV_READY_MAX_QUEUE = "READY_MAX_QUEUE"
ENV_READY_RESUME_QUEUE = "READY_RESUME_QUEUE"
ENV_MAX_BATCH_SIZE = "MAX_BATCH_SIZE"
FLAG_TO_FIELD = {
    "--ready-max-queue": "ready_max_queue",
    "--ready-resume-queue": "ready_resume_queue",
    "--max-batch-size": "max_batch_size",
}
ENV_TO_FIELD = {
    ENV_READY_MAX_QUEUE: "ready_max_queue",
    ENV_READY_RESUME_QUEUE: "ready_resume_queue",
    ENV_MAX_BATCH_SIZE: "max_batch_size",
}
# Flags the twin sets itself per pod; never passed through from the manifest. The twin's pods
# always bind loopback, whatever address the manifest's pods listen on.
TWIN_MANAGED_FLAGS = {
    "--pod-name",
    "--host",
    "--grpc-port",
    "--http-port",
    "--time-scale",
    *FLAG_TO_FIELD,
}


class EnvVar(K8sPart):
    name: str
    value: str | None = None


class HTTPGetAction(K8sPart):
    path: str = "/"


class Probe(K8sPart):
    # Kubernetes' defaults. The schema check has already refused unknown fields.
    httpGet: HTTPGetAction | None = None
    initialDelaySeconds: int = 0
    periodSeconds: int = 10
    timeoutSeconds: int = 1
    failureThreshold: int = 3
    successThreshold: int = 1

    def spec(self, where: str) -> ProbeSpec:
        if self.httpGet is None:
            raise UserError(
                f"{where}: readinessProbe: the twin probes httpGet only (the model server's "
                "readiness is /v2/health/ready)"
            )
        return ProbeSpec(
            path=self.httpGet.path,
            initial_delay_s=self.initialDelaySeconds,
            period_s=self.periodSeconds,
            timeout_s=self.timeoutSeconds,
            failure_threshold=self.failureThreshold,
            success_threshold=self.successThreshold,
        )


class Container(K8sPart):
    name: str
    args: list[str] = []
    env: list[EnvVar] = []
    readinessProbe: Probe | None = None


class PodSpec(K8sPart):
    containers: list[Container] = Field(min_length=1)


class PodMeta(K8sPart):
    labels: dict[str, str] = {}


class PodTemplate(K8sPart):
    metadata: PodMeta
    spec: PodSpec


class DeploymentSpec(K8sPart):
    replicas: int = 1  # Kubernetes' default
    template: PodTemplate


class Meta(K8sPart):
    name: str
    namespace: str | None = None


class Deployment(K8sPart):
    metadata: Meta
    spec: DeploymentSpec


class ServiceSpec(K8sPart):
    clusterIP: str | None = None
    selector: dict[str, str] = {}


class Service(K8sPart):
    metadata: Meta
    spec: ServiceSpec


# --- mapping ----------------------------------------------------------------------------------


def _envoy_config_maps(docs: list[Doc]) -> list[tuple[Doc, str]]:
    """Every (ConfigMap, key) holding an Envoy bootstrap."""
    return [
        (d, key)
        for d in docs
        if d.kind == "ConfigMap"
        for key in ENVOY_CONFIG_KEYS
        if key in (d.body.get("data") or {})
    ]


def _envoy_bootstrap(docs: list[Doc]) -> tuple[dict[str, Any], str]:
    """The raw bootstrap (as written) of the one ConfigMap that holds it, and where it is."""
    found = _envoy_config_maps(docs)
    if len(found) != 1:
        names = [f"{d.name}:{k}" for d, k in found]
        raise UserError(
            f"expected one ConfigMap with an Envoy bootstrap ({', '.join(ENVOY_CONFIG_KEYS)}), found {names or 'none'}"
        )
    doc, key = found[0]
    source = f"{doc.source} data.{key}"
    try:
        config = yaml.load(doc.body["data"][key], Loader=LOADER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        raise UserError(f"{source}:{where} malformed YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(config, dict):
        raise UserError(
            f"{source}: expected an Envoy bootstrap mapping, got {type(config).__name__}"
        )
    return config, source


def _envoy_deployment(docs: list[Doc]) -> dict[str, Any] | None:
    """The Deployment whose pods mount Envoy's ConfigMap (what `--kube-api` serves as Envoy)."""
    config_map = _envoy_config_maps(docs)[0][0].name  # _envoy_bootstrap checked there is one
    for d in docs:
        pod = ((d.body.get("spec") or {}).get("template") or {}).get("spec") or {}
        mounted = {(v.get("configMap") or {}).get("name") for v in pod.get("volumes") or []}
        if d.kind == "Deployment" and config_map in mounted:
            return d.body
    return None


def read_model_cluster(bootstrap: dict[str, Any], source: str) -> ModelCluster:
    """Validate a bootstrap against Envoy's API and read its model cluster (also after edits)."""
    return model_cluster_facts(validate_bootstrap(bootstrap, source), source)


def _expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion in container args ($$ escapes)."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        arg,
    )


def _container_numbers(c: Container, source: str) -> tuple[dict[str, int], list[str]]:
    """Model-server numbers from the container's flags (after $(VAR) expansion) or env vars, and
    the remaining flags to pass through to loadgate-modelserver."""
    env = {e.name: e.value for e in c.env if e.value is not None}
    raw: dict[str, tuple[str, str]] = {}
    for var, field in ENV_TO_FIELD.items():
        if var in env:
            raw[field] = (env[var], f"env {var}")
    args = [_expand(a, env) for a in c.args]
    passthrough: list[str] = []
    i = 0
    while i < len(args):
        flag, eq, value = args[i].partition("=")
        takes_next = not eq and i + 1 < len(args) and not args[i + 1].startswith("--")
        if not eq and takes_next:
            value = args[i + 1]
        if flag in FLAG_TO_FIELD:
            written = " ".join(c.args[i : i + (2 if takes_next else 1)])
            raw[FLAG_TO_FIELD[flag]] = (value, f"args {written!r}")
        elif flag not in TWIN_MANAGED_FLAGS:
            passthrough += args[i : i + (2 if takes_next else 1)]
        i += 2 if takes_next else 1
    out: dict[str, int] = {}
    for field, (value, where) in raw.items():
        try:
            out[field] = int(value)
        except ValueError:
            raise UserError(
                f"{source}: container {c.name}: {where}: expected an integer, got {value!r}"
            ) from None
    return out, passthrough


def _find_one(docs: list[Doc], kind: str, pred, what: str) -> Doc:
    hits = [d for d in docs if d.kind == kind and pred(d)]
    if len(hits) != 1:
        found = [d.name for d in hits]
        raise UserError(f"expected exactly one {kind} {what}, found {found or 'none'}")
    return hits[0]


def load_twin_spec(manifests_dir: str | Path = "fixtures/k8s") -> TwinSpec:
    """Read the reference deployment and return what the twin needs to boot it."""
    docs, namespace = read_manifests(Path(manifests_dir))
    for doc in docs:
        check_kubernetes_schema(doc)
    boot, envoy_source = _envoy_bootstrap(docs)
    envoy = read_model_cluster(boot, envoy_source)

    svc_name = envoy.dns_host.split(".")[0]
    svc_doc = _find_one(
        docs,
        "Service",
        lambda d: d.name == svc_name,
        f"named {svc_name!r} (Envoy cluster {envoy.facts.cluster_name} resolves {envoy.dns_host})",
    )
    svc: Service = part(Service, svc_doc)
    if svc.spec.clusterIP != "None":
        raise UserError(
            f"{svc_doc.source}: spec.clusterIP: must be None (headless) so Envoy's STRICT_DNS "
            "sees every pod and balances per request"
        )
    if not svc.spec.selector:
        raise UserError(f"{svc_doc.source}: spec.selector: the model Service selects no pods")

    def selected(d: Doc) -> bool:
        labels = ((d.body.get("spec") or {}).get("template") or {}).get("metadata", {}).get(
            "labels"
        ) or {}
        return all(labels.get(k) == v for k, v in svc.spec.selector.items())

    dep_doc = _find_one(
        docs, "Deployment", selected, f"selected by Service {svc_name} {svc.spec.selector}"
    )
    dep: Deployment = part(Deployment, dep_doc)
    container = dep.spec.template.spec.containers[0]
    numbers, passthrough = _container_numbers(container, dep_doc.source)

    autoscaler = None
    so_docs = [d for d in docs if d.kind == "ScaledObject"]
    so_body: dict[str, Any] | None = None
    for so_doc in so_docs:
        so = part(ScaledObject, so_doc)
        if so.spec.scaleTargetRef.name != dep.metadata.name:
            continue
        if autoscaler is not None:
            raise UserError(
                f"{so_doc.source}: a second ScaledObject targets Deployment {dep.metadata.name}"
            )
        autoscaler = autoscaler_spec(so, so_doc.source)
        so_body = so_doc.body
    if so_docs and autoscaler is None:
        raise UserError(
            f"{so_docs[0].source}: spec.scaleTargetRef.name: no ScaledObject targets the model "
            f"Deployment {dep.metadata.name!r}"
        )

    probe = container.readinessProbe
    fields: dict[str, Any] = dict(
        namespace=namespace or dep.metadata.namespace or "default",
        deployment=dep.metadata.name,
        replicas=dep.spec.replicas,
        envoy_bootstrap=boot,
        envoy=envoy.facts,
        readiness_probe=probe.spec(f"{dep_doc.source}: container {container.name}")
        if probe
        else None,
        modelserver_args=passthrough,
        autoscaler=autoscaler,
        kube_objects=KubeObjects(
            model_deployment=dep_doc.body,
            envoy_deployment=_envoy_deployment(docs),
            scaled_object=so_body,
        ),
        **numbers,
    )
    return validate(TwinSpec, fields, f"{manifests_dir} (derived twin spec)")


# --- overrides --------------------------------------------------------------------------------

# Override spelling -> Envoy's lb_policy enum name.
LB_OVERRIDES = {
    "least_request": "LEAST_REQUEST",
    "round_robin": "ROUND_ROBIN",
    "random": "RANDOM",
}


def _slower_decode(args: list[str], factor: float) -> list[str]:
    """The pods' extra flags with --decode-step-ms multiplied by `factor` (the manifest's value,
    else the model server's default); the model server takes the last occurrence of a flag."""
    from loadgate.modelserver.config import ServerConfig

    step = ServerConfig().decode_step_ms
    for i, a in enumerate(args):
        if a == "--decode-step-ms" and i + 1 < len(args):
            step = float(args[i + 1])
        elif a.startswith("--decode-step-ms="):
            step = float(a.partition("=")[2])
    return [*args, "--decode-step-ms", f"{step * factor:g}"]


def apply_overrides(
    spec: TwinSpec,
    *,
    lb: str | None = None,
    replicas: int | None = None,
    max_requests: int | None = None,
    no_autoscaler: bool = False,
    ready_max_queue: int | None = None,
    restart_delay: float | None = None,
    time_scale: float | None = None,
    token_chunk: int | None = None,
    health_check_interval: float | None = None,
    num_retries: int | None = None,
    llm_profile: str | None = None,
    decode_slowdown: float | None = None,
) -> TwinSpec:
    """The one override path shared by the CLI flags and tests. None leaves a value as the
    manifests say. Envoy's settings (lb, max_requests — 0 lifts the breaker —, the health-check
    interval, the route's retries) are edits of the Envoy bootstrap itself; ready_max_queue=0
    turns the model server's readiness rule off; decode_slowdown=1.25 makes each simulated
    decode step 25 % longer (a slower build, for regression tests)."""
    upd: dict[str, Any] = {}
    if lb is not None and lb.lower().replace("-", "_") not in LB_OVERRIDES:
        raise UserError(f"--lb: expected one of {', '.join(LB_OVERRIDES)}, got {lb!r}")
    checks = [
        ("--replicas", replicas, 0),
        ("--max-requests", max_requests, 0),
        ("--ready-max-queue", ready_max_queue, 0),
        ("--token-chunk", token_chunk, 1),
        ("--num-retries", num_retries, 0),
    ]
    for flag, value, low in checks:
        if value is not None and value < low:
            raise UserError(f"{flag}: must be >= {low}, got {value}")
    if health_check_interval is not None and not health_check_interval > 0:
        raise UserError(f"--health-check-interval: must be > 0, got {health_check_interval}")
    envoy_edits = dict(
        lb_policy=LB_OVERRIDES[lb.lower().replace("-", "_")] if lb is not None else None,
        max_requests=max_requests,
        health_check_interval_s=health_check_interval,
        num_retries=num_retries,
    )
    if any(v is not None for v in envoy_edits.values()):
        boot = edit_bootstrap(spec.envoy_bootstrap, spec.cluster_name, **envoy_edits)
        upd["envoy_bootstrap"] = boot
        upd["envoy"] = read_model_cluster(boot, "overridden Envoy bootstrap").facts
    if replicas is not None:
        upd["replicas"] = replicas
    if ready_max_queue is not None:
        upd["ready_max_queue"] = ready_max_queue or None
        if ready_max_queue and spec.ready_resume_queue >= ready_max_queue:
            upd["ready_resume_queue"] = ready_max_queue // 2  # keep the hysteresis below the limit
    if restart_delay is not None:
        if restart_delay < 0:
            raise UserError(f"--restart-delay: must be >= 0, got {restart_delay}")
        upd["restart_delay_s"] = restart_delay
    if time_scale is not None:
        if not time_scale > 0:
            raise UserError(f"--time-scale: must be > 0, got {time_scale}")
        upd["time_scale"] = time_scale
    if token_chunk is not None:
        upd["token_chunk"] = token_chunk
    args = list(spec.modelserver_args)
    if decode_slowdown is not None:
        if not decode_slowdown > 0:
            raise UserError(f"--decode-slowdown: must be > 0, got {decode_slowdown}")
        args = _slower_decode(args, decode_slowdown)
    if no_autoscaler:
        upd["autoscaler"] = None
    if llm_profile is not None:
        # The pods pose as that Triton backend (as the Deployment's container args would say).
        args += ["--llm-profile", llm_profile]
    if args != spec.modelserver_args:
        upd["modelserver_args"] = args
    data = spec.model_dump()
    data.update({k: (v.model_dump() if isinstance(v, BaseModel) else v) for k, v in upd.items()})
    return validate(TwinSpec, data, "overrides")
