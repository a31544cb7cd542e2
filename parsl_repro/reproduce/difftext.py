"""``parsl-repro diff`` as text (the comparison itself is ``parsl_repro.monitoring.read.diff``;
``--json`` is its ``as_dict``)."""
from __future__ import annotations

from typing import Any

from parsl_repro.monitoring.read.diff import RunDiff

TASK_LINES = 50


def _short(value: Any, n: int = 12) -> str:
    if value is None:
        return "-"
    text = str(value)
    return text[:n] if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def as_text(found: RunDiff) -> str:
    c = found.comparison
    a, b = c.a.run, c.b.run
    lines = [f"A: run {found.a} ({a.get('workflow_name') or ''}, {a.get('outcome')})",
             f"B: run {found.b} ({b.get('workflow_name') or ''}, {b.get('outcome')})"]
    env = [d for d in c.environment if not d.same]
    lines.append("environment: " + ("same" if not env and not (c.packages_added or c.packages_removed
                                                                or c.packages_changed) else "differs"))
    for d in env:
        lines.append(f"  {d.label}: {_short(d.a)} -> {_short(d.b)}")
    if not c.packages_known:
        lines.append("  (a package list was not recorded for both runs)")
    for name, old, new in c.packages_changed:
        lines.append(f"  package {'upgraded' if _newer(new, old) else 'changed'}: {name} {old} -> {new}")
    for name, version in c.packages_added:
        lines.append(f"  package added in B: {name} {version}")
    for name, version in c.packages_removed:
        lines.append(f"  package removed in B: {name} {version}")
    script = [d for d in c.provenance if not d.same]
    lines.append("script and code version: " + ("same" if not script else "differ"))
    lines += [f"  {d.label}: {_short(d.a)} -> {_short(d.b)}" for d in script]
    lines.append("config: " + ("same" if not found.config_diff else "differs"))
    lines += [f"  {line}" for line in found.config_diff[2:]]
    lines.append("code: " + ("same" if not found.code else f"{len(found.code)} app(s) changed"))
    for change in found.code:
        lines.append(f"  app {change.app}: {_short(change.a_digest)} -> {_short(change.b_digest)}"
                     + (f" ({', '.join(change.components)} changed)" if change.components else ""))
        lines += [f"    {line}" for line in change.source_diff]
    only = [row["app"] for row in c.code if row["difference"].startswith("only in")]
    if only:
        lines.append("  apps in one run only: " + ", ".join(
            f"{row['app']} ({row['difference']})" for row in c.code if row["difference"].startswith("only in")))
    if not found.matched:
        lines.append("tasks: the runs have no tasks in common (no app ran in both)")
    else:
        lines.append(f"tasks: {found.matched} matched, {found.same} the same, "
                     f"{found.matched - found.same} differ; {found.only_a} only in A, {found.only_b} only in B")
    for pair in found.pairs[:TASK_LINES]:
        if pair.b_task is None or pair.a_task is None:
            lines.append(f"  {pair.app}: task {pair.a_task if pair.b_task is None else pair.b_task} only in "
                         f"{'A' if pair.b_task is None else 'B'}")
            continue
        lines.append(f"  {pair.app} task {pair.a_task} / task {pair.b_task}:")
        for ch in pair.changes:
            lines.append(f"    {ch.what} {ch.name}: {_short(ch.a)} -> {_short(ch.b)}")
    if len(found.pairs) > TASK_LINES:
        lines.append(f"  ... and {len(found.pairs) - TASK_LINES} more (--json lists every one)")
    timed = [d for d in found.durations if d["a_mean_seconds"] is not None and d["b_mean_seconds"] is not None]
    if timed:
        lines.append("durations (mean per task): " + "; ".join(
            f"{d['app']} {d['a_mean_seconds']:.3f} s -> {d['b_mean_seconds']:.3f} s" for d in timed))
    return "\n".join(lines) + "\n"


def _newer(new: str, old: str) -> bool:
    try:
        from packaging.version import Version

        return Version(new) > Version(old)
    except Exception:  # noqa: BLE001 - not PEP 440 versions: just "changed"
        return False
