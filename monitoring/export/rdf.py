"""PROV-O: the statements of ``records`` as RDF, in Turtle or TriG, or as an rdflib graph.

Every relation is written twice: the plain triple (``prov:used``, ``prov:wasGeneratedBy``, ...) for
simple queries, and its qualified form (``prov:qualifiedUsage`` and so on, with roles and times) for
the details. PROV-O has no plain triple for an activity started by another activity (its
``prov:wasStartedBy`` points at an entity, the trigger), so a start is ``prov:qualifiedStart`` with
``prov:hadActivity`` the starter, plus the plain ``prov:wasInfluencedBy`` the starter.

``shape`` states once which triples a statement makes, as blocks of predicate-object pairs (a nested
list is a blank node). Two renderers read it: ``triples`` makes rdflib terms (for graphs in memory:
queries, validation), and ``TurtleWriter`` writes Turtle or TriG text directly, a statement at a
time, so memory stays flat however large the run (rdflib's own Turtle serializer needs the whole
graph and takes about 30 s per 270,000 triples). The tests check that both give the same graph.

Terms are checked against rdflib's closed ``PROV`` namespace and our vocabulary (``vocab.TERMS``),
so a misspelt term fails at once instead of writing a triple nobody can query.
"""
from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from typing import IO, Any

from rdflib import RDF, RDFS, XSD, BNode, Dataset, Graph, Literal, URIRef
from rdflib.namespace import PROV, ClosedNamespace

from parsl_repro.monitoring.export import vocab as v
from parsl_repro.monitoring.export.model import URL, Element, Ref, Relation, Statement, Value

PR = ClosedNamespace(v.VOCAB, list(v.TERMS))
SCHEMA = ClosedNamespace(v.NAMESPACES["schema"], ["sha256", "contentSize"])
_NAMESPACES = {"prov": PROV, "pr": PR, "schema": SCHEMA, "rdfs": RDFS, "xsd": XSD, "rdf": RDF}
_PREFIXES = {"rdf": str(RDF), **v.NAMESPACES}
_KIND = {"activity": "prov:Activity", "entity": "prov:Entity", "agent": "prov:Agent"}
_SPECIAL = {"prov:label": "rdfs:label", "prov:location": "prov:atLocation"}

# A node of a shape: ("i", identifier) an instance, ("t", "prefix:local") a term, ("u", url) an outside
# IRI, a Python value (str, int, float, bool, datetime) a literal, or a list of (predicate, node) pairs:
# a blank node with those properties.
Node = Any
Block = tuple[Node, list[tuple[str, Node]]]


def _check(name: str) -> str:
    """``name`` (``prefix:local``) if it is a term of its closed namespace; raises otherwise."""
    prefix, local = name.split(":", 1)
    namespace = _NAMESPACES[prefix]
    namespace[local] if isinstance(namespace, ClosedNamespace) else getattr(namespace, local)  # noqa: B018
    return name


_checked: dict[str, str] = {}


def _term(name: str) -> tuple[str, str]:
    found = _checked.get(name)
    if found is None:
        found = _checked[name] = _check(_SPECIAL.get(name, name))
    return ("t", found)


def _value(value: Value) -> Node:
    if isinstance(value, Ref):
        return ("i", str(value))
    if isinstance(value, URL):
        return ("u", str(value))
    return value


def shape(statement: Statement) -> tuple[list[Block], list[Block]]:
    """The triples of one statement: its blocks, and declarations (a role is a ``prov:Role``, a
    location a ``prov:Location``) that a document needs only once."""
    if isinstance(statement, Element):
        return _element(statement)
    return _relation(statement)


def _element(e: Element) -> tuple[list[Block], list[Block]]:
    pairs: list[tuple[str, Node]] = [("rdf:type", _term(_KIND[e.kind]))]
    for name in e.types:
        pairs.append(("rdf:type", _term(name)))
        if name == "prov:Plan" and e.kind != "entity":
            pairs.append(("rdf:type", _term("prov:Entity")))
    if e.start is not None:
        pairs.append(("prov:startedAtTime", e.start))
    if e.end is not None:
        pairs.append(("prov:endedAtTime", e.end))
    declarations = []
    for name, value in e.attrs:
        pairs.append((_term(name)[1], _value(value)))
        if name == "prov:location":
            declarations.append((_value(value), [("rdf:type", _term("prov:Location"))]))
    return [(("i", e.id), pairs)], declarations


