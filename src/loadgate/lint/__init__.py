"""`loadgate lint`: Kubernetes manifests checked against the schemas and the architecture."""
