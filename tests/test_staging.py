"""File staging: providers claim files by scheme and stage them in and out around tasks.

HTTP and FTP are tested against real servers on loopback (``tests/file_servers.py``); zip
against real archives; the in-task wrappers also through a HighThroughputExecutor, whose
workers receive them serialized.
"""
from __future__ import annotations

import os
import sqlite3
import zipfile

import pytest

import parsl_repro
from parsl_repro import bash_app, python_app
from parsl_repro.config import Config
from parsl_repro.data_provider.data_manager import NoStagingProvider, default_staging
from parsl_repro.data_provider.file_noop import NoOpFileStaging
from parsl_repro.data_provider.files import File
from parsl_repro.data_provider.ftp import FTPInTaskStaging, FTPSeparateTaskStaging
from parsl_repro.data_provider.http import HTTPInTaskStaging, HTTPSeparateTaskStaging
from parsl_repro.data_provider.staging import Staging
from parsl_repro.data_provider.transfer import StagingTransferError
from parsl_repro.data_provider.zip import ZipAuthorityError, ZipFileStaging
from parsl_repro.dataflow.errors import DependencyError
from parsl_repro.executors import ThreadPoolExecutor
from parsl_repro.monitoring.engine import default_url
from tests.file_servers import ftp_server, http_server


@python_app
def read_text(f):
    with open(f) as handle:
        return handle.read()


@python_app
def read_inputs(inputs=()):
    return [open(f).read() for f in inputs]


@pytest.fixture
def served(tmp_path):
    """A directory of files for the servers: data/hello.txt and data/other.txt."""
    root = tmp_path / "served"
    (root / "data").mkdir(parents=True)
    (root / "data" / "hello.txt").write_text("hello over the wire\n")
    (root / "data" / "other.txt").write_text("second file\n")
    return root


def _load(tmp_path, storage_access=None, **executor_fields):
    executor_fields.setdefault("working_dir", str(tmp_path / "work"))
    return parsl_repro.load(Config(executors=[ThreadPoolExecutor(label="local", storage_access=storage_access,
                                                                 **executor_fields)],
                                   run_dir=str(tmp_path / "runinfo")))


@pytest.fixture
def kernel(tmp_path, monkeypatch, no_leaks):
    monkeypatch.chdir(tmp_path)
    loaded = []

    def load(*args, **kwargs):
        loaded.append(_load(tmp_path, *args, **kwargs))
        return loaded[-1]

    yield load
    for k in loaded:
        k.cleanup()


def _store_rows(tmp_path, sql):
    url = default_url(str(tmp_path / "runinfo"))
    with sqlite3.connect(url[len("sqlite:///"):]) as db:
        return db.execute(sql).fetchall()


# --- HTTP ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", [HTTPSeparateTaskStaging(), HTTPInTaskStaging()], ids=["separate", "in_task"])
def test_http_inputs_are_downloaded_before_the_app_runs(kernel, tmp_path, served, provider):
    with http_server(str(served)) as port:
        k = kernel([provider])
        url = f"http://127.0.0.1:{port}/data/hello.txt"
        assert read_text(File(url)).result() == "hello over the wire\n"
        assert read_inputs(inputs=[File(url), File(f"http://127.0.0.1:{port}/data/other.txt")]).result() == \
            ["hello over the wire\n", "second file\n"]
        assert (tmp_path / "work" / "hello.txt").read_text() == "hello over the wire\n"
        tasks = k.task_count
    # a separate stage-in task per file, or none when the app's own task fetches
    assert tasks == (5 if isinstance(provider, HTTPSeparateTaskStaging) else 2)


def test_http_default_staging_downloads_in_a_separate_task(kernel, tmp_path, served):
    with http_server(str(served)) as port:
        k = kernel()  # storage_access=None: default_staging
        fu = read_text(File(f"http://127.0.0.1:{port}/data/hello.txt"))
        assert fu.result() == "hello over the wire\n"
        assert k.task_count == 2
    k.cleanup()
    names = {row[0] for row in _store_rows(tmp_path, "SELECT task_func_name FROM task")}
    assert names == {"read_text", "stage_in_download"}


def test_http_error_status_fails_the_task_naming_url_and_status(kernel, served):
    with http_server(str(served)) as port:
        kernel([HTTPInTaskStaging()])
        url = f"http://127.0.0.1:{port}/data/missing.txt"
        with pytest.raises(StagingTransferError, match=r"missing\.txt: HTTP 404"):
            read_text(File(url)).result()


def test_failed_separate_stage_in_is_a_dependency_failure_of_the_app(kernel, served):
    with http_server(str(served)) as port:
        kernel()
        with pytest.raises(DependencyError) as info:
            read_text(File(f"http://127.0.0.1:{port}/nothing/here.txt")).result()
        assert "HTTP 404" in str(info.value)


