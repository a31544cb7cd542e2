"""app_identity: what changes the digest of an app's function, what does not, and caching."""
from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from parsl_repro.memo import Uncacheable, canonical_bytes
from parsl_repro.memo.identity import AppIdentity, app_identity


@pytest.fixture
def load_module(tmp_path):
    """Write source to a fresh directory and import it under ``name`` (each version separately)."""
    loaded: list[str] = []
    counter = iter(range(1000))

    def load(source: str, name: str | None = None):
        name = name or f"idmod_{uuid.uuid4().hex}"
        directory = tmp_path / f"v{next(counter)}"
        directory.mkdir()
        path = directory / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loaded.append(name)
        spec.loader.exec_module(module)
        return module

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


def changed(a: AppIdentity, b: AppIdentity) -> set[str]:
    """The components whose digests differ between two identities."""
    return {k for k in a.components.keys() | b.components.keys() if a.components.get(k) != b.components.get(k)}


BASE = '''
import math

SCALE = 3
UNUSED = 10

def helper_h(x):
    return x - 1

def helper_g(x):
    return helper_h(x) * 2

def app(a, b=2, *, c=5):
    """Add things up."""
    total = a + b + c  # a comment
    return helper_g(total) * SCALE + math.floor(0.5)
'''


def test_comments_blank_lines_formatting_docstrings_keep_the_digest(load_module):
    name = f"idmod_{uuid.uuid4().hex}"
    v1 = load_module(BASE, name)
    v2 = load_module('''
        import math

        SCALE = 3
        UNUSED = 10

        def helper_h(x):
            """Now documented."""

            return x - 1   # trailing comment

        def helper_g(x):
            return (
                helper_h(x)
                * 2
            )

        def app(a, b = 2, *, c = 5):
            # a different comment, no docstring


            total = a + b + c
            return helper_g(total) * SCALE + math.floor(  0.5  )
        ''', name)
    assert app_identity(v1.app).digest == app_identity(v2.app).digest
    assert app_identity(v1.app).components == app_identity(v2.app).components
    assert app_identity(v1.app).components["source"]  # from the normalised source
    assert app_identity(v1.app).source is not None and "Add things up" in app_identity(v1.app).source


@pytest.mark.parametrize("old, new, component", [
    ("total = a + b + c  # a comment", "total = a + b - c", "source"),
    # a default's expression is part of the source too
    ("def app(a, b=2, *, c=5):", "def app(a, b=3, *, c=5):", "source+defaults"),
    ("def app(a, b=2, *, c=5):", "def app(a, b=2, *, c=6):", "source+kwdefaults"),
    ("SCALE = 3", "SCALE = 4", "globals:SCALE"),
    ("    return x - 1", "    return x - 2", "globals:helper_g"),  # two levels down: app -> g -> h
])
def test_a_change_the_function_depends_on_changes_the_digest_and_is_named(load_module, old, new, component):
    name = f"idmod_{uuid.uuid4().hex}"
    assert old in BASE
    v1 = load_module(BASE, name)
    v2 = load_module(BASE.replace(old, new), name)
    a, b = app_identity(v1.app), app_identity(v2.app)
    assert a.digest != b.digest
    assert changed(a, b) == set(component.split("+"))


def test_a_default_value_change_alone_is_named(load_module):
    name = f"idmod_{uuid.uuid4().hex}"
    template = "DEFAULT = {value}\n\ndef app(a, b=DEFAULT):\n    return a + b\n"
    v1 = load_module(template.format(value=1), name)
    v2 = load_module(template.format(value=2), name)
    assert changed(app_identity(v1.app), app_identity(v2.app)) == {"defaults"}


def test_a_helper_two_levels_down_is_named_at_each_level(load_module):
    name = f"idmod_{uuid.uuid4().hex}"
    v1 = load_module(BASE, name)
    v2 = load_module(BASE.replace("return x - 1", "return x - 2"), name)
    assert changed(app_identity(v1.helper_g), app_identity(v2.helper_g)) == {"globals:helper_h"}
    assert changed(app_identity(v1.helper_h), app_identity(v2.helper_h)) == {"source"}


