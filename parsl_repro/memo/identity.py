"""The identity of an app's function: which code a memo key says ran.

(Over 500 lines because it is one algorithm: normalised source, the helper graph and the cache that
revalidates both share private state, and split apart they would only reach into each other.)

``app_identity(func)`` returns an :class:`AppIdentity` whose ``digest`` (sha256 hex) covers:

* ``name``: the function's module and qualified name.
* ``source``: its source, normalised through the AST: the same dump as
  ``ast.parse(textwrap.dedent(inspect.getsource(func)))`` with the function's own decorator list
  and every docstring (of the function and of functions and classes nested in it) dropped,
  ``ast.dump(annotate_fields=True, include_attributes=False)``; the source file (as ``linecache``
  has it) is parsed whole, once per file, and the function's node found by name and first line.
  Comments, blank lines, formatting, docstrings and the function's decorators are left out; any
  other change (body, signature, annotations, default expressions) changes it.
  The source is checked against the running code: the file is compiled and the code object at the
  function's qualname and first line must equal the function's (bytecode, constants, names). When
  it differs (the file was edited after import) or the source is unavailable (a function typed
  in a REPL or made by ``exec`` of a string), the component is ``code (no source)`` instead: a
  digest of the compiled code (``co_code``, constants recursively, names, argument counts, the
  interpreter's bytecode tag). Lambdas always use ``code (lambda)``, since their source cannot be
  told apart from the rest of their line. Compiled code ignores comments and formatting but
  includes docstrings and depends on the Python version.
* ``defaults`` and ``kwdefaults``: the default values, as canonical bytes (``canonical.py``).
* ``closure:NAME``: the value of each closure cell, as canonical bytes.
* ``globals:NAME``: for each name in ``co_names`` (recursively through nested code objects) that
  is bound in the function's module globals: a value with canonical bytes contributes them; a
  plain function defined in user code (its module's file not under the ``stdlib``,
  ``platstdlib``, ``purelib`` or ``platlib`` paths of ``sysconfig`` or a site-packages directory),
  directly, behind ``__wrapped__`` (app objects, ``functools.wraps`` decorators) or inside a
  value (a dict of functions, a ``functools.partial``), contributes its own identity,
  recursively: the whole graph of helper functions reachable from the app is hashed, cycles
  included, the same way whichever function is asked about first. Functions from the standard
  library or installed packages, built-ins and classes contribute their module and qualified
  name only; modules contribute only their name; other objects only their type's name.
  Names not bound in the module globals (built-ins, attribute names) contribute nothing.

Left out, and so not noticed by a key: code reached through a module attribute (``mod.f()``) or
through a class (its methods), code behind objects that are neither functions nor canonical
values, anything read with ``getattr``/``globals()``/``eval``, and the environment (installed
versions, which the provenance store records separately). A value that cannot be hashed
deterministically (in a closure cell, a default or a global) contributes only its type's name;
those components are listed in ``AppIdentity.approximations``.

Caching: computed once per function object (weakly keyed). Each later call only re-checks, by
object identity, that the bindings it was computed from (``__code__``, ``__defaults__``,
``__kwdefaults__``, closure cell contents, the referenced globals, for every function in the
helper graph) are unchanged, and recomputes what was rebound (a notebook cell redefining a helper
or a constant). Values mutated in place (a list appended to) are not noticed.

``functools.partial`` objects and bound methods are identified by their function plus the
canonical bytes of the bound arguments / ``__self__`` (not cached; raises ``Uncacheable`` when
those cannot be hashed). Built-in functions and classes are identified by name only.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import linecache
import logging
import os
import site
import sys
import sysconfig
import threading
import types
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from parsl_repro.memo.canonical import (
    Encoder,
    Uncacheable,
    canonical_bytes,
    encode_with,
    frame,
    install_function_digest,
    type_name,
)

logger = logging.getLogger(__name__)

IDENTITY_VERSION = 1
"""Bumped whenever what the digest covers changes."""


@dataclass(frozen=True)
class AppIdentity:
    """What identifies an app's function; ``components`` explain which part changed."""

    qualname: str
    module: str
    source: str | None  # the source as read (not normalised); None if unavailable or not the running code
    digest: str  # sha256 hex over everything listed in the module docstring
    components: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    approximations: tuple[str, ...] = ()  # components that contributed only a type's name


