"""``parsl-repro``: ask the provenance store what happened.

    parsl-repro runs                      recent runs, newest first
    parsl-repro show [RUN]                one run: script, code version, environment, task states
    parsl-repro tasks [RUN] [--state S]   the tasks of a run
    parsl-repro files [RUN]               the files a run read and wrote, by content digest
    parsl-repro why [RUN] [--app A] [--task N]   why tasks were (not) memo hits
    parsl-repro report [RUN] [-o FILE.html]   one run as a self-contained HTML report (offline)
    parsl-repro export [RUN...] --format F [-o PATH]   W3C PROV (six syntaxes) or a Workflow Run RO-Crate
    parsl-repro replay [RUN] [--verify] [--config FILE.py] [--only APP]   run it again from the record
    parsl-repro diff RUN_A RUN_B          what changed between two runs (exit 1 when anything did)
    parsl-repro lineage PATH [--depth N] [--forward] [--format text|json|dot]   where a file came from
    parsl-repro gc --keep-runs N | --older-than DAYS   drop stored results of old runs
    parsl-repro spool PATH                write a spool file left by an unreachable database

RUN is a run id, a unique prefix of one, or ``last`` (the default). The store is
``runinfo/provenance.db`` unless ``--runinfo DIR`` or ``--db URL`` says otherwise. Every listing
takes ``--json``; tables are drawn for a terminal and plain when piped. Times are shown in local
time with their zone (ISO 8601 with the UTC offset in ``--json``); the store keeps them in UTC.

Exit status: 0 on success; 1 when a filter names something the run does not have (a task, an
app, a state); 2 when the store or the run cannot be found or read.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from parsl_repro.errors import ParslError
from parsl_repro.task_states import CANCELLED, FAILED_STATES, SUCCEEDED_STATES


def _url(args: argparse.Namespace) -> str:
    """--db, else --runinfo, else $PARSL_REPRO_PROVENANCE_URL, else ./runinfo/provenance.db."""
    from parsl_repro.monitoring.engine import default_url

    if args.db:
        return args.db
    if args.runinfo:
        return default_url(args.runinfo)
    return os.environ.get("PARSL_REPRO_PROVENANCE_URL") or default_url("runinfo")


def _engine(args: argparse.Namespace, *, write: bool = False) -> Any:
    """The store to answer from: opened read-only, except for ``gc``, which deletes."""
    from parsl_repro.monitoring.engine import check_schema_readable, make_engine, open_for_reading, sqlite_path
    from parsl_repro.utils import redact_secrets

    url = _url(args)
    if not write:
        return open_for_reading(url)
    path = sqlite_path(url)
    if path is not None and not os.path.exists(path):
        raise ParslError(f"No provenance store at {path}: run a workflow first, or give --runinfo DIR / --db URL")
    engine = make_engine(url, writer=False)
    check_schema_readable(engine, redact_secrets(url))
    return engine


def _on_terminal() -> bool:
    return sys.stdout.isatty()


def _plain(value: Any) -> Any:
    """A value as text for a table: times in local time, with the zone's name."""
    if isinstance(value, datetime.datetime):
        return _local(value).strftime("%Y-%m-%d %H:%M:%S %Z")
    return value


def _json_value(value: Any) -> Any:
    """A value for ``--json``: times in ISO 8601, local, with their UTC offset."""
    if isinstance(value, datetime.datetime):
        return _local(value).isoformat()
    return value


