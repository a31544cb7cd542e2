"""canonical_bytes / digest: determinism, type distinctness, File content, FileDigestCache, Uncacheable."""
from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import os
import pathlib
import pickle
import subprocess
import sys
import threading
import time
import uuid
import zoneinfo

import pytest

from parsl_repro.data_provider.files import File
from parsl_repro.dataflow.memoization import id_for_memo, id_for_memo_pickle
from parsl_repro.memo import FileDigestCache, Uncacheable, canonical_bytes, digest


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


class Level(enum.IntEnum):
    LOW = 1


@dataclasses.dataclass
class Point:
    x: int
    y: list


Pair = collections.namedtuple("Pair", "a b")


def test_types_are_distinct():
    values = [1, 1.0, True, "1", b"1", bytearray(b"1"), [1], (1,), {1}, frozenset({1}), {1: None},
              0, 0.0, -0.0, False, None, "", b"", [], (), {}, set(), frozenset(), complex(1, 0),
              decimal.Decimal(1), fractions.Fraction(1), range(1), Colour.RED, Level.LOW, Pair(1, None),
              pathlib.PurePosixPath("1"), Ellipsis, 2 ** 64, -(2 ** 64), float("inf"), float("nan")]
    encodings = [canonical_bytes(v) for v in values]
    assert len(set(encodings)) == len(values)
    assert canonical_bytes([1, 2]) != canonical_bytes((1, 2))
    assert canonical_bytes(["ab", "c"]) != canonical_bytes(["a", "bc"])
    assert canonical_bytes(((1,), 2)) != canonical_bytes((1, (2,)))


def test_equal_values_give_equal_bytes():
    assert canonical_bytes(float("nan")) == canonical_bytes(-float("nan"))
    assert canonical_bytes(0.1 + 0.2) != canonical_bytes(0.3)
    assert canonical_bytes(2 ** 1000) == canonical_bytes(2 ** 1000) != canonical_bytes(2 ** 1000 + 1)
    assert canonical_bytes(10 ** 5000) != canonical_bytes(10 ** 5000 + 1)  # beyond int's str() limit
    assert canonical_bytes("\ud800") == canonical_bytes("\ud800")  # lone surrogate
    assert len(digest({"a": 1})) == 64


def test_dict_insertion_order_does_not_matter():
    a = {"x": 1, "y": [1, 2], 3: {"inner": 1, "other": 2}, (1, 2): None}
    b = {(1, 2): None, 3: {"other": 2, "inner": 1}, "y": [1, 2], "x": 1}
    assert list(a) != list(b)
    assert canonical_bytes(a) == canonical_bytes(b)
    assert canonical_bytes({"x": 1}) != canonical_bytes({"x": 2}) != canonical_bytes({"y": 1})


def test_set_order_does_not_matter_even_across_hash_seeds():
    words = [f"word{i}" for i in range(50)]
    assert canonical_bytes(set(words)) == canonical_bytes(set(reversed(words)))
    assert canonical_bytes(frozenset(words)) != canonical_bytes(set(words))
    script = ("from parsl_repro.memo import digest; "
              "print(digest([{f'word{i}' for i in range(50)}, {'k': frozenset('abc'), 'j': {1.5, 'x'}}]))")
    outs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONHASHSEED=seed)).stdout for seed in ("1", "2", "3")}
    assert len(outs) == 1


