"""A Workflow Run RO-Crate (Provenance Run Crate profile 0.5, RO-Crate 1.1) with the ``rocrate`` package.

Built from the same statements as the PROV export (``records``), a batch of tasks at a time:

- the root dataset conforms to the Process, Workflow and Provenance Run Crate profiles and Workflow
  RO-Crate, and names the run's script as its ``mainEntity``: a ``ComputationalWorkflow`` (and
  ``HowTo``, with a ``HowToStep`` per app version) in Python, requiring Python and the packages
  installed when it ran (``SoftwareApplication`` entities with their PyPI addresses);
- each app version is a tool (``SoftwareApplication``, with its app and source digests);
- each run is a ``CreateAction`` of the script, and an ``OrganizeAction`` of the engine
  (parsl_repro, with its version) whose objects are the ``ControlAction`` of each task;
- each task is a ``CreateAction`` of its app (one per try where it was tried more than once), with
  its input files as ``object`` and output files as ``result`` (``File`` entities with ``sha256``
  and ``contentSize``), its times, status, error, resource usage, and the executor or block and the
  worker pool that ran it;
- the PROV-O export of the same runs is in the crate too (``provenance/prov.ttl``), with everything
  the crate's vocabulary has no word for.

Files are referenced by their ``file://`` URL (with their recorded digest), or, with ``files="copy"``,
copied in when they still exist with the content recorded. A workflow script that changed or vanished
is never copied: the crate holds the apps' recorded sources in its place and says so.
"""
from __future__ import annotations

import datetime
import io
import itertools
import json
import logging
import mimetypes
import os
import shutil
import tempfile
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlparse

from sqlalchemy import Engine, select

from parsl_repro.memo.files import FileDigestCache
from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.export import vocab as v
from parsl_repro.monitoring.export.model import Element, Ref, Relation, Statement
from parsl_repro.monitoring.export.records import ExportNotes, statements

if TYPE_CHECKING:
    from parsl_repro.monitoring.export import ExportSummary

logger = logging.getLogger(__name__)

RO_CRATE_CONTEXT = "https://w3id.org/ro/crate/1.1/context"
WORKFLOW_RUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
PROVENANCE_PROFILE = "https://w3id.org/ro/wfrun/provenance/0.5"
PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",
    "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
    "https://w3id.org/ro/wfrun/provenance/0.5": "Provenance Run Crate",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate",
}
WROC = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
COMPLETED = "http://schema.org/CompletedActionStatus"
FAILED = "http://schema.org/FailedActionStatus"
ACTIVE = "http://schema.org/ActiveActionStatus"
PYTHON = "https://www.python.org/"
PROV_PATH = "provenance/prov.ttl"
PICKLE_TYPES = {"pickle": "application/x-python-pickle", "dill": "application/x-python-dill"}

# Our own terms used in the crate, defined in its context from our vocabulary (vocab.TERMS).
CRATE_TERMS = ("Executor", "Block", "Node", "executedBy", "executedAt", "ofExecutor", "runId", "outcome", "partial",
               "unfinished", "taskId", "tryId", "state", "appDigest", "sourceSha256", "argsDigest", "memoKey",
               "command", "resultSha256", "blockId", "jobId", "blockState", "hostname", "nodeId", "cpuCount",
               "totalMemory", "workerCount", "executorLabel", "appKind", "module", "traceback", "memoSource")


def _time(value: datetime.datetime | None) -> str | None:
    """The profiles' form: UTC with a ``+00:00`` offset, to the millisecond."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).isoformat(timespec="milliseconds")


def _ref(identifier: str) -> dict[str, str]:
    return {"@id": identifier}


def _one(items: list[Any]) -> Any:
    """A single value alone, several as a list (RO-Crate 1.1: no singleton arrays)."""
    return items[0] if len(items) == 1 else items


def _attrs(element: Element) -> dict[str, Any]:
    """An element's attributes, the last value of each (``pr:package`` aside)."""
    return {name: value for name, value in element.attrs}


@dataclass
class _Batch:
    """One batch's statements, indexed for building its actions."""

    elements: dict[str, Element]
    by_subject: dict[str, list[Relation]]
    made: dict[str, list[str]]


@dataclass
class _RunState:
    """What a run's actions need once its tasks have all been seen."""

    element: Element
    script: str = ""
    user: str = ""
    engine: str = ""
    environment: str | None = None
    inputs: list[str] = field(default_factory=list)
    controls: list[str] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)  # crate ids of the files its tasks wrote


