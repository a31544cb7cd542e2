"""Export recorded runs as W3C PROV and as a Workflow Run RO-Crate, from the store alone.

One function per format family, each taking an engine (``open_for_reading(url)``) and run ids:

- ``export_prov(engine, run_ids, fmt, out)`` writes PROV in ``fmt``: ``prov-o`` (Turtle),
  ``prov-trig`` (a named graph per run), ``prov-jsonld``, ``prov-json``, ``prov-n``, ``prov-xml``;
  ``out`` is a path or a text stream, or None to return the document as a string;
- ``prov_graph(engine, run_ids)`` returns the PROV-O as an rdflib ``Graph`` (``named=True``: a
  ``Dataset`` with a graph per run), ``prov_document(engine, run_ids)`` as a ``prov`` package
  ``ProvDocument``, for queries in memory;
- ``export_ro_crate(engine, run_ids, path)`` writes a Provenance Run Crate (a directory, or a
  zip file when ``path`` ends in ``.zip``).

``export(engine, run_ids, fmt, path, ...)`` picks among them by format name, as the
``parsl-repro export`` command does. The mapping is documented in
``provenance-schemas/prov-mapping.md``.
"""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from sqlalchemy import Engine, select

from parsl_repro.errors import ParslError
from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.export.records import BATCH, ExportNotes, statements
from parsl_repro.monitoring.queries import RunNotFound

PROV_FORMATS = {
    "prov-o": ("turtle", ".ttl", "PROV-O in Turtle"),
    "prov-trig": ("trig", ".trig", "PROV-O in TriG, one named graph (a prov:Bundle) per run"),
    "prov-jsonld": ("jsonld", ".jsonld", "PROV-JSONLD (W3C member submission)"),
    "prov-json": ("json", ".json", "PROV-JSON (W3C member submission)"),
    "prov-n": ("provn", ".provn", "PROV-N (W3C recommendation)"),
    "prov-xml": ("xml", ".provx", "PROV-XML (W3C working group note)"),
}
FORMATS = {**{name: description for name, (_fmt, _ext, description) in PROV_FORMATS.items()},
           "ro-crate": "a Workflow Run RO-Crate (Provenance Run Crate profile): a directory, or a .zip"}
"""Every format name, with what it is."""

SHAPES = os.path.join(os.path.dirname(__file__), "prov-shapes.ttl")
"""The SHACL shapes that every PROV-O export satisfies (provenance-schemas/prov-shapes.ttl)."""

__all__ = ["FORMATS", "SHAPES", "PROV_FORMATS", "ExportError", "ExportSummary", "OutputExists", "export", "export_prov",
           "export_ro_crate", "prov_document", "prov_graph"]


class ExportError(ParslError):
    """An export that cannot be made as asked: an unknown format, a run that is not in the store."""


class OutputExists(ExportError):
    """The output path exists and ``force`` was not given."""


@dataclass
class ExportSummary:
    """What an export wrote, and what its user should know about it."""

    format: str
    run_ids: list[str]
    path: str | None = None
    records: int = 0
    """Triples (PROV-O), records (the other PROV formats) or entities (RO-Crate) written."""
    bytes: int = 0
    notes: list[str] = field(default_factory=list)
    """Partial runs, killed runs, files that vanished or changed since the run, ..."""


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ExportError(f"There is no export format {fmt!r}; the formats are: {', '.join(FORMATS)}")
    return fmt


def check_runs(engine: Engine, run_ids: Sequence[str]) -> list[str]:
    """``run_ids`` without repeats, each checked to be a run of the store."""
    wanted = list(dict.fromkeys(run_ids))
    if not wanted:
        raise ExportError("Name at least one run to export")
    with engine.connect() as conn:
        found = set(conn.execute(select(m.Workflow.run_id).where(m.Workflow.run_id.in_(wanted))).scalars())
    missing = [r for r in wanted if r not in found]
    if missing:
        raise RunNotFound(f"There is no run {missing[0]!r} in this store; `parsl-repro runs` lists them")
    return wanted


def _notes(notes: ExportNotes) -> list[str]:
    said = [f"run {run_id} was still running: exported what is recorded so far (marked pr:partial)"
            for run_id in notes.partial_runs]
    return said + notes.notes


def export_prov(engine: Engine, run_ids: Sequence[str], fmt: str = "prov-o",
                out: str | os.PathLike[str] | IO[str] | None = None, *,
                force: bool = False, batch: int = BATCH) -> ExportSummary | str:
    """Write the runs' provenance in ``fmt`` (a key of ``PROV_FORMATS``) to ``out``: a path (written
    whole or not at all; an existing one only with ``force``), a text stream, or None to return it."""
    from parsl_repro.monitoring.export import provdoc, rdf

    check_format(fmt)
    if fmt not in PROV_FORMATS:
        raise ExportError(f"{fmt!r} is not a PROV format; use export_ro_crate for ro-crate")
    run_ids = check_runs(engine, run_ids)
    syntax = PROV_FORMATS[fmt][0]
    notes = ExportNotes()
    summary = ExportSummary(fmt, run_ids)

    def write(stream: IO[str]) -> None:
        batches = statements(engine, run_ids, notes, batch=batch)
        if syntax in ("turtle", "trig"):
            summary.records = rdf.write(batches, stream, syntax)
        else:
            summary.records = provdoc.write(batches, stream, syntax, run_ids)

    if out is None:
        buffer = io.StringIO()
        write(buffer)
        return buffer.getvalue()
    if isinstance(out, str | os.PathLike):
        path = os.fspath(out)
        with _replacing(path, force, directory=False, engine=engine) as temporary:
            with open(temporary, "w", encoding="utf-8") as stream:
                write(stream)
        summary.path, summary.bytes = path, os.path.getsize(path)
    else:
        counted = _Counting(out)
        write(counted)
        summary.bytes = counted.bytes
    summary.notes = _notes(notes)
    return summary


