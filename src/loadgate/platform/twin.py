"""The twin as a `Platform`: a thin client of the twin's control API (loadgate.twin.control).

Works from any process (the chaos extension runs in Chaos Toolkit's): give it the control URL, or
let `TwinPlatform.from_state()` find a twin started with `loadgate twin up --detach`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from loadgate.errors import UserError
from loadgate.platform.base import Event, Platform, Pod, Replicas

DEFAULT_STATE_DIR = ".loadgate/twin"


def read_state(state_dir: str | Path = DEFAULT_STATE_DIR) -> dict[str, Any]:
    path = Path(state_dir) / "state.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"no detached twin found ({path} missing): start one with `loadgate twin up --detach`"
        ) from None
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable twin state: {e}") from None


class TwinPlatform(Platform):
    name = "twin"

    def __init__(self, control_url: str, timeout: float = 10.0) -> None:
        self.control_url = control_url.rstrip("/")
        self.timeout = timeout
        self._endpoints: dict[str, str] | None = None

    @classmethod
    def from_state(cls, state_dir: str | Path = DEFAULT_STATE_DIR) -> TwinPlatform:
        state = read_state(state_dir)
        return cls(state["control_url"])

    # -- transport -------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.control_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            try:
                msg = json.load(e).get("error", e.reason)
            except (ValueError, AttributeError):
                msg = e.reason
            raise UserError(f"twin control API {method} {path}: {msg}") from None
        except (urllib.error.URLError, OSError) as e:
            raise UserError(f"twin control API at {self.control_url} unreachable: {e}") from None

    def endpoints(self) -> dict[str, str]:
        if self._endpoints is None:
            self._endpoints = self._call("GET", "/endpoints")
        return self._endpoints

    # -- Platform ------------------------------------------------------------------------------

    @property
    def grpc_target(self) -> str:
        return self.endpoints()["grpc_target"]

    @property
    def prometheus_url(self) -> str | None:
        return self.endpoints().get("prometheus_url")

    def pod_records(self) -> list[dict[str, Any]]:
        """The control API's pod records, with Envoy's view of each pod (health, rq_active)."""
        return self._call("GET", "/pods")

    def pods(self, selector: str | None = None) -> list[Pod]:
        # The twin runs one Deployment; a selector is accepted for interface parity.
        return [
            Pod(
                name=p["name"],
                address=p["address"],
                ready=bool(p["ready"]),
                started=p.get("started"),
                phase=p.get("phase", "Running"),
                queue=p.get("queue"),
            )
            for p in self.pod_records()
        ]

    def kill_pods(
        self,
        selector: str | None = None,
        count: int | None = None,
        percent: float | None = None,
        names: list[str] | None = None,
        grace_period: float = 0.0,
    ) -> list[str]:
        body: dict[str, Any] = {"grace_period": grace_period}
        if names:
            body["names"] = list(names)
        elif count is not None:
            body["count"] = count
        elif percent is not None:
            body["percent"] = percent
        else:
            body["count"] = 1
        return list(self._call("POST", "/kill", body)["killed"])

    def replicas(self, deployment: str | None = None) -> Replicas:
        r = self._call("GET", "/replicas")
        return Replicas(spec=int(r["spec"]), ready=int(r["ready"]))

    def scale(self, replicas: int, deployment: str | None = None) -> None:
        self._call("POST", "/scale", {"replicas": int(replicas)})

    def events(self, since: float = 0.0) -> list[Event]:
        q = urllib.parse.urlencode({"since": since})
        return [
            Event(
                time=float(e["time"]),
                kind=e["kind"],
                name=e["name"],
                reason=e["reason"],
                message=e.get("message", ""),
                fields=e.get("fields") or {},
            )
            for e in self._call("GET", f"/events?{q}")
        ]

    def timeline(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Raw timeline rows (TIMELINE contract) since an epoch time."""
        q = urllib.parse.urlencode({"since": since})
        return self._call("GET", f"/timeline?{q}")

    def scaled_object(self) -> dict[str, Any]:
        return self._call("GET", "/scaledobject")
