"""The provider whose blocks are Kubernetes pods (needs the ``kubernetes`` extra)."""
from parsl_repro.providers.kubernetes.kube import KubernetesProvider

__all__ = ["KubernetesProvider"]
