"""PROV-O with rdflib: the statements of ``records`` as triples, in Turtle or TriG.

Every relation is written twice: the plain triple (``prov:used``, ``prov:wasGeneratedBy``, ...) for
simple queries, and its qualified form (``prov:qualifiedUsage`` and so on, with roles and times) for
the details. PROV-O has no plain triple for an activity started by another activity (its
``prov:wasStartedBy`` points at an entity, the trigger), so a start is ``prov:qualifiedStart`` with
``prov:hadActivity`` the starter, plus the plain ``prov:wasInfluencedBy`` the starter.

Terms are taken from rdflib's closed ``PROV`` namespace and from our vocabulary (``vocab.TERMS``)
as a closed namespace too, so a misspelt term fails at once instead of writing a triple nobody can
query. The output is written a batch at a time: each batch becomes a small graph serialized on its
own (Turtle allows a subject to recur), so memory stays flat however large the run.
"""
from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from rdflib import RDF, RDFS, XSD, BNode, Dataset, Graph, Literal, URIRef
from rdflib.namespace import PROV, ClosedNamespace, Namespace

from parsl_repro.monitoring.export import vocab as v
from parsl_repro.monitoring.export.model import URL, Element, Ref, Relation, Statement, Value

PR = ClosedNamespace(v.VOCAB, list(v.TERMS))
SCHEMA = ClosedNamespace(v.NAMESPACES["schema"], ["sha256", "contentSize", "name"])
INSTANCE = Namespace(v.INSTANCE)
_PREFIXES = {"prov": PROV, "pr": PR, "schema": SCHEMA, "rdfs": RDFS, "xsd": XSD}
_KIND = {"activity": PROV.Activity, "entity": PROV.Entity, "agent": PROV.Agent}
_SPECIAL = {"prov:label": RDFS.label, "prov:location": PROV.atLocation, "prov:value": PROV.value}

Triple = tuple[URIRef | BNode, URIRef, URIRef | BNode | Literal]


def term(name: str) -> URIRef:
    """``prefix:local`` as an IRI, through the closed namespaces (an unknown term raises)."""
    if name in _SPECIAL:
        return _SPECIAL[name]
    prefix, local = name.split(":", 1)
    namespace = _PREFIXES[prefix]
    return namespace[local] if isinstance(namespace, ClosedNamespace) else getattr(namespace, local)


def iri(identifier: str) -> URIRef:
    return URIRef(v.INSTANCE + identifier)


def literal(value: Value) -> URIRef | Literal:
    if isinstance(value, Ref):
        return iri(value)
    if isinstance(value, URL):
        return URIRef(value)
    if isinstance(value, datetime.datetime):
        return time_literal(value)
    return Literal(value)


