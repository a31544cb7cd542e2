"""``SSHInteractiveLoginChannel``: an SSH channel that asks the person at the terminal.

For sites that want a password, a one-time code or both at every login. The questions are
asked when the channel first connects (at ``load()``, for a site the run uses), on the
controlling terminal, never at construction. Keyboard-interactive questions are asked as the
server words them ("Password:", "Verification code:"); a server that only takes a password gets
one prompt. Answers are never logged, stored or kept after the login.
"""
from __future__ import annotations

import getpass
import logging
from collections.abc import Callable, Sequence
from typing import Any

from parsl_repro.channels.ssh.ssh import SSHChannel, _paramiko

logger = logging.getLogger(__name__)


class SSHInteractiveLoginChannel(SSHChannel):
    """``SSHChannel`` whose login prompts on the terminal (Parsl's parameters).

    ``prompt`` (default ``getpass.getpass``) is how a question is asked; a test or a GUI may
    pass its own ``(question) -> answer``.
    """

    def __init__(self, hostname: str, username: str | None = None, password: str | None = None,
                 script_dir: str | None = None, envs: dict[str, str] | None = None, port: int = 22,
                 key_filename: str | list[str] | None = None, host_keys_filename: str | None = None,
                 known_hosts_policy: str = "reject", connect_timeout: float = 120,
                 prompt: Callable[[str], str] | None = None) -> None:
        super().__init__(hostname, username=username, password=password, script_dir=script_dir, envs=envs,
                         port=port, key_filename=key_filename, host_keys_filename=host_keys_filename,
                         known_hosts_policy=known_hosts_policy, connect_timeout=connect_timeout)
        self.prompt = prompt

    def _ask(self, question: str, echo: bool = False) -> str:
        if self.prompt is not None:
            return self.prompt(question)
        return getpass.getpass(question) if not echo else input(question)

    def _open(self) -> Any:
        client = self._new_client()
        try:
            self._open_transport(client, self._login)
        except BaseException as e:
            client.close()
            raise self._translate(e) from e
        logger.info("Connected to %s", self.site)
        return client

    def _auth_method(self) -> str:
        if self.password is not None:
            return "the password given"
        return "the answers given at the terminal" if self.prompt is None else "the answers of the prompt function"

    def _login(self, transport: Any) -> None:
        paramiko = _paramiko()
        username = self.username or getpass.getuser()
        try:
            transport.auth_none(username)
            return
        except paramiko.BadAuthenticationType as e:
            allowed = list(e.allowed_types)
        if self.key_filename and "publickey" in allowed:
            key = paramiko.PKey.from_path(self.key_filename if isinstance(self.key_filename, str)
                                          else self.key_filename[0])
            try:  # a refused key falls through to the questions; partial success narrows them
                allowed = list(transport.auth_publickey(username, key)) or allowed
            except paramiko.AuthenticationException:
                pass
            if transport.is_authenticated():
                return
        if "keyboard-interactive" in allowed:
            def answer(title: str, instructions: str, questions: Sequence[tuple[str, bool]]) -> list[str]:
                if instructions.strip():
                    logger.info("%s: %s", self.site, instructions.strip())
                return [self._ask(f"{self.site} {q.strip()} ", echo) for q, echo in questions]

            transport.auth_interactive(username, answer)
        elif "password" in allowed:
            secret = self.password if self.password is not None else self._ask(f"{self.site} password: ")
            transport.auth_password(username, secret)
        else:
            raise paramiko.AuthenticationException(
                f"the server offers only {', '.join(allowed)}, none of which can be asked for at a terminal")
