"""A local stand-in for AWS EC2 for tests: moto's server mode, run by scripts/moto.sh.

    with MotoServer(tmp_dir) as endpoint:     # http://127.0.0.1:PORT; clients need
        ...                                   # AWS_ENDPOINT_URL=endpoint and any credentials

moto implements the EC2 API over real HTTP and keeps every resource in its memory: instances
are records that go from pending to running at once and never boot, so no worker ever connects
from them (and their public addresses, which look real, must never be contacted).
"""
from __future__ import annotations

import json
import urllib.request

from tests.server_script import ServerScript


class MotoServer(ServerScript):
    """``moto_server`` on loopback, its pid, port and log in base_dir."""

    script = "moto.sh"

    def start(self) -> str:
        """Start the server; return its endpoint URL."""
        self.url = self._start_output().strip().splitlines()[-1]
        return self.url

    def reset(self) -> None:
        """Forget every resource (moto's ``POST /moto-api/reset``)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=json.dumps({}).encode(), method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
