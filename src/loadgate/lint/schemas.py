"""Schema checks: core kinds against the Kubernetes OpenAPI schemas (kubernetes-validate, strict:
unknown fields are errors), the ScaledObject against KEDA's fields, and the Envoy bootstrap in its
ConfigMap against the typed Envoy v3 API (envoy-data-plane). All offline.

The ScaledObject model and the bootstrap validation are the twin's own (`twin.scaledobject`,
`twin.envoy_config`): lint and the twin accept exactly the same manifests.
"""

from __future__ import annotations

from typing import Any

import yaml
from kubernetes_validate import utils as kv
from pydantic import ValidationError

from loadgate.config import describe_validation_error
from loadgate.errors import UserError
from loadgate.lint.documents import Doc, Manifests
from loadgate.lint.findings import Finding
from loadgate.twin.envoy_config import validate_bootstrap
from loadgate.twin.scaledobject import ScaledObject

DEFAULT_KUBE_VERSION = "1.30"
ENVOY_KEYS = ("envoy.yaml", "envoy.yml", "envoy.json")
# Kinds with no schema offline whose absence of checks is expected, not worth a warning.
NO_SCHEMA_OK = {"Kustomization", "ScaledObject"}


def check_kubernetes(doc: Doc, version: str) -> list[Finding]:
    try:
        kv.validate(doc.obj, version, strict=True)
    except kv.ValidationError as e:
        path = _path(list(e.path))
        return [
            Finding(
                "k8s-schema",
                "error",
                doc.file,
                path,
                f"{doc.kind}/{doc.name}: {e.message.splitlines()[0]} "
                f"(Kubernetes {e.version} schema)",
                "fix the field as the Kubernetes API reference for this kind says",
                doc=doc.index,
            )
        ]
    except kv.SchemaNotFoundError as e:
        if doc.kind in NO_SCHEMA_OK:
            return []
        return [
            Finding(
                "k8s-schema",
                "warning",
                doc.file,
                "apiVersion",
                f"{doc.kind}/{doc.name}: not checked: {e.message}",
                "check the apiVersion/kind, or ignore for custom resources",
                doc=doc.index,
            )
        ]
    except kv.VersionNotSupportedError:
        raise UserError(
            f"kubernetes version {version} not supported by kubernetes-validate "
            f"(known: {kv.all_versions()[0]} .. {kv.latest_version()})"
        ) from None
    return []


def check_scaled_object(doc: Doc) -> list[Finding]:
    try:
        ScaledObject.model_validate(doc.obj)
    except ValidationError as e:
        text = describe_validation_error(e, doc.file)
        path, _, msg = text[len(doc.file) + 2 :].partition(": ")
        return [
            Finding(
                "keda-schema",
                "error",
                doc.file,
                path,
                f"ScaledObject/{doc.name}: {msg}",
                "use the field names and types of KEDA's ScaledObject (keda.sh/v1alpha1)",
                doc=doc.index,
            )
        ]
    return []


def envoy_bootstraps(m: Manifests) -> list[tuple[Doc, str, Any]]:
    """(ConfigMap doc, data key, parsed bootstrap) for each ConfigMap that carries one."""
    out = []
    for doc in m.of_kind("ConfigMap"):
        data = doc.obj.get("data") or {}
        for key, text in data.items():
            if key in ENVOY_KEYS or (
                isinstance(text, str)
                and "static_resources" in text
                and key.endswith((".yaml", ".yml", ".json"))
            ):
                out.append((doc, key, text))
    return out


def check_envoy(doc: Doc, key: str, text: str) -> tuple[list[Finding], dict[str, Any] | None]:
    """Validate one bootstrap; returns findings and the normalized (snake_case) config or None."""
    prefix = f"data[{key}]"
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return [
            Finding(
                "envoy-schema",
                "error",
                doc.file,
                prefix,
                f"malformed YAML in the Envoy config: {str(e).splitlines()[0]}",
                "fix the YAML syntax",
                doc=doc.index,
            )
        ], None
    try:
        return [], validate_bootstrap(config, prefix)
    except UserError as e:
        detail = str(e)
        path, _, msg = detail.partition(": ")
        if path == prefix and ": " in msg:
            sub, _, msg = msg.partition(": ")
            path = f"{prefix}.{sub}"
        return [
            Finding(
                "envoy-schema",
                "error",
                doc.file,
                path,
                f"Envoy bootstrap: {msg}",
                "use the field names and values of Envoy's v3 API",
                doc=doc.index,
            )
        ], None


def _path(parts: list[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out