def time_literal(value: datetime.datetime) -> Literal:
    """A timezone-aware UTC ``xsd:dateTime`` (the store keeps naive UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return Literal(value.astimezone(datetime.UTC).isoformat(), datatype=XSD.dateTime)


def triples(statement: Statement) -> Iterator[Triple]:
    """The triples of one statement: plain and qualified."""
    if isinstance(statement, Element):
        yield from _element(statement)
    else:
        yield from _relation(statement)


def _element(e: Element) -> Iterator[Triple]:
    subject = iri(e.id)
    yield subject, RDF.type, _KIND[e.kind]
    for name in e.types:
        yield subject, RDF.type, term(name)
        if name == "prov:Plan":
            yield subject, RDF.type, PROV.Entity
    if e.start is not None:
        yield subject, PROV.startedAtTime, time_literal(e.start)
    if e.end is not None:
        yield subject, PROV.endedAtTime, time_literal(e.end)
    for name, value in e.attrs:
        yield subject, term(name), literal(value)
        if name == "prov:location":
            yield literal(value), RDF.type, PROV.Location  # type: ignore[misc]


def _relation(r: Relation) -> Iterator[Triple]:
    subject = iri(r.subject)
    obj = iri(r.object) if r.object is not None else None
    node = BNode()
    kind = r.kind
    if kind == "used":
        yield subject, PROV.used, obj
        yield subject, PROV.qualifiedUsage, node
        yield node, RDF.type, PROV.Usage
        yield node, PROV.entity, obj
    elif kind == "wasGeneratedBy":
        yield subject, PROV.wasGeneratedBy, obj
        if r.time is not None:
            yield subject, PROV.generatedAtTime, time_literal(r.time)
        yield subject, PROV.qualifiedGeneration, node
        yield node, RDF.type, PROV.Generation
        yield node, PROV.activity, obj
    elif kind == "wasAssociatedWith":
        yield subject, PROV.wasAssociatedWith, obj
        yield subject, PROV.qualifiedAssociation, node
        yield node, RDF.type, PROV.Association
        yield node, PROV.agent, obj
        if r.plan is not None:
            yield node, PROV.hadPlan, iri(r.plan)
    elif kind == "wasInformedBy":
        yield subject, PROV.wasInformedBy, obj
        yield subject, PROV.qualifiedCommunication, node
        yield node, RDF.type, PROV.Communication
        yield node, PROV.activity, obj
    elif kind == "wasStartedBy":
        starter = iri(r.activity) if r.activity is not None else None
        if starter is not None:
            yield subject, PROV.wasInfluencedBy, starter
        if obj is not None:
            yield subject, PROV.wasStartedBy, obj
        yield subject, PROV.qualifiedStart, node
        yield node, RDF.type, PROV.Start
        if obj is not None:
            yield node, PROV.entity, obj
        if starter is not None:
            yield node, PROV.hadActivity, starter
    elif kind == "wasDerivedFrom":
        yield subject, PROV.wasDerivedFrom, obj
        yield subject, PROV.qualifiedDerivation, node
        yield node, RDF.type, PROV.Derivation
        yield node, PROV.entity, obj
        if r.activity is not None:
            yield node, PROV.hadActivity, iri(r.activity)
    elif kind == "wasInfluencedBy":
        yield subject, PROV.wasInfluencedBy, obj
        yield subject, PROV.qualifiedInfluence, node
        yield node, RDF.type, PROV.Influence
        yield node, PROV.influencer, obj
    elif kind == "actedOnBehalfOf":
        yield subject, PROV.actedOnBehalfOf, obj
        yield subject, PROV.qualifiedDelegation, node
        yield node, RDF.type, PROV.Delegation
        yield node, PROV.agent, obj
    else:  # pragma: no cover - the model's kinds are closed
        raise ValueError(f"unknown relation {kind!r}")
    if r.time is not None:
        yield node, PROV.atTime, time_literal(r.time)
    for role in r.roles:
        yield node, PROV.hadRole, term(role)
        yield term(role), RDF.type, PROV.Role


def bundle(run_id: str) -> URIRef:
    """The named graph (a ``prov:Bundle``) that holds one run's statements in TriG."""
    return iri(v.run(run_id) + "/bundle")


def bind(graph: Graph) -> Graph:
    for prefix, namespace in v.NAMESPACES.items():
        graph.bind(prefix, namespace, override=True, replace=True)
    return graph


def prov_graph(batches: Iterable[tuple[str, list[Statement]]], named: bool = False) -> Graph:
    """All statements in one graph (or, ``named``, a dataset with a graph per run): for queries and
    validation in memory."""
    graph: Graph = bind(Dataset()) if named else bind(Graph())
    for run_id, batch in batches:
        target = graph.graph(bundle(run_id)) if named else graph  # type: ignore[attr-defined]
        if named:
            _declare_bundle(graph.default_graph, run_id)  # type: ignore[attr-defined]
        for statement in batch:
            for triple in triples(statement):
                target.add(triple)
    return graph


def _declare_bundle(graph: Graph, run_id: str) -> None:
    name = bundle(run_id)
    graph.add((name, RDF.type, PROV.Bundle))
    graph.add((name, RDF.type, PROV.Entity))
    graph.add((name, RDFS.label, Literal(f"the provenance of run {run_id}")))


def write(batches: Iterable[tuple[str, list[Statement]]], out: IO[str], fmt: str,
          header: Callable[[Graph], None] | None = None) -> int:
    """Write ``batches`` to ``out`` as Turtle (``fmt`` ``turtle``) or TriG (``trig``, one named graph
    per run); returns the number of triples. ``header`` may add triples about the document itself."""
    out.write("".join(f"@prefix {p}: <{ns}> .\n" for p, ns in [("rdf", str(RDF)), *v.NAMESPACES.items()]))
    out.write("\n")
    count = 0
    declared: set[str] = set()
    first = True
    for run_id, batch in batches:
        graph = bind(Dataset()) if fmt == "trig" else bind(Graph())
        target = graph.graph(bundle(run_id)) if fmt == "trig" else graph  # type: ignore[attr-defined]
        if first and header is not None:
            header(graph.default_graph if fmt == "trig" else graph)  # type: ignore[attr-defined]
        first = False
        if fmt == "trig" and run_id not in declared:
            declared.add(run_id)
            _declare_bundle(graph.default_graph, run_id)  # type: ignore[attr-defined]
        for statement in batch:
            for triple in triples(statement):
                target.add(triple)
        count += len(graph)
        out.write(_body(graph.serialize(format=fmt)))
    return count


def _body(text: str) -> str:
    """A serialized graph without its ``@prefix`` lines (the document declares them once)."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("@prefix"))
