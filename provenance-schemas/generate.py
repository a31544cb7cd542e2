"""Generate the provenance schema's documentation from its one statement, ``parsl_repro.monitoring.models``.

Writes, next to this script:

* ``schema.md``: every table with its docstring, its columns (type, nullable, primary key, foreign key,
  index, default, whether Parsl's monitoring schema has the column, the note written beside it in
  ``models.py``), the relationships between tables, and the entity-relationship diagram as a Mermaid
  ``erDiagram`` block;
* ``er.svg``: the same diagram drawn as SVG by this script (no network, no renderer needed).

Usage::

    .venv/bin/python provenance-schemas/generate.py           # rewrite schema.md and er.svg
    .venv/bin/python provenance-schemas/generate.py --check   # exit 1 if they differ from what is there

Only the standard library and SQLAlchemy are used. The output depends on nothing but the models, so
``--check`` in CI catches a schema change whose documentation was not regenerated.
"""
from __future__ import annotations

import argparse
import difflib
import inspect
import io
import math
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from sqlalchemy import Column, ForeignKeyConstraint, Table, UniqueConstraint

try:
    from parsl_repro.monitoring import models
except ImportError as exc:  # pragma: no cover - a setup problem, said plainly
    sys.exit(f"generate.py: cannot import parsl_repro.monitoring.models ({exc}); "
             "run it with the project's environment: .venv/bin/python provenance-schemas/generate.py")

HERE = Path(__file__).resolve().parent
SCHEMA_MD = HERE / "schema.md"
ER_SVG = HERE / "er.svg"

PARSL_VERSION = "2026.10.26"
"""The Parsl release whose monitoring schema (``parsl/monitoring/db_manager.py``) is listed below."""

PARSL_COLUMNS: dict[str, tuple[str, ...]] = {
    "workflow": ("run_id", "workflow_name", "workflow_version", "time_began", "time_completed", "host", "user",
                 "rundir", "tasks_failed_count", "tasks_completed_count"),
    "status": ("task_id", "task_status_name", "timestamp", "run_id", "try_id"),
    "task": ("task_id", "run_id", "task_depends", "task_func_name", "task_memoize", "task_hashsum", "task_inputs",
             "task_outputs", "task_stdin", "task_stdout", "task_stderr", "task_time_invoked", "task_time_returned",
             "task_fail_count", "task_fail_cost"),
    "try": ("try_id", "task_id", "run_id", "block_id", "hostname", "task_executor", "task_try_time_launched",
            "task_try_time_running", "task_try_time_returned", "task_fail_history", "task_joins"),
    "node": ("id", "run_id", "hostname", "uid", "block_id", "cpu_count", "total_memory", "active", "worker_count",
             "python_v", "timestamp", "last_heartbeat"),
    "block": ("run_id", "executor_label", "block_id", "job_id", "timestamp", "status"),
    "resource": ("try_id", "task_id", "run_id", "timestamp", "resource_monitoring_interval", "psutil_process_pid",
                 "psutil_process_memory_percent", "psutil_process_children_count", "psutil_process_time_user",
                 "psutil_process_time_system", "psutil_process_memory_virtual", "psutil_process_memory_resident",
                 "psutil_process_disk_read", "psutil_process_disk_write", "psutil_process_status", "psutil_cpu_num",
                 "psutil_process_num_ctx_switches_voluntary", "psutil_process_num_ctx_switches_involuntary"),
}
"""Parsl's monitoring tables and their column names, as Parsl PARSL_VERSION declares them."""

PARSL_PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "workflow": ("run_id",),
    "status": ("task_id", "run_id", "task_status_name", "timestamp"),
    "task": ("task_id", "run_id"),
    "try": ("try_id", "task_id", "run_id"),
    "node": ("id",),
    "block": ("run_id", "block_id", "executor_label", "timestamp"),
    "resource": ("try_id", "task_id", "run_id", "timestamp"),
}
"""Parsl's primary keys, to say where this schema chose another one."""


