"""How to rebuild an app's function from the record: its recipe.

``describe(func, options)`` writes down, as JSON, what a later process needs to make the same
function again without the script or module that defined it: the function's source as the run
read it, and for every name it reads from its module (``memo.identity`` lists the same names)
how to get that value back. The recipe follows helper functions the way the identity does: a
user function (not from the standard library or an installed package) is written down by its
own source, recursively; other functions and classes by module and qualified name; modules by
name; any other value by its serialized bytes (``parsl_repro.serialize``). Closure cells and
default values are serialized too. An app object named by the function (a join app calling other
apps) is written down as its kind, its decorator's options and its function.

What cannot be written down is recorded with the reason (``{"missing": why}``), and the recipe
stays usable for everything else: ``rebuild`` raises ``CannotRebuild`` naming the reason only
when the function needs that value.

``rebuild(recipe, identity, make_app)`` makes the function: each source is parsed, its decorators
dropped (the app decorator is applied by the caller, through ``make_app``), compiled under a file
name that names the recorded function (``<recorded module.qualname>``, with its lines in
``linecache`` at their recorded numbers, so tracebacks show them) and run in a fresh globals
mapping holding the rebuilt names. A function with a closure is made inside a function that takes
its cells' values. The rebuilt app function is given the recorded identity (``pin_identity``):
it was made from exactly what that identity covers.

A recipe is data written by this user's own runs into their own store, and ``rebuild`` unpickles
the values in it: never rebuild a recipe from a store you do not trust.
"""
from __future__ import annotations

import ast
import base64
import builtins
import functools
import importlib
import inspect
import json
import linecache
import logging
import textwrap
import types
from collections.abc import Callable
from typing import Any

from parsl_repro.memo.canonical import Uncacheable
from parsl_repro.memo.identity import (
    AppIdentity,
    app_identity,
    function_source,
    global_names,
    is_user_function,
    pin_identity,
)
from parsl_repro.serialize import deserialize_value, serialize_value

logger = logging.getLogger(__name__)

RECIPE_VERSION = 1
MAX_VALUE_BYTES = 1 << 20
"""The largest serialized global, closure value or default a recipe keeps (1 MiB)."""

APP_KINDS = ("python", "bash", "join")
_CLOSURE_MAKER = "__parsl_repro_closure__"


class CannotRebuild(Exception):
    """The recorded function cannot be made again; ``str()`` says why, for a report."""


# --- writing a recipe -----------------------------------------------------------------------------

def _fid(fn: types.FunctionType) -> str:
    return f"{fn.__module__}:{fn.__qualname__}:{fn.__code__.co_firstlineno}"


def _app_options(value: Any) -> dict[str, Any] | None:
    """The options of an app object (duck-typed: the app layer sits above this one), else None."""
    kind = getattr(value, "kind", None)
    if kind not in APP_KINDS or not callable(getattr(value, "func", None)):
        return None
    return app_options(value)


def app_options(app: Any) -> dict[str, Any]:
    """What an app's decorator said: kind, name, cache, executors, ignore_for_cache, deterministic (and,
    for an app another app refers to, ``digest``: its code's identity)."""
    executors = getattr(app, "executors", "all")
    return {"kind": getattr(app, "kind", "python"), "name": getattr(app, "__name__", None),
            "cache": bool(getattr(app, "cache", False)),
            "executors": executors if isinstance(executors, str) else list(executors),
            "ignore_for_cache": list(getattr(app, "ignore_for_cache", None) or []),
            "deterministic": bool(getattr(app, "deterministic", True))}


