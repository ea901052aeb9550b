"""The stack under test, behind one interface: the local twin or a Kubernetes cluster."""

from loadgate.platform.base import Event, Platform, Pod, Replicas

__all__ = ["Event", "Platform", "Pod", "Replicas"]
