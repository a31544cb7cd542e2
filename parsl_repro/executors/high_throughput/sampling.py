"""Resource samples of running tasks, taken in a worker pool and sent back with each result.

Two ways, both giving rows in the order of the fields of ``events.ResourceSample`` after the
task and try ids: time, interval, pid, CPU user and system seconds, RSS, virtual size, memory %,
bytes read and written, child processes, process status:

* the manager samples each busy worker and its children with psutil every
  ``resource_monitoring_interval`` seconds (``sample_process``);
* each worker samples itself cheaply as a task ends, at most once per interval
  (``SelfSample``), so a worker's first task, however short, has a record, as in Parsl.
"""
from __future__ import annotations

import os
import resource
import struct
import time
from typing import Any


class SelfSample:
    """A worker's cheap sample of itself as a task ends: CPU times of the process and its reaped
    children (``getrusage``: microseconds, where ``os.times`` counts whole 10 ms clock ticks and
    so reads 0 for a worker's first short task), resident and virtual size (``/proc/self/statm``)
    and bytes read and written (``/proc/self/io``), read from files kept open. Packed as
    ``FORMAT``: time, user, system, rss, vms, read, write."""

    FORMAT = struct.Struct("!dddqqqq")

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._statm = self._open("/proc/self/statm")
        self._io = self._open("/proc/self/io")

    @staticmethod
    def _open(path: str) -> int | None:
        try:
            return os.open(path, os.O_RDONLY)
        except OSError:
            return None

    def take(self) -> bytes:
        """A sample of this process now, packed as ``FORMAT``."""
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        rss = vms = read = write = 0
        try:
            if self._statm is not None:
                fields = os.pread(self._statm, 128, 0).split()
                vms, rss = int(fields[0]) * self._page, int(fields[1]) * self._page
            if self._io is not None:
                lines = os.pread(self._io, 512, 0).split(b"\n")
                read, write = int(lines[4].split()[1]), int(lines[5].split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return self.FORMAT.pack(time.time(), own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime,
                                rss, vms, read, write)

    @classmethod
    def row(cls, packed: bytes, offset: int, interval: float, pid: int, total_memory: int) -> list[Any]:
        """The sample packed at ``offset`` of ``packed`` as a sample row, for worker
        ``pid`` on a node of ``total_memory`` bytes."""
        at, user, system, rss, vms, read, write = cls.FORMAT.unpack_from(packed, offset)
        return [at, interval, pid, user, system, rss, vms, 100.0 * rss / total_memory, read, write, 0, "running"]


def sample_process(pid: int, interval: float) -> list[Any] | None:
    """A sample row for process ``pid`` and its children together (None if it is gone)."""
    import psutil  # may be missing on a pool's node: only sampling needs it

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            procs = [proc, *proc.children(recursive=True)]
            user = system = 0.0
            rss = vms = read = write = 0
            percent = 0.0
            for each in procs:
                try:
                    cpu = each.cpu_times()
                    mem = each.memory_info()
                    user += cpu.user + cpu.children_user
                    system += cpu.system + cpu.children_system
                    rss += mem.rss
                    vms += mem.vms
                    percent += each.memory_percent()
                    try:
                        io = each.io_counters()
                        read += io.read_bytes
                        write += io.write_bytes
                    except (psutil.AccessDenied, AttributeError):
                        pass
                except psutil.NoSuchProcess:
                    continue
            return [time.time(), interval, pid, user, system, rss, vms, percent, read, write, len(procs) - 1,
                    proc.status()]
    except psutil.Error:
        return None
