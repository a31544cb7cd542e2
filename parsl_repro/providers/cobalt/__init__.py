"""The provider whose blocks are Cobalt jobs."""
from parsl_repro.providers.cobalt.cobalt import CobaltProvider

__all__ = ["CobaltProvider"]
