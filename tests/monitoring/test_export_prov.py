"""W3C PROV export of real runs (``parsl-repro export``, ``parsl_repro.monitoring.export``).

The runs (tests/monitoring/export_runs.py) use threads and HTEX; python, bash and join apps;
files; a failure and a task that failed on it; a retry; memo hits; a killed run and the run that
resumed it. Every format is read back: rdflib parses the RDF, pyshacl checks the PROV-O against
provenance-schemas/prov-shapes.ttl, the ``prov`` package reads PROV-JSON, PROV-N, PROV-XML and
PROV-JSONLD back into a document equal to the one built from the store, with as many activities,
entities, agents and relations of each kind as the store's rows call for.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from prov.model import ProvDocument
from pyshacl import validate
from rdflib import RDF, BNode, Dataset, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import PROV, XSD
from sqlalchemy import func, select

from parsl_repro.monitoring import models as m
from parsl_repro.monitoring.engine import open_for_reading
from parsl_repro.monitoring.export import (
    PROV_FORMATS,
    ExportError,
    export_prov,
    export_ro_crate,
    prov_document,
    prov_graph,
    vocab,
)
from tests.monitoring.export_runs import WORKFLOW, run_script, store_url

REPO = Path(__file__).resolve().parents[2]
SHAPES = Graph().parse(REPO / "provenance-schemas" / "prov-shapes.ttl", format="turtle")
PR = vocab.VOCAB
SCHEMA_SHA = URIRef("https://schema.org/sha256")
SUCCEEDED, FAILED = ("exec_done", "memo_done"), ("failed", "dep_fail")


SELECTIONS = {"main": ["main"], "killed and resumed": ["resumed", "killed"], "resumed alone": ["resumed"]}


def _ids(runs, selection):
    return [runs[name] for name in SELECTIONS[selection]]


def _conforms(graph: Graph) -> str | None:
    conforms, _report, text = validate(graph, shacl_graph=SHAPES, advanced=True)
    return None if conforms else text


# --- what the store's rows call for ---------------------------------------------------------------

def expected(engine, run_ids) -> Counter:
    """Counts of PROV records that the mapping (provenance-schemas/prov-mapping.md) derives from the
    store's rows, computed here from the rows directly."""
    with engine.connect() as conn:
        def rows(model, *where):
            return list(conn.execute(select(model.__table__).where(model.run_id.in_(run_ids), *where)))
        runs, tasks, tries = rows(m.Workflow), rows(m.Task), rows(m.Try)
        deps, blocks, nodes = rows(m.Dependency), rows(m.Block), rows(m.Node)
        uses = list(conn.execute(select(m.FileUse.__table__, m.File.url, m.File.sha256)
                                 .join(m.File, m.File.file_id == m.FileUse.file_id)
                                 .where(m.FileUse.run_id.in_(run_ids))))
    exported = set(run_ids)
    task = {(t.run_id, t.task_id): t for t in tasks}
    tries_of: dict = {}
    for t in tries:
        tries_of.setdefault((t.run_id, t.task_id), []).append(t)
    c: Counter = Counter()

    executors = {(t.run_id, t.executor) for t in tasks} | {(t.run_id, t.task_executor) for t in tries} \
        | {(b.run_id, b.executor_label) for b in blocks}
    hosts = {r.host for r in runs} | {t.hostname for t in tries if not t.manager and t.hostname}
    c["agent"] = len({(r.user, r.host) for r in runs}) + len(hosts) + len(runs) + len(executors) \
        + len({(b.run_id, b.executor_label, b.block_id) for b in blocks})
    c["actedOnBehalfOf"] = len(runs) + len(executors) + len({(b.run_id, b.executor_label, b.block_id)
                                                              for b in blocks})

    memo_hits = [t for t in tasks if t.task_status_name == "memo_done" and t.memo_source_run]
    foreign = {(t.memo_source_run, t.memo_source_task) for t in memo_hits if t.memo_source_run not in exported}
    parents = {r.parent_run_id for r in runs if r.parent_run_id and r.parent_run_id not in exported}
    c["activity"] = len(runs) + len(tasks) + len(tries) + len(parents) + len(foreign)
    c["wasStartedBy"] = len(tasks) + len(tries)
    c["wasAssociatedWith"] = 3 * len(runs) + len(tasks) + len(tries)
    c["wasInfluencedBy"] = len(memo_hits)
    c["wasInformedBy"] = sum(1 for r in runs if r.parent_run_id)

    results = [t for t in tasks if t.task_status_name in SUCCEEDED and t.result_digest]
    task_errors = [t for t in tasks if t.task_status_name in FAILED]
    try_errors = [t for t in tries if t.error]
    generated = {(u.run_id, u.task_id, u.try_id, vocab.file_key(u.url, u.sha256)) for u in uses
                 if u.role != "input"}
    # an input is the latest generation of its file before the try started, or else a raw input
    started = {(t.run_id, t.task_id, t.try_id): t.task_try_time_launched for t in tries}
    ended = {(t.run_id, t.task_id, t.try_id): t.task_try_time_returned for t in tries}
    raw, run_inputs = set(), set()
    for u in uses:
        if u.role == "input":
            begun = started[(u.run_id, u.task_id, u.try_id)]
            if not any(g.file_id == u.file_id and g.role != "input" and ended[(g.run_id, g.task_id, g.try_id)]
                       <= begun for g in uses):
                raw.add(vocab.file_key(u.url, u.sha256))
                run_inputs.add((u.run_id, u.file_id))
    c["entity"] = len({r.script_sha256 for r in runs}) + len({r.packages_digest for r in runs}) \
        + len({t.app_digest for t in tasks if t.app_digest}) + len(results) + len(task_errors) + len(try_errors) \
        + len({(n.run_id, n.uid) for n in nodes}) + len(generated) + len(raw) + len(foreign)
    c["wasGeneratedBy"] = len(results) + len(task_errors) + len(try_errors) + len(generated)

    used = len(runs)  # the environment
    used += sum(1 for u in uses if u.role == "input") + len(run_inputs)
    used += len(memo_hits) + len(foreign)  # a memo hit used the stored result; the run, a foreign one
    used += sum(1 for t in task_errors if tries_of.get((t.run_id, t.task_id)) and
                tries_of[(t.run_id, t.task_id)][-1].error)
    informed = 0
    for d in deps:
        upstream, waiting = task[(d.run_id, d.depends_on)], task[(d.run_id, d.task_id)]
        if upstream.task_status_name in SUCCEEDED:
            if d.kind == "join":
                n = 1 if waiting.task_time_returned is not None else 0
            else:
                n = len(tries_of.get((d.run_id, d.task_id), []))
        elif upstream.task_status_name in FAILED:
            n = 1 if not tries_of.get((d.run_id, d.task_id)) and waiting.task_time_returned is not None else 0
        else:
            n = 0
        used += n
        informed += n
    c["used"] = used
    c["wasInformedBy"] += informed
    return c


