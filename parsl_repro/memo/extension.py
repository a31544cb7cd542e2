"""``id_for_memo``: Parsl's extension point for keying values of types the canonical encoder does not know.

A user registers a function for their type (``@id_for_memo.register(MyType)``) that returns bytes
equal for equal values; the memo key uses those bytes, tagged with the type's name. The key itself
encodes built-in values, ``File``, functions, enums, dataclasses, namedtuples and numpy arrays
(``canonical.py``) and never reaches the registrations below for them.

The registrations for built-in types are Parsl's, kept for code that calls ``id_for_memo``
directly. The memo key does not use them: a *subclass* of a built-in type (a ``str`` subclass, an
``OrderedDict``, a ``Counter``) may carry state its base value does not show, so it is keyed only
through a function registered for that subclass, and without one the task runs uncached, with the
reason recorded. ``list``, ``tuple`` and ``dict`` refuse subclasses here too (``ValueError``).
"""
from __future__ import annotations

import pickle
from functools import singledispatch


@singledispatch
def id_for_memo(obj: object, output_ref: bool = False) -> bytes:
    """Bytes that identify ``obj`` for memoization: equal for equal values, different otherwise.

    ``output_ref`` is True for values in an app's ``outputs=`` list, which name files that do not
    exist yet, so they are identified by name rather than content.
    """
    raise ValueError(f"unknown type for memoization: {type(obj)}; register an id_for_memo function for it "
                     f"or list the argument in ignore_for_cache")


@id_for_memo.register(str)
@id_for_memo.register(int)
@id_for_memo.register(float)
@id_for_memo.register(bool)
@id_for_memo.register(bytes)
@id_for_memo.register(type(None))
def id_for_memo_pickle(obj: object, output_ref: bool = False) -> bytes:
    return pickle.dumps(obj)


def _exact(kind: type, value: object) -> None:
    if type(value) is not kind:
        raise ValueError(f"id_for_memo cannot work on subclasses of {kind.__name__} ({type(value)})")


@id_for_memo.register(list)
def id_for_memo_list(denormalized_list: list, output_ref: bool = False) -> bytes:
    _exact(list, denormalized_list)
    return pickle.dumps([id_for_memo(e, output_ref=output_ref) for e in denormalized_list])


@id_for_memo.register(tuple)
def id_for_memo_tuple(denormalized_tuple: tuple, output_ref: bool = False) -> bytes:
    _exact(tuple, denormalized_tuple)
    return pickle.dumps([id_for_memo(e, output_ref=output_ref) for e in denormalized_tuple])


@id_for_memo.register(dict)
def id_for_memo_dict(denormalized_dict: dict, output_ref: bool = False) -> bytes:
    """Keys are sorted, so insertion order does not matter; values take ``output_ref``, keys do not."""
    _exact(dict, denormalized_dict)
    parts = []
    for key in sorted(denormalized_dict):
        parts.append(id_for_memo(key))
        parts.append(id_for_memo(denormalized_dict[key], output_ref=output_ref))
    return pickle.dumps(parts)

