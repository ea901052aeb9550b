"""fixtures/k8s -> TwinSpec: the good manifests map to the documented numbers; broken copies give
one-line errors that name the file and the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from loadgate.errors import UserError
from loadgate.twin.manifests import apply_overrides, load_twin_spec, read_manifests
from loadgate.twin.scaledobject import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s"


@pytest.fixture(scope="module")
def spec():
    return load_twin_spec(FIXTURES)


@pytest.fixture
def copy(tmp_path):
    """A private copy of the fixtures; returns (dir, edit) where edit(file, old, new) rewrites."""
    d = tmp_path / "k8s"
    shutil.copytree(FIXTURES, d)

    def edit(name: str, old: str, new: str) -> None:
        p = d / name
        text = p.read_text()
        assert old in text, f"{old!r} not in {name}"
        p.write_text(text.replace(old, new, 1))

    return d, edit


def error_of(directory: Path) -> str:
    with pytest.raises(UserError) as e:
        load_twin_spec(directory)
    msg = str(e.value)
    assert "\n" not in msg, "errors are one line"
    return msg


# --- the good manifests -----------------------------------------------------------------------


def test_reference_numbers(spec):
    assert spec.namespace == "loadgate"
    assert spec.deployment == "modelserver"
    assert spec.replicas == 3
    assert spec.cluster_name == "modelserver"
    e = spec.envoy
    assert e.lb_policy == "least_request"
    assert (spec.max_requests, e.max_pending_requests) == (150, 50)
    assert e.max_requests_per_connection == 1000
    assert e.retry_on == ["unavailable", "reset", "connect-failure"]
    assert e.num_retries == 2
    assert e.served_by_header == "x-upstream-host"
    assert e.panic_threshold == 0
    assert (spec.ready_max_queue, spec.ready_resume_queue, spec.max_batch_size) == (50, 25, 8)
    assert e.health_check_interval_s == 0.5  # Envoy's active health check interval
    assert spec.probe_s == 0.5
    assert spec.readiness_probe is not None and spec.readiness_probe.period_s == 1
    assert spec.modelserver_args == []
    # twin-only knobs are TwinSpec defaults, not manifest facts
    assert (spec.restart_delay_s, spec.time_scale) == (2.0, 1.0)


def test_reference_autoscaler(spec):
    a = spec.autoscaler
    assert a is not None and a.name == "modelserver"
    assert (a.min_replicas, a.max_replicas) == (3, 6)
    assert a.query == 'sum(envoy_cluster_upstream_rq_active{envoy_cluster_name="modelserver"})'
    assert (a.metric_type, a.threshold, a.activation_threshold) == ("AverageValue", 16.0, 0.0)
    assert a.ignore_null_values is False
    assert (a.polling_interval_s, a.cooldown_period_s, a.hpa_sync_period_s) == (5, 300, 15)
    assert a.scale_up.stabilization_window_s == 0
    assert [(p.type, p.value, p.period_s) for p in a.scale_up.policies] == [("Pods", 2, 15)]
    assert a.scale_down.stabilization_window_s == 60
    assert [(p.type, p.value, p.period_s) for p in a.scale_down.policies] == [("Pods", 1, 30)]
    # the twin boots minReplicaCount pods
    assert spec.replicas == a.min_replicas


def test_kustomization_lists_every_manifest():
    docs, namespace = read_manifests(FIXTURES)
    kinds = sorted({d.kind for d in docs})
    assert {"Deployment", "Service", "ConfigMap", "ScaledObject"} <= set(kinds)
    assert namespace == "loadgate"


def test_readiness_limit_lives_in_one_env_var(copy):
    d, edit = copy
    edit(
        "modelserver.yaml",
        'name: READY_MAX_QUEUE\n              value: "50"',
        'name: READY_MAX_QUEUE\n              value: "40"',
    )
    assert load_twin_spec(d).ready_max_queue == 40


def test_behavior_absent_gives_hpa_defaults(copy):
    d, _ = copy
    p = d / "keda-scaledobject.yaml"
    so = yaml.safe_load(p.read_text())
    del so["spec"]["advanced"]
    p.write_text(yaml.safe_dump(so))
    a = load_twin_spec(d).autoscaler
    assert a.scale_up == DEFAULT_SCALE_UP and a.scale_down == DEFAULT_SCALE_DOWN
    assert DEFAULT_SCALE_DOWN.stabilization_window_s == 300
    assert {(p.type, p.value) for p in DEFAULT_SCALE_UP.policies} == {("Percent", 100), ("Pods", 4)}


def test_no_scaledobject_means_no_autoscaler(copy):
    d, edit = copy
    edit("kustomization.yaml", "  - keda-scaledobject.yaml\n", "")
    assert load_twin_spec(d).autoscaler is None


def test_camel_case_envoy_fields_are_read(copy):
    d, edit = copy
    edit("envoy-config.yaml", "lb_policy: LEAST_REQUEST", "lbPolicy: ROUND_ROBIN")
    assert load_twin_spec(d).envoy.lb_policy == "round_robin"


# --- broken copies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, old, new, expected",
    [
        # a misspelt Envoy field, at cluster level and deep inside a typed_config (@type) block
        (
            "envoy-config.yaml",
            "lb_policy: LEAST_REQUEST",
            "lb_polcy: LEAST_REQUEST",
            ["envoy-config.yaml", "static_resources.clusters[0].lb_polcy", "unknown field"],
        ),
        (
            "envoy-config.yaml",
            "retry_on: unavailable",
            "retry_onn: unavailable",
            ["route.retry_policy.retry_onn", "RetryPolicy"],
        ),
        (
            "envoy-config.yaml",
            "max_requests_per_connection: 1000",
            "max_request_per_connection: 1000",
            ["common_http_protocol_options.max_request_per_connection"],
        ),
        # an Envoy enum value that does not exist (any real policy runs: Envoy is real)
        (
            "envoy-config.yaml",
            "lb_policy: LEAST_REQUEST",
            "lb_policy: LEAST_REQUESTS",
            ["clusters[0].lb_policy", "LEAST_REQUESTS"],
        ),
        (
            "envoy-config.yaml",
            "interval: 0.5s",
            "interval: half a second",
            ["health_checks[0].interval", "duration"],
        ),
        (
            "envoy-config.yaml",
            "max_requests: 150",
            "max_requests: lots",
            ["thresholds[0].max_requests", "lots"],
        ),
        (
            "envoy-config.yaml",
            "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
            "type.googleapis.com/envoy.extensions.filters.http.routr.v3.Router",
            ["http_filters[0]", "routr"],
        ),
        # the ScaledObject
        (
            "keda-scaledobject.yaml",
            '        threshold: "16"\n',
            "",
            ["keda-scaledobject.yaml", "metadata.threshold", "Field required"],
        ),
        (
            "keda-scaledobject.yaml",
            'threshold: "16"',
            'threshold: "sixteen"',
            ["metadata.threshold", "sixteen"],
        ),
        ("keda-scaledobject.yaml", 'threshold: "16"', 'threshold: "0"', ["threshold", "> 0"]),
        (
            "keda-scaledobject.yaml",
            "minReplicaCount: 3",
            "minReplicaCont: 3",
            ["spec.minReplicaCont", "unknown key"],
        ),
        (
            "keda-scaledobject.yaml",
            "minReplicaCount: 3",
            "minReplicaCount: 9",
            ["minReplicaCount (9) exceeds"],
        ),
        (
            "keda-scaledobject.yaml",
            'ignoreNullValues: "false"',
            'ignoreNullValues: "nope"',
            ["ignoreNullValues", "true or false"],
        ),
        (
            "keda-scaledobject.yaml",
            "    name: modelserver\n  # How",
            "    name: other\n  # How",
            ["scaleTargetRef.name", "modelserver"],
        ),
        (
            "keda-scaledobject.yaml",
            "  cooldownPeriod: 300",
            "  cooldownPeriod: 300\n  fallback: {failureThreshold: 3, replicas: 6}",
            ["spec.fallback", "not emulated"],
        ),
        # Kubernetes objects are checked against the Kubernetes schemas
        (
            "modelserver.yaml",
            "readinessProbe:",
            "readinesProbe:",
            ["modelserver.yaml", "readinesProbe"],
        ),
        ("modelserver.yaml", "  clusterIP: None\n", "", ["clusterIP", "headless"]),
        ("modelserver.yaml", 'value: "50"', 'value: "fifty"', ["READY_MAX_QUEUE", "fifty"]),
        # YAML and the file list
        (
            "modelserver.yaml",
            "  replicas: 3",
            "  replicas: [3",
            ["modelserver.yaml", "malformed YAML"],
        ),
        (
            "kustomization.yaml",
            "  - envoy.yaml\n",
            "  - envoy.yaml\n  - missing.yaml\n",
            ["missing.yaml", "no such file"],
        ),
        (
            "kustomization.yaml",
            "namespace: loadgate",
            "namespace: loadgate\nreplicas: [{name: modelserver, count: 5}]",
            ["kustomization.yaml", "replicas", "not applied by the twin"],
        ),
    ],
)
def test_broken_manifest_is_named(copy, name, old, new, expected):
    d, edit = copy
    edit(name, old, new)
    msg = error_of(d)
    for part in expected:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_missing_file(copy):
    d, _ = copy
    (d / "keda-scaledobject.yaml").unlink()
    msg = error_of(d)
    assert "keda-scaledobject.yaml" in msg and "no such file" in msg


def test_missing_directory(tmp_path):
    assert "no such manifests directory" in error_of(tmp_path / "nope")


# --- overrides --------------------------------------------------------------------------------


def test_overrides(spec):
    s = apply_overrides(
        spec,
        lb="round_robin",
        replicas=2,
        max_requests=0,
        no_autoscaler=True,
        ready_max_queue=0,
        restart_delay=0.5,
        time_scale=0.1,
    )
    assert s.envoy.lb_policy == "round_robin" and s.replicas == 2
    assert s.max_requests is None  # 0 = no in-flight limit
    assert s.ready_max_queue is None  # 0 = readiness rule off
    assert s.autoscaler is None
    assert (s.restart_delay_s, s.time_scale) == (0.5, 0.1)
    assert spec.max_requests == 150 and spec.autoscaler is not None  # the original is untouched


def test_other_envoy_policies_and_panic_thresholds_run_as_written(copy):
    """The twin no longer refuses what its old proxy could not render: Envoy runs it."""
    d, edit = copy
    edit("envoy-config.yaml", "lb_policy: LEAST_REQUEST", "lb_policy: MAGLEV")
    edit("envoy-config.yaml", "              value: 0\n", "              value: 50\n")
    s = load_twin_spec(d)
    assert (s.envoy.lb_policy, s.envoy.panic_threshold) == ("maglev", 50)


def test_overrides_none_changes_nothing(spec):
    assert apply_overrides(spec) == spec


def test_override_ready_max_queue_keeps_hysteresis_below(spec):
    s = apply_overrides(spec, ready_max_queue=10, max_requests=20)
    assert (s.ready_max_queue, s.ready_resume_queue, s.max_requests) == (10, 5, 20)


@pytest.mark.parametrize(
    "kw, flag",
    [
        (dict(lb="maglev"), "--lb"),
        (dict(num_retries=-1), "--num-retries"),
        (dict(health_check_interval=0), "--health-check-interval"),
        (dict(replicas=-1), "--replicas"),
        (dict(max_requests=-5), "--max-requests"),
        (dict(time_scale=0), "--time-scale"),
        (dict(restart_delay=-1), "--restart-delay"),
    ],
)
def test_bad_override_is_a_user_error(spec, kw, flag):
    with pytest.raises(UserError, match=flag):
        apply_overrides(spec, **kw)


def test_reference_envoy_bootstrap_has_the_architecture():
    """The parts of the Envoy config the twin does not map but the architecture relies on."""
    from loadgate.twin.manifests import _envoy_bootstrap

    docs, _ = read_manifests(FIXTURES)
    boot, _ = _envoy_bootstrap(docs)
    cluster = boot["static_resources"]["clusters"][0]
    assert cluster["type"] == "STRICT_DNS"
    hpo = cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert "http2_protocol_options" in hpo["explicit_http_config"]  # gRPC upstream
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    route = hcm["route_config"]["virtual_hosts"][0]["routes"][0]
    predicates = [p["name"] for p in route["route"]["retry_policy"]["retry_host_predicate"]]
    assert predicates == ["envoy.retry_host_predicates.previous_hosts"]
    assert hcm["http_filters"][-1]["name"] == "envoy.filters.http.router"
    assert boot["admin"]["address"]["socket_address"]["port_value"] == 9901