def _counts(doc: ProvDocument) -> Counter:
    names = {"ProvActivity": "activity", "ProvEntity": "entity", "ProvAgent": "agent", "ProvUsage": "used",
             "ProvGeneration": "wasGeneratedBy", "ProvAssociation": "wasAssociatedWith",
             "ProvCommunication": "wasInformedBy", "ProvStart": "wasStartedBy", "ProvDerivation": "wasDerivedFrom",
             "ProvInfluence": "wasInfluencedBy", "ProvDelegation": "actedOnBehalfOf"}
    return Counter(names[type(record).__name__] for record in doc.get_records())


# --- the tests --------------------------------------------------------------------------------------

@pytest.mark.parametrize("selection", SELECTIONS)
def test_every_prov_format_reads_back_as_the_document_the_store_calls_for(recorded, selection, tmp_path):
    _root, engine, runs = recorded
    run_ids = _ids(runs, selection)
    reference = prov_document(engine, run_ids)
    counts = _counts(reference)
    want = expected(engine, run_ids)
    assert {k: counts[k] for k in want} == dict(want)
    assert counts["wasDerivedFrom"] > 0
    for fmt, (syntax, ext, _what) in PROV_FORMATS.items():
        path = tmp_path / f"export{ext}"
        summary = export_prov(engine, run_ids, fmt, str(path), batch=3)  # several batches per run
        assert summary.path == str(path) and summary.bytes == path.stat().st_size > 0
        if syntax in ("turtle", "trig"):
            graph = Dataset() if syntax == "trig" else Graph()
            graph.parse(path, format=syntax)
            assert len(graph) > 0
            continue
        back = ProvDocument.deserialize(source=str(path), format=syntax)
        assert _counts(back) == counts, fmt
        assert back.unified() == reference, f"{fmt} does not read back as the store's document"


