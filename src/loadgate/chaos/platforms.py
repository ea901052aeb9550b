"""Which stack an experiment acts on, from its Chaos Toolkit `configuration`.

The same experiment file runs on the twin and on Kubernetes; only these keys differ:

    configuration:
      loadgate_platform: twin            # or kubernetes (env LOADGATE_PLATFORM in the shipped files)
      loadgate_control_url: ""           # twin: control API URL; "" = the detached twin's state file
      loadgate_twin_state_dir: .loadgate/twin
      loadgate_config: loadgate.yaml     # kubernetes: its `kubernetes:` block, with the allowlist
      loadgate_scenario: experiments/load/steady.yaml   # background load (the control)
      loadgate_out: ""                   # run directory; "" = reports/chaos-<time>-<title>

Kubernetes is refused unless the context/namespace is in the allowlist (safety.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field

from loadgate.chaos import session
from loadgate.config import StrictModel, validate
from loadgate.platform.base import Platform

PREFIX = "loadgate_"


class ChaosSettings(StrictModel):
    """The `loadgate_*` keys of an experiment's configuration (a misspelt one is an error)."""

    model_config = ConfigDict(**StrictModel.model_config, alias_generator=lambda n: PREFIX + n)

    platform: Literal["twin", "kubernetes"] = "twin"
    control_url: str = ""
    twin_state_dir: str = ".loadgate/twin"
    config: str = "loadgate.yaml"
    scenario: str = "experiments/load/steady.yaml"
    out: str = ""
    load_processes: int = Field(1, ge=1, le=16)


def settings_from(
    configuration: dict[str, Any] | None, source: str = "the experiment"
) -> ChaosSettings:
    """The `loadgate_*` keys; a mistake names `source` (the experiment file) and the key."""
    cfg = configuration or {}
    data = {k: v for k, v in cfg.items() if k.startswith(PREFIX) and v is not None and v != ""}
    return validate(ChaosSettings, data, source, ("configuration",))


def kubernetes_block(config_path: str) -> dict[str, Any]:
    """The `kubernetes:` block of loadgate.yaml (the Kubernetes platform's own keys), checked."""
    from loadgate.platform.kubernetes import config_block

    return config_block(
        config_path, "chaos on Kubernetes needs its context, namespace and allowlist"
    )


def build_platform(s: ChaosSettings) -> Platform:
    if s.platform == "twin":
        from loadgate.platform.twin import TwinPlatform

        if s.control_url:
            return TwinPlatform(s.control_url)
        return TwinPlatform.from_state(Path(s.twin_state_dir))
    from loadgate.chaos.safety import ensure_chaos_allowed
    from loadgate.platform.kubernetes import KubernetesPlatform

    plat = KubernetesPlatform.from_config(kubernetes_block(s.config), source=s.config)
    ensure_chaos_allowed(plat)
    return plat


def platform_for(configuration: dict[str, Any] | None) -> Platform:
    """The platform an activity acts on; cached per settings for the experiment's duration."""
    s = settings_from(configuration)
    key = s.model_dump_json()
    sess = session.current()
    plat = sess.platforms.get(key)
    if plat is None:
        plat = sess.platforms[key] = build_platform(s)
    return plat
