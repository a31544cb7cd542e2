"""The launcher contract: turn one worker command into the shell text a batch job runs."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

from parsl_repro.utils import RepresentationMixin


class Launcher(RepresentationMixin, metaclass=ABCMeta):
    """Wraps the command a provider runs in each block so that it starts the right number of copies.

    A provider calls the launcher once per block it submits, with the worker command, the number
    of copies wanted on each node and the number of nodes in the block, and puts the returned
    shell text into its job script. The text runs under ``bash``; launchers that write the
    command to a helper file put it in ``script_dir`` when that directory exists, else in the
    job's working directory.

    ``debug`` makes the rendered script print what it found and did (core counts, each start).
    """

    def __init__(self, debug: bool = True) -> None:
        self.debug = debug

    @abstractmethod
    def __call__(self, command: str, tasks_per_node: int, nodes_per_block: int, script_dir: str = "") -> str:
        """Return the shell text that starts ``tasks_per_node * nodes_per_block`` copies of ``command``."""