class _Builder:
    """The crate, built statement batch by statement batch."""

    def __init__(self, engine: Engine, run_ids: list[str], directory: str, include_results: bool, files: str,
                 license: str | None = None) -> None:
        from rocrate.rocrate import ROCrate

        self.engine, self.run_ids, self.directory = engine, run_ids, directory
        self.include_results, self.copy_files, self.license = include_results, files == "copy", license
        self.crate = ROCrate(version="1.1")
        self.crate.metadata.extra_contexts.append(WORKFLOW_RUN_CONTEXT)
        self.crate.metadata.extra_terms.update({term: v.VOCAB + term for term in CRATE_TERMS})
        self.elements: dict[str, Element] = {}  # the run-level elements (scripts, agents, apps, environment)
        self.runs: dict[str, _RunState] = {}
        self.files: dict[str, str] = {}  # file key -> crate id
        self.file_ids_by_url: dict[str, set[str]] = defaultdict(set)
        self.used_files: set[str] = set()
        self.apps: dict[str, str] = {}  # app element id -> tool id
        self.steps: dict[str, str] = {}
        self.packages: dict[str, str] = {}
        self.scripts: dict[str, str] = {}  # script element id -> crate id
        self.mentions: list[str] = []
        self.parts: list[str] = []
        self.notes: list[str] = []
        self.file_problems: dict[str, list[str]] = defaultdict(list)  # "vanished"/"changed" -> paths
        self.results: dict[tuple[str, int], Any] = {}
        self.results_loaded = False
        self.script_url = ""  # the first run's script: where the apps' code lives
        self.stats: dict[tuple[str, Any], tuple[int | None, float | None]] | None = None
        # references resolved at the end, when every file and action of the export has been seen
        # the entities there are one or more of per task (actions, their controls and resource values,
        # files, results) go to a spool as JSON lines, not into rocrate's model, and join the metadata
        # when it is written: memory then holds what the crate's skeleton needs, not the whole graph
        self.spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed in write()
        self.spooled = 0
        self.used_ids: set[str] = set()  # the PROV ids of what the actions used
        self.actions_of_task: dict[str, list[str]] = defaultdict(list)  # PROV task id -> its action ids

    # -- entities ---------------------------------------------------------------------------------
    def add(self, identifier: str, properties: dict[str, Any]) -> Any:
        from rocrate.model.contextentity import ContextEntity

        return self.crate.add(ContextEntity(self.crate, identifier, properties=properties))

    def add_file(self, identifier: str, properties: dict[str, Any], content: bytes | str | None = None,
                 source: str | None = None) -> str:
        """A data entity: written from ``content`` or copied from ``source`` into the crate at the path
        ``identifier``, or, with neither, referenced by ``identifier``, its absolute URL. Spooled."""
        if content is not None or source is not None:
            target = os.path.join(self.directory, identifier)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if source is not None:
                shutil.copyfile(source, target)
            else:
                with open(target, "wb") as f:
                    f.write(content.encode() if isinstance(content, str) else content)
            identifier = quote(identifier)  # a path as an IRI reference, as rocrate writes it
        self.emit({"@id": identifier, "@type": "File", **properties})
        self.parts.append(identifier)
        return identifier

    def emit(self, entity: dict[str, Any], refs: dict[str, Any] | None = None) -> None:
        """Spool an entity; ``refs`` are references resolved when the crate is written."""
        self.spool.write(json.dumps([{k: val for k, val in entity.items() if val is not None}, refs]) + "\n")
        self.spooled += 1

    def spooled_entities(self) -> Iterator[dict[str, Any]]:
        """The spooled entities, their references resolved (every file and action is known by then)."""
        self.spool.seek(0)
        for line in self.spool:
            entity, refs = json.loads(line)
            for side in ("object", "result"):
                found = list(dict.fromkeys(c for c in map(self._resolve, (refs or {}).get(side, ())) if c))
                if found:
                    entity[side] = _one([_ref(c) for c in found])
            source = (refs or {}).get("memoSource")
            if source and self.actions_of_task.get(source):
                entity["memoSource"] = _ref(self.actions_of_task[source][-1])  # its last try's, if retried
            yield entity

    # -- statements -------------------------------------------------------------------------------
    def batch(self, run_id: str, batch: list[Statement]) -> None:
        elements = {s.id: s for s in batch if isinstance(s, Element)}
        relations = [s for s in batch if isinstance(s, Relation)]
        for element in elements.values():
            kinds = set(element.types)
            if "pr:Run" in kinds and not _attrs(element).get("pr:notExported"):
                self.runs[element.id] = _RunState(element)
            elif kinds & {"pr:Script", "pr:Environment", "prov:Person", "pr:Engine", "pr:App", "pr:Executor",
                          "pr:Block", "pr:Node", "pr:Host"}:
                self.elements[element.id] = element
                if "pr:Script" in kinds and not self.script_url:
                    self.script_url = str(_attrs(element).get("prov:location", ""))
        for r in relations:
            if r.kind == "wasAssociatedWith" and r.subject in self.runs:
                state = self.runs[r.subject]
                if "pr:submitter" in r.roles:
                    state.user, state.script = r.object or "", r.plan or ""
                elif "pr:workflowEngine" in r.roles:
                    state.engine = r.object or ""
            elif r.kind == "used" and r.subject in self.runs:
                if "pr:environment" in r.roles:
                    self.runs[r.subject].environment = r.object
                elif r.object is not None:
                    self.runs[r.subject].inputs.append(r.object)
        for element in elements.values():
            if "pr:File" in element.types:
                self._file(element)
            elif "pr:App" in element.types:
                self._tool(element)
        self._actions(run_id, elements, relations)

    def _file(self, element: Element) -> str:
        key = element.id.rsplit("/", 1)[-1]
        found = self.files.get(key)
        if found is not None:
            return found
        attrs = _attrs(element)
        url = str(attrs.get("prov:location", ""))
        sha256, size = attrs.get("schema:sha256"), attrs.get("schema:contentSize")
        name = str(attrs.get("prov:label") or url.rsplit("/", 1)[-1])
        properties: dict[str, Any] = {"name": name, "encodingFormat": mimetypes.guess_type(name)[0] or
                                      "application/octet-stream", "url": url}
        if sha256:
            properties["sha256"] = sha256
        if size is not None:
            properties["contentSize"] = str(size)
        local = unquote(urlparse(url).path) if url.startswith("file://") else None
        if self.copy_files and local is not None:
            problem = _mismatch(local, sha256)
            if problem is None:
                identifier = self.add_file(f"files/{key[:16]}/{os.path.basename(local) or 'file'}", properties,
                                           source=local)
                self.files[key] = identifier
                return identifier
            self.file_problems[problem].append(local)
            properties["description"] = f"Not copied: the file {problem} since the run."
        elif local is not None and not self.copy_files:
            problem = _mismatch(local, sha256, quick=True, recorded=self.recorded_stat(url, sha256))
            if problem is not None:
                self.file_problems[problem].append(local)
                properties["description"] = f"The file {problem} since the run."
        identifier = url or f"#file-{key}"
        if self.file_ids_by_url[url]:  # another content at the same location: tell them apart
            identifier = f"{url}#sha256={sha256 or key}"
        self.file_ids_by_url[url].add(identifier)
        self.files[key] = self.add_file(identifier, properties)
        return self.files[key]

    def recorded_stat(self, url: str, sha256: Any) -> tuple[int | None, float | None] | None:
        """The size and modification time the store recorded for a file's content (read once)."""
        if self.stats is None:
            from parsl_repro.monitoring.export.vocab import file_url

            with self.engine.connect() as conn:
                rows = conn.execute(select(m.File.url, m.File.sha256, m.File.size, m.File.mtime)
                                    .join(m.FileUse, m.FileUse.file_id == m.File.file_id)
                                    .where(m.FileUse.run_id.in_(self.run_ids)).distinct())
                self.stats = {(file_url(r.url), r.sha256): (r.size, r.mtime) for r in rows}
        return self.stats.get((url, sha256))

    def _tool(self, element: Element) -> None:
        attrs = _attrs(element)
        digest = str(attrs["pr:appDigest"])
        tool = v.INSTANCE + element.id  # the app's IRI in the PROV export too
        properties = {"@type": "SoftwareApplication", "name": str(attrs.get("pr:appName")),
                      "softwareVersion": digest, "url": self.script_url or None,
                      "description": f"{attrs.get('pr:appKind')} app {attrs.get('pr:appName')} of module "
                                     f"{attrs.get('pr:module')}, identified by the digest of its normalised source "
                                     f"and what it references",
                      "appDigest": digest, "appKind": attrs.get("pr:appKind"), "module": attrs.get("pr:module")}
        if attrs.get("pr:sourceSha256"):
            properties["sourceSha256"] = attrs["pr:sourceSha256"]
        self.add(tool, {k: val for k, val in properties.items() if val is not None})
        step = f"#step-{digest}"
        self.add(step, {"@type": "HowToStep", "name": str(attrs.get("pr:appName")), "position": str(len(self.steps)),
                        "workExample": _ref(tool)})
        self.apps[element.id], self.steps[element.id] = tool, step

    def _actions(self, run_id: str, elements: dict[str, Element], relations: list[Relation]) -> None:
        """A CreateAction per task of the batch, or per try of a task tried more than once."""
        tries_of: dict[str, list[Element]] = defaultdict(list)
        for element in elements.values():
            if "pr:Try" in element.types:
                tries_of[str(_attrs(element)["pr:tryOf"])].append(element)
        by_subject: dict[str, list[Relation]] = defaultdict(list)
        made: dict[str, list[str]] = defaultdict(list)  # activity -> what it generated
        for r in relations:
            by_subject[r.subject].append(r)
            if r.kind == "wasGeneratedBy" and r.object is not None:
                made[r.object].append(r.subject)
        batch = _Batch(elements, by_subject, made)
        run = self.runs.get(v.run(run_id))
        for element in elements.values():
            if "pr:Task" not in element.types or _attrs(element).get("pr:notExported"):
                continue
            tries = sorted(tries_of.get(element.id, []), key=lambda t: int(_attrs(t)["pr:tryId"]))
            if len(tries) <= 1:
                self._action(run, batch, element, tries[0] if tries else None, per_try=False)
            else:
                for attempt in tries:
                    self._action(run, batch, element, attempt, per_try=True)

    def _action(self, run: _RunState | None, batch: _Batch, task: Element, attempt: Element | None,
                per_try: bool) -> None:
        task_attrs = _attrs(task)
        executed = attempt or task  # what ran: the try, or (a memo hit, a task that never ran) the task
        attrs = _attrs(executed)
        action_id = "#" + (attempt.id if per_try and attempt is not None else task.id).replace("/", "-")
        # a per-try action describes its try; a task's single action its task and its try
        activities = [executed.id] if per_try else [task.id] + ([attempt.id] if attempt is not None else [])
        used = [r.object for a in activities for r in batch.by_subject[a] if r.kind == "used" and r.object]
        made, errors, digest = [], [], None
        for activity in activities:
            for entity in batch.made[activity]:
                element = batch.elements.get(entity)
                if element is not None and "pr:Error" in element.types:
                    errors.append(str(_attrs(element).get("prov:value", "")))
                elif element is not None and "pr:Result" in element.types:
                    digest = _attrs(element).get("schema:sha256")
                else:
                    made.append(entity)
        state = str(task_attrs.get("pr:state"))
        name = f"task {task_attrs['pr:taskId']} ({task_attrs.get('pr:appName')})"
        what = f" try {attrs['pr:tryId']}" if per_try else ""
        properties: dict[str, Any] = {
            "@type": "CreateAction", "name": name + (f", try {attrs['pr:tryId']}" if per_try else ""),
            "description": f"{task_attrs.get('pr:appKind') or ''} app {task_attrs.get('pr:appName')}, "
                           f"task {task_attrs['pr:taskId']}{what}: {state}".lstrip(),
            "taskId": task_attrs["pr:taskId"], "state": state, "startTime": _time(executed.start),
            "endTime": _time(executed.end), "tryId": _attrs(attempt)["pr:tryId"] if attempt is not None else None}
        for term in ("pr:argsDigest", "pr:memoKey", "pr:command"):
            properties[term.removeprefix("pr:")] = task_attrs.get(term)
        properties["actionStatus"], properties["error"], properties["unfinished"] = _status(
            state, per_try, errors, executed.end, attrs.get("pr:unfinished"))
        if digest is not None:
            properties["resultSha256"] = digest
        if run is not None and run.user:
            properties["agent"] = _ref(self._person(run.user))
        if attempt is not None:
            agent = next((r.object for r in batch.by_subject[attempt.id] if r.kind == "wasAssociatedWith"), None)
            if agent:
                properties["executedBy"] = _ref(self._agent(agent))
            location = _attrs(attempt).get("prov:location")
            if isinstance(location, Ref):
                properties["executedAt"] = _ref(self._location(str(location)))
            usage = self._usage(action_id, _attrs(attempt))
            if usage:
                properties["resourceUsage"] = _one([_ref(u) for u in usage])
        reused = next((r.object for r in batch.by_subject[task.id] if r.kind == "used"
                       and "pr:storedResult" in r.roles), None)
        if reused:
            properties["description"] += f"; a memo hit, which reused the stored result of {reused}"
        plan = next((r.plan for r in batch.by_subject[task.id] if r.kind == "wasAssociatedWith"), None)
        key = plan if plan in self.apps else self._unknown_tool(task_attrs)
        properties["instrument"] = _ref(self.apps[key])
        self.mentions.append(action_id)
        self.actions_of_task[task.id].append(action_id)
        results = list(made)
        if digest is not None and self.include_results:
            stored = self._result_file(task)
            if stored is not None:
                results.append(stored)
        self.used_ids.update(used)
        properties["@id"] = action_id
        self.emit(properties, {"object": used, "result": results,
                               "memoSource": reused.removesuffix("/result") if reused else None})
        if run is not None:
            run.generated.extend(made)
            control = f"#control-{action_id[1:]}"
            self.emit({"@id": control, "@type": "ControlAction", "name": f"orchestrate {name}",
                       "instrument": _ref(self.steps[key]), "object": _ref(action_id),
                       "actionStatus": properties["actionStatus"]})
            run.controls.append(control)

    def _resolve(self, identifier: str) -> str | None:
        """The crate id of a file the export names (a PROV file entity, or a crate id already)."""
        if identifier.startswith(("file/", "run/")):
            if "/file/" not in identifier and not identifier.startswith("file/"):
                return None  # a result or an error: not a file of the crate
            return self.files.get(identifier.rsplit("/", 1)[-1])
        return identifier

    def _usage(self, action_id: str, attrs: dict[str, Any]) -> list[str]:
        """A try's resource usage (Workflow Run Crate ``resourceUsage``), as PropertyValue entities."""
        out = []
        for term, name, unit in (("pr:peakResidentMemory", "peak resident memory", "E34"),
                                 ("pr:cpuTimeUser", "user CPU time", "SEC"),
                                 ("pr:cpuTimeSystem", "system CPU time", "SEC"),
                                 ("pr:resourceSamples", "resource samples", "C62")):
            if attrs.get(term) is None:
                continue
            identifier = f"{action_id}-{name.replace(' ', '-')}"
            value = {"@type": "PropertyValue", "name": name, "value": attrs[term], "unitCode": unit,
                     "propertyID": v.VOCAB + term.removeprefix("pr:")}
            value["@id"] = identifier
            self.emit(value)
            out.append(identifier)
        return out

    @staticmethod
    def _run_and_task(task: Element) -> tuple[str, int]:
        _run, run_id, _task, task_id = task.id.split("/")[:4]
        return run_id, int(task_id)

    def _unknown_tool(self, task_attrs: dict[str, Any]) -> str:
        """A tool for tasks recorded without their code's identity (stores written before it was kept)."""
        name = str(task_attrs.get("pr:appName"))
        key = f"app/unidentified/{name}"
        if key not in self.apps:
            tool = f"#app-unidentified-{name}"
            self.add(tool, {"@type": "SoftwareApplication", "name": name,
                            "description": "an app whose code identity was not recorded"})
            step = f"#step-unidentified-{name}"
            self.add(step, {"@type": "HowToStep", "name": name, "position": str(len(self.steps)),
                            "workExample": _ref(tool)})
            self.apps[key], self.steps[key] = tool, step
        return key

    def _contextual(self, identifier: str, describe: Any) -> str:
        """The crate id of the export's ``identifier`` (``run/R/node/U`` -> ``#run-R-node-U``), added the
        first time with the properties ``describe(element attributes, element)`` gives."""
        crate_id = "#" + identifier.replace("/", "-")
        if self.crate.get(crate_id) is None:
            element = self.elements.get(identifier)
            properties = describe(_attrs(element) if element else {}, element)
            self.add(crate_id, {k: val for k, val in properties.items() if val is not None})
        return crate_id

    def _person(self, identifier: str) -> str:
        return self._contextual(identifier, lambda attrs, _element: {
            "@type": "Person", "name": str(attrs.get("pr:userName") or identifier.split("/", 1)[-1])})

    def _agent(self, identifier: str) -> str:
        """An executor or block that ran tries, with what it acted for."""
        def describe(attrs: dict[str, Any], element: Element | None) -> dict[str, Any]:
            if element is not None and "pr:Block" in element.types:
                return {"@type": "Block", "name": str(attrs.get("prov:label")), "blockId": attrs.get("pr:blockId"),
                        "jobId": attrs.get("pr:jobId"), "blockState": attrs.get("pr:blockState"),
                        "ofExecutor": _ref(self._agent(identifier.rsplit("/block/", 1)[0]))}
            return {"@type": "Executor", "name": str(attrs.get("prov:label", identifier.rsplit("/", 1)[-1])),
                    "executorLabel": attrs.get("pr:executorLabel")}
        return self._contextual(identifier, describe)

    def _location(self, identifier: str) -> str:
        """A worker pool (or a host) that tries ran at, with the block it was started in."""
        def describe(attrs: dict[str, Any], element: Element | None) -> dict[str, Any]:
            properties = {"@type": "Node", "name": str(attrs.get("prov:label", identifier.rsplit("/", 1)[-1])),
                          "hostname": attrs.get("pr:hostname")}
            if element is not None and "pr:Node" in element.types:
                properties.update({"nodeId": attrs.get("pr:nodeId"), "cpuCount": attrs.get("pr:cpuCount"),
                                   "totalMemory": attrs.get("pr:totalMemory"),
                                   "workerCount": attrs.get("pr:workerCount")})
                block = attrs.get("pr:inBlock")
                if isinstance(block, Ref):
                    properties["executedBy"] = _ref(self._agent(str(block)))
            return properties
        return self._contextual(identifier, describe)

    def _result_file(self, task: Element) -> str | None:
        """A stored result's value as a file (``--include-results``), when the store kept it."""
        run_id, task_id = self._run_and_task(task)
        if not self.results_loaded:
            self._load_results()
        row = self.results.get((run_id, task_id))
        if row is None:
            return None
        identifier = f"results/{run_id[:8]}/task-{task_id}.{row.serializer}"
        return self.add_file(identifier, {"name": f"result of task {task_id}", "sha256": row.result_digest,
                                          "contentSize": str(row.size),
                                          "encodingFormat": PICKLE_TYPES.get(row.serializer,
                                                                             "application/octet-stream"),
                                          "description": f"the stored result value, serialized with {row.serializer}"
                                                         " (load with parsl_repro.serialize.deserialize_value)"},
                             content=bytes(row.value))

    def _load_results(self) -> None:
        with self.engine.connect() as conn:
            for row in conn.execute(select(m.Result.run_id, m.Result.task_id, m.Result.serializer, m.Result.size,
                                           m.Result.result_digest, m.Result.value)
                                    .where(m.Result.run_id.in_(self.run_ids))):
                self.results[(row.run_id, row.task_id)] = row
        self.results_loaded = True

    # -- the runs, the workflow and the root --------------------------------------------------------
    def finish(self) -> None:
        crate = self.crate
        self.used_files = {c for c in map(self._resolve, self.used_ids) if c is not None}
        python_versions = set()
        workflows: list[str] = []
        for run_id in self.run_ids:
            state = self.runs[v.run(run_id)]
            attrs = _attrs(state.element)
            python_versions.add(str(attrs.get("pr:pythonVersion", "")))
            workflow = self._workflow(state)
            if workflow not in workflows:
                workflows.append(workflow)
            self._run_actions(state, workflow)
        root = crate.root_dataset
        python = crate.add(_language(crate, sorted(python_versions)[-1] or None))
        tools = list(dict.fromkeys(self.apps.values()))
        for workflow in workflows:
            entity = crate.get(workflow)
            entity["programmingLanguage"] = _ref(python.id)
            if tools:
                entity["hasPart"] = _one([_ref(t) for t in tools])
                entity["step"] = _one([_ref(s) for s in dict.fromkeys(self.steps.values())])
            requirements = [self._python()] + list(self.packages.values())
            entity["softwareRequirements"] = _one([_ref(r) for r in requirements])
        crate.mainEntity = crate.get(workflows[0])
        crate.metadata["conformsTo"] = [_ref("https://w3id.org/ro/crate/1.1"), _ref(WROC)]
        root["license"] = _ref(self._license())
        profiles = dict(PROFILES)
        if not tools:  # the Provenance Run Crate profile needs a tool that ran; a run of no task has none
            del profiles[PROVENANCE_PROFILE]
            self.notes.append("no task ran in the exported run(s): the crate declares the Process and Workflow Run "
                              "Crate profiles, not the Provenance Run Crate profile, which needs a tool that ran")
        for identifier, name in profiles.items():
            self.add(identifier, {"@type": "CreativeWork", "name": name, "version": identifier.rsplit("/", 1)[-1]})
        root["conformsTo"] = [_ref(i) for i in profiles]
        first = self.runs[v.run(self.run_ids[0])].element
        label = _attrs(first).get("pr:workflowName") or "a workflow"
        root["name"] = f"Provenance of {len(self.run_ids)} run(s) of {label}" if len(self.run_ids) > 1 \
            else f"Provenance of run {self.run_ids[0]} of {label}"
        root["description"] = ("What each task of the run(s) ran, on which inputs and with which outputs, recorded by "
                               "parsl_repro and exported from its provenance store with `parsl-repro export`.")
        root["datePublished"] = _time(datetime.datetime.now(datetime.UTC))
        root["mentions"] = [_ref(i) for i in self.mentions]
        person = self.runs[v.run(self.run_ids[0])].user
        if person:
            root["author"] = _ref(self._person(person))

    def _workflow(self, state: _RunState) -> str:
        """The run's script as the crate's workflow: copied when it still has its recorded digest, else
        the recorded sources of the apps the runs used, in its place."""
        from rocrate.model.computationalworkflow import ComputationalWorkflow

        class Workflow(ComputationalWorkflow):
            TYPES = ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"]

        if state.script in self.scripts:
            return self.scripts[state.script]
        attrs = _attrs(self.elements.get(state.script) or Element("entity", state.script))
        url = str(attrs.get("prov:location", ""))
        sha256 = attrs.get("schema:sha256")
        name = os.path.basename(unquote(urlparse(url).path)) if url else "workflow.py"
        local = unquote(urlparse(url).path) if url.startswith("file://") else None
        properties: dict[str, Any] = {"name": name, "encodingFormat": "text/x-python", "url": url or None,
                                      "conformsTo": _ref("https://bioschemas.org/profiles/ComputationalWorkflow/"
                                                         "1.0-RELEASE")}
        if sha256:
            properties["sha256"] = sha256
            properties["version"] = str(sha256)[:12]
        problem = _mismatch(local, sha256) if local else "was not recorded"
        dest = f"workflow/{name}"
        while self.crate.get(dest) is not None:
            dest = f"workflow/{len(self.scripts)}-{name}"
        if problem is None:
            source: Any = local
        else:
            self.notes.append(f"the workflow script {local or name} {problem} since the run: the crate holds the "
                              f"recorded sources of its apps in its place ({dest})")
            properties["description"] = (f"The script {local or name} {problem} since the run, so it is not included; "
                                         f"this file holds the recorded source of every app the run used.")
            source = io.BytesIO(self._recorded_sources(local or name, sha256).encode())
        properties = {k: val for k, val in properties.items() if val is not None}
        workflow = self.crate.add_workflow(source, dest, main=False, lang=_language(self.crate, None), cls=Workflow,
                                           properties=properties)
        self.parts.append(workflow.id)
        self.scripts[state.script] = workflow.id
        return workflow.id

    def _recorded_sources(self, name: str, sha256: Any) -> str:
        digests = [key.removeprefix("app/") for key in self.apps if not key.startswith("app/unidentified/")]
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(m.App.app_digest, m.App.qualname, m.App.module, m.App.source)
                                     .where(m.App.app_digest.in_([d for d in digests if d]))
                                     .order_by(m.App.qualname)))
        parts = [f"# The workflow script {name} (sha256 {sha256}) no longer has the content it ran with.\n"
                 f"# These are the sources of the apps its tasks ran, as parsl_repro recorded them.\n"]
        for row in rows:
            parts.append(f"\n# app {row.qualname} from module {row.module}, app digest {row.app_digest}\n"
                         f"{row.source or '# (no source was recorded)'}\n")
        return "".join(parts)

    def _run_actions(self, state: _RunState, workflow: str) -> None:
        attrs = _attrs(state.element)
        run_id = str(attrs["pr:runId"])
        outcome = str(attrs.get("pr:outcome"))
        status = COMPLETED if outcome == "completed" else ACTIVE if outcome == "running" else FAILED
        inputs = [c for c in map(self._resolve, state.inputs) if c is not None]
        outputs = [c for c in dict.fromkeys(map(self._resolve, state.generated)) if c is not None
                   and c not in self.used_files]  # what the run wrote and none of its tasks read
        run_action = f"#run-{run_id}"
        properties: dict[str, Any] = {"@type": "CreateAction", "name": str(attrs.get("prov:label")),
                                      "description": f"a run of {attrs.get('pr:workflowName') or 'the workflow'} "
                                                     f"by parsl_repro, which ended {outcome}",
                                      "instrument": _ref(workflow), "runId": run_id, "outcome": outcome,
                                      "startTime": _time(state.element.start), "endTime": _time(state.element.end),
                                      "actionStatus": status}
        if status == FAILED:
            properties["error"] = f"the run ended {outcome}" + (
                f": {attrs.get('pr:tasksFailed')} task(s) failed" if outcome == "failed" else "")
        if attrs.get("pr:partial"):
            properties["partial"] = attrs["pr:partial"]
        if state.user:
            properties["agent"] = _ref(self._person(state.user))
        if inputs:
            properties["object"] = _one([_ref(i) for i in dict.fromkeys(inputs)])
        if outputs:
            properties["result"] = _one([_ref(o) for o in outputs])
        self.add(run_action, {k: val for k, val in properties.items() if val is not None})
        self.mentions.insert(0, run_action)
        engine = _attrs(self.elements.get(state.engine) or Element("agent", state.engine))
        version = str(engine.get("pr:version", "unknown"))
        engine_id = f"#parsl_repro-{version}"
        if self.crate.get(engine_id) is None:
            self.add(engine_id, {"@type": "SoftwareApplication", "name": "parsl_repro", "softwareVersion": version,
                                 "url": "https://github.com/parsl/parsl",
                                 "description": "Parsl-compatible parallel workflows for Python, with every run "
                                                "recorded as provenance"})
        organize: dict[str, Any] = {"@type": "OrganizeAction", "name": f"parsl_repro ran run {run_id}",
                                    "instrument": _ref(engine_id), "result": _ref(run_action),
                                    "startTime": _time(state.element.start), "endTime": _time(state.element.end),
                                    "actionStatus": status}
        if state.controls:
            organize["object"] = _one([_ref(c) for c in state.controls])
        if state.user:
            organize["agent"] = _ref(self._person(state.user))
        self.add(f"#organize-{run_id}", {k: val for k, val in organize.items() if val is not None})
        if state.environment:
            element = self.elements.get(state.environment)
            for _name, package in (element.attrs if element else []):
                if _name != "pr:package":
                    continue
                dist, _sep, ver = str(package).partition("==")
                identifier = f"https://pypi.org/project/{dist}/{ver}/"
                if identifier not in self.packages.values():
                    self.add(identifier, {"@type": "SoftwareApplication", "name": dist, "softwareVersion": ver,
                                         "url": f"https://pypi.org/project/{dist}/"})
                    self.packages[package] = identifier

    def _license(self) -> str:
        """The license given, as an SPDX URL when it names one; else an entity that says none was given
        (RO-Crate requires a license, and the store does not know the data's)."""
        if self.license:
            identifier = self.license if "://" in self.license else f"https://spdx.org/licenses/{self.license}"
            self.add(identifier, {"@type": "CreativeWork", "name": self.license.rsplit("/", 1)[-1]})
            return identifier
        self.add("#license-not-stated", {"@type": "CreativeWork", "name": "No license stated",
                                         "description": "The export did not state a license for this crate "
                                                        "(parsl-repro export --license ...): ask its authors."})
        self.notes.append("no license was given (--license SPDX-ID or URL): the crate says none was stated")
        return "#license-not-stated"

    def _python(self) -> str:
        versions = sorted({str(_attrs(s.element).get("pr:pythonVersion", "")) for s in self.runs.values()})
        version = versions[-1] if versions else ""
        identifier = f"https://www.python.org/downloads/release/python-{version.replace('.', '')}/"
        if self.crate.get(identifier) is None:
            self.add(identifier, {"@type": "SoftwareApplication", "name": "Python", "softwareVersion": version,
                                  "url": PYTHON})
        return identifier

    def file_notes(self, shown: int = 20) -> list[str]:
        """What happened to the runs' files since, one note per kind, naming the first ``shown``."""
        notes = []
        how = "not copied: referenced" if self.copy_files else "referenced"
        for problem, paths in sorted(self.file_problems.items()):
            named = ", ".join(paths[:shown]) + (f" and {len(paths) - shown} more" if len(paths) > shown else "")
            notes.append(f"{len(paths)} file(s) {problem} since the run ({how} by URL with the recorded digest): "
                         f"{named}")
        return notes

    def readme(self) -> None:
        lines = [f"# {self.crate.root_dataset['name']}", "",
                 "A Workflow Run RO-Crate (Provenance Run Crate profile 0.5, RO-Crate 1.1) written by "
                 "`parsl-repro export --format ro-crate`.", "",
                 "- `ro-crate-metadata.json`: the runs as schema.org actions: one CreateAction per run, and per "
                 "task (per try when a task was tried more than once), with its app, inputs, outputs and times.",
                 "- `provenance/prov.ttl`: the same runs in W3C PROV-O, with everything the crate's vocabulary has "
                 "no word for (dependencies between tasks, memo hits, retries, blocks and worker pools).",
                 "- `workflow/`: the workflow script." + (" `files/`: the runs' files, as they were." if any(
                     p.startswith("files/") for p in self.parts) else "") + (" `results/`: stored result values."
                                                                            if self.include_results else ""), ""]
        notes = self.notes + self.file_notes(shown=200)
        if notes:
            lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
        self.add_file("README.md", {"name": "README", "about": _ref("./"), "encodingFormat": "text/markdown"},
                      content="\n".join(lines))

    def prov(self, path: str) -> None:
        """The PROV-O of the runs (written by ``write`` at ``path`` in the crate) as a data entity."""
        written = os.path.join(self.directory, path)
        self.crate.add_file(None, path, properties={
            "name": "PROV-O provenance of the runs", "encodingFormat": "text/turtle",
            "conformsTo": _ref("http://www.w3.org/ns/prov-o#"),
            "about": _one([_ref(f"#run-{r}") for r in self.run_ids]),
            "sha256": _DIGESTS.sha256(written), "contentSize": str(os.path.getsize(written))})
        self.parts.append(path)
        self.add("http://www.w3.org/ns/prov-o#", {"@type": "CreativeWork", "name": "PROV-O: The PROV Ontology"})


