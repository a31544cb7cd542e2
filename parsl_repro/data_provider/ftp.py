"""FTP stage-in: ``ftp://[user[:password]@]host[:port]/path/name`` URLs are downloaded before
the app runs (see ``transfer.DownloadStaging`` for where the file lands). A password in the URL
is used to log in and is shown as ``***`` in errors, logs and the provenance store."""
from __future__ import annotations

from parsl_repro.data_provider.staging import Staging
from parsl_repro.data_provider.transfer import DownloadStaging, fetch_ftp
from parsl_repro.utils import RepresentationMixin


class FTPSeparateTaskStaging(DownloadStaging, Staging, RepresentationMixin):
    """Downloads each ``ftp`` input in a task of its own on the app's executor."""

    schemes = ("ftp",)
    fetch = staticmethod(fetch_ftp)


class FTPInTaskStaging(DownloadStaging, Staging, RepresentationMixin):
    """Downloads each ``ftp`` input inside the app's task, just before the app runs."""

    schemes = ("ftp",)
    in_task = True
    fetch = staticmethod(fetch_ftp)