def _text(s: str) -> bytes:
    return frame(b"s", s.encode("utf-8", "surrogatepass"))


def _sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()


_lock = threading.RLock()
_MISSING = object()
_EMPTY_CELL = object()


class _Snap:
    """A reference to a binding's value, weak where possible, to test "is it still the same object"."""

    __slots__ = ("_ref", "_obj")

    def __init__(self, obj: object) -> None:
        try:
            self._ref: weakref.ref | None = weakref.ref(obj)
            self._obj: object = None
        except TypeError:
            self._ref = None
            self._obj = obj

    def same(self, obj: object) -> bool:
        if self._ref is not None:
            held = self._ref()
            return held is not None and held is obj
        return self._obj is obj


# --- which functions are user code ----------------------------------------------------------------

@functools.cache
def _external_roots() -> tuple[str, ...]:
    roots: set[str] = set()
    paths = sysconfig.get_paths()
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(name):
            roots.add(os.path.realpath(paths[name]))
    try:
        roots.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # pragma: no cover - old virtualenv's site module
        pass
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if isinstance(user_site, str):
        roots.add(os.path.realpath(user_site))
    return tuple(sorted(roots))


@functools.lru_cache(maxsize=4096)
def _is_external_path(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root + os.sep) for root in _external_roots())


def is_user_function(fn: types.FunctionType) -> bool:
    """True unless ``fn`` comes from the standard library or an installed package."""
    module = sys.modules.get(fn.__module__) if fn.__module__ else None
    path = getattr(module, "__file__", None) or fn.__code__.co_filename
    if not path or path.startswith("<"):
        return True
    return not _is_external_path(path)


def _unwrap(obj: Any) -> Any:
    try:
        return inspect.unwrap(obj)
    except ValueError:  # a __wrapped__ cycle
        return obj


# --- the code itself --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _CodePart:
    label: str  # "source", "code (lambda)" or "code (no source)"
    source: str | None
    payload: bytes
    digest: bytes


_code_part_cache: weakref.WeakKeyDictionary[types.FunctionType, tuple[types.CodeType, _CodePart]] = \
    weakref.WeakKeyDictionary()


def _code_fingerprint(code: types.CodeType, *, with_tag: bool = True) -> bytes:
    """Compiled code without positions: bytecode, constants (recursively), names, argument counts."""
    consts = []
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            consts.append(frame(b"c", _code_fingerprint(c, with_tag=False)))
        else:
            try:
                consts.append(canonical_bytes(c))
            except Uncacheable:
                consts.append(frame(b"o", _text(type_name(type(c)))))
    counts = (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount)
    parts = [
        _text(sys.implementation.cache_tag or "") if with_tag else b"",
        _text(code.co_name),
        frame(b"i", b"".join(n.to_bytes(4, "big") for n in counts)),
        frame(b"b", code.co_code),
        frame(b"t", b"".join(consts)),
        *(frame(b"t", b"".join(_text(n) for n in names))
          for names in (code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)),
    ]
    return b"".join(parts)


def _strip_docstrings(tree: ast.AST) -> None:
    for n in ast.walk(tree):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            body = n.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                del body[0]


