"""Errors about launchers."""
from __future__ import annotations

from parsl_repro.errors import ConfigurationError


class BadLauncher(ConfigurationError, TypeError):
    """A provider was given something that is not a ``Launcher`` instance."""

    def __init__(self, launcher: object) -> None:
        super().__init__(launcher)
        self.launcher = launcher

    def __str__(self) -> str:
        from parsl_repro.launchers.base import Launcher

        given = self.launcher
        if isinstance(given, type) and issubclass(given, Launcher):
            hint = f"pass an instance, e.g. {given.__name__}(), not the class itself"
        else:
            hint = "pass an instance of a parsl_repro.launchers class, e.g. SingleNodeLauncher()"
        return f"Bad launcher provided: {given!r} ({type(given).__name__}); {hint}"