class _Writer:
    def __init__(self) -> None:
        self.functions: dict[str, dict[str, Any]] = {}
        self._queue: list[types.FunctionType] = []

    def function(self, fn: types.FunctionType) -> str:
        fid = _fid(fn)
        if fid not in self.functions:
            self.functions[fid] = {}  # claimed: a cycle of helpers refers back to it
            self._queue.append(fn)
        return fid

    def drain(self) -> None:
        while self._queue:
            fn = self._queue.pop()
            self.functions[_fid(fn)] = self._describe(fn)

    def _describe(self, fn: types.FunctionType) -> dict[str, Any]:
        code = fn.__code__
        entry: dict[str, Any] = {"module": fn.__module__, "qualname": fn.__qualname__, "name": code.co_name,
                                 "firstlineno": code.co_firstlineno, "source": None}
        if code.co_name == "<lambda>":
            entry["problem"] = "it is a lambda, whose source cannot be told apart from the rest of its line"
            return entry
        source = function_source(fn)
        if source is None:
            entry["problem"] = ("its source was not recorded (typed at a prompt, made by exec, or its file was "
                                "edited after it was imported)")
            return entry
        entry["source"] = source
        g = fn.__globals__
        entry["globals"] = {name: self.ref(g[name], f"global {name}")
                            for name in sorted(global_names(code)) if name in g}
        closure: dict[str, Any] = {}
        for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
            try:
                closure[name] = self.ref(cell.cell_contents, f"closure value {name}")
            except ValueError:
                closure[name] = {"missing": f"closure value {name} was never assigned"}
        entry["closure"] = closure
        if fn.__defaults__:
            entry["defaults"] = _value(fn.__defaults__, "default values")
        if fn.__kwdefaults__:
            entry["kwdefaults"] = _value(fn.__kwdefaults__, "keyword-only default values")
        return entry

    def ref(self, value: Any, what: str) -> dict[str, Any]:
        if isinstance(value, types.ModuleType):
            return {"module": value.__name__}
        options = _app_options(value)
        if options is not None:
            target = _unwrapped(value.func)
            try:
                options["digest"] = app_identity(target).digest
            except (TypeError, Uncacheable):
                pass
            return {"app": options, "function": self.ref(target, f"{what} (an app)")}
        if isinstance(value, types.FunctionType):
            target = _unwrapped(value)
            if target is value and is_user_function(value):
                return {"function": self.function(value)}
        if isinstance(value, types.FunctionType | types.BuiltinFunctionType | type) and _importable(value):
            return {"import": [value.__module__, value.__qualname__]}
        return _value(value, what)


def _unwrapped(fn: Any) -> Any:
    try:
        return inspect.unwrap(fn)
    except ValueError:
        return fn


def _importable(obj: Any) -> bool:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", "")
    return bool(module) and module != "__main__" and "<locals>" not in qualname


def _value(value: Any, what: str) -> dict[str, Any]:
    try:
        serializer, body = serialize_value(value, what)
    except Exception as e:  # noqa: BLE001 - any failure is a reason to report, not to stop recording
        reason = getattr(e, "reason", None) or f"{type(e).__name__}: {e}"
        return {"missing": f"{what} is a {type(value).__name__} that cannot be serialized ({reason})"}
    if len(body) > MAX_VALUE_BYTES:
        return {"missing": f"{what} is {len(body)} bytes serialized, over the recipe's limit of {MAX_VALUE_BYTES}"}
    return {"value": base64.b64encode(body).decode("ascii"), "serializer": serializer}


def describe(func: Callable, options: dict[str, Any] | None = None) -> str:
    """The recipe of ``func`` (the function an app wraps), as JSON text; never raises."""
    recipe: dict[str, Any] = {"version": RECIPE_VERSION, "options": options or {}}
    target = _unwrapped(func)
    if isinstance(target, functools.partial):
        recipe["problem"] = "the app is a functools.partial, which replay does not rebuild"
        return json.dumps(recipe, sort_keys=True)
    if not isinstance(target, types.FunctionType):
        recipe["problem"] = f"the app is a {type(target).__name__}, not a function defined in Python"
        return json.dumps(recipe, sort_keys=True)
    writer = _Writer()
    try:
        recipe["app"] = writer.function(target)
        writer.drain()
    except Exception as e:  # noqa: BLE001 - recording must never fail a run
        logger.warning("The recipe of %s could not be written: %s: %s", target.__qualname__, type(e).__name__, e)
        return json.dumps({"version": RECIPE_VERSION, "options": options or {},
                           "problem": f"its recipe could not be written ({type(e).__name__}: {e})"}, sort_keys=True)
    recipe["functions"] = writer.functions
    return json.dumps(recipe, sort_keys=True)


# --- rebuilding -------------------------------------------------------------------------------------

