"""The pieces of the twin's emulated Kubernetes API that need no twin: request paths, selectors,
patches, the versioned store and its watches, pod log filters, discovery documents."""

from __future__ import annotations

import json

import pytest

from loadgate.twin import kube_discovery as disc
from loadgate.twin.kube_logs import line_time, log_lines
from loadgate.twin.kube_patch import PatchError, apply_patch, json_patch, merge
from loadgate.twin.kube_selectors import (
    Selection,
    SelectorError,
    field_values,
    parse_fields,
    parse_labels,
)
from loadgate.twin.kube_store import ObjectStore
from loadgate.twin.kube_watch import seen_as, watch

# --- paths and verbs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/namespaces/loadgate/pods", ("pods", "loadgate", None, None)),
        ("/api/v1/namespaces/loadgate/pods/p-1/log", ("pods", "loadgate", "p-1", "log")),
        ("/api/v1/pods", ("pods", None, None, None)),
        ("/api/v1/namespaces", ("namespaces", None, None, None)),
        ("/api/v1/namespaces/loadgate", ("namespaces", None, "loadgate", None)),
        ("/apis/apps/v1/namespaces/ns/deployments/d/scale", ("deployments", "ns", "d", "scale")),
        ("/apis/keda.sh/v1alpha1/namespaces/ns/scaledobjects", ("scaledobjects", "ns", None, None)),
        ("/api/v1/namespaces/loadgate/services", None),  # not served
        ("/api/v1/pods/p-1", None),  # a namespaced object needs its namespace
        ("/api/v1/namespaces/ns/pods/p-1/exec", None),  # subresource not served
        ("/apis/apps/v2/namespaces/ns/deployments", None),
        ("/metrics", None),
    ],
)
def test_parse_path(path, expected):
    t = disc.parse_path(path)
    got = None if t is None else (t.resource.plural, t.namespace, t.name, t.sub)
    assert got == expected


def test_verbs_and_discovery_list_exactly_what_is_served():
    t = disc.parse_path("/api/v1/namespaces/ns/pods")
    assert disc.verb_of("GET", t, {}) == "list"
    assert disc.verb_of("GET", t, {"watch": "true"}) == "watch"
    assert disc.verb_of("DELETE", t, {}) == "deletecollection"  # not in the pods' verbs
    core = {r.name: r.verbs for r in disc.resource_list("", "v1").resources}
    assert core["pods"] == ["get", "list", "watch", "delete"]
    assert core["pods/log"] == ["get"] and "pods/exec" not in core
    apps = {r.name: r for r in disc.resource_list("apps", "v1").resources}
    assert apps["deployments/scale"].kind == "Scale" and "patch" in apps["deployments/scale"].verbs
    groups = {g.name: [v.version for v in g.versions] for g in disc.api_group_list().groups}
    assert groups == {"apps": ["v1"], "autoscaling": ["v2"], "keda.sh": ["v1alpha1"]}
    assert disc.resource_list("batch", "v1") is None
    st = disc.not_found(disc.by_kind("Deployment"), "web")
    assert (st.code, st.reason, st.message) == (404, "NotFound", 'deployments.apps "web" not found')
    assert (st.details.kind, st.details.group, st.details.name) == ("deployments", "apps", "web")


# --- selectors ---------------------------------------------------------------------------------

LABELS = {"app.kubernetes.io/name": "modelserver", "tier": "gpu", "slot": "3"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app.kubernetes.io/name=modelserver", True),
        ("app.kubernetes.io/name==modelserver,tier=gpu", True),
        ("app.kubernetes.io/name=envoy", False),
        ("tier!=cpu", True),
        ("zone!=a", True),  # an absent key matches !=, as in Kubernetes
        ("tier in (gpu, tpu)", True),
        ("tier notin (gpu)", False),
        ("tier,!zone", True),
        ("!tier", False),
        ("slot>2,slot<4", True),
        ("slot>3", False),
    ],
)
def test_label_selectors(selector, matches):
    assert (
        Selection(None, parse_labels(selector)).matches({"metadata": {"labels": LABELS}}) is matches
    )