def test_a_constant_the_function_does_not_use_keeps_the_digest(load_module):
    name = f"idmod_{uuid.uuid4().hex}"
    v1 = load_module(BASE, name)
    v2 = load_module(BASE.replace("UNUSED = 10", "UNUSED = 11\nANOTHER = [1, 2]"), name)
    assert app_identity(v1.app).digest == app_identity(v2.app).digest


def test_module_and_qualname_are_covered(load_module):
    v1 = load_module(BASE)
    v2 = load_module(BASE)  # same source, another module name
    assert app_identity(v1.app).digest != app_identity(v2.app).digest
    assert changed(app_identity(v1.app), app_identity(v2.app)) == {"name", "globals:helper_g"}  # helpers' too
    v3 = load_module(BASE.replace("def app(", "def app2("))
    assert app_identity(v3.app2).qualname == "app2"


def test_closure_values_are_covered(load_module):
    mod = load_module('''
        def make(k):
            def inner(x):
                return x + k
            return inner
        ''')
    a, b = app_identity(mod.make(1)), app_identity(mod.make(2))
    assert a.digest != b.digest and changed(a, b) == {"closure:k"}
    assert app_identity(mod.make(1)).digest == a.digest


def test_an_uncacheable_closure_value_contributes_its_type_name(load_module):
    mod = load_module('''
        import threading
        def make(lock):
            def inner(x):
                with lock:
                    return x
            return inner
        ''')
    a, b = app_identity(mod.make(mod.threading.Lock())), app_identity(mod.make(mod.threading.Lock()))
    assert a.digest == b.digest
    assert a.approximations == ("closure:lock",)
    c = app_identity(mod.make(mod.threading.RLock()))
    assert c.digest != a.digest


def test_recursion_and_mutual_recursion_terminate_and_give_the_same_digest_in_any_order(load_module, tmp_path):
    source = '''
        def ping(n):
            return 0 if n <= 0 else pong(n - 1)

        def pong(n):
            return 0 if n <= 0 else ping(n - 1)

        def outer():
            def rec(n):
                return 0 if n <= 0 else rec(n - 1)
            return rec
        '''
    mod = load_module(source, "idmod_cycles")
    assert app_identity(mod.ping).digest != app_identity(mod.pong).digest
    assert app_identity(mod.outer()).digest == app_identity(mod.outer()).digest
    path = mod.__file__
    script = textwrap.dedent(f'''
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("idmod_cycles", {path!r})
        m = importlib.util.module_from_spec(spec); sys.modules["idmod_cycles"] = m; spec.loader.exec_module(m)
        from parsl_repro.memo.identity import app_identity
        order = sys.argv[1].split(",")
        digests = {{n: app_identity(getattr(m, n)).digest for n in order}}
        print(digests["ping"], digests["pong"])
        ''')
    outputs = set()
    for order, seed in (("ping,pong", "1"), ("pong,ping", "2")):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", script, order], capture_output=True, text=True, env=env,
                             check=True)
        outputs.add(out.stdout.strip())
    assert outputs == {f"{app_identity(mod.ping).digest} {app_identity(mod.pong).digest}"}


def test_cached_per_function_and_rebinding_is_noticed(load_module):
    mod = load_module(BASE)
    first = app_identity(mod.app)
    assert app_identity(mod.app) is first  # not recomputed
    original = mod.helper_h
    mod.helper_h = lambda x: x - 5  # a notebook cell redefining a helper two levels down
    try:
        second = app_identity(mod.app)
        assert second.digest != first.digest and changed(first, second) == {"globals:helper_g"}
    finally:
        mod.helper_h = original
    assert app_identity(mod.app).digest == first.digest
    mod.SCALE = 3000
    assert changed(first, app_identity(mod.app)) == {"globals:SCALE"}


def test_source_unavailable_falls_back_to_compiled_code():
    namespace: dict = {"__name__": "generated"}
    exec("def gen(x):\n    return x + 1\n", namespace)
    ident = app_identity(namespace["gen"])
    assert ident.source is None and "code (no source)" in ident.components
    other: dict = {"__name__": "generated"}
    exec("def gen(x):\n    return x + 2\n", other)
    assert app_identity(other["gen"]).digest != ident.digest
    same: dict = {"__name__": "generated"}
    exec("def gen(x):\n\n    return x + 1  # comment\n", same)
    assert app_identity(same["gen"]).digest == ident.digest