def _language(crate: Any, version: str | None) -> Any:
    from rocrate.model.computerlanguage import ComputerLanguage

    found = crate.get("#python")
    if found is not None:
        if version:
            found["version"] = version
        return found
    properties: dict[str, Any] = {"name": "Python", "identifier": _ref(PYTHON), "url": _ref(PYTHON)}
    if version:
        properties["version"] = version
    return crate.add(ComputerLanguage(crate, "#python", properties=properties))


def _status(state: str, per_try: bool, errors: list[str], end: datetime.datetime | None,
            unfinished: Any) -> tuple[str, str | None, str | None]:
    """(actionStatus, error, unfinished) of an action: a task's by its final state, a try's by its own
    end and error."""
    if errors:
        return FAILED, errors[-1], None
    if end is None:
        note = str(unfinished or "never finished")
        return (ACTIVE, None, note) if "still running" in note else (FAILED, note, note)
    if per_try or state in ("exec_done", "memo_done"):
        return COMPLETED, None, None
    if state == "cancelled":
        return FAILED, "cancelled: the run stopped before the task ran", None
    return FAILED, state, None


_DIGESTS = FileDigestCache()
"""Files' sha256, re-read only when their stat changes (the memo keys' cache)."""


def _mismatch(path: str | None, sha256: Any, quick: bool = False,
              recorded: tuple[int | None, float | None] | None = None) -> str | None:
    """Why ``path`` no longer holds the recorded content ("vanished", "changed"), or None. ``quick``:
    a file whose size and modification time are those recorded is taken as unchanged without reading
    it (as make and rsync do); a different size is a change; anything else is settled by its sha256."""
    if path is None or not os.path.isfile(path):
        return "vanished"
    if not sha256:
        return None if quick else "has no recorded digest"
    if quick and recorded is not None:
        size, mtime = recorded
        stat = os.stat(path)
        if size is not None and stat.st_size != size:
            return "changed"
        if size is not None and mtime is not None and abs(stat.st_mtime - mtime) < 1e-6:
            return None
    return None if _DIGESTS.sha256(path) == sha256 else "changed"


