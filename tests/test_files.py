"""File objects for local paths and file:// URLs, and DataFutures for files apps produce."""
from __future__ import annotations

import os
import pathlib

import pytest

from parsl_repro import File, python_app
from parsl_repro.app.futures import DataFuture


@pytest.mark.parametrize("url,scheme,path", [
    ("data/in.txt", "file", "data/in.txt"),
    ("/abs/in.txt", "file", "/abs/in.txt"),
    ("file:///scratch/proj/in.txt", "file", "/scratch/proj/in.txt"),
    ("https://example.org/x/y.csv", "https", "/x/y.csv"),
])
def test_file_parses_url_scheme_and_path(url, scheme, path):
    f = File(url)
    assert (f.url, f.scheme, f.path, f.filename) == (url, scheme, path, os.path.basename(path))


def test_local_file_filepath_and_fspath(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("content")
    f = File(pathlib.Path(target))
    assert f.filepath == str(target) == os.fspath(f) == str(f)
    assert open(f).read() == "content"
    assert File(f"file://{target}").filepath == str(target)


def test_remote_file_has_no_filepath_until_staged():
    f = File("https://example.org/data.csv")
    with pytest.raises(ValueError, match="staged"):
        _ = f.filepath
    f.local_path = "/tmp/data.csv"
    assert f.filepath == "/tmp/data.csv"
    assert f.cleancopy().local_path is None


def test_file_rejects_non_path_types():
    with pytest.raises(TypeError):
        File(42)


def test_outputs_are_data_futures_resolving_to_the_file(dfk, tmp_path):
    @python_app
    def produce(outputs=()):
        with open(outputs[0], "w") as f:
            f.write("42")

    target = File(str(tmp_path / "answer.txt"))
    fut = produce(outputs=[target])
    out = fut.outputs[0]
    assert isinstance(out, DataFuture) and out.tid == fut.tid
    assert out.result(timeout=10) is target
    assert out.filepath == target.filepath
    assert "answer.txt" in repr(out) and "done" in repr(out)


def test_data_future_carries_the_producer_failure(dfk, tmp_path):
    @python_app
    def fails(outputs=()):
        raise RuntimeError("no file for you")

    fut = fails(outputs=[File(str(tmp_path / "never"))])
    assert isinstance(fut.outputs[0].exception(timeout=10), RuntimeError)


def test_missing_input_file_fails_that_task_and_its_dependents_only(dfk, tmp_path):
    from parsl_repro.dataflow.errors import DependencyError

    @python_app
    def read(inputs=()):
        return open(inputs[0]).read()

    @python_app
    def upper(text):
        return text.upper()

    missing = read(inputs=[File(str(tmp_path / "absent.txt"))])
    child = upper(missing)
    (tmp_path / "present.txt").write_text("ok")
    fine = upper(read(inputs=[File(str(tmp_path / "present.txt"))]))
    assert isinstance(missing.exception(timeout=10), FileNotFoundError)
    assert isinstance(child.exception(timeout=10), DependencyError)
    assert "absent.txt" in str(child.exception())
    assert fine.result(timeout=10) == "OK"
