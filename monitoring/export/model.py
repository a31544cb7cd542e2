"""The export's own model of a run's provenance: PROV-DM statements, independent of any syntax.

``records`` reads the store into these; ``rdf`` writes them as PROV-O (with rdflib), ``provdoc``
as the ``prov`` package's document model (PROV-JSON, PROV-N, PROV-XML, PROV-JSONLD). Both writers
see the same statements, so every format says the same thing.

An identifier is the local part of an IRI in the instance namespace (``vocab.INSTANCE``), such as
``run/<uuid>/task/3/try/0``; a term is a compact name in one of ``vocab.NAMESPACES``, such as
``prov:Plan`` or ``pr:sha256``.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Literal

ElementKind = Literal["activity", "entity", "agent"]
RelationKind = Literal["used", "wasGeneratedBy", "wasAssociatedWith", "wasInformedBy", "wasStartedBy",
                       "wasDerivedFrom", "wasInfluencedBy", "actedOnBehalfOf"]


class Ref(str):
    """An attribute value that names another element of the export (an identifier)."""

    __slots__ = ()


class URL(str):
    """An attribute value that is an absolute IRI outside the export, such as a file's location."""

    __slots__ = ()


Value = str | int | float | bool | datetime.datetime | Ref | URL


@dataclass(slots=True)
class Element:
    """An activity, an entity or an agent, with its PROV types, times and attributes.

    ``attrs`` holds ``(term, value)`` pairs; the PROV-DM attributes ``prov:label`` and
    ``prov:location`` are written as ``rdfs:label`` and ``prov:atLocation`` in PROV-O."""

    kind: ElementKind
    id: str
    types: tuple[str, ...] = ()
    attrs: list[tuple[str, Value]] = field(default_factory=list)
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None


@dataclass(slots=True)
class Relation:
    """A PROV-DM relation from ``subject`` (the influenced) to ``object`` (the influencer).

    ========================  ===========  ================  =============================================
    kind                      subject      object            also
    ========================  ===========  ================  =============================================
    ``used``                  activity     entity            ``time``, ``roles``
    ``wasGeneratedBy``        entity       activity          ``time``, ``roles``
    ``wasAssociatedWith``     activity     agent             ``plan``, ``roles``
    ``wasInformedBy``         activity     activity          ``roles``
    ``wasStartedBy``          activity     (trigger) None    ``activity`` (the starter), ``time``
    ``wasDerivedFrom``        entity       entity            ``activity`` (that made the derivation)
    ``wasInfluencedBy``       any          any
    ``actedOnBehalfOf``       agent        agent
    ========================  ===========  ================  =============================================
    """

    kind: RelationKind
    subject: str
    object: str | None
    time: datetime.datetime | None = None
    roles: tuple[str, ...] = ()
    plan: str | None = None
    activity: str | None = None


Statement = Element | Relation