# --- FTP -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", [FTPSeparateTaskStaging(), FTPInTaskStaging()], ids=["separate", "in_task"])
def test_ftp_inputs_with_a_login_are_fetched_and_the_password_is_never_recorded(kernel, tmp_path, served, provider):
    with ftp_server(str(served), "parsl", "s3cr3t-pw") as port:
        k = kernel([provider])
        url = f"ftp://parsl:s3cr3t-pw@127.0.0.1:{port}/data/hello.txt"
        assert read_inputs(inputs=[File(url)]).result() == ["hello over the wire\n"]
        assert read_text(File(f"ftp://127.0.0.1:{port}/data/other.txt")).result() == "second file\n"  # anonymous
    k.cleanup()
    urls = {row[0] for row in _store_rows(tmp_path, "SELECT url FROM file")}
    assert f"ftp://parsl:***@127.0.0.1:{port}/data/hello.txt" in urls
    database = os.path.realpath(default_url(str(tmp_path / "runinfo"))[len("sqlite:///"):])
    for path in (database, database + "-wal"):
        if os.path.exists(path):
            with open(path, "rb") as db:
                assert b"s3cr3t-pw" not in db.read()


def test_ftp_bad_password_fails_the_task_without_showing_it(kernel, served):
    with ftp_server(str(served), "parsl", "right") as port:
        kernel([FTPInTaskStaging()])
        with pytest.raises(StagingTransferError) as info:
            read_text(File(f"ftp://parsl:wrong-one@127.0.0.1:{port}/data/hello.txt")).result()
    assert "530" in str(info.value) and "wrong-one" not in str(info.value)


# --- zip -----------------------------------------------------------------------------------------
@bash_app
def write_numbers(outputs=()):
    return "; ".join(f"echo {i} > {f}" for i, f in enumerate(outputs))


@bash_app
def shout(stdout=None, stderr=None):
    return "echo out; echo err >&2"


def test_zip_outputs_go_into_the_archive_and_come_back_as_inputs(kernel, tmp_path):
    kernel([ZipFileStaging(), NoOpFileStaging()])
    archive = tmp_path / "results" / "archive.zip"
    outputs = [File(f"zip:{archive}/numbers/{i}.txt") for i in range(3)]
    fu = write_numbers(outputs=outputs)
    for data_future in fu.outputs:
        data_future.result()  # done only once the member is in the archive
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["numbers/0.txt", "numbers/1.txt", "numbers/2.txt"]
        assert z.read("numbers/2.txt") == b"2\n"
    assert not (tmp_path / "work" / "numbers" / "0.txt").exists(), "the loose copy is removed"
    assert all(f.local_path is None for f in outputs), "the user's Files are never changed"
    # and back in, through the DataFuture of the producing task
    assert read_text(fu.outputs[1]).result() == "1\n"


def test_zip_stdout_and_stderr(kernel, tmp_path):
    kernel([ZipFileStaging()])
    archive = tmp_path / "logs.zip"
    fu = shout(stdout=File(f"zip:{archive}/shout.out"), stderr=File(f"zip:{archive}/shout.err"))
    fu.result()
    fu.stdout.result()
    fu.stderr.result()
    with zipfile.ZipFile(archive) as z:
        assert z.read("shout.out") == b"out\n" and z.read("shout.err").endswith(b"err\n")


def test_zip_url_with_a_host_is_refused_at_the_call(kernel, tmp_path):
    kernel([ZipFileStaging()])
    with pytest.raises(ZipAuthorityError, match="no authority"):
        write_numbers(outputs=[File(f"zip://somehost/{tmp_path}/a.zip/x.txt")])


def test_zip_stage_out_without_working_dir_names_the_executor(kernel, tmp_path):
    kernel([ZipFileStaging()], working_dir=None)
    with pytest.raises(parsl_repro.errors.ParslError, match="needs a working_dir on executor 'local'"):
        write_numbers(outputs=[File(f"zip:{tmp_path}/a.zip/x.txt")])


# --- the contract ----------------------------------------------------------------------------------
def test_a_scheme_no_provider_claims_is_refused_naming_scheme_and_providers(kernel):
    kernel()
    with pytest.raises(NoStagingProvider) as info:
        read_text(File("s3://bucket/key.txt"))
    message = str(info.value)
    assert "'s3'" in message and "s3://bucket/key.txt" in message and "NoOpFileStaging" in message
    assert isinstance(info.value, ValueError)


class RecordingStaging(Staging):
    """Claims ``rec:`` files; sets a local path on the copy it gets and records every call."""

    def __init__(self, calls):
        self.calls = calls

    def can_stage_in(self, file):
        return file.scheme == "rec"

    def can_stage_out(self, file):
        return file.scheme == "rec"

    def stage_in(self, dm, executor, file, parent_fut):
        self.calls.append(("stage_in", file.url, parent_fut is not None))
        file.local_path = "/staged/" + file.filename

    def stage_out(self, dm, executor, file, app_fu):
        self.calls.append(("stage_out", file.url))
        file.local_path = "/produced/" + file.filename