def test_lambdas_use_their_compiled_code(load_module):
    mod = load_module("inc = lambda x: x + 1; dec = lambda x: x - 1\n")
    a, b = app_identity(mod.inc), app_identity(mod.dec)
    assert "code (lambda)" in a.components
    assert a.digest != b.digest  # same line, same qualname, different code


def test_a_file_edited_after_import_is_not_trusted(load_module):
    mod = load_module(BASE)
    with open(mod.__file__) as f:
        text = f.read()
    with open(mod.__file__, "w") as f:  # the running code no longer matches the file
        f.write(text.replace("total = a + b + c", "total = a * b * c"))
    ident = app_identity(mod.app)
    assert "code (no source)" in ident.components and "source" not in ident.components
    assert ident.source is None  # the edited text is not what ran


def test_methods_and_nested_functions_use_their_source(load_module):
    mod = load_module('''
        class Model:
            def __init__(self):
                self.__secret = 1

            def predict(self, x):
                """Private names are mangled."""
                return self.__secret + x

            def describe(self):
                return super().__repr__()
        ''')
    assert "source" in app_identity(mod.Model.predict).components
    assert "source" in app_identity(mod.Model.describe).components


def test_wrappers_partials_and_apps_are_unwrapped(load_module):
    template = '''
        import functools

        def timed(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return fn(*args, **kwargs)
            return wrapper

        {decorator}
        def plain(x, y=1):
            return x + y
        '''
    name = f"idmod_{uuid.uuid4().hex}"
    undecorated = load_module(template.format(decorator=""), name)
    decorated = load_module(template.format(decorator="@timed"), name)
    assert decorated.plain.__code__ is not undecorated.plain.__code__
    assert app_identity(decorated.plain).digest == app_identity(undecorated.plain).digest
    mod = undecorated
    p1, p2 = app_identity(functools.partial(mod.plain, 1)), app_identity(functools.partial(mod.plain, 2))
    assert p1.digest != p2.digest and changed(p1, p2) == {"partial.args"}
    assert app_identity(functools.partial(mod.plain, y=3)).digest != app_identity(mod.plain).digest
    from parsl_repro import python_app
    app = python_app(mod.plain)
    assert app_identity(app).digest == app_identity(mod.plain).digest
    with pytest.raises(Uncacheable):
        app_identity(functools.partial(mod.plain, object()))


def test_join_app_calling_another_app_covers_the_inner_app(load_module):
    template = '''
        from parsl_repro import join_app, python_app

        @python_app
        def inner(x):
            return x + {n}

        @join_app
        def outer(x):
            return inner(x)
        '''
    name = f"idmod_{uuid.uuid4().hex}"
    v1 = load_module(template.format(n=1), name)
    v2 = load_module(template.format(n=2), name)
    a, b = app_identity(v1.outer), app_identity(v2.outer)
    assert changed(a, b) == {"globals:inner"}


def test_library_functions_and_modules_contribute_names_only(load_module):
    mod = load_module('''
        import json
        from json import dumps
        from os.path import join

        def app(x):
            return dumps(x) + json.dumps(x) + join("a", "b")
        ''')
    ident = app_identity(mod.app)
    assert {"globals:dumps", "globals:json", "globals:join"} <= ident.components.keys()
    assert ident.approximations == ()


def test_builtins_and_non_functions():
    assert app_identity(len).digest == app_identity(len).digest != app_identity(max).digest
    with pytest.raises(TypeError):
        app_identity(42)


def test_functions_as_argument_values_use_their_identity(load_module):
    name = f"idmod_{uuid.uuid4().hex}"
    v1 = load_module(BASE, name)
    v2 = load_module(BASE.replace("return x - 1", "return x - 2"), name)
    assert canonical_bytes(v1.app) != canonical_bytes(v2.app)
    assert canonical_bytes([v1.helper_g]) == canonical_bytes([v1.helper_g])
