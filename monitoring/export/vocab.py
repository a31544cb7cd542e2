"""Names in the export: namespaces, the instance identifiers of a run's parts, and our own terms.

Every identifier is made here, from what the store keys its rows by, so the same run exported twice
gets the same IRIs (and isomorphic graphs). Instances live under ``urn:parsl-repro:`` (prefix
``parsl``): ``run/<run id>``, ``run/<run id>/task/<task id>``, ``.../try/<try id>``, ``app/<digest>``,
``file/<key>``. Terms that PROV and schema.org lack are ours, under ``urn:parsl-repro:vocab#``
(prefix ``pr``) and defined in ``provenance-schemas/parsl-repro-vocab.ttl``.
"""
from __future__ import annotations

import hashlib

INSTANCE = "urn:parsl-repro:"
VOCAB = "urn:parsl-repro:vocab#"

NAMESPACES = {
    "prov": "http://www.w3.org/ns/prov#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "schema": "https://schema.org/",
    "pr": VOCAB,
    "parsl": INSTANCE,
}
"""Prefix -> namespace IRI, for every format that declares prefixes."""

FILE_ROLES = ("input", "output", "stdout", "stderr")
GENERATED_ROLES = frozenset({"output", "stdout", "stderr"})


def run(run_id: str) -> str:
    return f"run/{run_id}"


def task(run_id: str, task_id: int) -> str:
    return f"run/{run_id}/task/{task_id}"


def attempt(run_id: str, task_id: int, try_id: int) -> str:
    """A try (``try`` is a keyword, hence the name)."""
    return f"run/{run_id}/task/{task_id}/try/{try_id}"


def result(run_id: str, task_id: int) -> str:
    return f"run/{run_id}/task/{task_id}/result"


def task_error(run_id: str, task_id: int) -> str:
    return f"run/{run_id}/task/{task_id}/error"


def try_error(run_id: str, task_id: int, try_id: int) -> str:
    return f"run/{run_id}/task/{task_id}/try/{try_id}/error"


def engine(run_id: str) -> str:
    return f"run/{run_id}/engine"


def executor(run_id: str, label: str) -> str:
    return f"run/{run_id}/executor/{_safe(label)}"


def block(run_id: str, label: str, block_id: str) -> str:
    return f"run/{run_id}/executor/{_safe(label)}/block/{_safe(block_id)}"


def node(run_id: str, uid: str) -> str:
    return f"run/{run_id}/node/{_safe(uid)}"


def app(app_digest: str) -> str:
    return f"app/{app_digest}"


def script(run_id: str, sha256: str | None) -> str:
    """The script by its content when its digest is known, else as this run's script."""
    return f"script/{sha256}" if sha256 else f"run/{run_id}/script"


def environment(packages_digest: str) -> str:
    return f"environment/{packages_digest}"


def user(name: str, host: str) -> str:
    return f"user/{_safe(name)}@{_safe(host)}"


def host(name: str) -> str:
    return f"host/{_safe(name)}"


def file_key(url: str, sha256: str | None) -> str:
    """A short, stable key for a file's content at a location (a ``file`` row)."""
    return hashlib.sha256(f"{url}\n{sha256 or ''}".encode()).hexdigest()[:32]


def raw_file(key: str) -> str:
    """A file's content at a location that no exported activity generated: an input of the runs."""
    return f"file/{key}"


def generated_file(run_id: str, task_id: int, try_id: int, key: str) -> str:
    """A file's content as one try generated it (each generation is an entity of its own)."""
    return f"run/{run_id}/task/{task_id}/try/{try_id}/file/{key}"


def _safe(text: str) -> str:
    """A label as an IRI path segment: characters outside a safe set are percent-encoded."""
    from urllib.parse import quote

    return quote(str(text), safe="-._~@")


def file_url(url: str) -> str:
    """A recorded file location as an absolute IRI: local paths become ``file://`` URLs, and characters
    an IRI cannot hold (spaces, quotes, angle brackets, ...) are percent-encoded; existing escapes and
    the URL's own delimiters are kept."""
    from urllib.parse import quote

    if "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{quote(rest, safe=_URL_SAFE)}"
    return "file://" + quote(url)


