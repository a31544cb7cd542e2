"""A real OpenSSH server on loopback for tests, run by scripts/sshd.sh (no mocks).

    with SshServer(tmp_dir) as info:
        SSHChannel(info["host"], port=info["port"], username="root", key_filename=info["root_key"],
                   host_keys_filename=info["known_hosts"])

Logins: root by key (``root_key``); the local user ``info["user"]`` (``parslrepro``) by key
(``user_key``) or by the password in ``password_file``. Keep that password out of logs and messages.
"""
from __future__ import annotations

import json
from typing import Any

from tests.server_script import ServerScript


class SshServer(ServerScript):
    """sshd on a port of its own on 127.0.0.1, its keys, config and log in base_dir."""

    script = "sshd.sh"

    def start(self) -> dict[str, Any]:
        """Start (or find running) the server; return its sshd.json: ``port``, ``host``, ``root_key``,
        ``user``, ``user_key``, ``password_file``, ``known_hosts``."""
        lines = self._start_output().strip().splitlines()
        if not lines or not lines[-1].endswith("sshd.json"):
            raise RuntimeError("scripts/sshd.sh start printed no sshd.json path")
        with open(lines[-1]) as f:
            return json.load(f)

    def __enter__(self) -> dict[str, Any]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