@pytest.mark.parametrize("bad", ["tier in ()", "=x", "tier in (a", "a b"])
def test_bad_label_selectors_are_refused(bad):
    with pytest.raises(SelectorError, match="unable to parse requirement"):
        parse_labels(bad)


def test_field_selectors_over_the_served_field_labels():
    pods = disc.by_kind("Pod").field_labels
    obj = {"metadata": {"name": "p-1", "namespace": "ns"}, "status": {"phase": "Running"}}
    assert field_values(obj, pods)["status.phase"] == "Running"
    sel = Selection("ns", (), parse_fields("metadata.name=p-1,status.phase!=Failed", pods), pods)
    assert sel.matches(obj)
    assert not Selection("other", ()).matches(obj)
    assert not Selection(None, (), parse_fields("status.phase=Pending", pods), pods).matches(obj)
    with pytest.raises(SelectorError, match="field label not supported: spec.containers"):
        parse_fields("spec.containers=x", pods)
    events = disc.by_kind("Event").field_labels
    ev = {"metadata": {}, "involvedObject": {"kind": "Pod"}, "source": {"component": "kubelet"}}
    assert field_values(ev, events)["source"] == "kubelet"


# --- patches -----------------------------------------------------------------------------------


def test_merge_patch_and_json_patch():
    doc = {"spec": {"replicas": 3, "paused": True}, "metadata": {"name": "d"}}
    assert merge(doc, {"spec": {"replicas": 5, "paused": None}}) == {
        "spec": {"replicas": 5}, "metadata": {"name": "d"},
    }  # fmt: skip
    ops = [{"op": "test", "path": "/spec/replicas", "value": 3},
           {"op": "replace", "path": "/spec/replicas", "value": 4},
           {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}]  # fmt: skip
    out = json_patch(doc, ops)
    assert out["spec"]["replicas"] == 4 and out["metadata"]["labels"] == {"a": "b"}
    assert doc["spec"]["replicas"] == 3, "the current object is not changed"
    with pytest.raises(PatchError, match="test operation failed"):
        json_patch(doc, [{"op": "test", "path": "/spec/replicas", "value": 9}])
    with pytest.raises(PatchError, match="missing path"):
        json_patch(doc, [{"op": "remove", "path": "/spec/nothing"}])
    with pytest.raises(PatchError, match="cannot apply"):
        json_patch({"a": [1]}, [{"op": "add", "path": "/a/x", "value": 2}])
    with pytest.raises(PatchError, match="unsupported json-patch operation 'move'"):
        json_patch(doc, [{"op": "move", "from": "/spec", "path": "/x"}])
    body = json.dumps({"spec": {"replicas": 1}}).encode()
    assert apply_patch(doc, body, "application/strategic-merge-patch+json")["spec"]["replicas"] == 1
    with pytest.raises(PatchError) as e:
        apply_patch(doc, body, "application/apply-patch+yaml")
    assert e.value.code == 415


# --- the store and its watches -------------------------------------------------------------------


def obj(name: str, **labels) -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels}, "spec": {}}


def key(name: str) -> tuple[str, str, str]:
    return ("pods", "ns", name)


def test_store_versions_changes_and_forgets_old_history():
    store = ObjectStore(history=3)
    a, b = obj("a", app="m"), obj("b", app="m")
    store.replace({key("a"): a, key("b"): b})
    rv0 = store.rv
    store.replace({key("a"): a, key("b"): b})  # same JSON: no change, no new version
    assert store.rv == rv0
    store.replace({key("a"): {**a, "spec": {"x": 1}}})  # a modified, b deleted
    changes = store.changes_after(rv0)
    assert [(c.type, c.key[2]) for c in changes] == [("MODIFIED", "a"), ("DELETED", "b")]
    assert [c.rv for c in changes] == [rv0 + 1, rv0 + 2]
    assert changes[0].obj["metadata"]["resourceVersion"] == str(rv0 + 1)
    assert changes[1].obj["metadata"]["name"] == "b"  # its last state
    assert store.get(key("a"))["spec"] == {"x": 1} and store.get(key("b")) is None
    assert store.changes_after(rv0 - 2) is None, "older than the history: 410 Expired"


