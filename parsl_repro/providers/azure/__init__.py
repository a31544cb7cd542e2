"""The provider whose blocks are Azure virtual machines (needs the ``azure`` extra)."""
from parsl_repro.providers.azure.azure import AzureProvider

__all__ = ["AzureProvider"]
