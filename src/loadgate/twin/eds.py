"""The model cluster's endpoints for Envoy: an EDS file the supervisor rewrites, as the
EndpointSlice controller (and, through DNS, a headless Service) updates them on Kubernetes.

Envoy watches the file (`path_config_source`) and applies a replaced file within a second; the
file is written under a temporary name and renamed, so Envoy never reads half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLA_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


@dataclass(frozen=True)
class EdsEndpoint:
    pod: str  # Envoy shows it as the host's hostname in admin /clusters
    ip: str
    grpc_port: int
    health_port: int  # readiness (/v2/health/ready) lives on the pod's HTTP port

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.grpc_port}"


def load_assignment(cluster: str, endpoints: list[EdsEndpoint], version: int) -> dict[str, Any]:
    """The discovery response for one ClusterLoadAssignment (pure)."""
    lb_endpoints = [
        {
            "endpoint": {
                "address": {"socket_address": {"address": e.ip, "port_value": e.grpc_port}},
                "hostname": e.pod,
                "health_check_config": {"port_value": e.health_port},
            }
        }
        for e in sorted(endpoints, key=lambda e: e.pod)
    ]
    return {
        "version_info": str(version),
        "resources": [
            {
                "@type": CLA_TYPE,
                "cluster_name": cluster,
                "endpoints": [{"lb_endpoints": lb_endpoints}],
            }
        ],
    }


class EdsFile:
    """Writes the cluster's endpoints; each write is a new version, replaced atomically."""

    def __init__(self, path: Path, cluster: str) -> None:
        self.path = Path(path)
        self.cluster = cluster
        self.version = 0
        self.current: tuple[EdsEndpoint, ...] | None = None

    def write(self, endpoints: list[EdsEndpoint]) -> bool:
        """Write when the set changed; returns whether it did."""
        key = tuple(sorted(endpoints, key=lambda e: e.pod))
        if key == self.current:
            return False
        self.version += 1
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(load_assignment(self.cluster, list(key), self.version)))
        os.replace(tmp, self.path)
        self.current = key
        return True
