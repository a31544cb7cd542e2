"""How the kernel finds the futures an app call waits on, and swaps them for their results (Parsl's
``parsl.dataflow.dependency_resolvers``, re-exported there).

``SHALLOW_DEPENDENCY_RESOLVER`` (the default, as in Parsl) looks only at futures passed directly
as arguments (and in ``inputs=``). ``DEEP_DEPENDENCY_RESOLVER`` also looks inside lists, tuples,
sets and dicts (keys and values), however deeply nested. Both are ``singledispatch`` functions,
so a user type can register how to traverse it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import singledispatch
from typing import Any


@dataclass
class DependencyResolver:
    """``traverse_to_gather(arg)`` lists the futures inside ``arg``; ``traverse_to_unwrap(arg)``
    returns ``arg`` with each (completed) future replaced by its result."""

    traverse_to_gather: Callable[[Any], Sequence[Future]]
    traverse_to_unwrap: Callable[[Any], Any]


def _future_result(fut: Future) -> Any:
    assert fut.done(), "a dependency was unwrapped before it completed"
    return fut.result()


@singledispatch
def shallow_traverse_to_gather(o: Any) -> Sequence[Future]:
    return []


@shallow_traverse_to_gather.register
def _(fut: Future) -> Sequence[Future]:
    return [fut]


@singledispatch
def shallow_traverse_to_unwrap(o: Any) -> Any:
    return o


shallow_traverse_to_unwrap.register(Future, _future_result)


@singledispatch
def deep_traverse_to_gather(o: Any) -> Sequence[Future]:
    return []


@deep_traverse_to_gather.register
def _(fut: Future) -> Sequence[Future]:
    return [fut]


@deep_traverse_to_gather.register(list)
@deep_traverse_to_gather.register(tuple)
@deep_traverse_to_gather.register(set)
@deep_traverse_to_gather.register(frozenset)
def _(items: Any) -> Sequence[Future]:
    return [f for item in items for f in deep_traverse_to_gather(item)]


@deep_traverse_to_gather.register(dict)
def _(mapping: dict) -> Sequence[Future]:
    found: list[Future] = []
    for key, value in mapping.items():
        found.extend(deep_traverse_to_gather(key))
        found.extend(deep_traverse_to_gather(value))
    return found


@singledispatch
def deep_traverse_to_unwrap(o: Any) -> Any:
    return o


deep_traverse_to_unwrap.register(Future, _future_result)


@deep_traverse_to_unwrap.register(list)
@deep_traverse_to_unwrap.register(tuple)
@deep_traverse_to_unwrap.register(set)
@deep_traverse_to_unwrap.register(frozenset)
def _(items: Any) -> Any:
    unwrapped = [deep_traverse_to_unwrap(item) for item in items]
    if type(items) in (list, tuple, set, frozenset):
        return type(items)(unwrapped)
    if hasattr(items, "_fields"):  # a namedtuple is built from positional fields
        return type(items)(*unwrapped)
    return type(items)(unwrapped)


@deep_traverse_to_unwrap.register(dict)
def _(mapping: dict) -> Any:
    return {deep_traverse_to_unwrap(k): deep_traverse_to_unwrap(v) for k, v in mapping.items()}


DEEP_DEPENDENCY_RESOLVER = DependencyResolver(traverse_to_gather=deep_traverse_to_gather,
                                              traverse_to_unwrap=deep_traverse_to_unwrap)
SHALLOW_DEPENDENCY_RESOLVER = DependencyResolver(traverse_to_gather=shallow_traverse_to_gather,
                                                 traverse_to_unwrap=shallow_traverse_to_unwrap)