def test_events_are_kept_up_to_a_bound():
    store = ObjectStore(max_events=2)
    store.add_events([(("events", "ns", f"e{i}"), obj(f"e{i}")) for i in range(3)])
    _, items = store.items("events")
    assert [e["metadata"]["name"] for e in items] == ["e1", "e2"]
    store.replace({})  # replacing the other objects never deletes events
    assert len(store.items("events")[1]) == 2


def test_a_selector_sees_objects_enter_and_leave():
    store = ObjectStore()
    store.replace({key("a"): obj("a", app="m")})
    rv = store.rv
    store.replace({key("a"): obj("a", app="other")})  # leaves the selection
    store.replace({key("a"): obj("a", app="m")})  # and comes back
    sel = Selection("ns", parse_labels("app=m"))
    assert [seen_as(c, sel) for c in store.changes_after(rv)] == ["DELETED", "ADDED"]
    assert [seen_as(c, Selection("ns")) for c in store.changes_after(rv)] == ["MODIFIED"] * 2
    assert [seen_as(c, Selection("other")) for c in store.changes_after(rv)] == [None, None]


def events(lines: list[bytes]) -> list[tuple[str, str]]:
    out = []
    for ln in lines:
        e = json.loads(ln)
        out.append((e["type"], e["object"]["metadata"].get("name") or e["object"].get("code")))
    return out


def test_watch_lists_then_follows_and_ends_on_time():
    store = ObjectStore()
    store.replace({key("a"): obj("a"), key("b"): obj("b")})
    stream = watch(store, "pods", Selection("ns"), None, duration_s=0.0)
    assert events(list(stream)) == [("ADDED", "a"), ("ADDED", "b")]  # then its time is up
    rv = store.rv
    store.replace({key("a"): obj("a")})
    stream = watch(store, "pods", Selection("ns"), rv, duration_s=0.0)
    assert events(list(stream)) == [("DELETED", "b")]  # from a resourceVersion: no replay
    small = ObjectStore(history=1)
    small.replace({key("a"): obj("a"), key("b"): obj("b")})
    old = list(watch(small, "pods", Selection("ns"), 1, duration_s=10.0))
    (error,) = [json.loads(ln) for ln in old]
    assert error["type"] == "ERROR" and error["object"]["code"] == 410
    assert error["object"]["reason"] == "Expired"


def test_a_closing_store_ends_a_watch():
    store = ObjectStore()
    store.replace({key("a"): obj("a")})
    stream = watch(store, "pods", Selection("ns"), None, duration_s=600.0)
    assert events([next(stream)]) == [("ADDED", "a")]
    store.close()
    assert list(stream) == []


# --- pod logs ------------------------------------------------------------------------------------


def test_log_lines_filter_by_the_time_each_line_was_written(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(
        b'{"start":"100.0","duration_ms":500,"upstream":"a"}\n'  # written at 100.5
        b'{"start":"101.0","duration_ms":5000,"upstream":"b"}\n'  # written at 106.0
        b'{"start":"103.0","duration_ms":0,"upstream":"c"}\n'  # written at 103.0
        b"not json\n"  # no time of its own: the one before
    )
    assert line_time(b'{"start":"100.0","duration_ms":500}') == 100.5
    every = list(log_lines(log))
    assert len(every) == 4 and all(ln.endswith(b"\n") for ln in every)
    assert list(log_lines(log, since=103.0)) == every[1:]  # b (106), c (103), its follower
    assert list(log_lines(log, tail=1)) == [b"not json\n"]
    assert b"".join(log_lines(log, limit_bytes=10)) == every[0][:10]
    stamped = next(log_lines(log, timestamps=True))
    assert stamped.startswith(b"1970-01-01T00:01:40.500000Z {")
    assert list(log_lines(tmp_path / "missing.log")) == []


def test_model_server_lines_carry_their_local_asctime():
    import time

    t = line_time(b"2026-12-01 22:16:34,171 loadgate.modelserver INFO serving")
    expected = time.mktime(time.strptime("2026-12-01 22:16:34", "%Y-%m-%d %H:%M:%S")) + 0.171
    assert t == pytest.approx(expected)
    assert line_time(b"Traceback (most recent call last):") is None
