"""The Platform interface over a real cluster, through the official `kubernetes` client.

Every call has a bounded timeout and at most one connect attempt; every failure becomes one
`UserError` line: a missing context, RBAC forbidding a verb on a resource (named), an API server
that refuses connections, an object that does not exist. Destructive calls (kill, scale) also
require the context/namespace to be in the `allowed` list (see `kubeconfig.ensure_allowed`).

Pods are deleted through the API directly rather than chaostoolkit-kubernetes'
`terminate_pods`: that action builds its own client from KUBECONFIG/KUBERNETES_CONTEXT, so it
would bypass this object's context, namespace and allowlist, and it returns no pod names.
Experiments may still call chaosk8s themselves.

Config keys for `from_config` are the fields of `KubernetesConfig` below.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import Field
from urllib3.exceptions import HTTPError as Urllib3Error

from loadgate.config import StrictModel, read_yaml, validate
from loadgate.errors import UserError
from loadgate.hostport import HostPort
from loadgate.observe.envoy_access import PodLogProxyLog
from loadgate.platform import k8s_objects as k8s
from loadgate.platform.base import Event, Platform, Pod, Replicas
from loadgate.platform.kubeconfig import Connection, connect, ensure_allowed

T = TypeVar("T")


class KubernetesConfig(StrictModel):
    """The `kubernetes:` block of loadgate.yaml (every key optional except grpc_target)."""

    grpc_target: HostPort  # the Envoy Service's gRPC listener, reachable from loadgate
    context: str | None = None  # kubeconfig context; None = current-context; "in-cluster"
    kubeconfig: str | None = None  # path; None = $KUBECONFIG or ~/.kube/config
    namespace: str | None = None  # None = the context's namespace, else "default"
    deployment: str = "modelserver"  # the model-server Deployment
    selector: str | None = None  # label selector of model pods; None = the Deployment's
    scaled_object: str | None = "modelserver"  # KEDA ScaledObject; HPA is keda-hpa-<name>
    prometheus_url: str | None = None  # e.g. http://127.0.0.1:9090 (a port-forward)
    envoy_admin_url: str | None = None  # e.g. http://127.0.0.1:9901 (port-forward deploy/envoy)
    grpc_port: int | None = Field(default=None, ge=1, le=65535)  # None = from the pod spec
    envoy_selector: str = "app.kubernetes.io/name=envoy"  # Envoy's pods (their logs: access log)
    allowed: list[str] = []  # "context/namespace" globs where kill/scale are permitted
    connect_timeout_s: float = Field(default=3.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)


class _Block(StrictModel):
    kubernetes: KubernetesConfig  # so errors name the key as written: kubernetes.<key>


def config_block(path: str | Path, needed_for: str) -> dict[str, Any]:
    """The `kubernetes:` block of the YAML file `path` (loadgate.yaml or another), its keys
    checked (nothing is connected): one UserError line naming `path` otherwise."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("kubernetes"), dict):
        raise UserError(f"{path}: no 'kubernetes:' block ({needed_for})")
    validate(_Block, {"kubernetes": data["kubernetes"]}, str(path))
    return data["kubernetes"]