@pytest.mark.parametrize("selection", SELECTIONS)
def test_the_prov_o_conforms_to_our_shapes(recorded, selection, tmp_path):
    _root, engine, runs = recorded
    run_ids = _ids(runs, selection)
    turtle = export_prov(engine, run_ids, "prov-o")
    assert _conforms(Graph().parse(data=turtle, format="turtle")) is None
    trig = Dataset().parse(data=export_prov(engine, run_ids, "prov-trig"), format="trig")
    union = Graph()
    for s, p, o, _graph in trig.quads((None, None, None, None)):
        union.add((s, p, o))
    assert _conforms(union) is None


def test_trig_puts_each_run_in_a_named_graph_of_its_own(recorded):
    _root, engine, runs = recorded
    run_ids = [runs["killed"], runs["resumed"]]
    data = Dataset().parse(data=export_prov(engine, run_ids, "prov-trig"), format="trig")
    for run_id in run_ids:
        name = URIRef(f"{vocab.INSTANCE}run/{run_id}/bundle")
        graph = data.graph(name)
        assert (URIRef(f"{vocab.INSTANCE}run/{run_id}"), RDF.type, PROV.Activity) in graph
        assert (name, RDF.type, PROV.Bundle) in data.default_graph
        other = next(r for r in run_ids if r != run_id)
        assert (URIRef(f"{vocab.INSTANCE}run/{other}/task/0"), RDF.type, PROV.Activity) not in graph


def test_the_shapes_catch_what_they_promise(recorded):
    """Each rule of prov-shapes.ttl fails on an export broken in its way, so a conforming export means
    something."""
    _root, engine, runs = recorded
    good = prov_graph(engine, [runs["main"]])
    try_ = next(good.subjects(RDF.type, URIRef(PR + "Try")))

    def broken(change) -> Graph:
        graph = Graph()
        for triple in good:
            graph.add(triple)
        change(graph)
        return graph

    def late(value):
        return Literal(value, datatype=XSD.dateTime)

    breaks = {
        "end before start": lambda g: g.set((try_, PROV.endedAtTime, late("2000-01-01T00:00:00+00:00"))),
        "no end and no reason": lambda g: g.remove((try_, PROV.endedAtTime, None)),
        "not UTC": lambda g: g.set((try_, PROV.startedAtTime, late("2026-01-01T10:00:00+01:00"))),
        "no agent": lambda g: g.remove((try_, PROV.wasAssociatedWith, None)),
        "two generations": lambda g: g.add((next(g.subjects(PROV.wasGeneratedBy, None)), PROV.wasGeneratedBy,
                                            URIRef("urn:example:another-activity"))),
        "used before generated": lambda g: [g.set((gen, PROV.atTime, late("2100-01-01T00:00:00+00:00")))
                                            for gen in list(g.objects(None, PROV.qualifiedGeneration))],
        "used from nowhere": lambda g: _use(g, try_, URIRef("urn:example:nowhere")),
    }
    for name, change in breaks.items():
        assert _conforms(broken(change)) is not None, f"the shapes let '{name}' through"


def _use(graph: Graph, activity, entity) -> None:
    usage = BNode()
    graph.add((activity, PROV.qualifiedUsage, usage))
    graph.add((usage, RDF.type, PROV.Usage))
    graph.add((usage, PROV.entity, entity))