def _first_line(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


@dataclass
class _FileSource:
    """One source file as read now: its functions' code compiled from it, and their AST nodes."""

    lines: list[str]
    codes: dict[tuple[str, int], types.CodeType]  # (co_qualname, co_firstlineno) -> code
    nodes: dict[tuple[str, int], ast.FunctionDef | ast.AsyncFunctionDef]  # (name, first line) -> node
    fingerprints: dict[tuple[str, int], bytes] = field(default_factory=dict)


_file_sources: OrderedDict[str, _FileSource | None] = OrderedDict()
_FILE_SOURCES_MAX = 32


def _collect_codes(code: types.CodeType, into: dict[tuple[str, int], types.CodeType]) -> None:
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            into[(c.co_qualname, c.co_firstlineno)] = c
            _collect_codes(c, into)


def _file_source(filename: str, lines: list[str]) -> _FileSource | None:
    """The whole file parsed (docstrings then stripped) and compiled; cached per file text."""
    cached = _file_sources.get(filename)
    if cached is not None and (cached.lines is lines or cached.lines == lines):
        _file_sources.move_to_end(filename)
        return cached
    try:
        tree = ast.parse("".join(lines), filename)
        module_code = compile(tree, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    codes: dict[tuple[str, int], types.CodeType] = {}
    _collect_codes(module_code, codes)
    _strip_docstrings(tree)
    nodes = {(n.name, _first_line(n)): n for n in ast.walk(tree)
             if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    info = _FileSource(lines, codes, nodes)
    _file_sources[filename] = info
    while len(_file_sources) > _FILE_SOURCES_MAX:
        _file_sources.popitem(last=False)
    return info


def _normalised_source(fn: types.FunctionType) -> tuple[str | None, bytes | None, str]:
    """(source as read, normalised AST dump or None, why not) for a ``def`` function.

    Equivalent to ``ast.parse(textwrap.dedent(inspect.getsource(fn)))`` with the function's own
    decorators and all docstrings dropped, dumped without positions; the whole file is parsed
    instead (once per file), which also gives what to check the running code against: the file
    is compiled and the code object at the function's qualname and first line must match the
    function's code, else the file was edited after import and the source is not used.
    """
    code = fn.__code__
    filename = code.co_filename
    linecache.checkcache(filename)
    lines = linecache.getlines(filename, fn.__globals__)
    if not lines:
        return None, None, "no source"
    info = _file_source(filename, lines)
    if info is None:
        return None, None, "the source file does not parse"
    node = info.nodes.get((code.co_name, code.co_firstlineno))
    if node is None:
        return None, None, "no definition of the function at its line in the source file"
    source = "".join(lines[code.co_firstlineno - 1:node.end_lineno])
    key = (code.co_qualname, code.co_firstlineno)
    compiled = info.codes.get(key)
    if compiled is None:
        return source, None, "the source file does not define the function at its line"
    if key not in info.fingerprints:
        info.fingerprints[key] = _code_fingerprint(compiled)
    if info.fingerprints[key] != _code_fingerprint(code):
        return source, None, "the source file differs from the running code"
    decorators, node.decorator_list = node.decorator_list, []
    try:
        dump = ast.dump(node, annotate_fields=True, include_attributes=False)
    finally:
        node.decorator_list = decorators
    return source, dump.encode("utf-8"), ""


def _code_part(fn: types.FunctionType) -> _CodePart:
    code = fn.__code__
    cached = _code_part_cache.get(fn)
    if cached is not None and cached[0] is code:
        return cached[1]
    if code.co_name == "<lambda>":
        lines = linecache.getlines(code.co_filename, fn.__globals__)
        source: str | None = lines[code.co_firstlineno - 1] if 0 < code.co_firstlineno <= len(lines) else None
        label, payload = "code (lambda)", _code_fingerprint(code)
    else:
        source, dump, why = _normalised_source(fn)
        if dump is not None:
            label, payload = "source", dump
        else:
            logger.debug("identity of %s.%s from its compiled code (%s)", fn.__module__, fn.__qualname__, why)
            label, payload, source = "code (no source)", _code_fingerprint(code), None
    part = _CodePart(label, source, payload, hashlib.sha256(payload).digest())
    _code_part_cache[fn] = (code, part)
    return part


def function_source(fn: types.FunctionType) -> str | None:
    """The source of ``fn`` as read from its file, when it is the running code (else None: a lambda,
    a function typed in a REPL or made by ``exec``, a file edited after import)."""
    part = _code_part(fn)
    return part.source if part.label == "source" else None


def global_names(code: types.CodeType) -> set[str]:
    """The names ``code`` (and the code nested in it) may read from its module's globals."""
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= global_names(c)
    return names


# --- one function's own parts (helpers as references) --------------------------------------------

def _placeholder(fn: types.FunctionType) -> bytes:
    """Stands for a helper inside a part: its name and code, not its (possibly cyclic) identity."""
    return frame(b"h", _text(fn.__module__ or "") + _text(fn.__qualname__) + frame(b"b", _code_part(fn).digest))


class _RefEncoder(Encoder):
    """Canonical bytes in which user functions become references (edges of the helper graph)."""

    __slots__ = ("refs",)

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[bytes, types.FunctionType]] = []

    def function(self, f: Any) -> bytes:
        if isinstance(f, functools.partial):
            return frame(b"q", self.encode(f.func) + self.encode(f.args) + self.encode(f.keywords))
        if isinstance(f, types.MethodType):
            return frame(b"m", self.encode(f.__func__) + self.encode(f.__self__))
        target = _unwrap(f)
        if target is not f and not isinstance(target, types.FunctionType):
            return self.encode(target)
        if not isinstance(target, types.FunctionType):
            raise Uncacheable(type_name(type(f)), "its __wrapped__ chain does not lead to a function")
        if not is_user_function(target):
            return frame(b"B", _text(target.__module__ or "") + _text(target.__qualname__))
        ph = _placeholder(target)
        self.refs.append((ph, target))
        return ph


@dataclass
class _Local:
    key: str  # sha256 hex of name + parts
    module: str
    qualname: str
    source: str | None
    parts: dict[str, bytes]
    refs: dict[str, list[tuple[bytes, weakref.ref]]]
    approximations: tuple[str, ...]
    # the bindings it was computed from
    code: types.CodeType
    defaults: Any
    kwdefaults: Any
    cells: tuple[_Snap, ...]
    globals_seen: tuple[tuple[str, _Snap], ...]

    def valid(self, fn: types.FunctionType) -> bool:
        if fn.__code__ is not self.code or fn.__defaults__ is not self.defaults \
                or fn.__kwdefaults__ is not self.kwdefaults:
            return False
        for cell, snap in zip(fn.__closure__ or (), self.cells, strict=False):
            try:
                value = cell.cell_contents
            except ValueError:
                value = _EMPTY_CELL
            if not snap.same(value):
                return False
        g = fn.__globals__
        for name, snap in self.globals_seen:
            if not snap.same(g.get(name, _MISSING)):
                return False
        return True


def _encode_part(value: object) -> tuple[bytes, list[tuple[bytes, types.FunctionType]], bool]:
    enc = _RefEncoder()
    try:
        return encode_with(enc, value), enc.refs, True
    except Uncacheable as e:
        logger.debug("identity: a value of type %s contributes only its type name (%s)", type_name(type(value)), e)
        return frame(b"o", _text(type_name(type(value)))), [], False


def _compute_local(fn: types.FunctionType) -> _Local:
    code = fn.__code__
    module, qualname = fn.__module__ or "", fn.__qualname__
    cp = _code_part(fn)
    parts: dict[str, bytes] = {"name": _text(module) + _text(qualname), cp.label: frame(b"S", cp.payload)}
    refs: dict[str, list[tuple[bytes, weakref.ref]]] = {}
    approx: list[str] = []

    def add(label: str, payload: bytes, found: list[tuple[bytes, types.FunctionType]], exact: bool) -> None:
        parts[label] = payload
        if found:
            refs[label] = [(ph, weakref.ref(f)) for ph, f in found]
        if not exact:
            approx.append(label)

    defaults, kwdefaults = fn.__defaults__, fn.__kwdefaults__
    if defaults:
        encoded, found, exact = [], [], True
        for value in defaults:
            b, r, ok = _encode_part(value)
            encoded.append(b)
            found += r
            exact &= ok
        add("defaults", frame(b"t", b"".join(encoded)), found, exact)
    if kwdefaults:
        encoded, found, exact = [], [], True
        for name in sorted(kwdefaults):
            b, r, ok = _encode_part(kwdefaults[name])
            encoded.append(_text(name) + b)
            found += r
            exact &= ok
        add("kwdefaults", frame(b"d", b"".join(encoded)), found, exact)

    cells = []
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:  # not assigned yet
            cells.append(_Snap(_EMPTY_CELL))
            add(f"closure:{name}", frame(b"0", b""), [], True)
            continue
        cells.append(_Snap(value))
        add(f"closure:{name}", *_encode_part(value))

    g = fn.__globals__
    seen = []
    for name in sorted(global_names(code)):
        value = g.get(name, _MISSING)
        seen.append((name, _Snap(value)))
        if value is _MISSING:
            continue
        label = f"globals:{name}"
        if isinstance(value, types.ModuleType):
            add(label, frame(b"g", _text(value.__name__)), [], True)
        else:
            add(label, *_encode_part(value))

    key = _sha(*(_text(label) + frame(b"x", parts[label]) for label in sorted(parts)))
    return _Local(key=key, module=module, qualname=qualname, source=cp.source, parts=parts, refs=refs,
                  approximations=tuple(sorted(approx)), code=code, defaults=defaults, kwdefaults=kwdefaults,
                  cells=tuple(cells), globals_seen=tuple(seen))


_local_cache: weakref.WeakKeyDictionary[types.FunctionType, _Local] = weakref.WeakKeyDictionary()


def _local_for(fn: types.FunctionType) -> _Local:
    loc = _local_cache.get(fn)
    if loc is None or not loc.valid(fn):
        loc = _compute_local(fn)
        _local_cache[fn] = loc
    return loc


# --- the helper graph ---------------------------------------------------------------------------

@dataclass
class _Graph:
    digest: str
    nodes: list[tuple[weakref.ref, _Local]]

    def valid(self) -> bool:
        for ref, loc in self.nodes:
            fn = ref()
            if fn is None or _local_cache.get(fn) is not loc or not loc.valid(fn):
                return False
        return True


class _StaleReference(Exception):
    pass


def _compute_graph(root: types.FunctionType) -> _Graph:
    nodes: dict[int, tuple[types.FunctionType, _Local]] = {id(root): (root, _local_for(root))}
    queue = [root]
    serial: set[bytes] = set()
    while queue:
        fn = queue.pop()
        loc = nodes[id(fn)][1]
        edges = []
        for label, found in loc.refs.items():
            for ph, ref in found:
                target = ref()
                if target is None:
                    _local_cache.pop(fn, None)
                    raise _StaleReference(fn.__qualname__)
                if id(target) not in nodes:
                    nodes[id(target)] = (target, _local_for(target))
                    queue.append(target)
                edges.append(_text(label) + ph + _text(nodes[id(target)][1].key))
        edges.sort()
        serial.add(_text(loc.key) + frame(b"t", b"".join(edges)))
    digest = _sha(f"parsl_repro.identity/{IDENTITY_VERSION}\0".encode(), _text(nodes[id(root)][1].key),
                  *sorted(serial))
    return _Graph(digest, [(weakref.ref(fn), loc) for fn, loc in nodes.values()])


_graph_cache: weakref.WeakKeyDictionary[types.FunctionType, _Graph] = weakref.WeakKeyDictionary()


def _graph_for(fn: types.FunctionType) -> _Graph:
    graph = _graph_cache.get(fn)
    if graph is not None and graph.valid():
        return graph
    for _attempt in range(3):
        try:
            graph = _compute_graph(fn)
            break
        except _StaleReference:
            continue
    else:  # pragma: no cover - a helper kept disappearing while the graph was walked
        graph = _compute_graph(fn)
    _graph_cache[fn] = graph
    return graph


_identity_cache: weakref.WeakKeyDictionary[types.FunctionType, tuple[_Graph, AppIdentity]] = \
    weakref.WeakKeyDictionary()


_pinned: weakref.WeakKeyDictionary[types.FunctionType, AppIdentity] = weakref.WeakKeyDictionary()


def pin_identity(fn: types.FunctionType, identity: AppIdentity) -> None:
    """Make ``identity`` the identity of ``fn`` from now on.

    For a function rebuilt from a recorded app (``memo.recipe``): it was made from exactly what
    that identity covers (the recorded source, closure values, globals and helpers), but its
    source lives in no file that the source check could read back, so computing it afresh would
    give a ``code (no source)`` digest instead of the recorded one.
    """
    with _lock:
        _pinned[fn] = identity


def _function_identity(fn: types.FunctionType) -> AppIdentity:
    with _lock:
        if _pinned and (pinned := _pinned.get(fn)) is not None:
            return pinned
        cached = _identity_cache.get(fn)
        if cached is not None and cached[0].valid():
            return cached[1]
        graph = _graph_for(fn)
        loc = _local_for(fn)
        components = {}
        for label, payload in loc.parts.items():
            h = hashlib.sha256(payload)
            helpers = []
            for ph, ref in loc.refs.get(label, ()):
                target = ref()
                helpers.append(ph + (_graph_for(target).digest.encode() if target is not None else b"?"))
            for item in sorted(helpers):
                h.update(item)
            components[label] = h.hexdigest()
        ident = AppIdentity(qualname=loc.qualname, module=loc.module, source=loc.source, digest=graph.digest,
                            components=components, approximations=loc.approximations)
        _identity_cache[fn] = (graph, ident)
        logger.debug("identity of %s.%s: %s (%d helper functions)", loc.module, loc.qualname, graph.digest,
                     len(graph.nodes) - 1)
        return ident


def _bound_identity(kind: str, inner: AppIdentity, bound: dict[str, object]) -> AppIdentity:
    components = dict(inner.components)
    components[f"{kind}.func"] = inner.digest
    parts = [_text(kind), _text(inner.digest)]
    for name, value in bound.items():
        try:
            b = canonical_bytes(value)
        except Uncacheable as e:
            e.path.insert(0, f"{kind}.{name}")
            raise
        components[f"{kind}.{name}"] = _sha(b)
        parts.append(_text(name) + b)
    return AppIdentity(qualname=inner.qualname, module=inner.module, source=inner.source, digest=_sha(*parts),
                       components=components, approximations=inner.approximations)


def _named_identity(obj: Any) -> AppIdentity:
    module = getattr(obj, "__module__", None) or getattr(getattr(obj, "__objclass__", None), "__module__", "") or ""
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "") or type_name(type(obj))
    name = _sha(_text(module), _text(qualname))
    return AppIdentity(qualname=qualname, module=module, source=None, digest=_sha(b"named", name.encode()),
                       components={"name": name})


def app_identity(func: Any) -> AppIdentity:
    """The identity of ``func`` (see the module docstring). Cached per function object.

    Raises ``TypeError`` for an object that is not a function, and ``Uncacheable`` for a partial
    or bound method whose bound values cannot be hashed deterministically.
    """
    if type(func) is types.FunctionType and "__wrapped__" not in func.__dict__:
        return _function_identity(func)  # the common case, without unwrap's bookkeeping
    if isinstance(func, functools.partial):
        return _bound_identity("partial", app_identity(func.func), {"args": func.args, "keywords": func.keywords})
    if isinstance(func, types.MethodType):
        return _bound_identity("method", app_identity(func.__func__), {"self": func.__self__})
    target = _unwrap(func)
    if isinstance(target, types.FunctionType):
        return _function_identity(target)
    if target is not func:
        return app_identity(target)
    if isinstance(target, types.BuiltinFunctionType) and not isinstance(
            getattr(target, "__self__", None), types.ModuleType | type | None):
        return _bound_identity("method", _named_identity(target), {"self": target.__self__})
    if isinstance(target, types.BuiltinFunctionType | types.MethodDescriptorType | types.WrapperDescriptorType
                  | types.ClassMethodDescriptorType | type):
        return _named_identity(target)
    raise TypeError(f"app_identity needs a function, not {type_name(type(func))}")


install_function_digest(lambda f: app_identity(f).digest)
