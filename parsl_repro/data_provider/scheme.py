"""``GlobusScheme``: the 2018 configuration object naming a site's Globus endpoint.

Old configurations list it in an executor's ``storage_access``::

    HighThroughputExecutor(..., storage_access=[GlobusScheme(
        endpoint_uuid="9d6d99eb-6d04-11e5-ba46-22000b92c6ec", endpoint_path="/",
        local_path="/home/me")])

It constructs, is checked and is recorded with the configuration. Globus transfers themselves
are not implemented yet: a ``globus://`` file given to such an executor fails its task with a
message saying so, and every other file goes to the next provider (or the default ones).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from parsl_repro.data_provider.staging import Staging
from parsl_repro.typecheck import typechecked_config
from parsl_repro.utils import RepresentationMixin

if TYPE_CHECKING:
    from parsl_repro.data_provider.files import File

logger = logging.getLogger(__name__)


class GlobusScheme(Staging, RepresentationMixin):
    """A site's Globus endpoint: ``endpoint_uuid``, the path it exports (``endpoint_path``) and
    where that path is mounted on the site's nodes (``local_path``)."""

    @typechecked_config
    def __init__(self, endpoint_uuid: str, endpoint_path: str | None = None, local_path: str | None = None) -> None:
        self.endpoint_uuid = endpoint_uuid
        self.endpoint_path = endpoint_path
        self.local_path = local_path

    def _claims(self, file: File) -> bool:
        if file.scheme != "globus":
            return False
        raise NotImplementedError(f"{file.url}: Globus transfers are not implemented yet (endpoint "
                                  f"{self.endpoint_uuid}); copy the file to a path the site reads instead")

    def can_stage_in(self, file: File) -> bool:
        return self._claims(file)

    def can_stage_out(self, file: File) -> bool:
        return self._claims(file)