def test_every_task_try_file_and_block_appears_in_every_format(recorded, tmp_path):
    _root, engine, runs = recorded
    run_ids = list(runs.values())
    with engine.connect() as conn:
        tasks = list(conn.execute(select(m.Task.run_id, m.Task.task_id).where(m.Task.run_id.in_(run_ids))))
        tries = list(conn.execute(select(m.Try.run_id, m.Try.task_id, m.Try.try_id).where(m.Try.run_id.in_(run_ids))))
        files = set(conn.execute(select(m.File.url).join(m.FileUse, m.FileUse.file_id == m.File.file_id)
                                 .where(m.FileUse.run_id.in_(run_ids))).scalars())
        blocks = set(conn.execute(select(m.Block.run_id, m.Block.executor_label, m.Block.block_id)
                                  .where(m.Block.run_id.in_(run_ids))))
    assert tasks and tries and files and blocks
    names = [vocab.task(r, t) for r, t in tasks] + [vocab.attempt(r, t, n) for r, t, n in tries] \
        + [vocab.block(r, label, b) for r, label, b in blocks]
    for fmt, (syntax, _ext, _what) in PROV_FORMATS.items():
        found = _names_in(syntax, export_prov(engine, run_ids, fmt))
        missing = [name for name in names if vocab.INSTANCE + name not in found]
        assert not missing, (fmt, missing[:5])
        missing_files = [url for url in files if vocab.file_url(url) not in found]
        assert not missing_files, (fmt, missing_files)


def _names_in(syntax: str, text: str) -> set[str]:
    """Every IRI and value a document names, read back by a parser of its format."""
    if syntax in ("turtle", "trig"):
        graph = Dataset().parse(data=text, format=syntax)
        return {str(term) for quad in graph.quads((None, None, None, None)) for term in quad[:3]}
    found = set()
    for record in ProvDocument.deserialize(content=text, format=syntax).get_records():
        if record.identifier is not None:
            found.add(record.identifier.uri)
        for _attr, value in [*record.formal_attributes, *record.extra_attributes]:
            found.add(getattr(value, "uri", None) or str(getattr(value, "value", value)))
    return found


def test_the_turtle_and_trig_text_say_exactly_what_the_graph_in_memory_says(recorded):
    """The Turtle and TriG writers render the statements as text themselves (for speed): the graphs
    they write are the graphs rdflib builds from the same statements, graph by graph."""
    _root, engine, runs = recorded
    run_ids = [runs["main"], runs["killed"], runs["resumed"]]
    turtle = Graph().parse(data=export_prov(engine, run_ids, "prov-o"), format="turtle")
    assert isomorphic(turtle, prov_graph(engine, run_ids))
    trig = Dataset().parse(data=export_prov(engine, run_ids, "prov-trig"), format="trig")
    reference = prov_graph(engine, run_ids, named=True)
    names = {g.identifier for g in reference.graphs()} - {reference.default_graph.identifier}
    assert len(names) == 3 and names == {g.identifier for g in trig.graphs()} - {trig.default_graph.identifier}
    for name in names:
        assert isomorphic(trig.graph(name), reference.graph(name)), name
    assert isomorphic(trig.default_graph, reference.default_graph)


def test_the_same_runs_exported_twice_give_isomorphic_graphs(recorded):
    _root, engine, runs = recorded
    run_ids = [runs["resumed"], runs["killed"]]
    first = Graph().parse(data=export_prov(engine, run_ids, "prov-o"), format="turtle")
    second = Graph().parse(data=export_prov(engine, run_ids, "prov-o", batch=1), format="turtle")
    assert isomorphic(first, second)


def test_every_term_is_prov_or_ours_and_times_are_utc(recorded):
    _root, engine, runs = recorded
    graph = prov_graph(engine, list(runs.values()))
    seen = set()
    for s, p, o in graph:
        for term in (p, o if p == RDF.type or p == PROV.hadRole else None):
            if term is not None and str(term).startswith(str(PROV)):
                getattr(PROV, str(term)[len(str(PROV)):])  # rdflib's closed PROV namespace raises on a non-term
            if term is not None and str(term).startswith(PR):
                assert str(term)[len(PR):] in vocab.TERMS, term
                seen.add(str(term)[len(PR):])
        if isinstance(o, Literal) and o.datatype == XSD.dateTime:
            value = o.toPython()
            assert isinstance(value, datetime.datetime) and value.utcoffset() == datetime.timedelta(0), (s, p, o)
    assert {"Run", "Task", "Try", "App", "File", "Result", "Error", "Block", "Node", "storedResult"} <= seen