@dataclass(frozen=True)
class Rel:
    """One relationship: ``parent_card`` ``parent`` rows to ``child_card`` ``child`` rows, joined on ``on``.

    ``on`` pairs (parent column, child column). Whether a FOREIGN KEY constraint enforces it is read
    from the metadata, not stated here.
    """
    parent: str
    child: str
    parent_card: str  # "1", "0..1" or "n": how many parent rows one child row has
    child_card: str  # "n" or "0..1": how many child rows one parent row has
    on: tuple[tuple[str, str], ...]
    label: str = ""

    def text(self) -> str:
        if self.label:
            return self.label
        return ", ".join(p if p == c else f"{p} = {c}" for p, c in self.on)


def _same(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((n, n) for n in names)


RELATIONSHIPS: tuple[Rel, ...] = (
    Rel("environment", "workflow", "0..1", "n", _same("packages_digest")),
    Rel("workflow", "workflow", "0..1", "n", (("run_id", "parent_run_id"),), "parent_run_id"),
    Rel("workflow", "task", "1", "n", _same("run_id")),
    Rel("workflow", "status", "1", "n", _same("run_id")),
    Rel("workflow", "resource", "1", "n", _same("run_id")),
    Rel("workflow", "node", "1", "n", _same("run_id")),
    Rel("workflow", "block", "1", "n", _same("run_id")),
    Rel("app", "task", "0..1", "n", _same("app_digest")),
    Rel("task", "try", "1", "n", _same("run_id", "task_id")),
    Rel("task", "status", "1", "n", _same("run_id", "task_id")),
    Rel("task", "dependency", "1", "n", _same("run_id", "task_id"), "task_id (waits)"),
    Rel("task", "dependency", "1", "n", (("run_id", "run_id"), ("task_id", "depends_on")), "depends_on (awaited)"),
    Rel("task", "file_use", "1", "n", _same("run_id", "task_id")),
    Rel("file", "file_use", "1", "n", _same("file_id")),
    Rel("result", "task", "n", "n", (("memo_key", "task_hashsum"),)),  # one result row per memo key and run
    Rel("task", "result", "1", "0..1", _same("run_id", "task_id"), "produced (run_id, task_id)"),
    Rel("try", "resource", "1", "n", _same("run_id", "task_id", "try_id")),
)
"""The relationships drawn and listed: FOREIGN KEY constraints and the joins queries make by run_id,
task_id and digests without one. A FOREIGN KEY in the models that is missing here is added by itself."""

LAYOUT: dict[str, tuple[int, int]] = {
    "node": (0, 0), "status": (1, 0), "result": (2, 0), "app": (3, 0),
    "environment": (0, 1), "workflow": (1, 1), "task": (2, 1), "dependency": (3, 1),
    "block": (0, 2), "resource": (1, 2), "try": (2, 2), "file_use": (3, 2),
    "schema_info": (0, 3), "file": (3, 3),
}
"""Grid cell (column, row) of each table in er.svg, chosen so that no straight connector crosses a box.
A table missing here goes into an extra row at the bottom."""


# ---------------------------------------------------------------------------------------------------------
# Reading the models


@dataclass(frozen=True)
class TableDoc:
    table: Table
    doc: str
    notes: dict[str, str]  # column name -> the comment written beside it in models.py


def rst_to_md(text: str) -> str:
    """``literal`` (reStructuredText) to `literal` (Markdown)."""
    return re.sub(r"``(.+?)``", r"`\1`", text)


def _column_comments(cls: type) -> dict[str, str]:
    """The trailing ``# comment`` of each attribute line in ``cls``'s source, by column name."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    by_attr: dict[str, str] = {}
    line_attr: dict[int, str] = {}
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for tok, nxt in zip(tokens, tokens[1:], strict=False):
        indent = len(tok.line) - len(tok.line.lstrip())
        if tok.type == tokenize.NAME and nxt.string == ":" and tok.start[1] == indent:
            line_attr[tok.start[0]] = tok.string  # an annotated attribute: `name: Mapped[...] = ...`
        elif tok.type == tokenize.COMMENT and tok.start[0] in line_attr:
            by_attr[line_attr[tok.start[0]]] = tok.string.lstrip("#").strip()
    names = {prop.key: prop.columns[0].name for prop in cls.__mapper__.column_attrs}
    return {names[attr]: text for attr, text in by_attr.items() if attr in names}


def read_models() -> list[TableDoc]:
    classes = {mapper.local_table.name: mapper.class_ for mapper in models.Base.registry.mappers}
    docs = []
    for name, table in models.Base.metadata.tables.items():  # declaration order
        cls = classes.get(name)
        doc = inspect.getdoc(cls) if cls is not None and cls.__doc__ else ""
        notes = _column_comments(cls) if cls is not None else {}
        docs.append(TableDoc(table, rst_to_md(doc or ""), notes))
    return docs


def fk_pairs(fkc: ForeignKeyConstraint) -> frozenset[tuple[str, str]]:
    return frozenset((el.column.name, el.parent.name) for el in fkc.elements)


def relationships(tables: dict[str, Table]) -> list[tuple[Rel, bool]]:
    """RELATIONSHIPS checked against the metadata, each with whether a FOREIGN KEY enforces it, plus any
    FOREIGN KEY the list lacks."""
    out: list[tuple[Rel, bool]] = []
    for rel in RELATIONSHIPS:
        for name, cols in ((rel.parent, [p for p, _ in rel.on]), (rel.child, [c for _, c in rel.on])):
            if name not in tables:
                raise SystemExit(f"generate.py: RELATIONSHIPS names table {name!r}, which the models lack")
            missing = [c for c in cols if c not in tables[name].c]
            if missing:
                raise SystemExit(f"generate.py: RELATIONSHIPS names {name}.{missing[0]}, which the models lack")
        pairs = frozenset(rel.on)
        enforced = any(fkc.referred_table.name == rel.parent and fk_pairs(fkc) <= pairs
                       for fkc in tables[rel.child].foreign_key_constraints)
        out.append((rel, enforced))
    for child in tables.values():
        for fkc in sorted(child.foreign_key_constraints, key=lambda f: [c.name for c in f.columns]):
            parent = fkc.referred_table.name
            if not any(r.parent == parent and r.child == child.name and frozenset(r.on) == fk_pairs(fkc)
                       for r, _ in out):
                nullable = any(c.nullable for c in fkc.columns)
                on = tuple(sorted(fk_pairs(fkc)))
                out.append((Rel(parent, child.name, "0..1" if nullable else "1", "n", on), True))
    return out


def key_columns(table: Table, rels: list[tuple[Rel, bool]]) -> list[tuple[Column, str]]:
    """The columns a diagram shows for ``table``: primary key, foreign key and join columns, with a tag."""
    joined = {p for r, _ in rels if r.parent == table.name for p, _ in r.on}
    joined |= {c for r, _ in rels if r.child == table.name for _, c in r.on}
    shown = []
    for col in table.columns:
        tags = [t for t, on in (("PK", col.primary_key), ("FK", bool(col.foreign_keys))) if on]
        if tags or col.name in joined:
            shown.append((col, ", ".join(tags)))
    return shown


def type_name(col: Column) -> str:
    return type(col.type).__name__


# ---------------------------------------------------------------------------------------------------------
# schema.md

MERMAID_LEFT = {"1": "||", "0..1": "|o", "n": "}o"}
MERMAID_RIGHT = {"n": "o{", "0..1": "o|", "1": "||"}


def mermaid(docs: list[TableDoc], rels: list[tuple[Rel, bool]]) -> str:
    lines = ["```mermaid", "erDiagram"]
    for d in docs:
        cols = key_columns(d.table, rels)
        if not cols:
            col = next(iter(d.table.primary_key.columns), None) or next(iter(d.table.columns))
            cols = [(col, "PK" if col.primary_key else "")]
        lines.append(f"    {d.table.name} {{")
        for col, tag in cols:
            lines.append(f"        {type_name(col)} {col.name}{' ' + tag if tag else ''}")
        lines.append("    }")
    for rel, enforced in rels:
        line = "--" if enforced else ".."
        lines.append(f"    {rel.parent} {MERMAID_LEFT[rel.parent_card]}{line}{MERMAID_RIGHT[rel.child_card]} "
                     f"{rel.child} : \"{rel.text()}\"")
    lines.append("```")
    return "\n".join(lines)


def md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def default_of(col: Column) -> str:
    if col.default is not None and getattr(col.default, "is_scalar", False):
        return repr(col.default.arg)
    if col.server_default is not None:
        return "server default"
    return ""


def index_names(table: Table) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for ix in sorted(table.indexes, key=lambda i: i.name or ""):
        for col in ix.columns:
            names.setdefault(col.name, []).append(f"`{ix.name}`" + (" (unique)" if ix.unique else ""))
    for uc in sorted((c for c in table.constraints if isinstance(c, UniqueConstraint)), key=lambda c: c.name or ""):
        for col in uc.columns:
            names.setdefault(col.name, []).append(f"`{uc.name}` (unique)")
    return names


def parsl_note(table: Table) -> str:
    name = table.name
    if name not in PARSL_COLUMNS:
        return "Not in Parsl's monitoring schema: added by parsl_repro."
    ours = [c.name for c in table.columns]
    theirs = PARSL_COLUMNS[name]
    added = [c for c in ours if c not in theirs]
    missing = [c for c in theirs if c not in ours]
    parts = [f"Parsl's table `{name}`: {len(theirs) - len(missing)} of its {len(ours)} columns (✓ under Parsl) "
             f"exist under the same names in Parsl {PARSL_VERSION}'s monitoring schema."]
    parts.append("Added by parsl_repro: " + ", ".join(f"`{c}`" for c in added) + "." if added
                 else "parsl_repro adds no column.")
    if missing:
        parts.append("**Missing here** (Parsl has them): " + ", ".join(f"`{c}`" for c in missing) + ".")
    our_pk = [c.name for c in table.primary_key.columns]
    if set(our_pk) != set(PARSL_PRIMARY_KEYS.get(name, our_pk)):
        parts.append(f"Primary key: Parsl's is ({', '.join(PARSL_PRIMARY_KEYS[name])}); here it is "
                     f"({', '.join(our_pk)}).")
    return " ".join(parts)


def summary(doc: str) -> str:
    """A docstring's first paragraph on one line."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def render_markdown(docs: list[TableDoc], rels: list[tuple[Rel, bool]]) -> str:
    module_doc = rst_to_md(inspect.getdoc(models) or "")
    out = [
        "# The provenance schema",
        "",
        "<!-- Generated by provenance-schemas/generate.py from parsl_repro.monitoring.models: do not edit. -->",
        "",
        f"Schema version **{models.SCHEMA_VERSION}** (`parsl_repro.monitoring.models.SCHEMA_VERSION`). "
        "Regenerate with `.venv/bin/python provenance-schemas/generate.py`.",
        "",
        module_doc,
        "",
        "## Tables",
        "",
        "| Table | From | Columns | A row is |",
        "| --- | --- | --- | --- |",
    ]
    for d in docs:
        origin = "Parsl" if d.table.name in PARSL_COLUMNS else "parsl_repro"
        out.append(f"| [`{d.table.name}`](#{d.table.name}) | {origin} | {len(d.table.columns)} "
                   f"| {md_cell(summary(d.doc))} |")
    out += [
        "",
        "## Entity-relationship diagram",
        "",
        "Each entity shows its key columns: primary key (PK), foreign key (FK) and the columns joins use. "
        "Solid lines are FOREIGN KEY constraints; dashed lines are joins on column values that no constraint "
        "enforces (by `run_id`, `task_id`, `try_id` and digests, as Parsl's own tables are joined). "
        "The same diagram, drawn without a renderer, is [`er.svg`](er.svg).",
        "",
        mermaid(docs, rels),
        "",
        "## Relationships",
        "",
        "| One side | Many side | Cardinality | Label in the diagram | Joined on | Enforced |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rel, enforced in rels:
        on = " and ".join(f"`{rel.parent}.{p}` = `{rel.child}.{c}`" for p, c in rel.on)
        card = f"{rel.parent_card} : {rel.child_card}"
        out.append(f"| `{rel.parent}` | `{rel.child}` | {card} | {md_cell(rel.text())} | {on} | "
                   f"{'FOREIGN KEY' if enforced else 'join only'} |")
    for d in docs:
        table = d.table
        ix = index_names(table)
        parsl = PARSL_COLUMNS.get(table.name, ())
        out += ["", f"## {table.name}", "", d.doc or "_No docstring._", "", parsl_note(table), "",
                "| Column | Type | Nullable | PK | FK | Index | Default | Parsl | Note |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for col in table.columns:
            fk = ", ".join(sorted(f"`{fk.target_fullname}`" for fk in col.foreign_keys))
            out.append("| " + " | ".join([
                f"`{col.name}`", type_name(col), "yes" if col.nullable else "no", "✓" if col.primary_key else "",
                fk, ", ".join(ix.get(col.name, [])), md_cell(default_of(col)), "✓" if col.name in parsl else "",
                md_cell(d.notes.get(col.name, "")),
            ]) + " |")
        pk = [c.name for c in table.primary_key.columns]
        extra = [f"Primary key: ({', '.join(pk)})."]
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            if len(index.columns) > 1:
                extra.append(f"Index `{index.name}`: ({', '.join(c.name for c in index.columns)}).")
        for uc in sorted((c for c in table.constraints if isinstance(c, UniqueConstraint)), key=lambda c: c.name or ""):
            extra.append(f"Unique `{uc.name}`: ({', '.join(c.name for c in uc.columns)}).")
        out += ["", " ".join(extra)]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------------
# er.svg: boxes in a grid, straight connectors, labels

FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
CHAR = 0.61  # width of one monospace character, in em
ROW_FONT, HEAD_FONT, LABEL_FONT, CARD_FONT = 12, 13, 11, 11
HEAD_H, ROW_H, PAD = 24, 17, 8
GAP_X, GAP_Y, MARGIN, TOP = 190, 100, 24, 64
PARSL_FILL, OURS_FILL = "#cfe0f5", "#d6eed0"
FK_STROKE, JOIN_STROKE = "#2d3a4a", "#6b7c93"


def _w(text: str, size: float) -> float:
    return len(text) * size * CHAR


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


@dataclass
class Box:
    name: str
    rows: list[tuple[str, str, str]]  # (tag, column, type)
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def _exit(box: Box, px: float, py: float, dx: float, dy: float) -> float:
    """The t >= 0 at which (px, py) + t * (dx, dy), starting inside ``box``, leaves it."""
    ts = []
    if dx > 0:
        ts.append((box.x + box.w - px) / dx)
    elif dx < 0:
        ts.append((box.x - px) / dx)
    if dy > 0:
        ts.append((box.y + box.h - py) / dy)
    elif dy < 0:
        ts.append((box.y - py) / dy)
    return min(ts) if ts else 0.0


def _hits(box: Box, x: float, y: float, w: float, h: float) -> bool:
    """Whether a w x h rectangle centred on (x, y) overlaps ``box``."""
    return abs(x - box.cx) < (w + box.w) / 2 and abs(y - box.cy) < (h + box.h) / 2


def _text(x: float, y: float, text: str, size: float, anchor: str = "middle", weight: str = "normal",
          fill: str = "#1b1f24") -> str:
    bold = ' font-weight="bold"' if weight == "bold" else ""
    return (f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size}" text-anchor="{anchor}" '
            f'dominant-baseline="central" fill="{fill}"{bold}>{escape(text)}</text>')


def _label(x: float, y: float, text: str, size: float, fill: str = "#1b1f24") -> list[str]:
    w, h = _w(text, size) + 6, size + 4
    return [f'<rect x="{_num(x - w / 2)}" y="{_num(y - h / 2)}" width="{_num(w)}" height="{_num(h)}" '
            f'fill="#ffffff" fill-opacity="0.92" rx="3"/>', _text(x, y, text, size, fill=fill)]


def render_svg(docs: list[TableDoc], rels: list[tuple[Rel, bool]]) -> str:
    boxes: dict[str, Box] = {}
    for d in docs:
        rows = [(tag, col.name, type_name(col)) for col, tag in key_columns(d.table, rels)]
        boxes[d.table.name] = Box(d.table.name, rows)

    tag_w = _w("PK, FK", ROW_FONT)
    name_w = max(_w(c, ROW_FONT) for b in boxes.values() for _, c, _ in b.rows) if any(
        b.rows for b in boxes.values()) else 0
    type_w = max((_w(t, ROW_FONT) for b in boxes.values() for _, _, t in b.rows), default=0)
    head_w = max(_w(b.name, HEAD_FONT) + 70 for b in boxes.values())
    box_w = math.ceil(max(head_w, PAD + tag_w + 10 + name_w + 14 + type_w + PAD))

    cells = dict(LAYOUT)
    extra_row = max((r for _, r in cells.values()), default=-1) + 1
    extra_col = 0
    for name in boxes:
        if name not in cells:
            cells[name] = (extra_col, extra_row)
            extra_col += 1
    cells = {n: c for n, c in cells.items() if n in boxes}
    n_cols = max(c for c, _ in cells.values()) + 1
    n_rows = max(r for _, r in cells.values()) + 1
    for b in boxes.values():
        b.w, b.h = box_w, HEAD_H + ROW_H * len(b.rows) + (PAD if b.rows else 0)
    band = [max((boxes[n].h for n, (_, r) in cells.items() if r == row), default=0) for row in range(n_rows)]
    band_top = [TOP + sum(band[:row]) + GAP_Y * row for row in range(n_rows)]
    for name, (col, row) in cells.items():
        b = boxes[name]
        b.x = MARGIN + col * (box_w + GAP_X)
        b.y = band_top[row] + (band[row] - b.h) / 2
    width = MARGIN * 2 + n_cols * box_w + (n_cols - 1) * GAP_X
    legend_y = band_top[-1] + band[-1] + 44
    height = legend_y + 56

    lines: list[str] = []
    labels: list[str] = []
    cards: list[str] = []
    pending: list[tuple[int, str, list[tuple[float, float]]]] = []  # (order, text, places to try)
    pair_count: dict[frozenset[str], int] = {}
    for rel, _ in rels:
        pair_count[frozenset((rel.parent, rel.child))] = pair_count.get(frozenset((rel.parent, rel.child)), 0) + 1
    pair_seen: dict[frozenset[str], int] = {}
    for rel, enforced in rels:
        stroke = FK_STROKE if enforced else JOIN_STROKE
        dash = "" if enforced else ' stroke-dasharray="6 4"'
        p, c = boxes[rel.parent], boxes[rel.child]
        if rel.parent == rel.child:  # a loop on the bottom edge, near the right corner
            ax, bx, y = p.x + p.w - 56, p.x + p.w - 18, p.y + p.h
            lines.append(f'<path d="M{_num(ax)} {_num(y)} C{_num(ax - 14)} {_num(y + 56)} {_num(bx + 14)} '
                         f'{_num(y + 56)} {_num(bx)} {_num(y)}" fill="none" stroke="{stroke}" stroke-width="1.4"'
                         f'{dash}/>')
            pending.append((0, rel.text(), [(bx + 18 + _w(rel.text(), LABEL_FONT) / 2, y + 34)]))
            cards.append(_text(ax - 10, y + 10, rel.child_card, CARD_FONT, fill="#8a2b0e", weight="bold"))
            cards.append(_text(bx + 18, y + 10, rel.parent_card, CARD_FONT, fill="#8a2b0e", weight="bold"))
            continue
        key = frozenset((rel.parent, rel.child))
        k, n = pair_seen.get(key, 0), pair_count[key]
        pair_seen[key] = k + 1
        offset = (k - (n - 1) / 2) * 22  # parallel connectors between the same two boxes
        dx, dy = c.cx - p.cx, c.cy - p.cy
        length = math.hypot(dx, dy)
        ux, uy = dx / length, dy / length
        nx, ny = -uy, ux
        if (nx, ny) < (0, 0) or (nx == 0 and ny < 0):  # a normal that does not depend on the direction
            nx, ny = -nx, -ny
        px, py = p.cx + nx * offset, p.cy + ny * offset
        qx, qy = c.cx + nx * offset, c.cy + ny * offset
        t0 = _exit(p, px, py, dx, dy)
        t1 = _exit(c, qx, qy, -dx, -dy)
        sx, sy = px + dx * t0, py + dy * t0
        ex, ey = qx - dx * t1, qy - dy * t1
        lines.append(f'<line x1="{_num(sx)}" y1="{_num(sy)}" x2="{_num(ex)}" y2="{_num(ey)}" stroke="{stroke}" '
                     f'stroke-width="1.4"{dash}/>')
        side = 1 if offset >= 0 else -1
        for (x, y, sign), card in (((sx, sy, 1), rel.parent_card), ((ex, ey, -1), rel.child_card)):
            cw, ch = _w(card, CARD_FONT) + 4, CARD_FONT + 2
            away = cw / 2 * abs(nx) + ch / 2 * abs(ny) + 8  # clear of the line and its label, whatever the slope
            for s in ((side,) if n > 1 else (side, -side)):  # the first place that hits no box
                tx = x + sign * ux * 18 + s * nx * away
                ty = y + sign * uy * 18 + s * ny * away
                if not any(_hits(b, tx, ty, cw, ch) for b in boxes.values()):
                    break
            cards.append(_text(tx, ty, card, CARD_FONT, fill="#8a2b0e", weight="bold"))
        if n > 1:  # beside its own line, on the side away from the other one
            lw, lh = _w(rel.text(), LABEL_FONT) + 6, LABEL_FONT + 4
            shift = lw / 2 * abs(nx) + lh / 2 * abs(ny) + 3
            mx, my = sx + (ex - sx) / 2, sy + (ey - sy) / 2
            pending.append((0, rel.text(), [(mx + side * nx * shift, my + side * ny * shift)]))
        else:  # on its line, slid along it if it would cover another label
            pending.append((1, rel.text(), [(sx + (ex - sx) * t, sy + (ey - sy) * t)
                                            for t in (0.5, 0.4, 0.6, 0.3, 0.7)]))
    placed: list[tuple[float, float, float, float]] = []
    for _, text, spots in sorted(pending, key=lambda item: item[0]):
        w, h = _w(text, LABEL_FONT) + 6, LABEL_FONT + 4
        free = [(x, y) for x, y in spots
                if not any(abs(x - px) < (w + pw) / 2 + 4 and abs(y - py) < (h + ph) / 2 + 2
                           for px, py, pw, ph in placed)
                and not any(_hits(b, x, y, w, h) for b in boxes.values())]
        x, y = (free or spots)[0]
        placed.append((x, y, w, h))
        labels += _label(x, y, text, LABEL_FONT)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" height="{_num(height)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" font-family="{FONT}">',
        f"<title>parsl_repro provenance schema {models.SCHEMA_VERSION}: entity-relationship diagram</title>",
        f'<rect width="{_num(width)}" height="{_num(height)}" fill="#ffffff"/>',
        _text(MARGIN, 26, f"parsl_repro provenance schema, version {models.SCHEMA_VERSION}", 17, "start", "bold"),
        _text(MARGIN, 48, "generated from parsl_repro.monitoring.models by provenance-schemas/generate.py; "
              "columns shown: keys and the columns joins use", 12, "start", fill="#4b5563"),
        '<g id="connectors">', *lines, "</g>", '<g id="tables">',
    ]
    for name, b in boxes.items():
        fill = PARSL_FILL if name in PARSL_COLUMNS else OURS_FILL
        out.append(f'<g id="table-{escape(name)}">')
        out.append(f'<rect x="{_num(b.x)}" y="{_num(b.y)}" width="{_num(b.w)}" height="{_num(b.h)}" rx="5" '
                   f'fill="#ffffff" stroke="#2d3a4a" stroke-width="1.2"/>')
        out.append(f'<path d="M{_num(b.x)} {_num(b.y + HEAD_H)} V{_num(b.y + 5)} Q{_num(b.x)} {_num(b.y)} '
                   f'{_num(b.x + 5)} {_num(b.y)} H{_num(b.x + b.w - 5)} Q{_num(b.x + b.w)} {_num(b.y)} '
                   f'{_num(b.x + b.w)} {_num(b.y + 5)} V{_num(b.y + HEAD_H)} Z" fill="{fill}" stroke="#2d3a4a" '
                   f'stroke-width="1.2"/>')
        out.append(_text(b.cx, b.y + HEAD_H / 2, name, HEAD_FONT, weight="bold"))
        for i, (tag, col, typ) in enumerate(b.rows):
            y = b.y + HEAD_H + PAD / 2 + ROW_H * i + ROW_H / 2
            if tag:
                out.append(_text(b.x + PAD, y, tag, ROW_FONT - 2, "start", "bold", "#8a2b0e"))
            out.append(_text(b.x + PAD + tag_w + 10, y, col, ROW_FONT, "start"))
            out.append(_text(b.x + b.w - PAD, y, typ, ROW_FONT - 1, "end", fill="#6b7280"))
        out.append("</g>")
    out += ["</g>", '<g id="labels">', *labels, *cards, "</g>"]

    lx = MARGIN
    legend = [
        f'<rect x="{lx}" y="{_num(legend_y - 7)}" width="14" height="14" fill="{PARSL_FILL}" stroke="#2d3a4a"/>',
        _text(lx + 20, legend_y, "Parsl's monitoring table (same names)", 12, "start"),
        f'<rect x="{lx + 320}" y="{_num(legend_y - 7)}" width="14" height="14" fill="{OURS_FILL}" stroke="#2d3a4a"/>',
        _text(lx + 340, legend_y, "added by parsl_repro", 12, "start"),
        f'<line x1="{lx + 540}" y1="{_num(legend_y)}" x2="{lx + 590}" y2="{_num(legend_y)}" stroke="{FK_STROKE}" '
        f'stroke-width="1.4"/>',
        _text(lx + 598, legend_y, "FOREIGN KEY", 12, "start"),
        f'<line x1="{lx + 720}" y1="{_num(legend_y)}" x2="{lx + 770}" y2="{_num(legend_y)}" stroke="{JOIN_STROKE}" '
        f'stroke-width="1.4" stroke-dasharray="6 4"/>',
        _text(lx + 778, legend_y, "join on column values, no constraint", 12, "start"),
        _text(lx, legend_y + 26, "1, 0..1, n at a line's end: how many rows of that table one row at the other "
              "end has. Labels name the join columns.", 12, "start", fill="#4b5563"),
    ]
    out += ['<g id="legend">', *legend, "</g>", "</svg>"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------------------


def generate() -> dict[Path, str]:
    docs = read_models()
    rels = relationships({d.table.name: d.table for d in docs})
    return {SCHEMA_MD: render_markdown(docs, rels), ER_SVG: render_svg(docs, rels)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if schema.md or er.svg differ from what would be generated")
    args = parser.parse_args(argv)
    outputs = generate()
    if not args.check:
        for path, text in outputs.items():
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"wrote {path.relative_to(HERE.parent)}")
        return 0
    stale = []
    for path, text in outputs.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        rel = path.relative_to(HERE.parent)
        if current is None:
            print(f"{rel} is missing", file=sys.stderr)
            continue
        diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), f"{rel} (on disk)",
                                         f"{rel} (from the models)", lineterm="", n=1))
        print(f"{rel} differs from what the models generate:", file=sys.stderr)
        for line in diff[:40]:
            print("  " + line, file=sys.stderr)
        if len(diff) > 40:
            print(f"  ... {len(diff) - 40} more diff lines", file=sys.stderr)
    if stale:
        print("The schema docs are out of date: run .venv/bin/python provenance-schemas/generate.py and commit "
              "the result.", file=sys.stderr)
        return 1
    print("schema.md and er.svg are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