def test_dates_numbers_and_other_standard_types():
    tz = datetime.timezone(datetime.timedelta(hours=2), "X")
    moment = datetime.datetime(2024, 5, 1, 12, 30, 0, 5)
    assert canonical_bytes(moment) == canonical_bytes(datetime.datetime(2024, 5, 1, 12, 30, 0, 5))
    assert canonical_bytes(moment) != canonical_bytes(moment.replace(tzinfo=tz))
    assert canonical_bytes(moment.replace(tzinfo=tz)) != canonical_bytes(moment.replace(tzinfo=datetime.UTC))
    paris = moment.replace(tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    assert canonical_bytes(paris) == canonical_bytes(moment.replace(tzinfo=zoneinfo.ZoneInfo("Europe/Paris")))
    assert canonical_bytes(paris) != canonical_bytes(moment.replace(tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")))
    assert canonical_bytes(moment.date()) != canonical_bytes(datetime.datetime(2024, 5, 1))
    assert canonical_bytes(moment.time()) != canonical_bytes(moment.time().replace(microsecond=6))
    assert canonical_bytes(datetime.timedelta(days=1)) != canonical_bytes(datetime.timedelta(seconds=1))
    assert canonical_bytes(decimal.Decimal("1.0")) != canonical_bytes(decimal.Decimal("1.00"))
    assert canonical_bytes(fractions.Fraction(1, 3)) != canonical_bytes(fractions.Fraction(2, 3))
    u = uuid.UUID(int=5)
    assert canonical_bytes(u) == canonical_bytes(uuid.UUID(int=5)) != canonical_bytes(uuid.UUID(int=6))
    assert canonical_bytes(pathlib.Path("a/b")) == canonical_bytes(pathlib.Path("a") / "b")
    assert canonical_bytes(pathlib.Path("a/b")) != canonical_bytes("a/b")
    assert canonical_bytes(range(3)) != canonical_bytes(range(0, 3, 2))


def test_enums_dataclasses_namedtuples():
    assert canonical_bytes(Colour.RED) != canonical_bytes(Colour.GREEN)
    assert canonical_bytes(Level.LOW) != canonical_bytes(1)
    assert canonical_bytes(Point(1, [2])) == canonical_bytes(Point(1, [2]))
    assert canonical_bytes(Point(1, [2])) != canonical_bytes(Point(1, [3]))
    assert canonical_bytes(Pair(1, 2)) != canonical_bytes((1, 2))
    assert canonical_bytes(Pair(1, 2)) == canonical_bytes(Pair(a=1, b=2))


def test_file_arguments_are_hashed_by_content_not_path(tmp_path):
    a, b, c = tmp_path / "a.txt", tmp_path / "sub" / "renamed.dat", tmp_path / "c.txt"
    b.parent.mkdir()
    a.write_text("same content")
    b.write_text("same content")
    c.write_text("other content")
    cache = FileDigestCache(racy_window=0)
    key = lambda v, **kw: canonical_bytes(v, file_digest=cache.sha256, **kw)  # noqa: E731
    assert key(File(str(a))) == key(File(str(b)))
    assert key([File(str(a))]) == key([File(str(b))])
    assert key(File(str(a))) != key(File(str(c)))
    assert key(File(str(a))) != key("same content")
    a.write_text("changed content")
    assert key(File(str(a))) != key(File(str(b)))
    # outputs are not written yet: identified by URL
    assert key(File(str(tmp_path / "out1")), output_ref=True) != key(File(str(tmp_path / "out2")), output_ref=True)
    assert key([File(str(a))], output_ref=True) != key([File(str(b))], output_ref=True)
    # other schemes by URL
    assert key(File("globus://ep/x")) != key(File("globus://ep/y"))
    with pytest.raises(Uncacheable, match="File"):
        key(File(str(tmp_path / "missing.txt")))
    # the default file_digest works too
    assert canonical_bytes(File(str(b))) == key(File(str(b)))


def test_file_digest_cache_does_not_reread_an_unchanged_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 1000)
    cache = FileDigestCache(racy_window=0)
    first = cache.sha256(str(path))
    for _ in range(5):
        assert cache.sha256(str(path)) == first
    assert (cache.misses, cache.hits) == (1, 5)
    path.write_bytes(b"y" * 1001)  # new size
    second = cache.sha256(str(path))
    assert second != first and cache.misses == 2
    st = os.stat(path)
    path.write_bytes(b"z" * 1001)  # same size: noticed by mtime/ctime
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 5_000_000_000))
    third = cache.sha256(str(path))
    assert third not in (first, second) and cache.misses == 3
    assert cache.sha256(str(path)) == third and cache.misses == 3
    with pytest.raises(FileNotFoundError):
        cache.sha256(str(tmp_path / "missing"))
    with pytest.raises(OSError):
        cache.sha256(str(tmp_path))


def test_file_digest_cache_rereads_a_file_modified_moments_ago(tmp_path):
    path = tmp_path / "fresh.txt"
    path.write_text("fresh")
    cache = FileDigestCache()  # default 2 s racy window
    cache.sha256(str(path))
    cache.sha256(str(path))
    assert cache.misses == 2 and cache.hits == 0
    past = time.time_ns() - 10_000_000_000
    os.utime(path, ns=(past, past))  # ctime is now, so still too recent to trust
    cache.sha256(str(path))
    assert cache.hits == 0