SPARQL_INPUTS = """
    SELECT DISTINCT ?sha WHERE {
        ?output prov:atLocation ?where ; prov:wasDerivedFrom+ ?source .
        ?source schema:sha256 ?sha .
        FILTER NOT EXISTS { ?source prov:wasGeneratedBy ?anything }
    }"""
SPARQL_APPS = """
    SELECT DISTINCT ?digest WHERE {
        ?output prov:atLocation ?where .
        { ?output prov:wasGeneratedBy ?activity } UNION { ?output prov:wasDerivedFrom+/prov:wasGeneratedBy ?activity }
        ?activity prov:qualifiedAssociation/prov:hadPlan ?app .
        ?app pr:appDigest ?digest .
    }"""


def test_sparql_finds_the_raw_inputs_and_app_versions_an_output_file_derives_from(recorded):
    """scaled.txt was made by scale() from n.txt, which count() made from in.txt: the query over the
    PROV-O export names in.txt's sha256 and the two apps' digests, as the store's rows say."""
    root, engine, runs = recorded
    run_id = runs["main"]
    target = str(root / "scaled.txt")
    with engine.connect() as conn:
        uses = list(conn.execute(select(m.FileUse.task_id, m.FileUse.role, m.File.url, m.File.sha256,
                                        m.Task.app_digest)
                                 .join(m.File, m.File.file_id == m.FileUse.file_id)
                                 .join(m.Task, (m.Task.run_id == m.FileUse.run_id)
                                       & (m.Task.task_id == m.FileUse.task_id))
                                 .where(m.FileUse.run_id == run_id)))
    # walk the store backwards from the target: producer task, its inputs, their producers, ...
    want_shas, want_apps, frontier = set(), set(), {target}
    while frontier:
        url = frontier.pop()
        producers = [u for u in uses if u.url == url and u.role == "output"]
        if not producers:
            want_shas.add(next(u.sha256 for u in uses if u.url == url))
            continue
        for producer in producers:
            want_apps.add(producer.app_digest)
            frontier |= {u.url for u in uses if u.task_id == producer.task_id and u.role == "input"}
    assert len(want_apps) == 2 and len(want_shas) == 1

    graph = prov_graph(engine, [run_id])
    bindings = {"where": URIRef(vocab.file_url(target))}
    namespaces = {"prov": PROV, "schema": URIRef("https://schema.org/"), "pr": URIRef(PR)}
    shas = {str(r.sha) for r in graph.query(SPARQL_INPUTS, initNs=namespaces, initBindings=bindings)}
    apps = {str(r.digest) for r in graph.query(SPARQL_APPS, initNs=namespaces, initBindings=bindings)}
    assert shas == want_shas
    assert apps == want_apps
    assert hashlib.sha256((root / "in.txt").read_bytes()).hexdigest() in shas


def test_a_memo_hit_is_an_activity_that_used_the_stored_result_and_was_influenced_by_its_task(recorded):
    _root, engine, runs = recorded
    graph = prov_graph(engine, [runs["killed"], runs["resumed"]])
    with engine.connect() as conn:
        hits = list(conn.execute(select(m.Task).where(m.Task.run_id == runs["resumed"],
                                                      m.Task.task_status_name == "memo_done")))
    assert len(hits) == 2
    for hit in hits:
        activity = URIRef(vocab.INSTANCE + vocab.task(hit.run_id, hit.task_id))
        source = URIRef(vocab.INSTANCE + vocab.task(runs["killed"], hit.memo_source_task))
        stored = URIRef(vocab.INSTANCE + vocab.result(runs["killed"], hit.memo_source_task))
        assert (activity, PROV.used, stored) in graph
        assert (activity, PROV.wasInfluencedBy, source) in graph
        assert (stored, PROV.wasGeneratedBy, None) in graph  # by the killed run's try, in this export
        result = URIRef(vocab.INSTANCE + vocab.result(hit.run_id, hit.task_id))
        assert (result, PROV.wasGeneratedBy, activity) in graph
        assert (result, PROV.wasDerivedFrom, stored) in graph
    # exported alone, the resumed run still names what it reused, as inputs of the run
    alone = prov_graph(engine, [runs["resumed"]])
    run = URIRef(vocab.INSTANCE + vocab.run(runs["resumed"]))
    for hit in hits:
        stored = URIRef(vocab.INSTANCE + vocab.result(runs["killed"], hit.memo_source_task))
        assert (run, PROV.used, stored) in alone
        assert (stored, URIRef(PR + "notExported"), None) in alone
    assert (run, PROV.wasInformedBy, URIRef(vocab.INSTANCE + vocab.run(runs["killed"]))) in alone