@python_app
def local_path_of(f):
    return f.local_path


@python_app
def make(outputs=()):
    return [f.local_path for f in outputs]


def test_providers_work_on_copies_and_dependencies_are_kept(kernel):
    calls = []
    kernel([RecordingStaging(calls)])
    user_file = File("rec://anywhere/x.dat")
    maker = make(outputs=[user_file])
    assert maker.result() == ["/produced/x.dat"]
    assert local_path_of(maker.outputs[0]).result() == "/staged/x.dat"
    assert user_file.local_path is None
    assert calls == [("stage_out", "rec://anywhere/x.dat"), ("stage_in", "rec://anywhere/x.dat", True)]


class Exploding(Staging):
    def can_stage_in(self, file):
        return True

    def stage_in(self, dm, executor, file, parent_fut):
        raise RuntimeError("provider refused " + file.url)


def test_a_provider_error_reaches_the_caller(kernel):
    kernel([Exploding()])
    with pytest.raises(RuntimeError, match="provider refused file.txt"):
        read_text(File("file.txt")).result()


@python_app
def staging_task(f, _parsl_staging_inhibit=False):
    return f.local_path


def test_staging_inhibit_passes_files_through_untouched(kernel):
    calls = []
    kernel([RecordingStaging(calls)])
    f = File("rec://host/y.dat")
    assert staging_task(f, _parsl_staging_inhibit=True).result() is None
    assert calls == []


def test_default_staging_is_what_parsl_ships():
    assert [type(p).__name__ for p in default_staging] == \
        ["NoOpFileStaging", "FTPSeparateTaskStaging", "HTTPSeparateTaskStaging", "ZipFileStaging"]


# --- memoization and other executors ------------------------------------------------------------------
@python_app(cache=True)
def cached_read(inputs=()):
    return open(inputs[0]).read().upper()


def test_in_task_staging_keeps_the_app_identity_for_the_cache(kernel, served, tmp_path):
    with http_server(str(served)) as port:
        k = kernel([HTTPInTaskStaging()])
        url = f"http://127.0.0.1:{port}/data/hello.txt"
        first = cached_read(inputs=[File(url)])
        assert first.result() == "HELLO OVER THE WIRE\n"
        second = cached_read(inputs=[File(url)])
        assert second.result() == "HELLO OVER THE WIRE\n"
        assert second.task_record.from_memo, "the wrapped app is still the same app to the memoizer"
        assert k.task_count == 2  # in-task staging makes no download tasks, and a hit makes no other


@pytest.mark.slow
def test_in_task_staging_through_htex_workers(tmp_path, monkeypatch, served, no_leaks):
    from parsl_repro.executors import HighThroughputExecutor
    from parsl_repro.providers import LocalProvider

    monkeypatch.chdir(tmp_path)
    executor = HighThroughputExecutor(label="htex", max_workers_per_node=1, working_dir=str(tmp_path / "remote"),
                                      storage_access=[HTTPInTaskStaging(), NoOpFileStaging()],
                                      provider=LocalProvider(init_blocks=1, max_blocks=1))
    with http_server(str(served)) as port, \
            parsl_repro.load(Config(executors=[executor], run_dir=str(tmp_path / "runinfo"))):
        assert read_text(File(f"http://127.0.0.1:{port}/data/hello.txt")).result() == "hello over the wire\n"
    assert (tmp_path / "remote" / "hello.txt").exists()


def test_a_zip_stage_out_replaces_the_archive_whole_so_readers_never_see_it_half_written(tmp_path):
    """stdout and stderr staged into one archive are two stage-out tasks: a reader of the first
    (taking no lock) must never meet the second half appended. The archive an open reader
    holds stays complete and unchanged while a member is added; the new one has both."""
    from parsl_repro.data_provider.zip import zip_stage_out

    archive = tmp_path / "out.zip"
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("one\n")
    second.write_text("two\n")
    zip_stage_out(str(archive), "a/first.txt", None, inputs=[str(first)])
    with open(archive, "rb") as held:  # a reader that opened the archive before the next write
        zip_stage_out(str(archive), "a/second.txt", None, inputs=[str(second)])
        with zipfile.ZipFile(held) as old:
            assert old.namelist() == ["a/first.txt"] and old.read("a/first.txt") == b"one\n"
    with zipfile.ZipFile(archive) as new:
        assert new.namelist() == ["a/first.txt", "a/second.txt"] and new.read("a/second.txt") == b"two\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zip", "out.zip.lock"]  # loose copies gone
