"""The provider whose blocks are LSF jobs."""
from parsl_repro.providers.lsf.lsf import LSFProvider

__all__ = ["LSFProvider"]
