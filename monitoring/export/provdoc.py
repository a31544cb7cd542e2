"""PROV-JSON, PROV-N, PROV-XML and PROV-JSONLD through the ``prov`` package's document model.

The statements of ``records`` become ``prov.model`` records (activities, entities, agents and the
relations between them, with ``prov:role``, ``prov:type``, ``prov:label``, ``prov:location`` and
our own attributes). A document is built and serialized a batch of tasks at a time, and the
serialized batches are joined into one document of the format, so memory holds one batch:

- PROV-N: one ``document ... endDocument`` whose statements are the batches' statements;
- PROV-XML: one ``prov:document`` element whose children are the batches' children;
- PROV-JSONLD: one object whose ``@graph`` lists the batches' statement objects;
- PROV-JSON: one object of sections (``activity``, ``entity``, ``used``, ...), each section's
  members spooled to a temporary file per section until the end.

Relations carry no identifiers in the store; ``prov`` names them ``_:idN`` in PROV-JSON, counting
from 1 in every document, so each batch's are renamed ``_:bB_idN`` to stay distinct.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import tempfile
from collections.abc import Iterable
from typing import IO, Any

from prov.constants import PROV, PROV_LABEL, PROV_LOCATION, PROV_ROLE, PROV_TYPE, PROV_VALUE, XSD_ANYURI
from prov.identifier import QualifiedName
from prov.model import Literal, ProvDocument
from prov.serializers.provjson import encode_json_document
from prov.serializers.provjsonld import encode_jsonld_document

from parsl_repro.monitoring.export import vocab as v
from parsl_repro.monitoring.export.model import URL, Element, Ref, Relation, Statement, Value

FORMATS = ("json", "provn", "xml", "jsonld")
_PROV_TYPES = frozenset({"Plan", "Person", "SoftwareAgent", "Organization", "Location", "Bundle", "Collection"})
_SPECIAL = {"prov:label": PROV_LABEL, "prov:location": PROV_LOCATION, "prov:value": PROV_VALUE}


def run_prefixes(run_ids: Iterable[str]) -> dict[str, str]:
    """A namespace prefix per run (``r`` and the start of its id), for the names of its parts: the run's
    tasks are ``r1b4e28ba:task/3``, not ``parsl:run/1b4e28ba-2fa1-.../task/3`` (shorter to read, and the
    ``prov`` package writes a name with a ``-`` or ``.`` a character at a time)."""
    prefixes: dict[str, str] = {}
    for run_id in sorted(set(run_ids)):
        length = 8
        while (prefix := "r" + run_id.replace("-", "")[:length]) in prefixes.values():
            length += 4
        prefixes[run_id] = prefix
    return prefixes


class _Names:
    """Qualified names for a document, checked against the vocabularies."""

    def __init__(self, document: ProvDocument, run_ids: Iterable[str] = ()) -> None:
        self.namespaces = {prefix: document.add_namespace(prefix, uri)
                           for prefix, uri in v.NAMESPACES.items() if prefix not in ("prov", "xsd")}
        self.runs = {f"{v.run(run_id)}/": document.add_namespace(prefix, f"{v.INSTANCE}{v.run(run_id)}/")
                     for run_id, prefix in run_prefixes(run_ids).items()}
        self.cache: dict[str, Any] = {}
        self.nodes: dict[str, QualifiedName] = {}

    def term(self, name: str) -> Any:
        found = self.cache.get(name)
        if found is None:
            found = self.cache[name] = self._term(name)
        return found

    def _term(self, name: str) -> Any:
        if name in _SPECIAL:
            return _SPECIAL[name]
        prefix, local = name.split(":", 1)
        if prefix == "prov":
            if local not in _PROV_TYPES:
                raise KeyError(f"{name} is not a PROV type this export uses")
            return PROV[local]
        if prefix == "pr" and local not in v.TERMS:
            raise KeyError(f"{name} is not a term of our vocabulary (vocab.TERMS)")
        return self.namespaces[prefix][local]

    def node(self, identifier: str) -> QualifiedName:
        found = self.nodes.get(identifier)
        if found is None:
            if identifier.startswith("run/") and (cut := identifier.find("/", 4)) > 0 \
                    and identifier[:cut + 1] in self.runs:
                found = self.runs[identifier[:cut + 1]][identifier[cut + 1:]]
            else:
                found = self.namespaces["parsl"][identifier]
            self.nodes[identifier] = found
        return found


def document(batch: Iterable[Statement], run_ids: Iterable[str] = ()) -> ProvDocument:
    """A ``prov`` document of ``batch``, with a namespace for each of ``run_ids``."""
    doc = ProvDocument()
    names = _Names(doc, run_ids)
    for statement in batch:
        if isinstance(statement, Element):
            _element(doc, names, statement)
        else:
            _relation(doc, names, statement)
    return doc


def _value(names: _Names, value: Value) -> Any:
    if isinstance(value, Ref):
        return names.node(value)
    if isinstance(value, URL):
        return Literal(value, datatype=XSD_ANYURI)
    if isinstance(value, datetime.datetime):
        return _aware(value)
    if isinstance(value, str):
        return _printable(value)
    return value


_UNWRITABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def _printable(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot hold (control characters such as a terminal's colour
    codes in an error message) written as ``\\xNN`` escapes, in every PROV-DM format alike."""
    if _UNWRITABLE.search(text) is None:
        return text
    return _UNWRITABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                           else f"\\u{ord(m.group()):04x}", text)