class _Builder:
    def __init__(self, recipe: dict[str, Any], make_app: Callable[[dict[str, Any], Callable], Any] | None) -> None:
        self.recipe = recipe
        self.functions: dict[str, dict[str, Any]] = recipe.get("functions", {})
        self.make_app = make_app
        self.built: dict[str, types.FunctionType] = {}
        self.namespaces: dict[str, dict[str, Any]] = {}

    def function(self, fid: str) -> types.FunctionType:
        done = self.built.get(fid)
        if done is not None:
            return done
        entry = self.functions.get(fid)
        if not entry:
            raise CannotRebuild(f"the recipe does not describe {fid}")
        label = f"{entry['module']}.{entry['qualname']}"
        if entry.get("problem"):
            raise CannotRebuild(f"{label}: {entry['problem']}")
        # a module name no process can import, so that serializers send the function by value
        namespace = self.namespaces.setdefault(
            entry["module"], {"__name__": f"__parsl_repro_replay__.{entry['module']}", "__builtins__": builtins})
        closure = {name: self.value(ref, label) for name, ref in entry.get("closure", {}).items()}
        fn = _compile(entry, namespace, closure, label)
        self.built[fid] = fn  # before its globals: helpers may refer back to it
        for name, ref in entry.get("globals", {}).items():
            if name not in namespace:
                namespace[name] = self.value(ref, label, f"global {name}")
        if "defaults" in entry:
            fn.__defaults__ = self.value(entry["defaults"], label)
        if "kwdefaults" in entry:
            fn.__kwdefaults__ = self.value(entry["kwdefaults"], label)
        return fn

    def value(self, ref: dict[str, Any], label: str, what: str = "") -> Any:
        if "missing" in ref:
            raise CannotRebuild(f"{label}: {ref['missing']}")
        if "module" in ref:
            try:
                return importlib.import_module(ref["module"])
            except Exception as e:  # noqa: BLE001 - ImportError, or the module failing as it loads
                raise CannotRebuild(f"{label}: module {ref['module']} cannot be imported here "
                                    f"({type(e).__name__}: {e})") from e
        if "import" in ref:
            module, qualname = ref["import"]
            try:
                obj: Any = importlib.import_module(module)
                for part in qualname.split("."):
                    obj = getattr(obj, part)
            except Exception as e:  # noqa: BLE001
                raise CannotRebuild(f"{label}: {module}.{qualname} cannot be imported here "
                                    f"({type(e).__name__}: {e})") from e
            return obj
        if "function" in ref and "app" not in ref:
            return self.function(ref["function"])
        if "app" in ref:
            inner = self.value(ref["function"], label, what)
            if self.make_app is None:
                return inner
            return self.make_app(ref["app"], inner)
        try:
            return deserialize_value(ref["serializer"], base64.b64decode(ref["value"]))
        except Exception as e:  # noqa: BLE001
            raise CannotRebuild(f"{label}: {what or 'a recorded value'} cannot be read back here ({e})") from e


def _compile(entry: dict[str, Any], namespace: dict[str, Any], closure: dict[str, Any],
             label: str) -> types.FunctionType:
    source = textwrap.dedent(entry["source"])
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise CannotRebuild(f"{label}: its recorded source does not parse here ({e.msg}, line {e.lineno})") from e
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name != entry["name"]:
        raise CannotRebuild(f"{label}: its recorded source does not define {entry['name']}")
    node.decorator_list = []
    # Default values and annotations are evaluated where the function was defined, from names that
    # are not its globals: the defaults are set from their recorded values below, and annotations
    # (which the code does not use) are dropped.
    arguments = node.args
    arguments.defaults = [ast.Constant(None) for _ in arguments.defaults]
    arguments.kw_defaults = [None if d is None else ast.Constant(None) for d in arguments.kw_defaults]
    for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg):
        if arg is not None:
            arg.annotation = None
    node.returns = None
    first = entry.get("firstlineno") or 1
    ast.increment_lineno(tree, first - 1)
    filename = f"<recorded {label}>"
    linecache.cache[filename] = (len(source), None, [""] * (first - 1) + source.splitlines(True), filename)
    if closure:
        maker = ast.parse(f"def {_CLOSURE_MAKER}({', '.join(closure)}):\n    return None").body[0]
        maker.body = [node, ast.Return(ast.Name(node.name, ast.Load()))]
        tree = ast.Module([maker], [])
    ast.fix_missing_locations(tree)
    code = compile(tree, filename, "exec", dont_inherit=True)
    scope: dict[str, Any] = {}
    exec(code, namespace, scope)  # noqa: S102 - the user's own recorded source
    if closure:
        fn = scope[_CLOSURE_MAKER](*closure.values())
    else:
        fn = scope[node.name]
    fn.__qualname__ = entry["qualname"]
    return fn


def rebuild(recipe_text: str, identity: AppIdentity | None = None,
            make_app: Callable[[dict[str, Any], Callable], Any] | None = None) -> types.FunctionType:
    """The function a recipe describes, with ``identity`` pinned to it when given.

    ``make_app(options, function)`` turns a rebuilt function into the app object another app's code
    refers to (a join app calling it). Raises ``CannotRebuild`` saying why it cannot be made here.
    """
    try:
        recipe = json.loads(recipe_text)
    except (TypeError, ValueError) as e:
        raise CannotRebuild(f"its recipe is not readable ({e})") from e
    if recipe.get("version") != RECIPE_VERSION:
        raise CannotRebuild(f"its recipe has version {recipe.get('version')}, not {RECIPE_VERSION}")
    if recipe.get("problem"):
        raise CannotRebuild(recipe["problem"])
    builder = _Builder(recipe, make_app)
    fn = builder.function(recipe["app"])
    if identity is not None:
        pin_identity(fn, identity)
    return fn


def options_of(recipe_text: str | None) -> dict[str, Any]:
    """The app options a recipe recorded ({} when there is none)."""
    if not recipe_text:
        return {}
    try:
        return dict(json.loads(recipe_text).get("options") or {})
    except (TypeError, ValueError):
        return {}
