"""``FilesystemRadio``: monitoring messages as files in a directory of the run, for workers that
share a filesystem with the submit side but cannot reach it over the network.

The directory works like a maildir: a sender writes each message to ``tmp/`` and renames it into
``new/`` once complete, so the receiver (a helper process polling ``new/``) never reads half a
file. The directory ``run_dir/monitor-fs-radio`` is made private (0o700), and the receiver reads
only regular files owned by its own user: a message file can only have been written by this
user's processes, so it is trusted to unpickle. Anything else found there is logged and
removed, as is a complete file that does not unpickle; one that cannot be opened is tried again
at the next poll.
"""
from __future__ import annotations

import logging
import os
import pickle
import stat
import uuid
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

from parsl_repro.monitoring.radios.process import ReceiverProcess, start_helper_log
from parsl_repro.process_loggers import wrap_with_logs
from parsl_repro.radios import MonitoringRadioReceiver, MonitoringRadioSender, RadioConfig

logger = logging.getLogger(__name__)

POLL_PERIOD_S = 1.0
"""How often the receiver looks for new message files."""
RADIO_DIRECTORY = "monitor-fs-radio"


class FilesystemRadio(RadioConfig):
    """A radio over a shared filesystem. ``run_dir`` is set by ``create_receiver``; give it only
    to make senders for a receiver started elsewhere."""

    def __init__(self, *, run_dir: str | None = None) -> None:
        self.run_dir = run_dir

    def create_receiver(self, *, run_dir: str, resource_msgs: Queue) -> MonitoringRadioReceiver:
        self.run_dir = run_dir
        return FilesystemRadioReceiver(resource_msgs, run_dir)

    def create_sender(self) -> MonitoringRadioSender:
        if self.run_dir is None:
            raise RuntimeError("FilesystemRadio.create_sender() needs create_receiver() to be called first")
        return FilesystemRadioSender(run_dir=self.run_dir)


def _radio_directories(run_dir: str) -> tuple[str, str]:
    """Make (if needed) and return the private ``tmp`` and ``new`` directories of the radio."""
    base = os.path.join(run_dir, RADIO_DIRECTORY)
    os.makedirs(run_dir, exist_ok=True)
    for path in (base, os.path.join(base, "tmp"), os.path.join(base, "new")):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    info = os.stat(base)
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{base} must belong to this user and be private (mode 0o700); "
                              f"it is owned by uid {info.st_uid} with mode {oct(stat.S_IMODE(info.st_mode))}")
    return os.path.join(base, "tmp"), os.path.join(base, "new")


class FilesystemRadioSender(MonitoringRadioSender):
    """Writes each message to its own file, atomically visible to the receiver."""

    def __init__(self, *, run_dir: str) -> None:
        self.tmp_path, self.new_path = _radio_directories(run_dir)

    def send(self, message: object) -> None:
        name = str(uuid.uuid4())
        partial = os.path.join(self.tmp_path, name)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(message, f)
        os.rename(partial, os.path.join(self.new_path, name))


class FilesystemRadioReceiver(ReceiverProcess):
    """The helper process polling the radio directory."""

    def __init__(self, resource_msgs: Queue, run_dir: str) -> None:
        super().__init__(filesystem_receiver_main, name="Monitoring-Filesystem-Process",
                         settings={"resource_msgs": resource_msgs, "run_dir": run_dir})


def _ours(info: os.stat_result) -> bool:
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid()


def _deliver(path: str, resource_msgs: Queue) -> None:
    """Queue the message in ``path`` and remove the file; remove unread (logged) a file not ours."""
    if not _ours(os.lstat(path)):
        logger.error("Removed %s from the radio directory unread: not a regular file of this user", path)
        os.unlink(path)
        return
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)  # no symbolic link swapped in since the check
    with os.fdopen(fd, "rb") as f:
        if not _ours(os.fstat(f.fileno())):
            logger.error("Removed %s from the radio directory unread: not a regular file of this user", path)
            os.unlink(path)
            return
        try:
            message = pickle.load(f)  # our own user's file in our private directory
        except Exception:
            logger.exception("Removed message file %s: it is complete but does not unpickle", path)
            os.unlink(path)
            return
    resource_msgs.put(message)
    os.unlink(path)


@wrap_with_logs(target=__name__)
def filesystem_receiver_main(*, comm_q: Queue, exit_event: Event, resource_msgs: Queue, run_dir: str) -> None:
    """The helper process: queue every message file in ``new/`` each poll, until ``exit_event``;
    the last pass starts after the event is set, so nothing sent before ``shutdown()`` is missed."""
    start_helper_log(run_dir, "monitoring_filesystem_radio.log", False, "parsl_repro: monitoring filesystem receiver")
    try:
        _, new_dir = _radio_directories(run_dir)
    except Exception as e:
        logger.exception("Filesystem radio receiver could not start")
        comm_q.put(f"could not prepare {os.path.join(run_dir, RADIO_DIRECTORY)}: {e}")
        return
    comm_q.put(None)
    logger.info("Watching %s for monitoring messages", new_dir)
    stopping = False
    while not stopping:
        stopping = exit_event.wait(POLL_PERIOD_S)
        for name in sorted(os.listdir(new_dir)):
            path = os.path.join(new_dir, name)
            try:
                _deliver(path, resource_msgs)
            except Exception:
                logger.exception("Could not read message file %s; will try again", path)
    logger.info("Filesystem radio receiver finished")