def test_a_killed_run_shows_its_unfinished_task_without_an_end(recorded):
    _root, engine, runs = recorded
    graph = prov_graph(engine, [runs["killed"]])
    run = URIRef(vocab.INSTANCE + vocab.run(runs["killed"]))
    assert str(graph.value(run, URIRef(PR + "outcome"))) == "killed"
    unfinished = URIRef(vocab.INSTANCE + vocab.task(runs["killed"], 2))
    assert graph.value(unfinished, PROV.endedAtTime) is None
    assert "the run ended killed" in str(graph.value(unfinished, URIRef(PR + "unfinished")))
    assert str(graph.value(unfinished, URIRef(PR + "state"))) in ("launched", "running")


def test_a_failure_its_dependent_and_a_retry_are_recorded(recorded):
    _root, engine, runs = recorded
    run_id = runs["main"]
    graph = prov_graph(engine, [run_id])
    with engine.connect() as conn:
        failed = conn.execute(select(m.Task).where(m.Task.run_id == run_id, m.Task.task_func_name == "fails")).one()
        dependent = conn.execute(select(m.Task).where(m.Task.run_id == run_id, m.Task.task_func_name == "after")).one()
        flaky = conn.execute(select(m.Task).where(m.Task.run_id == run_id, m.Task.task_func_name == "flaky")).one()
    error = URIRef(vocab.INSTANCE + vocab.task_error(run_id, failed.task_id))
    assert "bad input 42" in str(graph.value(error, PROV.value))
    assert (error, PROV.wasGeneratedBy, URIRef(vocab.INSTANCE + vocab.task(run_id, failed.task_id))) in graph
    assert dependent.task_status_name == "dep_fail"
    assert (URIRef(vocab.INSTANCE + vocab.task(run_id, dependent.task_id)), PROV.used, error) in graph
    first_try = URIRef(vocab.INSTANCE + vocab.try_error(run_id, flaky.task_id, 0))
    assert "server busy" in str(graph.value(first_try, PROV.value))
    assert (URIRef(vocab.INSTANCE + vocab.result(run_id, flaky.task_id)), PROV.wasGeneratedBy,
            URIRef(vocab.INSTANCE + vocab.attempt(run_id, flaky.task_id, 1))) in graph


