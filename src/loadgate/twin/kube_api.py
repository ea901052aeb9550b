"""The twin's emulated Kubernetes API (`loadgate twin up --kube-api`): the part of the API that
loadgate's `KubernetesPlatform`, chaostoolkit-kubernetes and kubectl's read paths use, served on
a free loopback port from the twin's live state, with a kubeconfig to reach it.

Served (everything else answers the API server's own `Status`: 404 NotFound for an unknown path,
405 MethodNotAllowed for a verb not served, 400 for a bad selector). No authentication: like the
twin's control API it listens on loopback only (kubectl would not send a token over plain HTTP).

    GET  /version /healthz /livez /readyz /api /api/v1 /apis /apis/<group>[/<version>]
    GET  namespaces, pods, events, deployments, replicasets, horizontalpodautoscalers (v2),
         scaledobjects (keda.sh/v1alpha1): list (labelSelector, fieldSelector, limit/continue),
         get, watch (?watch=true, resourceVersion, timeoutSeconds)
    DELETE pods/<name>            gracePeriodSeconds (query or DeleteOptions body), dryRun
    GET  pods/<name>/log          sinceSeconds, sinceTime, tailLines, limitBytes, timestamps
    PATCH deployments/<name>      spec.replicas only (merge, strategic-merge or json patch)
    GET/PATCH/PUT deployments/<name>/scale

Deleting a pod kills the twin's pod (`Supervisor.kill`: SIGKILL at grace 0, else SIGTERM and
SIGKILL when the grace runs out); scaling sets the supervisor's replicas. Bounded: at most
`kube_http.MAX_CONNECTIONS` connections (more get 429), a watch lasts at most `MAX_WATCH_S`, and `stop()`
closes every connection and joins every thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes import client

from loadgate.errors import UserError
from loadgate.platform.kubeconfig import write_kubeconfig
from loadgate.procs import free_port
from loadgate.twin import kube_discovery as disc
from loadgate.twin.kube_discovery import (
    NOT_ALLOWED,
    NOT_FOUND_PATH,
    Target,
    not_found,
    parse_path,
    status,
    verb_of,
)
from loadgate.twin.kube_http import ApiError, ApiServer, Reply, Request
from loadgate.twin.kube_logs import log_lines
from loadgate.twin.kube_patch import PatchError, apply_patch
from loadgate.twin.kube_selectors import Selection, SelectorError, parse_fields, parse_labels
from loadgate.twin.kube_state import Key, TwinReader
from loadgate.twin.kube_store import ObjectStore
from loadgate.twin.kube_watch import watch

if TYPE_CHECKING:
    from loadgate.twin.stack import Twin

log = logging.getLogger(__name__)

CONTEXT = "loadgate-twin"  # the kubeconfig's context, cluster and user
KUBECONFIG = "kubeconfig"  # its file name in the run directory
MAX_WATCH_S = 300.0  # a watch without timeoutSeconds ends here (a real API server: 30-60 min)
SYNC_GAP_S = 0.05  # coalesce bursts of twin events into one store update
HEALTH = ("/healthz", "/livez", "/readyz")


def _int(query: dict[str, str], key: str, low: int = 0) -> int | None:
    if query.get(key) in (None, ""):
        return None
    try:
        value = int(query[key])
    except ValueError:
        raise ApiError(
            status(400, f"{key}: invalid value {query[key]!r}: not an integer")
        ) from None
    if value < low:
        raise ApiError(status(400, f"{key}: must be >= {low}, got {value}"))
    return value


def _without(obj: dict[str, Any], *paths: tuple[str, ...]) -> dict[str, Any]:
    """A copy of `obj` without the given paths (and without status), for "what changed"."""
    out = json.loads(json.dumps(obj))
    out.pop("status", None)
    for path in paths:
        cur = out
        for step in path[:-1]:
            cur = cur.get(step) if isinstance(cur, dict) else None
        if isinstance(cur, dict):
            cur.pop(path[-1], None)
    return out


class KubeApi:
    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self.reader = TwinReader(twin, seed=str(twin.run_dir))
        self.store = ObjectStore()
        self._api = client.ApiClient()
        self._stop = threading.Event()
        self._sync_lock = threading.Lock()
        self.sync()
        for attempt in range(3):  # free_port() can race with another process
            try:
                self.httpd = ApiServer(("127.0.0.1", free_port()), self.handle)
                break
            except OSError as e:
                if attempt == 2:
                    raise UserError(f"kube API: cannot bind a loopback port: {e}") from None
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._threads = [
            threading.Thread(
                target=self.httpd.serve_forever,
                kwargs={"poll_interval": 0.1},  # how soon stop() ends the accept loop
                name="twin-kube-api",
                daemon=True,
            ),
            threading.Thread(target=self._sync_loop, name="twin-kube-sync", daemon=True),
        ]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """End every watch and connection, then join every thread (bounded)."""
        self._stop.set()
        self.store.close()
        if self._threads[0].is_alive():
            self.httpd.shutdown()
        self.httpd.close_connections()
        self.httpd.server_close()  # joins the connection threads
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=5)

    @property
    def requests(self) -> list[str]:
        """ "METHOD path?query" of the requests served (the latest 2000): what clients ask."""
        return list(self.httpd.requests)

    def write_kubeconfig(self, path: Path) -> Path:
        return write_kubeconfig(path, self.url, CONTEXT, self.twin.spec.namespace)

    # -- state -----------------------------------------------------------------------------------

    def sync(self) -> None:
        """Bring the store up to the twin's state (new Events first: the HPA needs them)."""
        with self._sync_lock:
            self.store.add_events(self.reader.new_events())
            self.store.replace(self.reader.objects())

    def _sync_loop(self) -> None:
        seen = -1
        while not self._stop.is_set():
            seen = self.twin.log.wait_change(seen, timeout=0.5)
            if self._stop.is_set():
                return
            try:
                self.sync()
            except Exception:  # keep serving the last state; the next change retries
                log.exception("kube API: reading the twin failed")
            self._stop.wait(SYNC_GAP_S)

    def json(self, obj: Any) -> Any:
        return self._api.sanitize_for_serialization(obj)

    # -- requests --------------------------------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        path = req.path.rstrip("/") or "/"
        if req.method == "GET" and (found := self._discovery(path)) is not None:
            return found
        t = parse_path(path)
        if t is None:
            raise ApiError(status(404, NOT_FOUND_PATH))
        verb = verb_of(req.method, t, req.query)
        if verb not in (t.resource.subresources[t.sub] if t.sub else t.resource.verbs):
            raise ApiError(status(405, NOT_ALLOWED))
        self.sync()
        if verb == "list":
            return Reply(body=self._list(t, req.query))
        if verb == "watch":
            return self._watch(t, req.query)
        key: Key = (t.resource.plural, t.namespace or "", t.name or "")
        current = self.store.get(key)
        if current is None:
            raise ApiError(not_found(t.resource, t.name or ""))
        if t.sub == "log":
            return self._log(t, req.query)
        if t.sub == "scale":
            return Reply(body=self._scale(t, req, current))
        if verb == "get":
            return Reply(body=current)
        if verb == "delete":
            return Reply(body=self._delete_pod(t, req, current))
        return Reply(body=self._patch_deployment(t, req, current))

    def _discovery(self, path: str) -> Reply | None:
        if path in HEALTH:
            return Reply(body=b"ok", content_type="text/plain")
        parts = path.strip("/").split("/")
        doc: Any = None
        if path == "/version":
            doc = disc.version_info()
        elif path == "/api":
            doc = disc.api_versions(self.url.removeprefix("http://"))
        elif path == "/apis":
            doc = disc.api_group_list()
        elif path == "/api/v1":
            doc = disc.resource_list("", "v1")
        elif parts[0] == "apis" and len(parts) == 2 and parts[1] in disc.groups():
            doc = disc.api_group(parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = disc.resource_list(parts[1], parts[2])
        return None if doc is None else Reply(body=self.json(doc))

    def _selection(self, t: Target, query: dict[str, str]) -> Selection:
        r = t.resource
        try:
            return Selection(
                namespace=t.namespace if r.namespaced else None,
                labels=parse_labels(query.get("labelSelector")),
                fields=parse_fields(query.get("fieldSelector"), r.field_labels),
                field_labels=r.field_labels,
            )
        except SelectorError as e:
            raise ApiError(status(400, str(e))) from None

    def _list(self, t: Target, query: dict[str, str]) -> dict[str, Any]:
        sel = self._selection(t, query)
        rv, objs = self.store.items(t.resource.plural)
        items = [o for o in objs if sel.matches(o)]
        start = _int(query, "continue") or 0  # the token is the next item's index
        limit = _int(query, "limit", low=0) or len(items)
        page = items[start : start + limit]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if start + limit < len(items):
            meta.update(
                {"continue": str(start + limit), "remainingItemCount": len(items) - start - limit}
            )
        r = t.resource
        return {"apiVersion": r.group_version, "kind": r.list_kind, "metadata": meta, "items": page}

    def _watch(self, t: Target, query: dict[str, str]) -> Reply:
        sel = self._selection(t, query)
        since = _int(query, "resourceVersion") or None  # "" and "0": start from the current state
        timeout = _int(query, "timeoutSeconds") or None  # 0: the default, as the API server
        duration = MAX_WATCH_S if timeout is None else min(float(timeout), MAX_WATCH_S)
        return Reply(stream=watch(self.store, t.resource.plural, sel, since, duration))

    def _log(self, t: Target, query: dict[str, str]) -> Reply:
        assert t.name is not None
        container = query.get("container")
        path = self.reader.log_path(t.name)
        if path is None or (container and container != self.reader.container_of(t.name)):
            raise ApiError(status(400, f"container {container} is not valid for pod {t.name}"))
        if query.get("follow") in ("true", "1"):
            raise ApiError(status(400, "follow is not served by the twin's emulated API"))
        if query.get("previous") in ("true", "1"):
            raise ApiError(
                status(400, f'previous terminated container in pod "{t.name}" not found')
            )
        since = None
        if (seconds := _int(query, "sinceSeconds", low=1)) is not None:
            since = time.time() - seconds
        elif query.get("sinceTime"):
            try:
                since = _epoch(query["sinceTime"])
            except ValueError:
                raise ApiError(
                    status(400, f"sinceTime: invalid time {query['sinceTime']!r}")
                ) from None
        lines = log_lines(
            path, since, _int(query, "tailLines"), _int(query, "limitBytes", low=1),
            query.get("timestamps") in ("true", "1"),
        )  # fmt: skip
        return Reply(stream=lines, content_type="text/plain")

    # -- writes -----------------------------------------------------------------------------------

    def _delete_pod(self, t: Target, req: Request, current: dict[str, Any]) -> dict[str, Any]:
        assert t.name is not None
        if not self.reader.is_model_pod(t.name):
            raise ApiError(status(403, f'pods "{t.name}" is forbidden: the twin\'s Envoy is not '
                                  "deleted through the emulated API", t.name, t.resource))  # fmt: skip
        options = _json_body(req.body)
        grace = _int(req.query, "gracePeriodSeconds")
        if grace is None and options.get("gracePeriodSeconds") is not None:
            grace = options["gracePeriodSeconds"]
            if not isinstance(grace, int) or isinstance(grace, bool):
                raise ApiError(status(400, f"gracePeriodSeconds: not an integer: {grace!r}"))
        if grace is not None and grace < 0:
            raise ApiError(status(422, f"gracePeriodSeconds: must be >= 0, got {grace}"))
        pre = options.get("preconditions") or {}
        meta = current["metadata"]
        if pre.get("uid") not in (None, meta["uid"]) or pre.get("resourceVersion") not in (
            None, meta["resourceVersion"],
        ):  # fmt: skip
            raise ApiError(
                status(409, f'Precondition failed for pods "{t.name}"', t.name, t.resource)
            )
        if "All" in (req.query.get("dryRun"), *(options.get("dryRun") or [])):
            return current
        if grace is None:  # the pod's own terminationGracePeriodSeconds, a simulated duration
            seconds = float(current["spec"].get("terminationGracePeriodSeconds", 30))
            delay = seconds * self.twin.spec.time_scale
        else:
            delay = float(grace)
        self.reader.note_deletion(t.name, math.ceil(delay))
        assert self.twin.supervisor is not None
        self.twin.supervisor.kill([t.name], grace_period=delay)
        self.sync()
        return self.store.get(("pods", t.namespace or "", t.name)) or current

    def _replicas(self, t: Target, req: Request, current: dict[str, Any], kind: str) -> int | None:
        """The replicas a write asks for (None: a dry run). Only spec.replicas may change."""
        if req.method == "PUT":
            patched = _json_body(req.body)
        else:
            try:
                patched = apply_patch(current, req.body, req.content_type)
            except PatchError as e:
                raise ApiError(status(e.code, str(e), t.name, t.resource)) from None
        invalid = f'{kind} "{t.name}" is invalid'
        sent_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if sent_rv not in (None, current["metadata"]["resourceVersion"]):
            raise ApiError(status(409, f'Operation cannot be fulfilled on {t.resource.plural} "{t.name}": '
                                  "the object has been modified; please apply your changes to the "
                                  "latest version and try again", t.name, t.resource))  # fmt: skip
        ignore = (
            ("spec", "replicas"),
            ("metadata", "resourceVersion"),
            ("metadata", "managedFields"),
        )
        if req.method != "PUT" and _without(patched, *ignore) != _without(current, *ignore):
            raise ApiError(status(422, f"{invalid}: the twin's emulated API changes only spec.replicas",
                                  t.name, t.resource))  # fmt: skip
        replicas = (patched.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(status(422, f"{invalid}: spec.replicas: Invalid value: {replicas!r}: "
                                  "must be an integer >= 0", t.name, t.resource))  # fmt: skip
        if "All" in (req.query.get("dryRun") or "").split(","):
            return None
        return replicas

    def _scale_to(self, t: Target, replicas: int) -> None:
        if t.name != self.twin.spec.deployment:
            raise ApiError(status(422, f'deployments.apps "{t.name}" is invalid: the twin runs one '
                                  "Envoy; only the model Deployment scales", t.name, t.resource))  # fmt: skip
        assert self.twin.supervisor is not None
        self.twin.supervisor.scale(replicas)
        self.sync()

    def _patch_deployment(self, t: Target, req: Request, current: dict[str, Any]) -> dict[str, Any]:
        replicas = self._replicas(t, req, current, "Deployment.apps")
        if replicas is not None:
            self._scale_to(t, replicas)
        return self.store.get(("deployments", t.namespace or "", t.name or "")) or current

    def _scale(self, t: Target, req: Request, deployment: dict[str, Any]) -> dict[str, Any]:
        def current() -> dict[str, Any]:
            scale = self.reader.scale(t.name or "")
            assert scale is not None, "the store holds the Deployment"
            dep = self.store.get(("deployments", t.namespace or "", t.name or "")) or deployment
            scale["metadata"]["resourceVersion"] = dep["metadata"]["resourceVersion"]
            return scale

        scale = current()
        if req.method == "GET":
            return scale
        replicas = self._replicas(t, req, scale, "Scale.autoscaling")
        if replicas is not None:
            self._scale_to(t, replicas)
        return current()


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError as e:
        raise ApiError(status(400, f"the body is not valid JSON: {e}")) from None
    if not isinstance(data, dict):
        raise ApiError(status(400, "the body must be a JSON object"))
    return data


def _epoch(rfc3339: str) -> float:
    return dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
