"""Execution providers: where block executors get their blocks of resources.

``ExecutionProvider`` (``providers.base``) is the contract; ``ClusterProvider`` the shared base of
batch-scheduler providers; ``LocalProvider`` runs blocks as processes on this machine;
``SlurmProvider``, ``PBSProProvider``, ``TorqueProvider``, ``CondorProvider``, ``LSFProvider`` and
``CobaltProvider`` submit them as batch jobs to those schedulers. ``KubernetesProvider``,
``AWSProvider``, ``GoogleCloudProvider`` and ``AzureProvider`` get them from a Kubernetes cluster
or a cloud; their SDKs are optional extras, imported only when such a provider is built.
"""
from parsl_repro.providers.aws.aws import AWSProvider
from parsl_repro.providers.azure.azure import AzureProvider
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.providers.cluster_provider import ClusterProvider
from parsl_repro.providers.cobalt.cobalt import CobaltProvider
from parsl_repro.providers.condor.condor import CondorProvider
from parsl_repro.providers.googlecloud.googlecloud import GoogleCloudProvider
from parsl_repro.providers.grid_engine.grid_engine import GridEngineProvider
from parsl_repro.providers.kubernetes.kube import KubernetesProvider
from parsl_repro.providers.local.local import LocalProvider
from parsl_repro.providers.lsf.lsf import LSFProvider
from parsl_repro.providers.pbspro.pbspro import PBSProProvider
from parsl_repro.providers.slurm.slurm import SlurmProvider
from parsl_repro.providers.torque.torque import TorqueProvider

__all__ = ["AWSProvider", "AzureProvider", "ClusterProvider", "CobaltProvider", "CondorProvider", "ExecutionProvider",
           "GoogleCloudProvider", "GridEngineProvider", "KubernetesProvider", "LocalProvider", "LSFProvider",
           "PBSProProvider", "SlurmProvider", "TorqueProvider"]
