"""Execution providers: where block executors get their blocks of resources.

``ExecutionProvider`` (``providers.base``) is the contract; ``ClusterProvider`` the shared base of
batch-scheduler providers; ``LocalProvider`` runs blocks as processes on this machine;
``SlurmProvider`` submits them as Slurm batch jobs.
"""
from parsl_repro.providers.base import ExecutionProvider
from parsl_repro.providers.cluster_provider import ClusterProvider
from parsl_repro.providers.local.local import LocalProvider
from parsl_repro.providers.slurm.slurm import SlurmProvider

__all__ = ["ClusterProvider", "ExecutionProvider", "LocalProvider", "SlurmProvider"]
