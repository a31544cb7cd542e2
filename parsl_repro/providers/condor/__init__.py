"""The provider whose blocks are HTCondor jobs."""
from parsl_repro.providers.condor.condor import CondorProvider

__all__ = ["CondorProvider"]
