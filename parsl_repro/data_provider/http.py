"""HTTP and HTTPS stage-in: ``http://`` and ``https://`` URLs are downloaded before the app
runs (see ``transfer.DownloadStaging`` for where the file lands); an HTTP error status fails the
task with an error naming the URL and the status."""
from __future__ import annotations

from parsl_repro.data_provider.staging import Staging
from parsl_repro.data_provider.transfer import DownloadStaging, fetch_http
from parsl_repro.utils import RepresentationMixin


class HTTPSeparateTaskStaging(DownloadStaging, Staging, RepresentationMixin):
    """Downloads each ``http``/``https`` input in a task of its own on the app's executor."""

    schemes = ("http", "https")
    fetch = staticmethod(fetch_http)


class HTTPInTaskStaging(DownloadStaging, Staging, RepresentationMixin):
    """Downloads each ``http``/``https`` input inside the app's task, just before the app runs."""

    schemes = ("http", "https")
    in_task = True
    fetch = staticmethod(fetch_http)
