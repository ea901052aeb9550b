"""Reading the reference deployment's files: the kustomization's resource list, multi-document
YAML, and the strict Kubernetes schema check of built-in kinds. Errors name file and key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loadgate.config import describe_validation_error, validate
from loadgate.errors import UserError

# libyaml when present: the Envoy bootstrap alone is a few hundred lines.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
K8S_VERSION = "1.30"  # schema version the manifests are validated against
# Kustomize transformers the twin does not apply: refusing them keeps "what ships = what is tested".
UNSUPPORTED_KUSTOMIZE = (
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "replicas",
    "components",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "namePrefix",
    "nameSuffix",
    "helmCharts",
)


class K8sPart(BaseModel):
    """Shapes read from Kubernetes objects; strictness comes from the Kubernetes schemas."""

    model_config = ConfigDict(extra="ignore")


class Kustomization(K8sPart):
    namespace: str | None = None
    resources: list[str] = Field(min_length=1)


class Doc(BaseModel):
    """One YAML document and where it came from (for error messages)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    source: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind"))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name"))


# --- reading files ----------------------------------------------------------------------------


def _yaml_docs(path: Path) -> list[Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return [d for d in yaml.load_all(text, Loader=LOADER) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path}:{where} malformed YAML: {problem}") from None


def _kustomization_file(directory: Path) -> Path:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if (directory / name).is_file():
            return directory / name
    if not directory.is_dir():
        raise UserError(f"{directory}: no such manifests directory")
    raise UserError(f"{directory}: no kustomization.yaml listing the manifests")


def read_manifests(directory: Path) -> tuple[list[Doc], str | None]:
    """All documents of the resources a kustomization lists (recursing into directories), and the
    kustomization's namespace."""
    kfile = _kustomization_file(directory)
    raw = _yaml_docs(kfile)
    data = raw[0] if raw else {}
    if not isinstance(data, dict):
        raise UserError(f"{kfile}: expected a Kustomization mapping")
    for key in UNSUPPORTED_KUSTOMIZE:
        if key in data:
            raise UserError(
                f"{kfile}: {key}: not applied by the twin; write the result into the manifests"
            )
    kust = validate(Kustomization, data, str(kfile))
    docs: list[Doc] = []
    for i, res in enumerate(kust.resources):
        path = directory / res
        if "://" in res or res.startswith("github.com/"):
            raise UserError(
                f"{kfile}: resources[{i}]: remote resources are not read by the twin: {res}"
            )
        if path.is_dir():
            sub, _ = read_manifests(path)
            docs += sub
            continue
        if not path.exists():
            raise UserError(f"{kfile}: resources[{i}]: {path}: no such file")
        for n, body in enumerate(_yaml_docs(path)):
            if not isinstance(body, dict) or "kind" not in body:
                raise UserError(
                    f"{path}: document {n + 1}: expected a Kubernetes object with a kind"
                )
            docs.append(
                Doc(
                    source=f"{path} ({body.get('kind')} {(body.get('metadata') or {}).get('name')})",
                    body=body,
                )
            )
    return docs, kust.namespace


def check_kubernetes_schema(doc: Doc) -> None:
    """Strict Kubernetes schema check of built-in kinds; custom resources are checked elsewhere."""
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError
    from kubernetes_validate.utils import ValidationError as K8sError

    try:
        kubernetes_validate.validate(doc.body, K8S_VERSION, strict=True)
    except SchemaNotFoundError:
        return  # a CRD (ScaledObject, ...) the schemas do not know
    except K8sError as e:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.path).lstrip(".")
        msg = str(e.message).splitlines()[0]
        raise UserError(f"{doc.source}: {path or '<top level>'}: {msg}") from None


def part(model: type[BaseModel], doc: Doc) -> Any:
    try:
        return model.model_validate(doc.body)
    except ValidationError as e:
        raise UserError(describe_validation_error(e, doc.source)) from None