def test_htex_tries_are_associated_with_their_block_and_located_at_their_node(recorded):
    _root, engine, runs = recorded
    run_id = runs["main"]
    graph = prov_graph(engine, [run_id])
    with engine.connect() as conn:
        placed = list(conn.execute(select(m.Try).where(m.Try.run_id == run_id, m.Try.block_id.is_not(None))))
    assert {t.task_executor for t in placed} == {"htex", "htex2"} and {t.block_id for t in placed} == {"0"}
    for attempt in placed:
        node = URIRef(vocab.INSTANCE + vocab.attempt(run_id, attempt.task_id, attempt.try_id))
        block = URIRef(vocab.INSTANCE + vocab.block(run_id, attempt.task_executor, attempt.block_id))
        assert (node, PROV.wasAssociatedWith, block) in graph
        assert (block, RDF.type, PROV.SoftwareAgent) in graph
        where = URIRef(vocab.INSTANCE + vocab.node(run_id, attempt.manager))
        assert (node, PROV.atLocation, where) in graph and (where, RDF.type, PROV.Location) in graph
        assert graph.value(where, URIRef(PR + "inBlock")) == block  # the pool's block, of the try's executor
    # each block says which provider made it, where its commands ran and which script it ran
    with engine.connect() as conn:
        rows = conn.execute(select(m.Block).where(m.Block.run_id == run_id))
        made = {(b.executor_label, b.block_id): b for b in rows}
    assert made
    for (label, block_id), row in made.items():
        block = URIRef(vocab.INSTANCE + vocab.block(run_id, label, block_id))
        assert row.provider == "LocalProvider local" and row.host == "localhost" and len(row.script_sha256) == 64
        assert str(graph.value(block, URIRef(PR + "provider"))) == row.provider
        assert str(graph.value(block, URIRef(PR + "schedulerHost"))) == row.host
        assert str(graph.value(block, URIRef(PR + "submitScriptSha256"))) == row.script_sha256
    # resource usage, where the pools sampled it, as attributes of the try
    with engine.connect() as conn:
        sampled = list(conn.execute(select(m.Resource.task_id, m.Resource.try_id, func.count(),
                                           func.max(m.Resource.psutil_process_memory_resident))
                                    .where(m.Resource.run_id == run_id)
                                    .group_by(m.Resource.task_id, m.Resource.try_id)))
    assert sampled, "HTEX samples each worker's first task"
    for task_id, try_id, count, rss in sampled:
        node = URIRef(vocab.INSTANCE + vocab.attempt(run_id, task_id, try_id))
        assert graph.value(node, URIRef(PR + "resourceSamples")).toPython() == count
        assert graph.value(node, URIRef(PR + "peakResidentMemory")).toPython() == float(rss)


def test_a_run_still_running_is_exported_as_partial(tmp_path, monkeypatch):
    monkeypatch.delenv("PARSL_REPRO_PROVENANCE_URL", raising=False)
    (tmp_path / "wait.py").write_text(
        "import os, time\n"
        "import parsl_repro as parsl\n"
        "from parsl_repro import python_app\n"
        "@python_app\n"
        "def wait():\n"
        "    while not os.path.exists('go'):\n"
        "        time.sleep(0.05)\n"
        "    return 1\n"
        "with parsl.load():\n"
        "    wait().result()\n")
    script = subprocess.Popen([sys.executable, "wait.py"], cwd=tmp_path)
    try:
        url = store_url(tmp_path)
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=60)
        while True:  # until the store has the running try
            try:
                engine = open_for_reading(url)
                with engine.connect() as conn:
                    if conn.execute(select(m.Try.task_id)).first() is not None:
                        run_id = conn.execute(select(m.Workflow.run_id)).scalar_one()
                        break
                engine.dispose()
            except Exception:  # noqa: BLE001 - the store is not there yet
                pass
            assert datetime.datetime.now() < deadline, "the run never recorded its try"
        out = io.StringIO()
        summary = export_prov(engine, [run_id], "prov-o", out)
        assert any("still running" in note for note in summary.notes)
        graph = Graph().parse(data=out.getvalue(), format="turtle")
        run = URIRef(vocab.INSTANCE + vocab.run(run_id))
        assert graph.value(run, URIRef(PR + "partial")) is not None
        assert graph.value(run, PROV.endedAtTime) is None
        running = URIRef(vocab.INSTANCE + vocab.attempt(run_id, 0, 0))
        assert "still running" in str(graph.value(running, URIRef(PR + "unfinished")))
        assert _conforms(graph) is None
        engine.dispose()
    finally:
        (tmp_path / "go").write_text("")
        assert script.wait(timeout=60) == 0


def test_the_export_reads_postgresql_stores_too(tmp_path, backend):
    """The same queries on PostgreSQL (and SQLite): the main workflow's export conforms and reads back."""
    run_script(tmp_path, "wf.py", WORKFLOW)
    engine = open_for_reading(store_url(tmp_path))
    try:
        run_id = engine.connect().execute(select(m.Workflow.run_id)).scalar_one()
        assert _conforms(prov_graph(engine, [run_id])) is None
        reference = prov_document(engine, [run_id])
        back = ProvDocument.deserialize(content=export_prov(engine, [run_id], "prov-json"), format="json")
        assert back.unified() == reference
        assert _counts(reference)["activity"] == expected(engine, [run_id])["activity"]
    finally:
        engine.dispose()


# --- the command ------------------------------------------------------------------------------------