_QUALIFIED = {
    # kind: (plain predicate, qualified predicate, class, the qualified node's predicate for the object)
    "used": ("prov:used", "prov:qualifiedUsage", "prov:Usage", "prov:entity"),
    "wasGeneratedBy": ("prov:wasGeneratedBy", "prov:qualifiedGeneration", "prov:Generation", "prov:activity"),
    "wasAssociatedWith": ("prov:wasAssociatedWith", "prov:qualifiedAssociation", "prov:Association", "prov:agent"),
    "wasInformedBy": ("prov:wasInformedBy", "prov:qualifiedCommunication", "prov:Communication", "prov:activity"),
    "wasDerivedFrom": ("prov:wasDerivedFrom", "prov:qualifiedDerivation", "prov:Derivation", "prov:entity"),
    "wasInfluencedBy": ("prov:wasInfluencedBy", "prov:qualifiedInfluence", "prov:Influence", "prov:influencer"),
    "actedOnBehalfOf": ("prov:actedOnBehalfOf", "prov:qualifiedDelegation", "prov:Delegation", "prov:agent"),
}


def _relation(r: Relation) -> tuple[list[Block], list[Block]]:
    subject = ("i", r.subject)
    obj = ("i", r.object) if r.object is not None else None
    pairs: list[tuple[str, Node]] = []
    if r.kind == "wasStartedBy":
        qualified: list[tuple[str, Node]] = [("rdf:type", _term("prov:Start"))]
        if r.activity is not None:
            pairs.append(("prov:wasInfluencedBy", ("i", r.activity)))
        if obj is not None:
            pairs.append(("prov:wasStartedBy", obj))
            qualified.append(("prov:entity", obj))
        if r.activity is not None:
            qualified.append(("prov:hadActivity", ("i", r.activity)))
        predicate = "prov:qualifiedStart"
    else:
        plain, predicate, cls, link = _QUALIFIED[r.kind]
        pairs.append((plain, obj))
        qualified = [("rdf:type", _term(cls)), (link, obj)]
        if r.kind == "wasGeneratedBy" and r.time is not None:
            pairs.append(("prov:generatedAtTime", r.time))
        if r.plan is not None:
            qualified.append(("prov:hadPlan", ("i", r.plan)))
        if r.kind == "wasDerivedFrom" and r.activity is not None:
            qualified.append(("prov:hadActivity", ("i", r.activity)))
    if r.time is not None:
        qualified.append(("prov:atTime", r.time))
    declarations = []
    for role in r.roles:
        qualified.append(("prov:hadRole", _term(role)))
        declarations.append((_term(role), [("rdf:type", _term("prov:Role"))]))
    pairs.append((predicate, qualified))
    return [(subject, pairs)], declarations


# -- rdflib terms ------------------------------------------------------------------------------------

def _uri(name: str) -> URIRef:
    prefix, local = name.split(":", 1)
    return URIRef(_PREFIXES[prefix] + local)


def iri(identifier: str) -> URIRef:
    return URIRef(v.INSTANCE + identifier)


def _rdflib(node: Node, out: list) -> Any:
    if isinstance(node, tuple):
        kind, text = node
        return iri(text) if kind == "i" else _uri(text) if kind == "t" else URIRef(text)
    if isinstance(node, list):
        blank = BNode()
        for predicate, obj in node:
            out.append((blank, _uri(predicate), _rdflib(obj, out)))
        return blank
    if isinstance(node, datetime.datetime):
        return Literal(_utc(node), datatype=XSD.dateTime)
    return Literal(node)


def triples(statement: Statement, with_declarations: bool = True) -> list[tuple[Any, Any, Any]]:
    """The statement's triples as rdflib terms."""
    blocks, declarations = shape(statement)
    return _block_triples(blocks + (declarations if with_declarations else []))


def _block_triples(blocks: list[Block]) -> list[tuple[Any, Any, Any]]:
    out: list[tuple[Any, Any, Any]] = []
    for subject, pairs in blocks:
        s = _rdflib(subject, out)
        for predicate, obj in pairs:
            out.append((s, _uri(predicate), _rdflib(obj, out)))
    return out


def _utc(value: datetime.datetime) -> str:
    """A timezone-aware UTC ``xsd:dateTime`` lexical form (the store keeps naive UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).isoformat()


def bundle(run_id: str) -> URIRef:
    """The named graph (a ``prov:Bundle``) that holds one run's statements in TriG."""
    return iri(_bundle_block(run_id)[0][1])


def bind(graph: Graph) -> Graph:
    for prefix, namespace in v.NAMESPACES.items():
        graph.bind(prefix, namespace, override=True, replace=True)
    return graph


def prov_graph(batches: Iterable[tuple[str, list[Statement]]], named: bool = False) -> Graph:
    """All statements in one rdflib graph (or, ``named``, a dataset with a graph per run)."""
    graph: Graph = bind(Dataset()) if named else bind(Graph())
    for run_id, batch in batches:
        target = graph.graph(bundle(run_id)) if named else graph  # type: ignore[attr-defined]
        if named:
            for triple in _block_triples([_bundle_block(run_id)]):
                graph.default_graph.add(triple)  # type: ignore[attr-defined]
        for statement in batch:
            for triple in triples(statement):
                target.add(triple)
    return graph