def test_file_digest_cache_is_bounded_and_thread_safe(tmp_path):
    cache = FileDigestCache(max_entries=2, racy_window=0)
    paths = []
    for i in range(3):
        p = tmp_path / f"f{i}"
        p.write_text(str(i))
        paths.append(str(p))
        cache.sha256(str(p))
    assert len(cache) == 2
    cache.sha256(paths[2])
    assert cache.hits == 1
    cache.sha256(paths[0])  # evicted
    assert cache.misses == 4

    big = tmp_path / "big"
    big.write_bytes(os.urandom(1 << 20))
    shared = FileDigestCache(racy_window=0)
    results: list[str] = []

    def work() -> None:
        for _ in range(20):
            results.append(shared.sha256(str(big)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results) == 160
    assert shared.hits + shared.misses == 160 and shared.misses <= 8


def test_uncacheable_values_name_the_type_and_path():
    gen = (i for i in range(3))
    with pytest.raises(Uncacheable) as info:
        canonical_bytes(gen)
    assert info.value.reason == "argument of type generator cannot be hashed deterministically"
    with pytest.raises(Uncacheable) as info:
        canonical_bytes({"a": [1, object()]})
    assert "type object at ['a'][1]" in info.value.reason
    with pytest.raises(Uncacheable) as info:
        canonical_bytes(Point(1, [threading.Lock()]))
    assert "_thread.lock" in info.value.reason and ".y[0]" in info.value.reason
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.reason == info.value.reason


def test_cycles_raise_uncacheable_but_shared_references_do_not():
    loop: list = [1]
    loop.append(loop)
    with pytest.raises(Uncacheable, match="contains itself"):
        canonical_bytes(loop)
    d: dict = {}
    d["self"] = [d]
    with pytest.raises(Uncacheable):
        canonical_bytes(d)
    shared = [1, 2]
    assert canonical_bytes([shared, shared]) == canonical_bytes([[1, 2], [1, 2]])
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(Uncacheable, match="nested too deeply"):
        canonical_bytes(deep)


class Registered:
    def __init__(self, value: int) -> None:
        self.value = value


class Unregistered:
    pass


@id_for_memo.register(Registered)
def _id_registered(obj: Registered, output_ref: bool = False) -> bytes:
    return f"Registered:{obj.value}".encode()


def test_id_for_memo_registrations_are_honoured():
    assert canonical_bytes(Registered(1)) == canonical_bytes(Registered(1))
    assert canonical_bytes(Registered(1)) != canonical_bytes(Registered(2))
    assert canonical_bytes([Registered(1)]) != canonical_bytes(Registered(1).__dict__)
    with pytest.raises(Uncacheable, match="Unregistered"):
        canonical_bytes(Unregistered())


class Label(str):
    """A str subclass may carry state its text does not show."""


class Keyed(str):
    pass


@id_for_memo.register(Keyed)
def _id_keyed(obj: Keyed, output_ref: bool = False) -> bytes:
    return b"Keyed:" + obj.encode()


@pytest.mark.parametrize("value, base", [(Label("a"), "str"), (collections.OrderedDict(a=1), "dict"),
                                         (collections.Counter("ab"), "dict"), (type("L", (list,), {})([1]), "list"),
                                         (type("I", (int,), {})(3), "int")])
def test_subclasses_of_builtin_types_are_uncacheable_unless_registered_themselves(value, base):
    with pytest.raises(Uncacheable, match=f"a subclass of {base} with no id_for_memo function registered for it"):
        canonical_bytes(value)


def test_a_dataclass_that_subclasses_a_builtin_is_not_keyed_by_its_fields_alone():
    import dataclasses

    @dataclasses.dataclass
    class Tagged(dict):
        a: int = 0

    first, second = Tagged(1), Tagged(1)
    first["k"], second["k"] = 1, 2
    with pytest.raises(Uncacheable, match="a subclass of dict"):
        canonical_bytes(first)


class Reused(str):
    pass


class Plain:
    def __init__(self, text):
        self.text = text

    def __reduce__(self):
        return (Plain, (self.text,))


id_for_memo.register(Reused, id_for_memo_pickle)  # Parsl's own function, registered for a user type
id_for_memo.register(Plain, id_for_memo_pickle)


def test_parsl_functions_registered_for_a_user_type_key_it():
    assert canonical_bytes(Reused("a")) == canonical_bytes(Reused("a")) != canonical_bytes(Reused("b"))
    assert canonical_bytes(Plain("a")) != canonical_bytes(Plain("b"))


def test_parsl_registrations_still_answer_direct_calls():
    assert id_for_memo(Label("a")) == id_for_memo(Label("a")) != id_for_memo(Label("b"))
    with pytest.raises(ValueError, match="subclasses of dict"):
        id_for_memo(collections.OrderedDict(a=1))


def test_a_subclass_with_its_own_registration_is_keyed_by_it():
    assert canonical_bytes(Keyed("a")) == canonical_bytes(Keyed("a"))
    assert canonical_bytes(Keyed("a")) != canonical_bytes(Keyed("b"))
    assert canonical_bytes(Keyed("a")) != canonical_bytes("a")


def test_functions_are_values():
    def f(x):
        return x

    def g(x):
        return x + 1

    assert canonical_bytes(f) != canonical_bytes(g)
    assert canonical_bytes([len, max]) != canonical_bytes([max, len])
    assert canonical_bytes(int) != canonical_bytes(float)


def test_numpy_arrays_and_scalars():
    np = pytest.importorskip("numpy")
    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert canonical_bytes(a) == canonical_bytes(a.copy())
    assert canonical_bytes(a.T) == canonical_bytes(np.ascontiguousarray(a.T))  # layout does not matter
    assert canonical_bytes(a) != canonical_bytes(a.reshape(4, 3))
    assert canonical_bytes(a) != canonical_bytes(a.astype(np.int32))
    assert canonical_bytes(a[:, ::2]) == canonical_bytes(np.array([[0, 2], [4, 6], [8, 10]], dtype=np.int64))
    assert canonical_bytes(np.float64(1.0)) != canonical_bytes(1.0)
    assert canonical_bytes(np.float64(1.0)) != canonical_bytes(np.float32(1.0))
    assert canonical_bytes(np.array([1, "x", None], dtype=object)) != canonical_bytes(np.array([1, "y", None],
                                                                                            dtype=object))
    assert canonical_bytes(np.dtype("f8")) != canonical_bytes(np.dtype("f4"))
    with pytest.raises(Uncacheable):
        canonical_bytes(np.ma.masked_array([1, 2], mask=[0, 1]))