_URL_SAFE = "/:?#[]@!$&'()*+,;=%~"


# Our terms (prefix ``pr``): name -> (what it is, what it means). ``Class`` terms type elements;
# ``Role`` terms are the ``prov:hadRole`` values of usages, generations, associations and
# communications; the rest are properties. ``provenance-schemas/parsl-repro-vocab.ttl`` is generated
# from this table, and the writers refuse a ``pr:`` term that is not in it.
TERMS: dict[str, tuple[str, str]] = {
    # classes
    "Run": ("Class", "A run of a workflow script: the activity that started its tasks."),
    "Task": ("Class", "One app call in a run, from its submission to its final state."),
    "Try": ("Class", "One attempt to execute a task on an executor."),
    "App": ("Class", "One version of an app: its function, identified by a digest of its normalised source."),
    "Script": ("Class", "The workflow script a run executed, identified by the sha256 of its bytes."),
    "Environment": ("Class", "The installed Python packages a run had, identified by a digest of their list."),
    "File": ("Class", "A file's content at a location, identified by its sha256."),
    "Result": ("Class", "The value a completed task returned, identified by the sha256 of its serialized form."),
    "StoredResult": ("Class", "A result kept in the store under its memo key, for later runs to reuse."),
    "Error": ("Class", "The error a failed try or task ended with."),
    "Engine": ("Class", "parsl_repro, the workflow engine that ran the run."),
    "Executor": ("Class", "An executor of a run (threads, a pool of worker processes, ...)."),
    "Block": ("Class", "A block of resources an executor obtained from a provider (a batch job, a local process)."),
    "Node": ("Class", "A worker pool on one machine that executed tries (Parsl's manager)."),
    "Host": ("Class", "A machine, by host name."),
    # roles
    "input": ("Role", "A file named in a task's inputs, read by the try."),
    "output": ("Role", "A file named in a task's outputs, written by the try."),
    "stdout": ("Role", "The file a try's standard output went to."),
    "stderr": ("Role", "The file a try's standard error went to."),
    "argument": ("Role", "The result of a task that this one waited on, passed to it as an argument."),
    "joined": ("Role", "The result of a task that a join app waited on and returned."),
    "returned": ("Role", "A result, as generated by the activity that returned it."),
    "failure": ("Role", "An error, as generated by the activity that failed, or used by one that failed on it."),
    "storedResult": ("Role", "The stored result that a memo hit reused instead of executing."),
    "runInput": ("Role", "Something a run used that none of its (exported) activities generated."),
    "environment": ("Role", "The package environment a run executed in."),
    "submitter": ("Role", "The user who ran the workflow script."),
    "runHost": ("Role", "The machine the workflow script ran on."),
    "workflowEngine": ("Role", "The engine that ran the run and submitted its tasks."),
    "worker": ("Role", "The executor or block whose workers executed a try."),
    "parentRun": ("Role", "The run that this run resumed or replayed."),
    # properties of runs
    "runId": ("Property", "The run's identifier (a UUID) in the provenance store."),
    "outcome": ("Property", "How the run ended: completed, failed, interrupted, incomplete, killed, running."),
    "partial": ("Property", "Set when the run was still running at export: the record is what was recorded so far."),
    "unfinished": ("Property", "Why an activity has no end time (still running, or never finished)."),
    "notExported": ("Property", "Set on an element referenced by the export but recorded by a run it does not "
                                "include."),
    "workflowName": ("Property", "The workflow's name (the script's file name unless configured)."),
    "workflowVersion": ("Property", "The workflow's version, when configured."),
    "runDirectory": ("Property", "The run's directory (runinfo/NNN)."),
    "workingDirectory": ("Property", "The working directory the script was started in."),
    "argv": ("Property", "The script's command line, with secrets redacted."),
    "pythonVersion": ("Property", "The Python version."),
    "platform": ("Property", "The operating system platform string."),
    "gitRepository": ("Property", "The git repository holding the script."),
    "gitCommit": ("Property", "The repository's HEAD commit."),
    "gitDirty": ("Property", "Whether tracked files had uncommitted changes."),
    "gitDiffSha256": ("Property", "The sha256 of `git diff HEAD` when the tree was dirty."),
    "configSummary": ("Property", "A summary of the run's configuration (the Config's repr)."),
    "tasksCompleted": ("Property", "How many tasks of the run completed."),
    "tasksFailed": ("Property", "How many tasks of the run failed."),
    "userName": ("Property", "A user's login name."),
    "hostname": ("Property", "A machine's host name."),
    "version": ("Property", "A software version."),
    "packagesDigest": ("Property", "The digest over the installed distributions and their versions."),
    "package": ("Property", "One installed distribution, as name==version."),
    # properties of apps
    "appName": ("Property", "The app's function name (qualified name)."),
    "module": ("Property", "The module that defines the app's function."),
    "appKind": ("Property", "python, bash or join."),
    "appDigest": ("Property", "The digest of the app's identity: its normalised source and what it references."),
    "sourceSha256": ("Property", "The sha256 of the app's normalised source text."),
    # properties of tasks and tries
    "taskId": ("Property", "The task's number in its run."),
    "tryId": ("Property", "The try's number in its task (0 for the first)."),
    "tryOf": ("Property", "The task this try is an attempt at."),
    "state": ("Property", "The task's final (or latest) state: exec_done, memo_done, failed, dep_fail, ..."),
    "failCount": ("Property", "How many failures were charged to the task."),
    "executorLabel": ("Property", "The label of the executor that ran it."),
    "argsDigest": ("Property", "The sha256 of the task's serialized arguments, as stored for replay."),
    "argsNote": ("Property", "Why the task's arguments were not stored."),
    "argsRepr": ("Property", "A short readable rendering of the task's arguments."),
    "command": ("Property", "A bash app's command line, as its last try ran it."),
    "memoKey": ("Property", "The task's memo key (Parsl's hashsum)."),
    "cacheNote": ("Property", "Why the task was not cached, or not served from the cache."),
    "pid": ("Property", "The process id that executed the try."),
    "blockId": ("Property", "The block's id within its executor."),
    "workerPool": ("Property", "The id of the worker pool (manager) that executed the try."),
    "resourceSamples": ("Property", "How many resource samples were taken of the try."),
    "peakResidentMemory": ("Property", "The try's largest resident memory sample, in bytes."),
    "cpuTimeUser": ("Property", "The try's user CPU time at its last sample, in seconds."),
    "cpuTimeSystem": ("Property", "The try's system CPU time at its last sample, in seconds."),
    "traceback": ("Property", "The traceback of an error (the app's own frames)."),
    "serializer": ("Property", "How a stored value was serialized (pickle or dill)."),
    # properties of blocks and nodes
    "blockState": ("Property", "The block's last recorded state."),
    "jobId": ("Property", "The provider's job id for the block."),
    "provider": ("Property", "The provider that made the block: its class and label."),
    "schedulerHost": ("Property", "The host the block's scheduler commands ran on (a channel's host)."),
    "submitScriptSha256": ("Property", "The sha256 of the submit script the block's job ran."),
    "firstSeen": ("Property", "When the block's first state change was recorded."),
    "lastSeen": ("Property", "When the block's last state change was recorded."),
    "nodeId": ("Property", "The worker pool's id (Parsl's manager uid)."),
    "inBlock": ("Property", "The block a worker pool was started in."),
    "cpuCount": ("Property", "The CPUs a worker pool saw."),
    "totalMemory": ("Property", "The memory a worker pool saw, in bytes."),
    "workerCount": ("Property", "How many workers the pool ran."),
    # properties the RO-Crate export uses where schema.org has no word
    "executedBy": ("Property", "The block or executor whose workers executed an action (RO-Crate export)."),
    "executedAt": ("Property", "The worker pool or host an action executed on (RO-Crate export)."),
    "ofExecutor": ("Property", "The executor a block belongs to (RO-Crate export)."),
    "resultSha256": ("Property", "The sha256 of a task's serialized result (RO-Crate export)."),
    "memoSource": ("Property", "The action whose stored result a memo hit reused (RO-Crate export)."),
}
