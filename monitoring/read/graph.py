"""A run's task graph, bounded: tasks and the files they pass as nodes, dependencies as edges.

A run of at most ``threshold`` tasks is drawn task by task. A larger run is collapsed by app: one
node per app with its task count and counts by state, and edges between apps weighted by how many
task dependencies join them (both aggregated in SQL). Around a selected task (its upstream and
downstream tasks within ``depth`` steps, and the chain back to the first failure when it failed)
or within a selected app, tasks are drawn one by one and the rest stays collapsed; the edges
between the drawn tasks and the collapsed apps are aggregated in SQL too, and taken out of the
app-to-app weights so that every dependency is counted once.

Edges that carry a failure downstream (from a failed or dependency-failed task to a task that
failed because of it) are counted apart (``failing``), and nodes that failed first (failed tasks
none of whose dependencies failed) are marked, so a page can highlight a failure's chain."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, select
from sqlalchemy.orm import aliased

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.read.common import require_run
from parsl_repro.monitoring.read.failures import DEP_FAIL, FAILED, FAILURE_STATES, first_failures

THRESHOLD = 300
"""Runs with more tasks than this are collapsed by app."""
MAX_TASKS = 1500  # tasks drawn one by one, whatever the threshold asked for
DEPTH = 2
MAX_DEPTH = 3
NEIGHBOURS = 300  # tasks drawn upstream, and again downstream, of a selected task
CHAIN_LIMIT = 100  # tasks added to show a failure's chain back to its first failure
APP_LIMIT = 300  # app nodes (the largest apps)
FILE_LIMIT = 200  # file nodes
EDGE_LIMIT = 20_000  # task-to-task edges drawn
DETAIL_CHARS = 300
FILE_ROLES = ("input", "output")


@dataclass
class GraphNode:
    """A node: a task, an app standing for its tasks not drawn one by one, or a file."""

    key: str  # "task:8", "app:explode", "file:3": unique in the graph
    kind: str  # task | app | file
    label: str
    state: str  # a task's state; an app's most telling one (failed, dep_fail, else its commonest); "file"
    task_id: int | None = None
    app: str | None = None
    file_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)  # an app's tasks (not drawn one by one) by state
    detail: str = ""  # a task's error, a file's URL
    first_failures: int = 0  # 1 for a task that failed first; for an app, how many of its tasks did
    focus: bool = False  # the selected task

    @property
    def size(self) -> int:
        """How many tasks the node stands for (1 for a task, 0 for a file)."""
        return sum(self.counts.values()) if self.kind == "app" else int(self.kind == "task")


@dataclass
class GraphEdge:
    """``target`` depended on ``source`` (``weight`` task dependencies), or a file passed along."""

    source: str
    target: str
    weight: int = 1
    failing: int = 0  # how many of them carried a failure downstream
    kind: str = "data"  # data | join | file


@dataclass
class GraphData:
    """What the task graph page draws."""

    run_id: str
    total_tasks: int
    threshold: int
    depth: int
    collapsed: bool  # some tasks are drawn as their app
    focus_task: int | None
    app: str | None
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    states: dict[str, int]  # every task of the run by state
    notes: list[str] = field(default_factory=list)  # what was left out, and why
    problem: str | None = None  # a selection that could not be honoured

    @property
    def drawn_tasks(self) -> int:
        """Tasks drawn one by one."""
        return sum(1 for node in self.nodes if node.kind == "task")


def task_graph(engine: Engine, run_id: str, *, task: int | None = None, app: str | None = None,
               threshold: int = THRESHOLD, depth: int = DEPTH) -> GraphData:
    """The run's graph: every task when there are at most ``threshold``; otherwise one node per app,
    with the neighbourhood of ``task`` (``depth`` steps up and down, bounded by ``NEIGHBOURS``
    each way, plus its failure chain) or the tasks of ``app`` (at most ``threshold``) drawn one by
    one. A selection that does not exist is reported in ``problem`` and the rest still drawn.
    Raises ``RunNotFound``."""
    threshold = max(1, min(threshold, MAX_TASKS))
    depth = max(1, min(depth, MAX_DEPTH))
    t = m.Task
    with engine.connect() as conn:
        require_run(conn, run_id)
        by_app: dict[str, Counter[str]] = {}
        for name, state, n in conn.execute(select(t.task_func_name, t.task_status_name, func.count())
                                           .where(t.run_id == run_id).group_by(t.task_func_name, t.task_status_name)):
            by_app.setdefault(name, Counter())[state or "unknown"] += n
        states: Counter[str] = sum(by_app.values(), Counter())
        total = sum(states.values())
        graph = GraphData(run_id, total, threshold, depth, total > threshold, None, None, [], [], dict(states))
        if task is not None:
            if _task_exists(conn, run_id, task):
                graph.focus_task = task
            else:
                graph.problem = f"This run has no task {task}: showing the whole run."
        if app is not None and graph.focus_task is None:
            if app in by_app:
                graph.app = app
            else:
                graph.problem = f"This run has no app {app!r}: showing the whole run."
        if not graph.collapsed:
            expanded = list(conn.execute(select(t.task_id).where(t.run_id == run_id).order_by(t.task_id)).scalars())
        elif graph.focus_task is not None:
            expanded = _neighbourhood(conn, graph, graph.focus_task)
        elif graph.app is not None:
            expanded = list(conn.execute(select(t.task_id).where(t.run_id == run_id, t.task_func_name == graph.app)
                                         .order_by(t.task_id).limit(threshold)).scalars())
            left = by_app[graph.app].total() - len(expanded)
            if left:
                graph.notes.append(f"The first {len(expanded):,} tasks of {graph.app} are drawn; its other {left:,} "
                                   f"stay collapsed into its app node.")
        else:
            expanded = []
        _add_tasks(conn, graph, expanded)
        if graph.collapsed:
            _add_apps(conn, graph, by_app, expanded)
        _add_files(conn, graph, expanded)
    return graph


def _task_exists(conn: Connection, run_id: str, task_id: int) -> bool:
    t = m.Task
    return conn.execute(select(t.task_id).where(t.run_id == run_id, t.task_id == task_id)).first() is not None


def _neighbourhood(conn: Connection, graph: GraphData, task_id: int) -> list[int]:
    """``task_id``, the tasks within ``graph.depth`` steps upstream and downstream of it (at most
    ``NEIGHBOURS`` each way), and, when it failed, the tasks on its way back to its first failures."""
    d = m.Dependency
    found = {task_id: None}
    for near, far in ((d.task_id, d.depends_on), (d.depends_on, d.task_id)):
        frontier, reached = [task_id], 0
        for _ in range(graph.depth):
            if not frontier or reached >= NEIGHBOURS:
                break
            # neither DISTINCT nor ORDER BY: either leads SQLite (without ANALYZE) to scan the run's edges
            step = sorted(set(conn.execute(select(far).where(d.run_id == graph.run_id, near.in_(frontier))
                                           .limit(NEIGHBOURS * 4)).scalars()))
            if len(step) > NEIGHBOURS - reached:
                step = step[:NEIGHBOURS - reached]
                graph.notes.append(f"Only the nearest {NEIGHBOURS:,} tasks "
                                   f"{'upstream' if near is d.task_id else 'downstream'} of task {task_id} are drawn.")
            frontier = [other for other in step if other not in found]
            found.update(dict.fromkeys(frontier))
            reached += len(frontier)
    chain: list[int] = []
    for root in first_failures(conn, graph.run_id, [task_id]).get(task_id, []):
        chain += [*root.via, root.task_id]
    if len(chain) > CHAIN_LIMIT:
        graph.notes.append(f"The failure chain of task {task_id} is drawn in part ({CHAIN_LIMIT} of its tasks).")
    found.update(dict.fromkeys(chain[:CHAIN_LIMIT]))
    return list(found)


def _add_tasks(conn: Connection, graph: GraphData, expanded: list[int]) -> None:
    """Task nodes for ``expanded`` and the dependencies among them, failing ones and first
    failures marked."""
    if not expanded:
        return
    t, d = m.Task, m.Dependency
    ids = set(expanded)
    where_tasks = [t.run_id == graph.run_id] + ([] if not graph.collapsed else [t.task_id.in_(expanded)])
    rows = {row.task_id: row for row in conn.execute(
        select(t.task_id, t.task_func_name, t.task_status_name, func.substr(t.error, 1, DETAIL_CHARS).label("error"))
        .where(*where_tasks))}
    where_edges = [d.run_id == graph.run_id]
    if graph.collapsed:  # upstream ends filtered here: SQL given both lists may try every pair of them
        where_edges.append(d.task_id.in_(expanded))
    edges = conn.execute(select(d.depends_on, d.task_id, d.kind).where(*where_edges)
                         .order_by(d.task_id, d.depends_on).limit(EDGE_LIMIT + 1)).all()
    if len(edges) > EDGE_LIMIT:
        graph.notes.append(f"Only the first {EDGE_LIMIT:,} dependencies of the drawn tasks were looked at.")
    with_failed_upstream = _with_failed_upstream(
        conn, graph.run_id, [i for i in ids if i in rows and rows[i].task_status_name == FAILED])
    for task_id in expanded:
        row = rows.get(task_id)
        if row is None:
            continue
        state = row.task_status_name or "unknown"
        first = int(state == FAILED and task_id not in with_failed_upstream)
        graph.nodes.append(GraphNode(f"task:{task_id}", "task", str(task_id), state, task_id=task_id,
                                     app=row.task_func_name, detail=row.error or "", first_failures=first,
                                     focus=task_id == graph.focus_task))
    for upstream, downstream, kind in edges[:EDGE_LIMIT]:
        if upstream in rows and downstream in rows:
            failing = int(rows[upstream].task_status_name in FAILURE_STATES
                          and rows[downstream].task_status_name == DEP_FAIL)
            graph.edges.append(GraphEdge(f"task:{upstream}", f"task:{downstream}", 1, failing, kind))


def _with_failed_upstream(conn: Connection, run_id: str, task_ids: Iterable[int]) -> set[int]:
    """Those of ``task_ids`` that depended on a task that failed."""
    ids = list(task_ids)
    if not ids:
        return set()
    d, u = m.Dependency, aliased(m.Task)
    return set(conn.execute(
        select(d.task_id).join(u, and_(u.run_id == d.run_id, u.task_id == d.depends_on))
        .where(d.run_id == run_id, d.task_id.in_(ids), u.task_status_name.in_(FAILURE_STATES)).distinct()).scalars())


def _add_apps(conn: Connection, graph: GraphData, by_app: dict[str, Counter[str]], expanded: list[int]) -> None:
    """App nodes for the tasks not drawn one by one, the edges between apps weighted by task
    dependencies, and the edges between drawn tasks and apps; each dependency counted once."""
    t, d = m.Task, m.Dependency
    up, down = aliased(t), aliased(t)
    failing = func.sum(case((and_(down.task_status_name == DEP_FAIL, up.task_status_name.in_(FAILURE_STATES)), 1),
                            else_=0))
    joined = (select().select_from(d)
              .join(down, and_(down.run_id == d.run_id, down.task_id == d.task_id))
              .join(up, and_(up.run_id == d.run_id, up.task_id == d.depends_on)))
    weights: dict[tuple[str, str], list[int]] = {
        (source, target): [n, bad or 0] for source, target, n, bad in conn.execute(
            joined.add_columns(up.task_func_name, down.task_func_name, func.count(), failing)
            .where(d.run_id == graph.run_id).group_by(up.task_func_name, down.task_func_name))}
    drawn = {node.task_id: node for node in graph.nodes if node.kind == "task"}
    remaining = {name: Counter(counts) for name, counts in by_app.items()}
    for node in drawn.values():
        remaining[node.app or ""][node.state] -= 1
    apps_of = {node.key: node.app or "" for node in drawn.values()}
    for edge in graph.edges:  # every dependency between drawn tasks leaves the app-to-app weights
        weight = weights.setdefault((apps_of[edge.source], apps_of[edge.target]), [0, 0])
        weight[0] -= 1
        weight[1] -= edge.failing
    firsts: Counter[str] = Counter(dict(conn.execute(_first_failures_by_app(graph.run_id)).all()))
    for node in drawn.values():
        if node.first_failures:
            firsts[node.app or ""] -= 1
    apps = sorted((name for name in remaining if remaining[name].total() > 0),
                  key=lambda name: (-remaining[name].total(), name))
    if len(apps) > APP_LIMIT:
        graph.notes.append(f"Only the {APP_LIMIT} largest of {len(apps):,} apps are drawn.")
        apps = apps[:APP_LIMIT]
    shown = set(apps)
    if expanded:
        ids = list(drawn)
        upstream_rows = conn.execute(
            joined.add_columns(d.task_id, up.task_func_name, func.count(), failing)
            .where(d.run_id == graph.run_id, d.task_id.in_(ids), d.depends_on.not_in(ids))
            .group_by(d.task_id, up.task_func_name)).all()
        downstream_rows = conn.execute(
            joined.add_columns(d.depends_on, down.task_func_name, func.count(), failing)
            .where(d.run_id == graph.run_id, d.depends_on.in_(ids), d.task_id.not_in(ids))
            .group_by(d.depends_on, down.task_func_name)).all()
        for task_id, other, n, bad in upstream_rows:
            weight = weights.setdefault((other, drawn[task_id].app or ""), [0, 0])
            weight[0], weight[1] = weight[0] - n, weight[1] - (bad or 0)
            if other in shown:
                graph.edges.append(GraphEdge(f"app:{other}", f"task:{task_id}", n, bad or 0))
        for task_id, other, n, bad in downstream_rows:
            weight = weights.setdefault((drawn[task_id].app or "", other), [0, 0])
            weight[0], weight[1] = weight[0] - n, weight[1] - (bad or 0)
            if other in shown:
                graph.edges.append(GraphEdge(f"task:{task_id}", f"app:{other}", n, bad or 0))
    for name in apps:
        counts = {state: n for state, n in remaining[name].items() if n > 0}
        inside, bad = weights.get((name, name), (0, 0))
        detail = (f"{inside:,} dependencies between its own tasks" + (f", {bad:,} carried a failure" if bad else "")
                  if inside > 0 else "")
        graph.nodes.append(GraphNode(f"app:{name}", "app", name, _telling_state(counts), app=name, counts=counts,
                                     detail=detail, first_failures=firsts.get(name, 0)))
    for (source, target), (n, bad) in sorted(weights.items()):
        if n > 0 and source != target and source in shown and target in shown:
            graph.edges.append(GraphEdge(f"app:{source}", f"app:{target}", n, bad))


def _first_failures_by_app(run_id: str) -> Any:
    """SQL: per app, how many of its tasks failed first (failed, with no failed dependency)."""
    t, d, u = m.Task, m.Dependency, aliased(m.Task)
    failed_upstream = (select(d.task_id).join(u, and_(u.run_id == d.run_id, u.task_id == d.depends_on))
                       .where(d.run_id == t.run_id, d.task_id == t.task_id, u.task_status_name.in_(FAILURE_STATES))
                       .exists())
    return (select(t.task_func_name, func.count()).where(t.run_id == run_id, t.task_status_name == FAILED,
                                                         ~failed_upstream)
            .group_by(t.task_func_name))


def _telling_state(counts: dict[str, int]) -> str:
    """The state an app node is coloured by: failed if any of its tasks failed, dep_fail if any
    failed for a dependency, otherwise the commonest."""
    for state in (FAILED, DEP_FAIL):
        if counts.get(state):
            return state
    return max(sorted(counts), key=lambda state: counts[state]) if counts else "unknown"


def _add_files(conn: Connection, graph: GraphData, expanded: list[int]) -> None:
    """File nodes between the drawn tasks that wrote and read them (at most ``FILE_LIMIT``); a
    dependency that a file already shows is not drawn twice."""
    if not expanded:
        return
    u, f = m.FileUse, m.File
    where = [u.run_id == graph.run_id, u.role.in_(FILE_ROLES)]
    if graph.collapsed:
        where.append(u.task_id.in_(expanded))
    uses = conn.execute(select(u.task_id, u.role, f.file_id, f.url).join(f, f.file_id == u.file_id).where(*where)
                        .distinct().order_by(f.file_id, u.task_id).limit(FILE_LIMIT * 4 + 1)).all()
    drawn = {node.task_id for node in graph.nodes if node.kind == "task"}
    files: dict[int, str] = {}
    links: list[GraphEdge] = []
    for task_id, role, file_id, url in uses:
        if task_id not in drawn:
            continue
        if file_id not in files:
            if len(files) >= FILE_LIMIT:
                graph.notes.append(f"Only {FILE_LIMIT} of the files the drawn tasks used are drawn.")
                break
            files[file_id] = url
        task_key, file_key = f"task:{task_id}", f"file:{file_id}"
        links.append(GraphEdge(task_key, file_key, kind="file") if role == "output"
                     else GraphEdge(file_key, task_key, kind="file"))
    for file_id, url in files.items():
        graph.nodes.append(GraphNode(f"file:{file_id}", "file", url.rstrip("/").rsplit("/", 1)[-1] or url, "file",
                                     file_id=file_id, detail=url))
    writers: dict[str, set[str]] = {}
    readers: dict[str, set[str]] = {}
    for link in links:
        if link.source.startswith("task:"):
            writers.setdefault(link.target, set()).add(link.source)
        else:
            readers.setdefault(link.source, set()).add(link.target)
    through_files = {(writer, reader) for key, made in writers.items() for writer in made
                     for reader in readers.get(key, ())}
    graph.edges = [edge for edge in graph.edges if (edge.source, edge.target) not in through_files] + links
