"""The provider whose blocks are processes on this machine."""
from parsl_repro.providers.local.local import LocalProvider

__all__ = ["LocalProvider"]
