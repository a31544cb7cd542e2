"""``memo.recipe``: an app's function written down and made again without the module that defined it.

The functions are defined in a module written to a temporary directory and imported, then the
module is removed from ``sys.modules`` and its file deleted before rebuilding, so a rebuilt
function can only come from the recipe.
"""
from __future__ import annotations

import importlib
import json
import sys
import textwrap

import pytest

from parsl_repro.memo.identity import app_identity
from parsl_repro.memo.recipe import CannotRebuild, describe, options_of, rebuild

MODULE = """
    import math
    import os.path
    from os.path import join

    import parsl_repro

    SCALE = 3
    TABLE = {"a": [1, 2], "b": (3, 4)}


    def helper(x):
        return x * SCALE + math.floor(1.5)


    def ping(n):
        return 0 if n == 0 else pong(n - 1) + 1


    def pong(n):
        return 0 if n == 0 else ping(n - 1) + 1


    @parsl_repro.python_app(cache=True, deterministic=False)
    def app(x, y=2, *, z=TABLE["a"]):
        '''A docstring the recipe keeps with the source.'''
        return helper(x) + y + sum(z) + ping(3) + len(join("a", "b")) + len(os.path.sep)


    def make_adder(k):
        def add(x):
            return x + k
        return add


    adder = make_adder(10)


    def make_bad():
        gen = (i for i in range(3))

        def bad(x):
            return next(gen) + x
        return bad


    bad = make_bad()

    import this_module_does_not_exist_anywhere as missing  # noqa: E402 (made importable below)


    def uses_missing(x):
        return missing.f(x)


    square = lambda x: x * x  # noqa: E731


    def calls_app(x):
        return app(x)
"""


@pytest.fixture
def module(tmp_path, monkeypatch):
    """The module above, imported from a file that is gone (with its importable stand-in for the
    missing module) by the time the test rebuilds from the recipes taken while it existed."""
    (tmp_path / "recipe_subject.py").write_text(textwrap.dedent(MODULE))
    (tmp_path / "this_module_does_not_exist_anywhere.py").write_text("def f(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("recipe_subject")
    yield mod
    sys.modules.pop("recipe_subject", None)
    sys.modules.pop("this_module_does_not_exist_anywhere", None)


def forget(tmp_path) -> None:
    for name in ("recipe_subject", "this_module_does_not_exist_anywhere"):
        sys.modules.pop(name, None)
        (tmp_path / f"{name}.py").unlink()


def test_an_app_with_helpers_constants_imports_and_defaults_is_rebuilt(module, tmp_path):
    recipe = describe(module.app.func, {"kind": "python", "cache": True, "deterministic": False})
    identity = app_identity(module.app.func)
    expected = module.app.func(5)
    forget(tmp_path)
    fn = rebuild(recipe, identity)
    assert fn(5) == expected == 16 + 2 + 3 + 3 + 3 + 1
    assert fn(5, y=0, z=[1]) == 16 + 0 + 1 + 3 + 3 + 1
    assert fn.__qualname__ == "app" and fn.__doc__ == "A docstring the recipe keeps with the source."
    assert app_identity(fn) == identity  # pinned: the rebuilt function is the recorded code
    assert options_of(recipe) == {"kind": "python", "cache": True, "deterministic": False}
    written = json.loads(recipe)["functions"]
    assert {f["qualname"] for f in written.values()} == {"app", "helper", "ping", "pong"}  # the helper graph


def test_a_closure_over_a_value_is_rebuilt_and_tracebacks_show_the_recorded_lines(module, tmp_path):
    recipe = describe(module.adder)
    forget(tmp_path)
    fn = rebuild(recipe)
    assert fn(5) == 15 and fn.__closure__[0].cell_contents == 10
    with pytest.raises(TypeError) as caught:
        fn("x")
    frame = caught.traceback[-1]
    assert str(frame.path) == "<recorded recipe_subject.make_adder.<locals>.add>"
    assert frame.statement.lines[-1].strip() == "return x + k"


def test_what_cannot_be_rebuilt_says_why(module, tmp_path):
    bad = describe(module.bad)
    lam = describe(module.square)
    missing = describe(module.uses_missing)
    forget(tmp_path)
    with pytest.raises(CannotRebuild, match="closure value gen is a generator that cannot be serialized"):
        rebuild(bad)
    with pytest.raises(CannotRebuild, match="it is a lambda"):
        rebuild(lam)
    with pytest.raises(CannotRebuild, match="module this_module_does_not_exist_anywhere cannot be imported here"):
        rebuild(missing)


def test_an_app_another_function_calls_is_made_by_the_callers_factory(module, tmp_path):
    recipe = describe(module.calls_app)
    made = []

    def make_app(options, fn):
        made.append(options)
        return fn  # a plain function stands in for the app object

    forget(tmp_path)
    fn = rebuild(recipe, make_app=make_app)
    assert fn(5) == 16 + 2 + 3 + 3 + 3 + 1
    assert made[0]["kind"] == "python" and made[0]["cache"] is True and made[0]["deterministic"] is False
    assert len(made[0]["digest"]) == 64  # the identity the replay pins on it


def test_a_partial_or_a_builtin_is_not_rebuilt():
    import functools

    with pytest.raises(CannotRebuild, match="functools.partial"):
        rebuild(describe(functools.partial(max, 1)))
    with pytest.raises(CannotRebuild, match="not a function defined in Python"):
        rebuild(describe(len))
