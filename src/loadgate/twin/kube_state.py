"""Reading the live twin as Kubernetes objects, for the emulated API (`kube_api`).

`TwinReader.objects()` turns the supervisor's pods, the desired replica count, Envoy's process
and the autoscaler's last decisions into the builders' records (`kube_objects`,
`kube_autoscaling`) and the builders' models into the API's JSON. It remembers what the twin
does not keep but the API shows: each pod's creation time as an epoch, when a pod was deleted and
with which grace period, when each condition last changed, the Deployment's generation. An
object is rebuilt only when its inputs changed, so an unchanged object keeps its exact JSON (and
its resourceVersion in the store).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes import client

from loadgate.errors import UserError
from loadgate.platform.k8s_objects import GRPC_PORT_NAMES
from loadgate.twin import kube_objects as ko
from loadgate.twin.kube_autoscaling import AutoscalerState, hpa_object, scaled_object
from loadgate.twin.supervisor import pod_name, safe_hash

if TYPE_CHECKING:
    from loadgate.twin.stack import Twin
    from loadgate.twin.supervisor import PodProc

Key = tuple[str, str, str]  # (resource plural, namespace, name); namespace "" if cluster-scoped
EXTRA_NAMESPACES = ("default",)  # served beside the twin's own, empty, as in any cluster


def _port(url_or_target: str) -> int:
    return int(url_or_target.rsplit(":", 1)[1].split("/")[0])


class TwinReader:
    def __init__(self, twin: Twin, seed: str) -> None:
        objs = twin.spec.kube_objects
        if objs is None:
            raise UserError("--kube-api: the twin spec carries no manifests (load_twin_spec)")
        sup = twin.supervisor
        assert sup is not None, "the kube API starts after the pods"
        self.twin, self.sup, self.seed = twin, sup, seed
        self.namespace = twin.spec.namespace
        self.created = twin.started
        self._api = client.ApiClient()
        self._model = client.V1Deployment.from_dict(objs.model_deployment)
        self._model.metadata.name = twin.spec.deployment
        self.container = self._model.spec.template.spec.containers[0].name
        self._envoy = (
            client.V1Deployment.from_dict(objs.envoy_deployment) if objs.envoy_deployment else None
        )
        self._so_manifest = objs.scaled_object if twin.spec.autoscaler is not None else None
        self._envoy_hash = safe_hash("envoy", seed)
        self.envoy_pod = (
            pod_name(self._envoy.metadata.name, self._envoy_hash, random.Random(seed))
            if self._envoy
            else None
        )
        self._lock = threading.Lock()
        self._pod_created: dict[str, float] = {}
        self._deletions: dict[str, tuple[float, int]] = {}  # pod -> (deletionTimestamp, grace)
        self._desired, self._generation = sup.desired, 1
        self._events_seen, self._event_seq = 0, 0
        self._last_scale: float | None = None
        self._built: dict[Key, tuple[Hashable, dict[str, Any]]] = {}
        self._transitions: dict[tuple[Key, str], tuple[str, str]] = {}

    @property
    def hpa_name(self) -> str | None:
        a = self.twin.spec.autoscaler
        return f"keda-hpa-{a.name}" if a is not None and self._so_manifest else None

    # -- what the API's own writes tell the reader ---------------------------------------------

    def note_deletion(self, name: str, grace_s: int) -> None:
        """A DELETE through the API: the exact deletionTimestamp and grace period."""
        with self._lock:
            self._deletions.setdefault(name, (time.time() + grace_s, grace_s))

    # -- records ------------------------------------------------------------------------------

    def _pod_state(self, p: PodProc, template: client.V1PodTemplateSpec) -> ko.PodState:
        now, mono = time.time(), time.monotonic()
        created = self._pod_created.setdefault(p.name, now - (mono - p.created))
        deletion = None
        if p.phase == "Terminating":
            if p.name not in self._deletions:  # deleted by the control API or a scale-down
                grace = max(0, round(p.kill_deadline - mono)) if p.kill_deadline else 0
                self._deletions[p.name] = (now + grace, grace)
            deletion = self._deletions[p.name]
        by_name = dict.fromkeys(GRPC_PORT_NAMES, p.grpc_port)
        return ko.PodState(
            name=p.name, ports=ko.port_map(template, by_name, p.http_port), pid=p.proc.pid,
            created=created, started=p.started, ready=p.ready,
            deletion=deletion[0] if deletion else None, grace_s=deletion[1] if deletion else None,
        )  # fmt: skip

    def workload(self) -> ko.Workload:
        desired = self.sup.desired
        if desired != self._desired:  # a spec change: the Deployment's generation moves on
            self._desired, self._generation = desired, self._generation + 1
        pods = sorted(self.sup.pods(), key=lambda p: p.name)
        states = tuple(self._pod_state(p, self._model.spec.template) for p in pods)
        live = {p.name for p in pods}
        for memo in (self._pod_created, self._deletions):
            for gone in set(memo) - live:
                del memo[gone]
        return ko.Workload(
            manifest=self._model, namespace=self.namespace, seed=self.seed,
            template_hash=self.sup.hash, desired=desired, generation=self._generation,
            created=self.created, pods=states,
        )  # fmt: skip

    def envoy_workload(self) -> ko.Workload | None:
        proc = self.twin.process("envoy")
        if self._envoy is None or proc is None:
            return None
        assert self.envoy_pod is not None
        by_name = {"grpc": _port(self.twin.grpc_target), "admin": _port(self.twin.envoy_admin_url)}
        pod = ko.PodState(
            name=self.envoy_pod,
            ports=ko.port_map(self._envoy.spec.template, by_name, None), pid=proc.pid,
            created=self.created, started=self.created, ready=proc.poll() is None,
        )  # fmt: skip
        return ko.Workload(
            manifest=self._envoy, namespace=self.namespace, seed=self.seed,
            template_hash=self._envoy_hash, desired=1, generation=1, created=self.created,
            pods=(pod,),
        )  # fmt: skip

    def autoscaler(self, target: ko.Workload) -> AutoscalerState | None:
        scaler, spec = self.twin.scaler, self.twin.spec.autoscaler
        if scaler is None or spec is None or self._so_manifest is None:
            return None
        return AutoscalerState(
            spec=spec, manifest=self._so_manifest, target=target,
            hpa=scaler.last_by_actor.get("hpa"), keda=scaler.last_by_actor.get("keda"),
            error=scaler.last_error, failures=scaler.failures,
            last_active=scaler.autoscaler.last_active, last_scale=self._last_scale,
        )  # fmt: skip

    # -- JSON -----------------------------------------------------------------------------------

    def _json(self, key: Key, inputs: Hashable, build: Callable[[], Any]) -> dict[str, Any]:
        """The object's JSON, rebuilt only when its inputs changed; conditions stamped."""
        cached = self._built.get(key)
        if cached is not None and cached[0] == inputs:
            return cached[1]
        obj = build()
        data = obj if isinstance(obj, dict) else self._api.sanitize_for_serialization(obj)
        self._stamp(key, data)
        self._built[key] = (inputs, data)
        return data

    def _stamp(self, key: Key, data: dict[str, Any]) -> None:
        """lastTransitionTime of each condition: when its status last changed."""
        now = ko.timestamp(time.time()).isoformat()
        for c in (data.get("status") or {}).get("conditions") or []:
            seen = self._transitions.get((key, c["type"]))
            if seen is None or seen[0] != c["status"]:
                seen = (c["status"], now)
                self._transitions[(key, c["type"])] = seen
            c["lastTransitionTime"] = seen[1]

    def objects(self) -> dict[Key, dict[str, Any]]:
        """Every object but Events, as the API's JSON (without resourceVersion)."""
        with self._lock:
            out: dict[Key, dict[str, Any]] = {}
            for ns in (self.namespace, *EXTRA_NAMESPACES):
                key = ("namespaces", "", ns)
                out[key] = self._json(
                    key, ns, lambda ns=ns: ko.namespace_object(self.seed, ns, self.created)
                )
            model = self.workload()
            workloads = [w for w in (model, self.envoy_workload()) if w is not None]
            for w in workloads:
                for p in w.pods:
                    key = ("pods", w.namespace, p.name)
                    out[key] = self._json(key, p, lambda w=w, p=p: ko.pod_object(w, p))
                fingerprint = (w.desired, w.generation, w.pods)
                for resource, build in (
                    ("deployments", ko.deployment_object),
                    ("replicasets", ko.replicaset_object),
                ):
                    name = w.replicaset if resource == "replicasets" else w.name
                    key = (resource, w.namespace, name)
                    out[key] = self._json(key, fingerprint, lambda b=build, w=w: b(w))
            a = self.autoscaler(model)
            if a is not None:
                fingerprint = (a.hpa, a.keda, a.error, a.failures, a.last_active, a.last_scale,
                               len(model.live), model.desired)  # fmt: skip
                key = ("scaledobjects", self.namespace, a.spec.name)
                out[key] = self._json(key, fingerprint, lambda: scaled_object(a, self.created))
                key = ("horizontalpodautoscalers", self.namespace, a.hpa_name)
                out[key] = self._json(key, fingerprint, lambda: hpa_object(a, self.created))
            for stale in set(self._built) - set(out):
                del self._built[stale]
            self._transitions = {k: v for k, v in self._transitions.items() if k[0] in out}
            return out

    def scale(self, deployment: str) -> dict[str, Any] | None:
        """A Deployment's scale subresource, as JSON."""
        with self._lock:
            w = self.workload() if deployment == self._model.metadata.name else None
            if w is None and self._envoy is not None and deployment == self._envoy.metadata.name:
                w = self.envoy_workload()
            return None if w is None else self._api.sanitize_for_serialization(ko.scale_object(w))

    # -- pods' files ------------------------------------------------------------------------------

    def is_model_pod(self, name: str) -> bool:
        return any(p.name == name for p in self.sup.pods())

    def log_path(self, pod: str) -> Path | None:
        """The file a pod's log is read from: the model server's log, Envoy's access log."""
        if pod == self.envoy_pod:
            return self.twin.access_log
        return next((p.log_path for p in self.sup.pods() if p.name == pod), None)

    def container_of(self, pod: str) -> str:
        dep = self._envoy if pod == self.envoy_pod and self._envoy else self._model
        return dep.spec.template.spec.containers[0].name

    def new_events(self) -> list[tuple[Key, dict[str, Any]]]:
        """Kubernetes Events for the twin's events recorded since the last call."""
        with self._lock:
            evs, self._events_seen = self.twin.log.events_after(self._events_seen)
            if not evs:
                return []
            ctx = ko.EventContext(self.workload(), self.container, self.hpa_name)
            out = []
            for ev in evs:
                self._event_seq += 1
                if ev.kind == "autoscaler" and ev.reason == "SuccessfulRescale":
                    self._last_scale = ev.time
                for e in ko.core_events(ev, ctx, self._event_seq):
                    data = self._api.sanitize_for_serialization(e)
                    out.append((("events", self.namespace, data["metadata"]["name"]), data))
            return out
