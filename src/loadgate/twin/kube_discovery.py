"""What the twin's emulated Kubernetes API serves, as data: the resources (group, version, kind,
verbs, field labels), the discovery documents built from them (`/api`, `/apis`, `/api/v1`,
`/apis/<group>/<version>`, `/version`) and the `Status` objects errors are answered with. Pure.

The discovery documents list exactly the verbs served, so a client that reads them (kubectl,
the dynamic client) knows what it may ask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubernetes import client

KUBE_VERSION = ("1", "30")  # the Kubernetes version the twin's manifests are validated against
COMMON_FIELDS = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class Resource:
    group: str  # "" = the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    subresources: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> verbs
    field_labels: tuple[str, ...] = COMMON_FIELDS

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


_READ = ("get", "list", "watch")
RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "namespace", "Namespace", False, _READ, ("ns",)),
    Resource(
        "", "v1", "pods", "pod", "Pod", True, (*_READ, "delete"), ("po",),
        subresources={"log": ("get",)},
        field_labels=(
            *COMMON_FIELDS, "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "status.phase", "status.podIP", "status.nominatedNodeName",
        ),
    ),
    Resource(
        "", "v1", "events", "event", "Event", True, _READ, ("ev",),
        field_labels=(
            *COMMON_FIELDS, "involvedObject.kind", "involvedObject.namespace",
            "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion",
            "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
            "reportingComponent", "source", "type",
        ),
    ),
    Resource(
        "apps", "v1", "deployments", "deployment", "Deployment", True, (*_READ, "patch"),
        ("deploy",), subresources={"scale": ("get", "patch", "update")},
    ),
    Resource("apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, _READ, ("rs",)),
    Resource(
        "autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler",
        "HorizontalPodAutoscaler", True, _READ, ("hpa",),
    ),
    Resource(
        "keda.sh", "v1alpha1", "scaledobjects", "scaledobject", "ScaledObject", True, _READ,
        ("so",),
    ),
)  # fmt: skip


def find(group: str, version: str, plural: str) -> Resource | None:
    for r in RESOURCES:
        if (r.group, r.version, r.plural) == (group, version, plural):
            return r
    return None


def by_kind(kind: str) -> Resource:
    return next(r for r in RESOURCES if r.kind == kind)


def groups() -> dict[str, list[str]]:
    """Served named groups and their versions (the core group is `/api`)."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return out


def api_versions(server_address: str) -> client.V1APIVersions:
    return client.V1APIVersions(
        kind="APIVersions",
        versions=["v1"],
        server_address_by_client_cidrs=[
            client.V1ServerAddressByClientCIDR(
                client_cidr="0.0.0.0/0", server_address=server_address
            )
        ],
    )


def api_group(name: str) -> client.V1APIGroup:
    versions = [
        client.V1GroupVersionForDiscovery(group_version=f"{name}/{v}", version=v)
        for v in groups()[name]
    ]
    return client.V1APIGroup(
        api_version="v1", kind="APIGroup", name=name, versions=versions,
        preferred_version=versions[0],
    )  # fmt: skip


def api_group_list() -> client.V1APIGroupList:
    return client.V1APIGroupList(
        api_version="v1", kind="APIGroupList", groups=[api_group(g) for g in groups()]
    )


def resource_list(group: str, version: str) -> client.V1APIResourceList | None:
    served = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
    if not served:
        return None
    items = []
    for r in served:
        items.append(
            client.V1APIResource(
                name=r.plural, singular_name=r.singular, namespaced=r.namespaced, kind=r.kind,
                verbs=list(r.verbs), short_names=list(r.short_names) or None,
            )
        )  # fmt: skip
        for sub, verbs in r.subresources.items():
            kind = "Scale" if sub == "scale" else r.kind
            items.append(
                client.V1APIResource(
                    name=f"{r.plural}/{sub}", singular_name="", namespaced=r.namespaced,
                    kind=kind, verbs=list(verbs),
                    group="autoscaling" if sub == "scale" else None,
                    version="v1" if sub == "scale" else None,
                )
            )  # fmt: skip
    return client.V1APIResourceList(
        api_version="v1", kind="APIResourceList", group_version=served[0].group_version,
        resources=items,
    )  # fmt: skip


def version_info() -> client.VersionInfo:
    major, minor = KUBE_VERSION
    return client.VersionInfo(
        major=major, minor=minor, git_version=f"v{major}.{minor}.0+loadgate-twin",
        git_commit="", git_tree_state="clean", build_date="", go_version="",
        compiler="python", platform="linux/amd64",
    )  # fmt: skip


# --- request paths ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    resource: Resource
    namespace: str | None  # None: every namespace (or a cluster-scoped resource)
    name: str | None
    sub: str | None


def parse_path(path: str) -> Target | None:
    """`/api/v1/namespaces/ns/pods/name/log` -> its resource, namespace, name, subresource."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not 1 <= len(rest) <= 3:
        return None
    res = find(group, version, rest[0])
    if res is None or (namespace is not None and not res.namespaced):
        return None
    name, sub = (rest + [None, None])[1:3]
    if (name is not None and res.namespaced and namespace is None) or (
        sub is not None and sub not in res.subresources
    ):
        return None
    return Target(res, namespace, name, sub)


def verb_of(method: str, t: Target, query: dict[str, str]) -> str:
    if method == "GET":
        if t.name is None:
            return "watch" if query.get("watch") in ("true", "1") else "list"
        return "get"
    if method == "DELETE":
        return "delete" if t.name else "deletecollection"
    return {"PATCH": "patch", "PUT": "update", "POST": "create"}.get(method, method.lower())


# --- Status: how the API server answers an error ------------------------------------------------

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
}
NOT_FOUND_PATH = "the server could not find the requested resource"
NOT_ALLOWED = "the server does not allow this method on the requested resource"


def status(
    code: int, message: str, name: str | None = None, resource: Resource | None = None
) -> client.V1Status:
    details = None
    if name is not None or resource is not None:
        details = client.V1StatusDetails(
            name=name,
            group=(resource.group or None) if resource else None,
            kind=resource.plural if resource else None,
        )
    return client.V1Status(
        api_version="v1", kind="Status", metadata=client.V1ListMeta(), status="Failure",
        message=message, reason=REASONS.get(code, "Unknown"), details=details, code=code,
    )  # fmt: skip


def not_found(resource: Resource, name: str) -> client.V1Status:
    qualified = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
    return status(404, f'{qualified} "{name}" not found', name, resource)
