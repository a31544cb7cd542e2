"""``OAuthSSHChannel``: an SSH channel that logs in with an OAuth access token as its password.

Sites running an OAuth-aware sshd (Globus's ``oauth-ssh``, for one) accept a short-lived access
token where a password would go. The token comes from ``access_token`` (a string, or a function
called at connect time so a fresh token is fetched only when the site is used), else from the
``oauth_ssh`` package's token cache for the host, if that package is installed.
"""
from __future__ import annotations

import getpass
import logging
from collections.abc import Callable
from typing import Any

from parsl_repro.channels.errors import AuthException
from parsl_repro.channels.ssh.ssh import SSHChannel

logger = logging.getLogger(__name__)


class OAuthSSHChannel(SSHChannel):
    """``SSHChannel`` authenticating with an OAuth access token (Parsl's parameters, plus
    ``access_token``)."""

    def __init__(self, hostname: str, username: str | None = None, script_dir: str | None = None,
                 envs: dict[str, str] | None = None, port: int = 22,
                 access_token: str | Callable[[], str] | None = None, host_keys_filename: str | None = None,
                 known_hosts_policy: str = "reject", connect_timeout: float = 30) -> None:
        super().__init__(hostname, username=username, script_dir=script_dir, envs=envs, port=port,
                         host_keys_filename=host_keys_filename, known_hosts_policy=known_hosts_policy,
                         connect_timeout=connect_timeout)
        self.access_token = access_token

    def __repr__(self) -> str:
        return (f"OAuthSSHChannel({self.hostname!r}, username={self.username!r}, port={self.port}, "
                f"access_token={'***' if self.access_token is not None else None})")

    def _token(self) -> str:
        if callable(self.access_token):
            return self.access_token()
        if self.access_token is not None:
            return self.access_token
        try:
            from oauth_ssh.oauth_ssh_token import find_access_token  # type: ignore[import-not-found]
        except ImportError as e:
            raise AuthException(e, self.site, "no access_token was given and the oauth_ssh package, which "
                                              "would find one, is not installed") from e
        return find_access_token(self.hostname)

    def _auth_method(self) -> str:
        return "the OAuth access token"

    def _open(self) -> Any:
        client = self._new_client()
        try:
            self._open_transport(client, lambda transport: transport.auth_password(
                self.username or getpass.getuser(), self._token()))
        except BaseException as e:
            client.close()
            raise self._translate(e) from e
        logger.info("Connected to %s", self.site)
        return client
