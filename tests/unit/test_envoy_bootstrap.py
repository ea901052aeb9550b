"""The shipped Envoy bootstrap as the twin runs it: the transformation changes only the keys it
documents (bind addresses, the model cluster's endpoint source, the access log), and overrides
change only the Envoy fields they name."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from loadgate.errors import UserError
from loadgate.observe.envoy_access import ACCESS_LOG_FORMAT
from loadgate.twin.envoy_bootstrap import (
    DNS_FIELDS,
    NO_LIMIT,
    TwinPlacement,
    edit_bootstrap,
    ingress_listener,
    listener_names,
    twin_bootstrap,
)
from loadgate.twin.manifests import apply_overrides, load_twin_spec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"
SHIPPED = yaml.safe_load(
    next(
        d
        for d in yaml.safe_load_all((FIXTURES / "envoy-config.yaml").read_text())
        if d["kind"] == "ConfigMap"
    )["data"]["envoy.yaml"]
)
AT = TwinPlacement(
    admin_port=19901,
    listener_ports={"grpc_ingress": 18080},
    eds_path=Path("/run/eds.json"),
    access_log_path=Path("/run/access.log"),
)
HCM = r"static_resources\.listeners\[0\]\.filter_chains\[0\]\.filters\[0\]\.typed_config"
CLUSTER = r"static_resources\.clusters\[0\]"
# Every leaf the transformation may add, change or remove (TWIN_CHANGES, as key paths).
ALLOWED = [
    r"admin\.address\.socket_address\.(address|port_value)",
    r"static_resources\.listeners\[\d+\]\.address\.socket_address\.(address|port_value)",
    HCM + r"\.access_log(\[.*|$)",
    CLUSTER + r"\.type",
    CLUSTER + r"\.load_assignment(\..*|$)",
    CLUSTER + r"\.eds_cluster_config(\..*|$)",
    *(CLUSTER + rf"\.{f}(\..*|$)" for f in DNS_FIELDS),
]


def leaves(node, prefix: str = "") -> dict[str, object]:
    """{key path: value} of every scalar (and empty container) in a parsed document."""
    if isinstance(node, dict) and node:
        out = {}
        for k, v in node.items():
            out.update(leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(node, list) and node:
        out = {}
        for i, v in enumerate(node):
            out.update(leaves(v, f"{prefix}[{i}]"))
        return out
    return {prefix: node}


def changed(a: dict, b: dict) -> set[str]:
    la, lb = leaves(a), leaves(b)
    return {k for k in la.keys() | lb.keys() if la.get(k, KeyError) != lb.get(k, KeyError)}


def test_only_the_documented_keys_change():
    before = copy.deepcopy(SHIPPED)
    out = twin_bootstrap(SHIPPED, "modelserver", AT)
    assert before == SHIPPED, "the input is not modified"
    diff = changed(SHIPPED, out)
    stray = sorted(k for k in diff if not any(re.fullmatch(p, k) for p in ALLOWED))
    assert stray == [], f"changed outside the documented keys: {stray}"
    # ... and the architecture's settings are among what stays verbatim.
    for kept in ("lb_policy", "least_request_lb_config", "circuit_breakers", "health_checks"):
        assert (
            out["static_resources"]["clusters"][0][kept]
            == SHIPPED["static_resources"]["clusters"][0][kept]
        )
    assert any("retry_policy" in k for k in leaves(out)), "the route is untouched"


def test_what_the_changed_keys_become():
    out = twin_bootstrap(SHIPPED, "modelserver", AT)
    assert out["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 19901,
    }
    listener = out["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 18080}
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    (log,) = hcm["access_log"]
    assert log["typed_config"]["path"] == "/run/access.log"
    assert log["typed_config"]["log_format"]["json_format"] == ACCESS_LOG_FORMAT
    cluster = out["static_resources"]["clusters"][0]
    assert cluster["type"] == "EDS"
    assert cluster["eds_cluster_config"] == {
        "eds_config": {"path_config_source": {"path": "/run/eds.json"}}
    }
    assert "load_assignment" not in cluster and "dns_refresh_rate" not in cluster


def test_the_shipped_access_log_is_loadgates_format():
    """One definition: the Kubernetes Envoy logs to stdout exactly what the gate reads."""
    hcm = SHIPPED["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    (log,) = hcm["typed_config"]["access_log"]
    assert log["typed_config"]["log_format"]["json_format"] == ACCESS_LOG_FORMAT
    assert log["typed_config"]["@type"].endswith("StdoutAccessLog")


def test_camel_case_keys_are_found_and_kept_in_their_spelling():
    camel = copy.deepcopy(SHIPPED)
    c = camel["static_resources"]["clusters"][0]
    c["loadAssignment"] = c.pop("load_assignment")
    c["dnsRefreshRate"] = c.pop("dns_refresh_rate")
    camel["staticResources"] = camel.pop("static_resources")
    out = twin_bootstrap(camel, "modelserver", AT)
    cluster = out["staticResources"]["clusters"][0]
    assert "loadAssignment" not in cluster and "dnsRefreshRate" not in cluster
    assert cluster["type"] == "EDS" and "eds_cluster_config" in cluster
    assert listener_names(camel) == ["grpc_ingress"]
    assert ingress_listener(camel, "modelserver") == "grpc_ingress"


def test_a_listener_without_a_port_or_no_admin_is_refused():
    with pytest.raises(UserError, match="no port for listener 'grpc_ingress'"):
        twin_bootstrap(SHIPPED, "modelserver", TwinPlacement(1, {}, Path("e"), Path("a")))
    no_admin = {k: v for k, v in SHIPPED.items() if k != "admin"}
    with pytest.raises(UserError, match="no admin block"):
        twin_bootstrap(no_admin, "modelserver", AT)
    with pytest.raises(UserError, match="no cluster 'other'"):
        twin_bootstrap(SHIPPED, "other", AT)


# -- overrides edit Envoy's own fields -------------------------------------------------------


def test_overrides_change_only_the_fields_they_name():
    rr = edit_bootstrap(SHIPPED, "modelserver", lb_policy="ROUND_ROBIN")
    assert changed(SHIPPED, rr) == {
        "static_resources.clusters[0].lb_policy",
        "static_resources.clusters[0].least_request_lb_config.choice_count",
    }, "least_request_lb_config only belongs to LEAST_REQUEST"
    nb = edit_bootstrap(SHIPPED, "modelserver", max_requests=0)
    assert changed(SHIPPED, nb) == {
        "static_resources.clusters[0].circuit_breakers.thresholds[0].max_requests"
    }
    assert (
        nb["static_resources"]["clusters"][0]["circuit_breakers"]["thresholds"][0]["max_requests"]
        == NO_LIMIT
    )
    hc = edit_bootstrap(SHIPPED, "modelserver", health_check_interval_s=2.0)
    assert changed(SHIPPED, hc) == {"static_resources.clusters[0].health_checks[0].interval"}
    assert hc["static_resources"]["clusters"][0]["health_checks"][0]["interval"] == "2s"
    nr = edit_bootstrap(SHIPPED, "modelserver", num_retries=0)
    (path,) = changed(SHIPPED, nr)
    assert path.endswith("route.retry_policy.num_retries")


def test_apply_overrides_rederives_the_facts_from_the_edited_bootstrap():
    ref = load_twin_spec(FIXTURES)
    broken = apply_overrides(ref, lb="round_robin", max_requests=0)
    assert broken.envoy.lb_policy == "round_robin"
    assert broken.max_requests is None, "lifted breaker"
    assert broken.envoy_bootstrap["static_resources"]["clusters"][0]["lb_policy"] == "ROUND_ROBIN"
    assert ref.envoy.lb_policy == "least_request" and ref.max_requests == 150, "ref untouched"
    assert apply_overrides(ref) == ref, "no override, no change"
    with pytest.raises(UserError, match="--lb: expected one of"):
        apply_overrides(ref, lb="maglev-ish")