def _local(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:  # the store keeps UTC
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone()


def _emit_table(args: argparse.Namespace, rows: list[dict[str, Any]], columns: Sequence[str], title: str) -> None:
    if args.json:
        json.dump([{k: _json_value(v) for k, v in row.items()} for row in rows], sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    if _on_terminal():
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*["" if row.get(c) is None else escape(str(_plain(row.get(c)))) for c in columns])
        Console().print(table)
        return
    sys.stdout.write("\t".join(columns) + "\n")
    for row in rows:
        sys.stdout.write("\t".join("" if row.get(c) is None else str(_plain(row.get(c))) for c in columns) + "\n")


def cmd_runs(args: argparse.Namespace) -> int:
    from parsl_repro.monitoring import queries

    rows = queries.list_runs(_engine(args), limit=args.limit)
    for row in rows:
        row["run"] = row["run_id"][:12]
        ended = row["time_completed"]
        seconds = None if ended is None else (ended - row["time_began"]).total_seconds()
        row["duration"] = seconds if args.json or seconds is None else _duration(seconds)
    _emit_table(args, rows, ["run", "workflow_name", "time_began", "duration", "outcome",
                             "tasks_completed_count", "tasks_failed_count", "host"], "runs")
    return 0


def _duration(seconds: float) -> str:
    """``H:MM:SS`` (``D days, H:MM:SS`` past a day), to the second."""
    return str(datetime.timedelta(seconds=round(seconds)))


def cmd_show(args: argparse.Namespace) -> int:
    from parsl_repro.monitoring import queries

    engine = _engine(args)
    detail = queries.run_detail(engine, queries.resolve_run(engine, args.run))
    if args.json:
        json.dump({k: _json_value(v) for k, v in detail.items()}, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0
    skip = {"packages", "config_summary"}
    fields = [(key, str(_plain(value))) for key, value in detail.items()
              if key not in skip and value not in (None, "", [], {})]
    fields.append(("packages", f"{len(detail['packages'])} installed (digest {detail.get('packages_digest')})"))
    finished, total, progress = _progress(detail.get("task_states") or {})
    fields.append(("progress", progress))
    config = detail.get("config_summary")
    if _on_terminal():
        from rich.console import Console, Group
        from rich.markup import escape
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table(title=f"run {detail['run_id']}", show_header=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in fields:
            if key == "progress":
                table.add_row(key, Group(ProgressBar(total=max(total, 1), completed=finished, width=40), value))
            else:
                table.add_row(key, escape(value))  # values are data: "[...]" is not rich markup
        if config:
            table.add_row("config", escape(config))
        Console().print(table)
        return 0
    for key, value in fields:
        sys.stdout.write(f"{key:22} {value}\n")
    if config:
        sys.stdout.write("config\n    " + config.replace("\n", "\n    ") + "\n")
    return 0


def _progress(states: dict[str, int]) -> tuple[int, int, str]:
    """(finished, total, "N of M tasks finished, K failed, C cancelled"): cancelled tasks never ran
    to an end, so they are neither finished nor failed."""
    total = sum(states.values())
    finished = sum(states.get(s, 0) for s in (*SUCCEEDED_STATES, *FAILED_STATES))
    failed = sum(states.get(s, 0) for s in FAILED_STATES)
    cancelled = states.get(CANCELLED, 0)
    return finished, total, (f"{finished} of {total} tasks finished" + (f", {failed} failed" if failed else "")
                             + (f", {cancelled} cancelled" if cancelled else ""))


def cmd_tasks(args: argparse.Namespace) -> int:
    from parsl_repro.monitoring import queries

    engine = _engine(args)
    run_id = queries.resolve_run(engine, args.run)
    rows = queries.list_tasks(engine, run_id, state=args.state, app=args.app)
    _emit_table(args, rows, ["task_id", "task_func_name", "task_status_name", "task_fail_count", "executor",
                             "args_repr", "error"], f"tasks of run {run_id[:12]}")
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    from parsl_repro.monitoring import queries

    engine = _engine(args)
    run_id = queries.resolve_run(engine, args.run)
    rows = queries.list_files(engine, run_id)
    if not args.json:  # for reading: paths relative to where the run was started, digests cut short
        cwd = queries.run_cwd(engine, run_id)
        for row in rows:
            row["sha256"] = (row["sha256"] or "")[:16]
            if cwd and row["url"].startswith(cwd.rstrip("/") + "/"):
                row["url"] = os.path.relpath(row["url"], cwd)
    _emit_table(args, rows, ["task_id", "role", "url", "sha256", "size"], f"files of run {run_id[:12]}")
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    from parsl_repro.monitoring import queries

    engine = _engine(args)
    run_id = queries.resolve_run(engine, args.run)
    explanations = queries.why(engine, run_id, app=args.app, task_id=args.task)
    if args.json:
        json.dump([e.as_dict() for e in explanations], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not explanations:
        if queries.cached_task_count(engine, run_id):
            sys.stdout.write(f"Every cached task of run {run_id[:12]} was a memo hit.\n")
        else:
            sys.stdout.write(f"Run {run_id[:12]} has no cached tasks: none of its apps is declared with "
                             f"cache=True.\n")
        return 0
    if _on_terminal():
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        colours = {"hit": "green", "miss": "yellow", "first": "cyan", "not-cached": "magenta"}
        table = Table(title=f"why: run {run_id[:12]}")
        for column in ("task", "app", "outcome", "explanation"):
            table.add_column(column, overflow="fold")
        for e in explanations:
            lines = [e.summary, *(f"- {change}" for change in e.changed), *(f"note: {note}" for note in e.notes)]
            table.add_row(str(e.task_id), escape(e.app), f"[{colours.get(e.outcome, 'white')}]{e.outcome}[/]",
                          escape("\n".join(lines)))
        Console().print(table)
        return 0
    for e in explanations:
        sys.stdout.write(f"task {e.task_id} ({e.app}): {e.summary}\n")
        for change in e.changed:
            sys.stdout.write(f"    - {change}\n")
        for note in e.notes:
            sys.stdout.write(f"    note: {note}\n")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from parsl_repro.monitoring import queries

    if args.keep_runs is None and args.older_than is None:
        raise ParslError("gc needs a policy: --keep-runs N and/or --older-than DAYS")
    summary = queries.gc_results(_engine(args, write=True), keep_runs=args.keep_runs, older_than_days=args.older_than,
                                 dry_run=args.dry_run)
    if args.json:
        json.dump(summary, sys.stdout)
        sys.stdout.write("\n")
    else:
        verb = "would drop" if args.dry_run else "dropped"
        sys.stdout.write(f"{verb} {summary['results']} stored results and {summary['arguments']} recorded "
                         f"arguments ({summary['bytes']} bytes) of {summary['runs']} old runs\n")
    return 0


def cmd_spool(args: argparse.Namespace) -> int:
    from parsl_repro.monitoring.store import replay_spool

    written = replay_spool(_url(args), args.path)
    sys.stdout.write(json.dumps({"events": written}) + "\n" if args.json else f"wrote {written} spooled events\n")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from parsl_repro.monitoring import queries
    from parsl_repro.viz.report import write_report

    engine = _engine(args)
    run_id = queries.resolve_run(engine, args.run)
    output = args.output or f"report-{run_id[:8]}.html"
    figures = write_report(engine, run_id, output, _url(args), args.links)
    size = os.path.getsize(output)
    if args.json:
        sys.stdout.write(json.dumps({"run_id": run_id, "path": os.path.abspath(output), "figures": figures,
                                     "bytes": size}) + "\n")
    else:
        sys.stdout.write(f"wrote {output}: run {run_id[:8]}, {figures} figures, {size / 2**20:.1f} MiB "
                         f"(self-contained: opens offline in any browser)\n")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from parsl_repro.monitoring import queries
    from parsl_repro.monitoring.export import check_format, export

    check_format(args.format)
    crate_only = [flag for flag, given in (("--include-results/--no-results", args.include_results is not None),
                                           ("--files", args.files is not None), ("--license", args.license is not None))
                  if given]
    if crate_only and args.format != "ro-crate":
        raise ParslError(f"{', '.join(crate_only)} only apply to --format ro-crate, not {args.format}")
    engine = _engine(args)
    run_ids = [queries.resolve_run(engine, ref) for ref in (args.runs or ["last"])]
    output = args.output
    if output is None and args.format == "ro-crate":
        output = f"ro-crate-{run_ids[0][:8]}"
    if output in (None, "-"):
        done = export(engine, run_ids, args.format, sys.stdout)
    else:
        done = export(engine, run_ids, args.format, output, force=args.force,
                      include_results=bool(args.include_results), files=args.files or "reference", license=args.license)
    for note in done.notes:
        sys.stderr.write(f"parsl-repro: note: {note}\n")
    if args.json:  # on standard output, unless the document went there
        (sys.stderr if done.path is None else sys.stdout).write(json.dumps(
            {"format": done.format, "runs": done.run_ids, "path": done.path and os.path.abspath(done.path),
             "records": done.records, "bytes": done.bytes, "notes": done.notes}) + "\n")
    elif done.path:
        sys.stderr.write(f"wrote {done.path}: {done.format}, {len(done.run_ids)} run(s), "
                         f"{done.records} {_UNITS.get(done.format, 'records')}, {_bytes(done.bytes)}\n")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from parsl_repro.reproduce.replay import VERDICTS, replay

    def say(line: str) -> None:
        sys.stderr.write(f"parsl-repro: {line}\n")
        sys.stderr.flush()

    report = replay(_url(args), args.run, config=args.config, only=args.only or (), verify=args.verify,
                    jobs=args.jobs, in_place=args.in_place, say=say)
    if args.json:
        json.dump(report.as_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return report.exit_status
    by_app: dict[str, dict[str, Any]] = {}
    for t in report.tasks:
        row = by_app.setdefault(t.app, {"app": t.app, "tasks": 0})
        row["tasks"] += 1
        row[t.verdict] = row.get(t.verdict, 0) + 1
    counts = report.counts()
    columns = ["app", "tasks"] + [v for v in VERDICTS if counts[v]]
    _emit_table(args, sorted(by_app.values(), key=lambda r: r["app"]), columns,
                f"replay {report.replay_run_id or '(not started)'} of run {report.original}")
    shown = [t for t in report.tasks if t.verdict not in ("identical", "replayed", "skipped")]
    for t in shown[:REPLAY_DETAILS]:
        sys.stdout.write(f"task {t.task_id} ({t.app}): {t.verdict}" + (f": {t.reason}" if t.reason else "") + "\n")
        for d in t.differences:
            old, new = (d.recorded or "-")[:16], (d.replayed or "-")[:16]
            sys.stdout.write(f"    {d.what}: recorded {old}, replayed {new}\n")
            for line in d.lines:
                sys.stdout.write(f"        {line}\n")
    if len(shown) > REPLAY_DETAILS:
        sys.stdout.write(f"... and {len(shown) - REPLAY_DETAILS} more tasks (--json lists every one)\n")
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    say(f"{summary or 'no tasks'} in {report.seconds:.1f} s" + (f"; files in {report.directory}" if report.directory
                                                                 else ""))
    return report.exit_status


REPLAY_DETAILS = 50


def cmd_diff(args: argparse.Namespace) -> int:
    from parsl_repro.monitoring import queries
    from parsl_repro.monitoring.read.diff import diff
    from parsl_repro.reproduce.difftext import as_text

    engine = _engine(args)
    found = diff(engine, queries.resolve_run(engine, args.run_a), queries.resolve_run(engine, args.run_b))
    if args.json:
        json.dump(found.as_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(as_text(found))
    return 1 if found.differs else 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from parsl_repro.monitoring.queries import NothingMatches
    from parsl_repro.monitoring.read.lineage import NotInStore, lineage
    from parsl_repro.reproduce.lineage import as_dot, as_text

    fmt = "json" if args.json else args.format
    try:
        found = lineage(_engine(args), args.path, depth=args.depth, forward=args.forward)
    except NotInStore as e:
        raise NothingMatches(str(e)) from e
    if fmt == "json":
        json.dump(found.as_dict(), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    elif fmt == "dot":
        for note in found.located.notes:
            sys.stderr.write(f"parsl-repro: note: {note}\n")
        sys.stdout.write(as_dot(found))
    else:
        sys.stdout.write(as_text(found))
    return 1 if found.located.how == "path" else 0


def _bytes(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count / 2**10:.0f} KiB"


_UNITS = {"prov-o": "triples", "prov-trig": "triples", "ro-crate": "entities"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parsl-repro", description="Ask the provenance store what happened.")
    parser.add_argument("--runinfo", help="the run directory root holding provenance.db (default: runinfo, "
                                          "or $PARSL_REPRO_PROVENANCE_URL when set)")
    parser.add_argument("--db", help="a database URL (overrides --runinfo and $PARSL_REPRO_PROVENANCE_URL)")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Any, help_text: str, run: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(handler=handler)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        if run:
            p.add_argument("run", nargs="?", default="last", help="run id, unique prefix, or 'last'")
        return p

    command("runs", cmd_runs, "list runs", run=False).add_argument("--limit", type=int, default=50)
    command("show", cmd_show, "show one run")
    tasks = command("tasks", cmd_tasks, "list a run's tasks")
    tasks.add_argument("--state", help="only tasks in this state (e.g. failed)")
    tasks.add_argument("--app", help="only tasks of this app")
    command("files", cmd_files, "list a run's files")
    why = command("why", cmd_why, "explain memo hits and misses")
    why.add_argument("--app", help="only tasks of this app")
    why.add_argument("--task", type=int, help="only this task id")
    report = command("report", cmd_report, "write one run as a self-contained HTML file (figures included)")
    report.add_argument("-o", "--output", help="the file to write (default: report-RUN.html)")
    report.add_argument("--links", metavar="URL", help="make task and file names links into the parsl-visualize "
                        "dashboard at URL (e.g. http://127.0.0.1:8080); by default they are plain text")
    export = command("export", cmd_export, "export runs as W3C PROV or a Workflow Run RO-Crate", run=False)
    export.add_argument("runs", nargs="*", metavar="RUN", help="run ids, unique prefixes or 'last' (the default); "
                        "several runs go into one document (a resumed run and its parent, say)")
    export.add_argument("-f", "--format", required=True, metavar="FORMAT",
                        help="one of: prov-o (Turtle), prov-trig, prov-jsonld, prov-json, prov-n, prov-xml, ro-crate")
    export.add_argument("-o", "--output", help="the file (or, for ro-crate, the directory or .zip) to write; "
                        "PROV formats go to standard output without it or with '-'; ro-crate defaults to "
                        "ro-crate-RUN")
    export.add_argument("--force", action="store_true", help="replace the output if it exists")
    results = export.add_mutually_exclusive_group()
    export.set_defaults(include_results=None)
    results.add_argument("--include-results", dest="include_results", action="store_true",
                         help="ro-crate: add the stored result values (pickles) as files")
    results.add_argument("--no-results", dest="include_results", action="store_false",
                         help="ro-crate: leave stored result values out (the default)")
    export.add_argument("--files", choices=("copy", "reference"),
                        help="ro-crate: copy the runs' files into the crate when they still match their recorded "
                             "sha256, or reference them by URL with their digest (the default)")
    export.add_argument("--license", help="ro-crate: the crate's license, an SPDX id (CC-BY-4.0) or a URL; "
                        "without it the crate says that none was stated")
    replay = command("replay", cmd_replay, "run a recorded run again from the record, and verify it")
    replay.add_argument("--config", metavar="FILE.py", help="a Python file defining `config` (a Config) to run on; "
                        "default: the threads executor")
    replay.add_argument("--only", action="append", metavar="APP", help="replay only this app's tasks (repeatable); "
                        "the others' recorded values feed them")
    replay.add_argument("--verify", action="store_true", help="compare every result and output file with the "
                        "record; exit 1 when any differs")
    replay.add_argument("--jobs", type=int, metavar="N", help="threads of the default configuration")
    replay.add_argument("--in-place", action="store_true", help="write outputs at their recorded paths, over "
                        "the recorded run's files (by default they go to runinfo/replay-NNN/)")
    diff = command("diff", cmd_diff, "what changed between two runs: code, arguments, input files, environment, "
                   "config, results", run=False)
    diff.add_argument("run_a", metavar="RUN_A", help="run id, unique prefix or 'last'")
    diff.add_argument("run_b", metavar="RUN_B", help="run id, unique prefix or 'last'")
    lineage = command("lineage", cmd_lineage, "what produced a file (found by its content), or what was derived "
                      "from it", run=False)
    lineage.add_argument("path", help="the file (moved or renamed since the run is fine), or sha256:HEX")
    lineage.add_argument("--depth", type=int, metavar="N", help="follow N task levels (default: back to raw inputs)")
    lineage.add_argument("--forward", action="store_true", help="what was derived from it, instead of what it "
                         "came from")
    lineage.add_argument("--format", choices=("text", "json", "dot"), default="text",
                         help="text (a tree, the default), json, or dot (Graphviz)")
    spool = command("spool", cmd_spool, "write a spool file left by an unreachable database", run=False)
    spool.add_argument("path", help="the provenance-spool-RUN.pickle file in a run directory")
    gc = command("gc", cmd_gc, "drop stored results of old runs", run=False)
    gc.add_argument("--keep-runs", type=int, help="keep results of the newest N runs")
    gc.add_argument("--older-than", type=float, help="drop results of runs begun more than DAYS ago")
    gc.add_argument("--dry-run", action="store_true", help="report what would be dropped")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from parsl_repro.monitoring.queries import NothingMatches

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except NothingMatches as e:
        sys.stderr.write(f"parsl-repro: {e}\n")
        return 1
    except ParslError as e:
        sys.stderr.write(f"parsl-repro: {e}\n")
        return 2
    except BrokenPipeError:  # output piped into head and the like
        sys.stderr.close()
        return 0
    except Exception as e:  # a database that cannot be reached or read: one line, not a traceback
        from sqlalchemy.exc import SQLAlchemyError

        from parsl_repro.utils import redact_secrets
        if not isinstance(e, SQLAlchemyError):
            raise
        where = args.db or "the store"
        sys.stderr.write(f"parsl-repro: cannot read {redact_secrets(where) if args.db else where}: "
                         f"{type(e).__name__}: {str(e).splitlines()[0]}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
