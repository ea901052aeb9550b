"""Kube context and namespace selection, and the safety allowlist.

Picks a kubeconfig context (explicit, or the file's current one) or the in-cluster service
account, and builds an `ApiClient` whose calls never retry for long: an unreachable API server
must fail in seconds with one clear line, not hang a gate.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.config import ConfigException, incluster_config, kube_config
from urllib3.util.retry import Retry

from loadgate.errors import UserError

IN_CLUSTER = "in-cluster"


@dataclass(frozen=True)
class Connection:
    api: client.ApiClient
    context: str  # kubeconfig context name, or "in-cluster"
    namespace: str  # explicit, else the context's namespace, else "default"
    host: str  # API server URL (for error messages)


def _kubeconfig_path(kubeconfig: str | None) -> tuple[str, str]:
    """(path, where it was named: "kubeconfig:", "KUBECONFIG" or "the default")."""
    if kubeconfig:
        return os.path.expanduser(kubeconfig), "kubernetes.kubeconfig"
    env = os.environ.get("KUBECONFIG", "")
    # kubectl merges a colon-separated list; loadgate reads the first existing file.
    parts = [p for p in env.split(os.pathsep) if p]
    for part in parts:
        if Path(part).expanduser().exists():
            return str(Path(part).expanduser()), "KUBECONFIG"
    if parts:  # named but missing: say so, not "~/.kube/config not found"
        return str(Path(parts[0]).expanduser()), "KUBECONFIG"
    return os.path.expanduser("~/.kube/config"), "the default path"


def _in_cluster_available() -> bool:
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and Path(incluster_config.SERVICE_TOKEN_FILENAME).exists()
    )


def _no_retries(cfg: client.Configuration) -> None:
    # One attempt, no retries: an unreachable API fails within the connect timeout. Gates poll
    # on their own schedule.
    cfg.retries = Retry(total=0, connect=0, read=0, status=0, redirect=0, backoff_factor=0)


def connect(
    context: str | None = None,
    namespace: str | None = None,
    kubeconfig: str | None = None,
) -> Connection:
    """Load credentials: the kubeconfig (explicit context or current-context) or in-cluster."""
    path, named_by = _kubeconfig_path(kubeconfig)
    default = named_by == "the default path"
    if context == IN_CLUSTER or (not Path(path).exists() and default and not context):
        return _connect_in_cluster(namespace, path)
    if not Path(path).exists():
        raise UserError(
            f"kubeconfig {path} (from {named_by}) not found (set kubeconfig: or KUBECONFIG)"
        )
    try:
        if not isinstance(yaml.safe_load(Path(path).read_text()), dict):
            raise UserError(f"kubeconfig {path}: not a kubeconfig (expected a mapping with "
                            "clusters, users and contexts)")  # fmt: skip
        contexts, current = kube_config.list_kube_config_contexts(path)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        why = getattr(e, "problem", None) or _first_line(e)
        raise UserError(f"kubeconfig {path}: malformed YAML ({line}{why})") from None
    except (ConfigException, OSError, ValueError, TypeError, AttributeError) as e:
        if "Expected key current-context" in str(e):
            raise UserError(no_current(path)) from None
        raise UserError(f"kubeconfig {path}: not a valid kubeconfig: {_first_line(e)}") from None
    names = [c["name"] for c in contexts or []]
    chosen = context or (current or {}).get("name")
    if not chosen:
        raise UserError(no_current(path))
    if chosen not in names:
        raise UserError(
            f"kube context '{chosen}' not found in {path} (available: {', '.join(names) or 'none'})"
        )
    entry = next(c for c in contexts if c["name"] == chosen)
    cfg = client.Configuration()
    try:
        kube_config.load_kube_config(
            config_file=path, context=chosen, client_configuration=cfg, persist_config=False
        )
    except (ConfigException, OSError, ValueError, yaml.YAMLError, TypeError, KeyError) as e:
        raise UserError(f"kube context '{chosen}' in {path}: {_first_line(e)}") from None
    _no_retries(cfg)
    ns = namespace or (entry.get("context") or {}).get("namespace") or "default"
    return Connection(client.ApiClient(cfg), chosen, ns, cfg.host)


def no_current(path: str) -> str:
    return f"kubeconfig {path} has no current-context; name one with kubernetes.context"


def _connect_in_cluster(namespace: str | None, path: str) -> Connection:
    if not _in_cluster_available():
        raise UserError(
            f"no kubeconfig at {path} and not running in a pod "
            "(set kubeconfig:/context: or KUBECONFIG)"
        )
    cfg = client.Configuration()
    try:
        incluster_config.load_incluster_config(client_configuration=cfg)
    except ConfigException as e:
        raise UserError(f"in-cluster config: {_first_line(e)}") from None
    _no_retries(cfg)
    ns = namespace
    if not ns:
        ns_file = Path(incluster_config.SERVICE_TOKEN_FILENAME).with_name("namespace")
        ns = ns_file.read_text().strip() if ns_file.exists() else "default"
    return Connection(client.ApiClient(cfg), IN_CLUSTER, ns, cfg.host)


def kubeconfig_document(
    server: str, context: str, namespace: str, token: str | None = None
) -> dict:
    """A kubeconfig with one cluster, user and context (all named `context`), current; the user
    has a bearer token, or no credentials."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": token} if token else {}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(
    path: Path, server: str, context: str, namespace: str, token: str | None = None
) -> Path:
    """Write `kubeconfig_document(...)`, readable by its owner only (it may hold a token)."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(kubeconfig_document(server, context, namespace, token), f, sort_keys=False)
    return path


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def ensure_allowed(context: str, namespace: str, allowlist: Iterable[str] | None) -> None:
    """Refuse to act on a cluster unless "<context>/<namespace>" matches an allowlist entry.

    Entries are "context/namespace" glob patterns, e.g. "kind-loadgate/loadgate" or
    "staging/*". An empty or missing allowlist allows nothing: chaos must be opted into.
    """
    entries = [e.strip() for e in (allowlist or []) if e and e.strip()]
    target = f"{context}/{namespace}"
    for entry in entries:
        if "/" not in entry:
            raise UserError(
                f"allowlist entry '{entry}' must be 'context/namespace' (globs allowed)"
            )
        if fnmatch.fnmatchcase(target, entry):
            return
    shown = ", ".join(entries) if entries else "empty"
    raise UserError(
        f"refusing to act on kube context '{context}' namespace '{namespace}': "
        f"not in the allowlist ({shown}); add '{target}' to kubernetes.allowed"
    )