def _cli(root, *args):
    return subprocess.run([sys.executable, "-m", "parsl_repro.cli", "--runinfo", str(root / "runinfo"), *args],
                          capture_output=True, text=True, timeout=120)


def test_the_command_exports_named_runs_and_refuses_bad_input(recorded, tmp_path):
    root, _engine, runs = recorded
    done = _cli(root, "export", runs["killed"][:8], "last", "-f", "prov-n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("document") and done.stdout.rstrip().endswith("endDocument")
    named = _names_in("provn", done.stdout)
    for run_id in (runs["killed"], runs["resumed"]):
        assert vocab.INSTANCE + vocab.task(run_id, 0) in named
    assert vocab.INSTANCE + vocab.run(runs["main"]) in named  # named as the killed run's parent ...
    assert vocab.INSTANCE + vocab.task(runs["main"], 0) not in named  # ... and not exported

    target = tmp_path / "run.ttl"
    done = _cli(root, "export", "-f", "prov-o", "-o", str(target), "--json")
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert said["runs"] == [runs["resumed"]] and said["bytes"] == target.stat().st_size
    before = target.read_bytes()

    refused = _cli(root, "export", "-f", "prov-o", "-o", str(target))
    assert refused.returncode == 2 and "exists" in refused.stderr and "--force" in refused.stderr
    assert target.read_bytes() == before
    assert _cli(root, "export", runs["main"], "-f", "prov-o", "-o", str(target), "--force").returncode == 0
    assert runs["main"] in target.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.ttl")]  # no temporary left behind

    unknown = _cli(root, "export", "-f", "prov-owl")
    assert unknown.returncode == 2
    assert all(name in unknown.stderr for name in ("prov-o", "prov-trig", "prov-jsonld", "prov-json", "prov-n",
                                                   "prov-xml", "ro-crate"))
    missing = _cli(root, "export", "0000dead", "-f", "prov-o")
    assert missing.returncode == 2 and "No run matches '0000dead'" in missing.stderr


def test_the_command_refuses_a_store_of_a_newer_schema(tmp_path, monkeypatch):
    import sqlite3

    monkeypatch.delenv("PARSL_REPRO_PROVENANCE_URL", raising=False)
    (tmp_path / "one.py").write_text("import parsl_repro as parsl\nfrom parsl_repro import python_app\n"
                                     "@python_app\ndef one():\n    return 1\n"
                                     "with parsl.load():\n    one().result()\n")
    run_script(tmp_path, "one.py", (tmp_path / "one.py").read_text())
    with sqlite3.connect(tmp_path / "runinfo" / "monitoring.db") as db:
        db.execute("UPDATE schema_info SET value = '999' WHERE key = 'schema_version'")
    done = _cli(tmp_path, "export", "-f", "prov-o")
    assert done.returncode == 2 and "999" in done.stderr


def test_force_replaces_only_what_an_export_writes_and_never_the_store(recorded, tmp_path):
    root, engine, runs = recorded
    directory = tmp_path / "results"
    (directory / "keep").mkdir(parents=True)
    with pytest.raises(ExportError, match="is a directory"):
        export_prov(engine, [runs["main"]], "prov-o", str(directory), force=True)
    with pytest.raises(ExportError, match="holds no RO-Crate"):
        export_ro_crate(engine, [runs["main"]], str(directory), force=True)
    assert (directory / "keep").is_dir()
    store = root / "runinfo" / "monitoring.db"
    before = store.stat().st_size
    with pytest.raises(ExportError, match="provenance store"):
        export_prov(engine, [runs["main"]], "prov-o", str(store), force=True)
    with pytest.raises(ExportError):
        export_ro_crate(engine, [runs["main"]], str(root / "runinfo"), force=True)
    assert store.stat().st_size == before and (root / "runinfo" / "provenance.db").exists()


def test_file_urls_are_iris():
    assert vocab.file_url("/data/a b/ü.txt") == "file:///data/a%20b/%C3%BC.txt"
    assert vocab.file_url("http://host/a b.csv?x=1&y=<2>") == "http://host/a%20b.csv?x=1&y=%3C2%3E"
    assert vocab.file_url("ftp://user@host/%20already") == "ftp://user@host/%20already"
