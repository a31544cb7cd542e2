"""The provider whose blocks are Google Compute Engine instances (needs the ``google_cloud`` extra)."""
from parsl_repro.providers.googlecloud.googlecloud import GoogleCloudProvider

__all__ = ["GoogleCloudProvider"]