def _bundle_block(run_id: str) -> Block:
    """The declaration, in the default graph, of the named graph that holds a run in TriG."""
    return (("i", v.run(run_id) + "/bundle"), [("rdf:type", _term("prov:Bundle")), ("rdf:type", _term("prov:Entity")),
                                               ("rdfs:label", f"the provenance of run {run_id}")])


# -- Turtle and TriG text ----------------------------------------------------------------------------

_IRI_UNSAFE = re.compile(r'[\x00-\x20<>"{}|^`\\]')
_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_STRING_UNSAFE = re.compile(r'[\\"\n\r\t]')


def _iri_text(text: str) -> str:
    return "<" + _IRI_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", text) + ">"


def _string(text: str) -> str:
    return '"' + _STRING_UNSAFE.sub(lambda m: _STRING_ESCAPES[m.group()], text) + '"'


def _text(node: Node, indent: str) -> str:
    if isinstance(node, tuple):
        kind, text = node
        return _iri_text(v.INSTANCE + text) if kind == "i" else text if kind == "t" else _iri_text(text)
    if isinstance(node, list):
        inner = indent + "    "
        return "[\n" + " ;\n".join(f"{inner}{_predicate(p)} {_text(o, inner)}" for p, o in node) + f"\n{indent}]"
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, int):
        return str(node)
    if isinstance(node, float):
        return f'"{node!r}"^^xsd:double'
    if isinstance(node, datetime.datetime):
        return f'"{_utc(node)}"^^xsd:dateTime'
    return _string(str(node))


def _predicate(name: str) -> str:
    return "a" if name == "rdf:type" else name


class TurtleWriter:
    """Turtle (or TriG: each run's statements in its named graph) written a statement at a time."""

    def __init__(self, out: IO[str], trig: bool = False) -> None:
        self.out, self.trig = out, trig
        self.declared: set[Node] = set()
        self.graph: str | None = None
        self.count = 0
        out.write("".join(f"@prefix {p}: <{ns}> .\n" for p, ns in _PREFIXES.items()) + "\n")

    def write(self, run_id: str, statements: Iterable[Statement]) -> None:
        parts: list[str] = []
        indent = "    " if self.trig else ""
        if self.trig:
            name = bundle(run_id)
            if self.graph != str(name):
                self._close_graph(parts)
                if ("bundle", run_id) not in self.declared:
                    self.declared.add(("bundle", run_id))
                    parts.append(self._block(_bundle_block(run_id), ""))
                parts.append(f"{_iri_text(str(name))} {{\n")
                self.graph = str(name)
        pending: Block | None = None  # the blocks of one subject in a row are written as one
        declared: list[Block] = []
        for statement in statements:
            blocks, declarations = shape(statement)
            for block in blocks:
                if pending is not None and pending[0] == block[0]:
                    pending[1].extend(block[1])
                    continue
                if pending is not None:
                    parts.append(self._block(pending, indent))
                pending = (block[0], list(block[1]))
            for block in declarations:  # once per document (TriG: per graph)
                key = (run_id, block[0]) if self.trig else block[0]
                if key not in self.declared:
                    self.declared.add(key)
                    declared.append(block)
        if pending is not None:
            parts.append(self._block(pending, indent))
        parts.extend(self._block(block, indent) for block in declared)
        self.out.write("".join(parts))

    def _block(self, block: Block, indent: str) -> str:
        subject, pairs = block
        self.count += _count(pairs)
        lines: list[str] = []
        for predicate, obj in pairs:  # a predicate's values in a row share it: "a prov:Activity, pr:Task"
            text = _text(obj, indent + "    ")
            if lines and lines[-1][0] == predicate:
                lines[-1][1].append(text)
            else:
                lines.append((predicate, [text]))
        body = f" ;\n{indent}    ".join(f"{_predicate(p)} {', '.join(values)}" for p, values in lines)
        return f"{indent}{_text(subject, indent)} {body} .\n\n"

    def _close_graph(self, parts: list[str]) -> None:
        if self.graph is not None:
            parts.append("}\n\n")
            self.graph = None

    def close(self) -> None:
        parts: list[str] = []
        self._close_graph(parts)
        self.out.write("".join(parts))


def _count(pairs: list[tuple[str, Node]]) -> int:
    return sum(1 + (_count(o) if isinstance(o, list) else 0) for _p, o in pairs)


def write(batches: Iterable[tuple[str, list[Statement]]], out: IO[str], fmt: str) -> int:
    """Write ``batches`` to ``out`` as Turtle (``fmt`` ``turtle``) or TriG (``trig``, one named graph
    per run); returns the number of triples written."""
    writer = TurtleWriter(out, trig=fmt == "trig")
    for run_id, batch in batches:
        writer.write(run_id, batch)
    writer.close()
    return writer.count
