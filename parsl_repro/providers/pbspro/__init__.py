"""The provider whose blocks are PBS Pro jobs."""
from parsl_repro.providers.pbspro.pbspro import PBSProProvider

__all__ = ["PBSProProvider"]
