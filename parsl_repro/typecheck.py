"""Run-time type checks for user-facing configuration objects, with errors that name the field."""
from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar

import typeguard

from parsl_repro.errors import ConfigurationError

F = TypeVar("F", bound=Callable[..., Any])


class TypeCheckError(typeguard.TypeCheckError, ConfigurationError, TypeError):
    """A configuration value has the wrong type; the message names the class, field and value.

    It is typeguard's ``TypeCheckError`` (what Parsl raises, under the same name), a
    ``ConfigurationError`` and a ``TypeError``, so any of the three catches it.
    """


ConfigurationTypeError = TypeCheckError


def typechecked_config(init: F) -> F:
    """Check every argument of a configuration class's ``__init__`` against its annotation.

    A mismatch raises ``ConfigurationTypeError`` naming the class, the field, the expected type
    and the value given, before any attribute is set.
    """
    checked = typeguard.typechecked(init)
    owner = init.__qualname__.rsplit(".", 1)[0]
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return checked(self, *args, **kwargs)
        except TypeCheckError:
            raise  # ours, raised by the class's own checks: it already names the class
        except typeguard.TypeCheckError as e:
            raise TypeCheckError(f"{owner}: {_readable(signature, self, args, kwargs, str(e))}") from None

    return wrapper  # type: ignore[return-value]


def _readable(signature: inspect.Signature, self: Any, args: tuple, kwargs: dict, message: str) -> str:
    # typeguard says 'argument "retries" (str) is not an instance of int'; name the field, the
    # expected type as the signature writes it, and the value given
    match = re.match(r'argument "(\w+)"', message)
    if match is None:
        return message
    name = match.group(1)
    try:
        value = signature.bind(self, *args, **kwargs).arguments[name]
        annotation = signature.parameters[name].annotation
    except (TypeError, KeyError):
        return message
    expected = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    return f"field {name!r} must be {expected}, got {type(value).__name__} {value!r}"