def _aware(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value


def _element(doc: ProvDocument, names: _Names, e: Element) -> None:
    attrs: list[tuple[Any, Any]] = [(PROV_TYPE, names.term(t)) for t in e.types]
    attrs += [(names.term(name), _value(names, value)) for name, value in e.attrs]
    identifier = names.node(e.id)
    if e.kind == "activity":
        doc.activity(identifier, _aware(e.start), _aware(e.end), attrs)
    elif e.kind == "entity":
        doc.entity(identifier, attrs)
    else:
        doc.agent(identifier, attrs)


def _relation(doc: ProvDocument, names: _Names, r: Relation) -> None:
    subject = names.node(r.subject)
    obj = names.node(r.object) if r.object is not None else None
    attrs = [(PROV_ROLE, names.term(role)) for role in r.roles] or None
    time, kind = _aware(r.time), r.kind
    if kind == "used":
        doc.used(subject, obj, time, other_attributes=attrs)
    elif kind == "wasGeneratedBy":
        doc.wasGeneratedBy(subject, obj, time, other_attributes=attrs)
    elif kind == "wasAssociatedWith":
        doc.wasAssociatedWith(subject, obj, names.node(r.plan) if r.plan else None, other_attributes=attrs)
    elif kind == "wasInformedBy":
        doc.wasInformedBy(subject, obj, other_attributes=attrs)
    elif kind == "wasStartedBy":
        doc.wasStartedBy(subject, obj, names.node(r.activity) if r.activity else None, time, other_attributes=attrs)
    elif kind == "wasDerivedFrom":
        doc.wasDerivedFrom(subject, obj, names.node(r.activity) if r.activity else None, other_attributes=attrs)
    elif kind == "wasInfluencedBy":
        doc.wasInfluencedBy(subject, obj, other_attributes=attrs)
    elif kind == "actedOnBehalfOf":
        doc.actedOnBehalfOf(subject, obj, other_attributes=attrs)
    else:  # pragma: no cover - the model's kinds are closed
        raise ValueError(f"unknown relation {kind!r}")


def whole(batches: Iterable[tuple[str, list[Statement]]], run_ids: Iterable[str] = ()) -> ProvDocument:
    """Every batch in one ``prov`` document, for use in memory (small exports, tests)."""
    doc = ProvDocument()
    run_ids = list(run_ids)
    for _run_id, batch in batches:
        doc.update(document(batch, run_ids))
    return doc.unified()


def write(batches: Iterable[tuple[str, list[Statement]]], out: IO[str], fmt: str, run_ids: Iterable[str] = ()) -> int:
    """Write ``batches`` to ``out`` in ``fmt`` (one of ``FORMATS``); returns the number of records.
    Every batch's document declares the same namespaces (one per run of ``run_ids``), so the first
    batch's declarations serve the whole output."""
    run_ids = list(run_ids)
    writer = {"provn": _ProvN, "xml": _Xml, "jsonld": _JsonLd, "json": _Json}[fmt](out)
    count = 0
    for number, (_run_id, batch) in enumerate(batches):
        doc = document(batch, run_ids)
        count += len(doc.records)
        writer.add(number, doc)
    writer.close()
    return count


class _ProvN:
    def __init__(self, out: IO[str]) -> None:
        self.out, self.started = out, False

    def add(self, number: int, doc: ProvDocument) -> None:
        lines = doc.serialize(format="provn").splitlines()
        body = [line for line in lines[1:-1] if not line.lstrip().startswith(("prefix ", "default "))]
        if not self.started:
            self.out.write("\n".join(lines[:1] + [line for line in lines[1:-1]
                                                  if line.lstrip().startswith(("prefix ", "default "))]) + "\n")
            self.started = True
        self.out.write("\n".join(line for line in body if line.strip()) + "\n")

    def close(self) -> None:
        if not self.started:
            self.out.write(ProvDocument().serialize(format="provn").rstrip("\n").removesuffix("endDocument"))
        self.out.write("endDocument\n")


class _Xml:
    _ROOT = re.compile(r"<prov:document\b[^>]*>", re.S)

    def __init__(self, out: IO[str]) -> None:
        self.out, self.started = out, False

    def add(self, number: int, doc: ProvDocument) -> None:
        text = doc.serialize(format="xml")
        match = self._ROOT.search(text)
        if match is None:  # an empty document is written as <prov:document .../>
            return
        if not self.started:
            self.out.write(text[:match.end()])
            self.started = True
        self.out.write(text[match.end():text.rindex("</prov:document>")])

    def close(self) -> None:
        if not self.started:
            self.out.write(ProvDocument().serialize(format="xml"))
            return
        self.out.write("</prov:document>\n")


class _JsonLd:
    def __init__(self, out: IO[str]) -> None:
        self.out, self.started = out, False

    def add(self, number: int, doc: ProvDocument) -> None:
        data = encode_jsonld_document(doc, "url")  # what serialize(format="jsonld") would dump
        graph = data.pop("@graph", [])
        if not self.started:
            head = json.dumps(data, indent=1)
            self.out.write(head[:head.rindex("}")].rstrip() + ',\n "@graph": [\n')
            self.started = True
            sep = ""
        else:
            sep = ",\n"
        if graph:
            self.out.write(sep + ",\n".join("  " + json.dumps(item, sort_keys=True) for item in graph))

    def close(self) -> None:
        if not self.started:
            self.add(0, ProvDocument())
        self.out.write("\n ]\n}\n")


class _Json:
    """PROV-JSON: members of each section spooled to a temporary file until every batch is read."""

    _BLANK = re.compile(r"^_:")

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.prefix: dict[str, str] = {}
        self.dir = tempfile.TemporaryDirectory(prefix="parsl-repro-prov-json-")
        self.sections: dict[str, IO[str]] = {}

    def add(self, number: int, doc: ProvDocument) -> None:
        data = encode_json_document(doc)  # what serialize(format="json") would dump
        self.prefix.update(data.pop("prefix", {}))
        for section, members in data.items():
            spool = self.sections.get(section)
            if spool is None:
                spool = self.sections[section] = open(os.path.join(self.dir.name, section), "w+")  # noqa: SIM115
            for key, value in members.items():
                if key.startswith("_:"):
                    key = f"_:b{number}_{key[2:]}"
                spool.write(f"{json.dumps(key)}: {json.dumps(value, sort_keys=True)}\n")

    def close(self) -> None:
        out = self.out
        out.write('{\n "prefix": ' + json.dumps(self.prefix, sort_keys=True))
        for section, spool in self.sections.items():
            out.write(f',\n {json.dumps(section)}: {{\n')
            spool.seek(0)
            first = True
            for line in spool:
                out.write(("" if first else ",\n") + "  " + line.rstrip("\n"))
                first = False
            out.write("\n }")
            spool.close()
        out.write("\n}\n")
        self.dir.cleanup()
