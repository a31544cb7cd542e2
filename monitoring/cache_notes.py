"""The notes recorded with a cached task (``task.cache_note``) that ``parsl-repro why`` shows:
why a task was not cached, why a stored result was not reused, or what its memo key leaves out.

The memoizer writes them and the queries read them; both use these functions, so the wording is
stated once. A task may carry several notes, joined by ``SEPARATOR``.
"""
from __future__ import annotations

SEPARATOR = "\n"
_IN_FLIGHT = "an identical task of this run (task {task_id}) was still running when this one was ready, so both " \
             "ran: a memo key is looked up just before a task starts"
_IN_FLIGHT_START = _IN_FLIGHT.split("{", 1)[0]


def not_cached(reason: str) -> str:
    """An argument could not be hashed deterministically: the task ran uncached."""
    return f"not cached: {reason}"


def input_missing(path: str) -> str:
    return f"not cached: input file missing: {path}"


def output_vanished(path: str) -> str:
    return f"recorded result not reused: output {path} has vanished"


def output_changed(path: str) -> str:
    return f"recorded result not reused: output {path} has changed since it was recorded"


def in_flight(task_id: int) -> str:
    """An identical task of the same run had not finished when this one became ready."""
    return _IN_FLIGHT.format(task_id=task_id)


def path_argument(label: str, path: str) -> str:
    """A plain string (or path object) argument names an existing file: the key covers its name only."""
    return (f"{label} {path!r} names an existing file, but the memo key covers the path, not the file's content: "
            f"pass File({path!r}) to key on its content")


def join(notes: list[str]) -> str | None:
    return SEPARATOR.join(notes) if notes else None


def split(note: str | None) -> list[str]:
    return note.split(SEPARATOR) if note else []


def is_in_flight(note: str) -> bool:
    return note.startswith(_IN_FLIGHT_START)


def is_not_cached(note: str) -> bool:
    return note.startswith("not cached: ")


def is_not_reused(note: str) -> bool:
    return note.startswith("recorded result not reused: ")