class KubernetesPlatform(Platform):
    name = "kubernetes"

    def __init__(
        self,
        context: str | None = None,
        namespace: str | None = None,
        deployment: str = "modelserver",
        selector: str | None = None,
        scaled_object: str | None = "modelserver",
        kubeconfig: str | None = None,
        allowed: list[str] | None = None,
        grpc_target: str = "",
        prometheus_url: str | None = None,
        grpc_port: int | None = None,
        timeout: tuple[float, float] = (3.0, 10.0),
        envoy_admin_url: str | None = None,
        envoy_selector: str = "app.kubernetes.io/name=envoy",
    ) -> None:
        conn: Connection = connect(context, namespace, kubeconfig)
        self._api = conn.api
        self.context = conn.context
        self.namespace = conn.namespace
        self.host = conn.host
        self.deployment = deployment
        self._selector = selector
        self.scaled_object_name = scaled_object
        self.allowed = list(allowed or [])
        self._grpc_target = grpc_target
        self._prometheus_url = prometheus_url
        self._grpc_port = grpc_port
        self._timeout = timeout
        self.envoy_admin_url = envoy_admin_url
        self.envoy_selector = envoy_selector
        self.core = client.CoreV1Api(self._api)
        self.apps = client.AppsV1Api(self._api)
        self.autoscaling = client.AutoscalingV2Api(self._api)
        self.custom = client.CustomObjectsApi(self._api)

    @classmethod
    def from_config(cls, data: dict[str, Any], source: str = "loadgate.yaml") -> KubernetesPlatform:
        """Build from the `kubernetes:` block of `source` (see KubernetesConfig); a bad key is
        one UserError line such as `loadgate.yaml: kubernetes.namespce: unknown key`."""
        cfg = validate(_Block, {"kubernetes": data}, source).kubernetes
        return cls(
            context=cfg.context,
            namespace=cfg.namespace,
            deployment=cfg.deployment,
            selector=cfg.selector,
            scaled_object=cfg.scaled_object,
            kubeconfig=cfg.kubeconfig,
            allowed=cfg.allowed,
            grpc_target=cfg.grpc_target,
            prometheus_url=cfg.prometheus_url,
            grpc_port=cfg.grpc_port,
            timeout=(cfg.connect_timeout_s, cfg.read_timeout_s),
            envoy_admin_url=cfg.envoy_admin_url,
            envoy_selector=cfg.envoy_selector,
        )

    # -- plumbing -------------------------------------------------------------------------

    def _call(self, verb: str, resource: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run one API call with a bounded timeout; failures become one clear UserError."""
        try:
            return fn(*args, _request_timeout=self._timeout, **kw)
        except ApiException as e:
            raise UserError(self._api_error(verb, resource, e)) from None
        except (Urllib3Error, OSError) as e:
            raise UserError(
                f"cannot reach the Kubernetes API at {self.host} (context '{self.context}') "
                f"to {verb} {resource}: {_reason(e)}"
            ) from None

    def _api_error(self, verb: str, resource: str, e: ApiException) -> str:
        where = f"in namespace '{self.namespace}' (context '{self.context}')"
        detail = _status_message(e)
        if e.status == 403:
            return (
                f"forbidden: cannot {verb} {resource} {where}; grant '{verb}' on '{resource}' "
                f"to the suite's Role (fixtures/k8s/loadgate-rbac.yaml): {detail}"
            )
        if e.status == 401:
            return f"unauthorized: the credentials of context '{self.context}' were rejected"
        if e.status == 404:
            return f"not found: {resource} {where}: {detail}"
        return f"{verb} {resource} {where} failed: HTTP {e.status} {detail}"

    def _require_allowed(self, action: str) -> None:
        try:
            ensure_allowed(self.context, self.namespace, self.allowed)
        except UserError as e:
            raise UserError(f"{action}: {e}") from None

    # -- Platform ---------------------------------------------------------------------------

    @property
    def grpc_target(self) -> str:
        if not self._grpc_target:
            raise UserError("kubernetes.grpc_target is not set (the Envoy Service's host:port)")
        return self._grpc_target

    @property
    def prometheus_url(self) -> str | None:
        return self._prometheus_url

    @property
    def selector(self) -> str:
        """The model pods' label selector: configured, else the Deployment's matchLabels."""
        if self._selector is None:
            dep = self._call(
                "get",
                f"deployments/{self.deployment}",
                self.apps.read_namespaced_deployment,
                self.deployment,
                self.namespace,
            )
            self._selector = k8s.selector_string(dep.spec.selector.match_labels)
            if not self._selector:
                raise UserError(
                    f"deployment {self.deployment} has no matchLabels; set kubernetes.selector"
                )
        return self._selector

    def pods(self, selector: str | None = None) -> list[Pod]:
        resp = self._call(
            "list",
            "pods",
            self.core.list_namespaced_pod,
            self.namespace,
            label_selector=selector or self.selector,
        )
        return sorted((k8s.to_pod(p, self._grpc_port) for p in resp.items), key=lambda p: p.name)

    def kill_pods(
        self,
        selector: str | None = None,
        count: int | None = None,
        percent: float | None = None,
        names: list[str] | None = None,
        grace_period: float = 0.0,
    ) -> list[str]:
        self._require_allowed("kill pods")
        victims = k8s.pick_victims(self.pods(selector), names, count, percent)
        # gracePeriodSeconds=0 deletes the pod object at once (what `kubectl delete --force
        # --grace-period=0` sends); the kubelet then kills its containers. The API takes whole
        # seconds, so a sub-second grace rounds up to 1 rather than down to a force delete.
        grace = 0 if grace_period <= 0 else max(1, round(grace_period))
        killed: list[str] = []
        for pod in victims:
            try:
                self._call(
                    "delete",
                    "pods",
                    self.core.delete_namespaced_pod,
                    pod.name,
                    self.namespace,
                    grace_period_seconds=grace,
                )
            except UserError as e:
                if str(e).startswith("not found:"):
                    continue  # already gone: the controller or another fault beat us to it
                raise
            killed.append(pod.name)
        return killed

    def replicas(self, deployment: str | None = None) -> Replicas:
        name = deployment or self.deployment
        dep = self._call(
            "get",
            f"deployments/{name}",
            self.apps.read_namespaced_deployment,
            name,
            self.namespace,
        )
        return Replicas(spec=int(dep.spec.replicas or 0), ready=int(dep.status.ready_replicas or 0))

    def scale(self, replicas: int, deployment: str | None = None) -> None:
        if replicas < 0:
            raise UserError(f"cannot scale to {replicas} replicas")
        self._require_allowed("scale")
        name = deployment or self.deployment
        self._call(
            "patch",
            "deployments/scale",
            self.apps.patch_namespaced_deployment_scale,
            name,
            self.namespace,
            {"spec": {"replicas": int(replicas)}},
        )

    @property
    def hpa_name(self) -> str | None:
        return f"keda-hpa-{self.scaled_object_name}" if self.scaled_object_name else None

    def events(self, since: float = 0.0) -> list[Event]:
        resp = self._call("list", "events", self.core.list_namespaced_event, self.namespace)
        return k8s.to_events(
            resp.items, self.deployment, self.hpa_name, self.scaled_object_name, since
        )

    def scaled_object(self) -> dict[str, Any]:
        if not self.scaled_object_name:
            raise UserError("kubernetes.scaled_object is not set")
        return self._call(
            "get",
            "scaledobjects.keda.sh",
            self.custom.get_namespaced_custom_object,
            "keda.sh",
            "v1alpha1",
            self.namespace,
            "scaledobjects",
            self.scaled_object_name,
        )

    def scaled_object_conditions(self) -> dict[str, str]:
        """{"Ready": "True", "Active": "False", ...} of the deployed ScaledObject."""
        return k8s.conditions(self.scaled_object())

    def hpa(self) -> dict[str, Any]:
        """The HPA KEDA created: current/desired replicas, metrics and conditions, as a dict."""
        if not self.hpa_name:
            raise UserError("kubernetes.scaled_object is not set")
        obj = self._call(
            "get",
            "horizontalpodautoscalers",
            self.autoscaling.read_namespaced_horizontal_pod_autoscaler,
            self.hpa_name,
            self.namespace,
        )
        return self._api.sanitize_for_serialization(obj)

    @property
    def deployment_name(self) -> str:
        return self.deployment

    def envoy_pod_logs(self, since: float | None = None) -> list[str]:
        """The log lines of every Envoy pod (`envoy_selector`), pod by pod in name order: on
        Kubernetes Envoy's JSON access log goes to its stdout (`observe.envoy_access`; other
        lines are Envoy's own). `since` (epoch s) asks the kubelet for the lines of the last
        whole seconds since then (`sinceSeconds`, rounded up: filter on `start` to be exact)."""
        resp = self._call(
            "list",
            "pods",
            self.core.list_namespaced_pod,
            self.namespace,
            label_selector=self.envoy_selector,
        )
        kw: dict[str, Any] = {}
        if since is not None:
            kw["since_seconds"] = max(1, math.ceil(time.time() - since))
        lines: list[str] = []
        for pod in sorted(resp.items, key=lambda p: p.metadata.name):
            names = [c.name for c in pod.spec.containers]
            text = self._call(
                "get",
                "pods/log",
                self.core.read_namespaced_pod_log,
                pod.metadata.name,
                self.namespace,
                container="envoy" if "envoy" in names else names[0],
                **kw,
            )
            lines += text.splitlines()
        return lines

    def envoy_access_log(self) -> PodLogProxyLog:
        """Envoy's access log as the gate reads it on a cluster: from the Envoy pods' logs."""
        return PodLogProxyLog(self.envoy_pod_logs)

    def close(self) -> None:
        self._api.close()


def _status_message(e: ApiException) -> str:
    """The API server's Status.message (one line), else the HTTP reason."""
    try:
        body = json.loads(e.body or "")
        msg = body.get("message") if isinstance(body, dict) else None
    except (ValueError, TypeError):
        msg = None
    return (msg or e.reason or "").strip().splitlines()[0] if (msg or e.reason) else ""


def _reason(e: BaseException) -> str:
    """Innermost cause of a urllib3 error, short: 'connection refused', 'timed out', ..."""
    inner: BaseException = e
    while getattr(inner, "reason", None) is not None and isinstance(inner.reason, BaseException):
        inner = inner.reason
    text = str(inner)
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "timed out" in low or "timeout" in low:
        return "timed out"
    if "name or service not known" in low or "nodename nor servname" in low:
        return "unknown host"
    return text.splitlines()[0] if text else type(inner).__name__