def write(engine: Engine, run_ids: list[str], path: str, summary: ExportSummary, *, include_results: bool,
          files: str, zipped: bool, license: str | None = None) -> None:
    """Write the crate of ``run_ids`` at ``path``: a directory, or (``zipped``) a zip file."""
    from parsl_repro.monitoring.export import rdf

    notes = ExportNotes()
    target = tempfile.mkdtemp(prefix=".crate-", dir=os.path.dirname(path)) if zipped else path
    builder = None
    try:
        builder = _Builder(engine, run_ids, target, include_results, files, license)

        def tee() -> Iterator[tuple[str, list[Statement]]]:  # each batch to the crate and to the PROV-O
            for run_id, batch in statements(engine, run_ids, notes):
                builder.batch(run_id, batch)
                yield run_id, batch

        os.makedirs(os.path.join(target, "provenance"), exist_ok=True)
        with open(os.path.join(target, PROV_PATH), "w", encoding="utf-8") as turtle:
            rdf.write(tee(), turtle, "turtle")
        builder.finish()
        builder.prov(PROV_PATH)
        builder.readme()
        builder.crate.root_dataset["hasPart"] = [_ref(i) for i in dict.fromkeys(builder.parts)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rocrate warns of referenced files, which it does not write
            builder.crate.write(target)
        _add_spooled(os.path.join(target, "ro-crate-metadata.json"), builder)
        if zipped:
            _zip(target, path)
        summary.records = len(builder.crate.get_entities()) + builder.spooled
        summary.notes = [f"run {r} was still running: exported what is recorded so far" for r in notes.partial_runs]
        summary.notes += notes.notes
        summary.notes += builder.notes + builder.file_notes()
    finally:
        if builder is not None:
            builder.spool.close()
        if zipped:
            shutil.rmtree(target, ignore_errors=True)


def _add_spooled(metadata: str, builder: _Builder) -> None:
    """Rewrite the metadata rocrate wrote with the spooled entities added to its ``@graph``, an entity at
    a time."""
    with open(metadata, encoding="utf-8") as f:
        data = json.load(f)
    partial = metadata + ".part"
    with open(partial, "w", encoding="utf-8") as out:
        out.write('{\n  "@context": ' + json.dumps(data["@context"]) + ',\n  "@graph": [\n')
        first = True
        for entity in itertools.chain(data["@graph"], builder.spooled_entities()):
            out.write(("" if first else ",\n") + "    " + json.dumps(entity, ensure_ascii=False))
            first = False
        out.write("\n  ]\n}\n")
    os.replace(partial, metadata)


def _zip(directory: str, path: str) -> None:
    """The crate directory as a zip file with ``ro-crate-metadata.json`` at its root."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for root, _dirs, names in os.walk(directory):
            for name in sorted(names):
                full = os.path.join(root, name)
                archive.write(full, os.path.relpath(full, directory))