def prov_graph(engine: Engine, run_ids: Sequence[str], named: bool = False) -> Any:
    """The runs' PROV-O as an rdflib ``Graph`` (``named``: a ``Dataset`` with a graph per run)."""
    from parsl_repro.monitoring.export import rdf

    return rdf.prov_graph(statements(engine, check_runs(engine, run_ids)), named=named)


def prov_document(engine: Engine, run_ids: Sequence[str]) -> Any:
    """The runs' provenance as a ``prov`` package ``ProvDocument``."""
    from parsl_repro.monitoring.export import provdoc

    run_ids = check_runs(engine, run_ids)
    return provdoc.whole(statements(engine, run_ids), run_ids)


def export_ro_crate(engine: Engine, run_ids: Sequence[str], path: str | os.PathLike[str], *,
                    include_results: bool = False, files: Literal["copy", "reference"] = "reference",
                    force: bool = False, license: str | None = None) -> ExportSummary:
    """Write the runs as a Workflow Run RO-Crate (Provenance Run Crate profile) at ``path``: a
    directory, or a zip archive when ``path`` ends in ``.zip``. ``files="copy"`` copies the runs'
    files into the crate when they still exist with their recorded sha256 (else they are referenced,
    and the summary says why); ``include_results`` adds stored result values as files. ``license`` (an SPDX
    id such as ``CC-BY-4.0``, or a URL) is the crate's license; without it the crate says none was stated."""
    from parsl_repro.monitoring.export import crate

    if files not in ("copy", "reference"):
        raise ExportError(f"files must be 'copy' or 'reference', not {files!r}")
    path = os.fspath(path)
    run_ids = check_runs(engine, run_ids)
    summary = ExportSummary("ro-crate", run_ids, path=path)
    zipped = path.endswith(".zip")
    with _replacing(path, force, directory=not zipped, engine=engine) as temporary:
        crate.write(engine, run_ids, temporary, summary, include_results=include_results, files=files,
                    zipped=zipped, license=license)
    summary.bytes = _size(path)
    return summary


def export(engine: Engine, run_ids: Sequence[str], fmt: str, path: str | os.PathLike[str] | IO[str] | None, *,
           force: bool = False, include_results: bool = False, files: Literal["copy", "reference"] = "reference",
           license: str | None = None) -> ExportSummary | str:
    """Export by format name (``FORMATS``): what ``parsl-repro export`` calls."""
    check_format(fmt)
    if fmt == "ro-crate":
        if not isinstance(path, str | os.PathLike):
            raise ExportError("An RO-Crate is written to a path: a directory, or a file ending in .zip")
        return export_ro_crate(engine, run_ids, path, include_results=include_results, files=files, force=force,
                               license=license)
    return export_prov(engine, run_ids, fmt, path, force=force)


class _Counting:
    """A text stream that counts the UTF-8 bytes written through it."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream, self.bytes = stream, 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8"))
        return self.stream.write(text)


class _replacing:
    """Write ``path`` through a temporary sibling, renamed into place only when the export succeeds, so
    an interrupted or failed export leaves no half-written file and never half an old one.

    ``force`` replaces only what an export could have written: a file (for a file), or a directory
    holding an RO-Crate (for a crate); never another directory, and never the store itself."""

    def __init__(self, path: str, force: bool, directory: bool, engine: Engine | None = None) -> None:
        self.path, self.force, self.directory = os.path.abspath(path), force, directory
        self.store = _store_file(engine)
        self.temporary = ""

    def __enter__(self) -> str:
        path = self.path
        if self.store is not None and os.path.lexists(path) and os.path.samefile(path, self.store) \
                or self.store is not None and os.path.dirname(self.store) == path:
            raise ExportError(f"Refusing to write over the provenance store at {path}")
        if os.path.lexists(path):
            if not self.force:
                raise OutputExists(f"{path} exists; give --force (force=True) to replace it")
            if os.path.isdir(path) and not os.path.islink(path) and not (
                    self.directory and os.path.isfile(os.path.join(path, "ro-crate-metadata.json"))):
                what = "is a directory that holds no RO-Crate" if self.directory else "is a directory"
                raise ExportError(f"Refusing to replace {path}: it {what}")
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            raise ExportError(f"Cannot write {path}: the directory {parent} does not exist")
        base = os.path.basename(path)
        if self.directory:
            self.temporary = tempfile.mkdtemp(prefix=f".{base}.", dir=parent)
        else:
            fd, self.temporary = tempfile.mkstemp(prefix=f".{base}.", dir=parent)
            os.close(fd)
        return self.temporary

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if kind is not None:
            _remove(self.temporary)
            return
        os.chmod(self.temporary, 0o755 if self.directory else 0o644)  # mkstemp/mkdtemp made it private
        if self.directory and os.path.isdir(self.path) and not os.path.islink(self.path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(self.path)}.old.", dir=os.path.dirname(self.path))
            os.replace(self.path, os.path.join(old, "crate"))  # out of the way, then removed
            os.replace(self.temporary, self.path)
            shutil.rmtree(old, ignore_errors=True)
            return
        os.replace(self.temporary, self.path)  # atomic over an existing file


def _store_file(engine: Engine | None) -> str | None:
    """The SQLite file the export reads, if it reads one (asked of SQLite: a read-only engine's URL
    does not name it)."""
    if engine is None or engine.url.get_backend_name() != "sqlite":
        return None
    with engine.connect() as conn:
        for _seq, name, path in conn.exec_driver_sql("PRAGMA database_list"):
            if name == "main" and path:
                return os.path.realpath(path)
    return None


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _dirs, names in os.walk(path) for name in names)
