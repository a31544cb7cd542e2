"""Bash apps: streams, exit codes, bad return values, outputs and walltime."""
from __future__ import annotations

import os
import pickle
import time

import dill
import pytest

import parsl_repro
from parsl_repro import File, bash_app, python_app
from parsl_repro.app.errors import AppTimeout, BadStdStreamFile, BashAppNoReturn, BashExitFailure, MissingOutputs
from parsl_repro.dataflow.errors import DependencyError


@bash_app
def echo(message, stdout=None, stderr=None):
    return f'echo "{message}"; echo "err {message}" >&2'


@bash_app
def exit_with(code, stderr=None):
    return f"echo 'about to fail' >&2; exit {code}"


def test_echo_hello_writes_stdout_file_and_returns_zero(dfk, tmp_path):
    out = tmp_path / "echo-hello.stdout"
    assert echo("Hello World!", stdout=str(out)).result(timeout=30) == 0
    assert out.read_text() == "Hello World!\n"


def test_stderr_file_starts_with_the_command_then_the_output(dfk, tmp_path):
    err = tmp_path / "e.err"
    echo("x", stderr=str(err)).result(timeout=30)
    text = err.read_text()
    assert 'echo "x"' in text and text.rstrip().endswith("err x")


def test_stream_tuple_mode_appends_or_overwrites(dfk, tmp_path):
    out = str(tmp_path / "o.txt")
    echo("one", stdout=(out, "w")).result()
    echo("two", stdout=(out, "a")).result()
    assert open(out).read() == "one\ntwo\n"
    echo("three", stdout=(out, "w")).result()
    assert open(out).read() == "three\n"


def test_default_stream_arguments_from_the_signature_are_used(dfk, tmp_path):
    target = tmp_path / "from-default.out"

    @bash_app
    def with_default(stdout=str(target)):
        return "echo default"

    with_default().result()
    assert target.read_text() == "default\n"


def test_auto_logname_puts_streams_under_the_run_directory(dfk):
    fut = echo("auto", stdout=parsl_repro.AUTO_LOGNAME, stderr=parsl_repro.AUTO_LOGNAME)
    fut.result(timeout=30)
    assert fut.stdout.startswith(os.path.join(dfk.run_dir, "task_logs"))
    assert fut.stdout.endswith(f"task_{fut.tid:04d}_echo.stdout")
    assert open(fut.stdout).read() == "auto\n"
    assert fut.stderr.endswith(".stderr") and os.path.exists(fut.stderr)


@pytest.mark.parametrize("code", [1, 15, 127])
def test_nonzero_exit_raises_bash_exit_failure_with_code_and_stderr_path(dfk, tmp_path, code):
    err = str(tmp_path / "fail.err")
    fut = exit_with(code, stderr=err)
    with pytest.raises(BashExitFailure) as info:
        fut.result(timeout=30)
    assert info.value.exitcode == code
    assert f"exit code {code}" in str(info.value) and err in str(info.value)
    assert "about to fail" in open(err).read()


def test_command_not_found_is_exit_127(dfk):
    @bash_app
    def missing_command():
        return "no-such-command-xyz"

    with pytest.raises(BashExitFailure) as info:
        missing_command().result(timeout=30)
    assert info.value.exitcode == 127


def test_a_failure_without_stderr_says_where_its_error_output_went(dfk):
    """Under pytest fd 2 may be a capture file (deleted, so unnamed) or a pipe or terminal (with
    -s): either way the message never claims a stderr= file and says how to keep the output."""
    error = exit_with(3).exception(timeout=30)
    text = str(error)
    assert isinstance(error, BashExitFailure) and error.exitcode == 3 and error.stderr_path is None
    assert text.startswith("bash_app exit_with failed with unix exit code 3; it had no stderr= file")
    assert "its stderr is in" not in text and "give the app a stderr= file" in text
    if error.inherited_stderr is None:
        assert "went to the standard error of the process that ran it" in text
    else:
        assert f"went to the worker's stderr, {error.inherited_stderr};" in text
        assert "about to fail" in open(error.inherited_stderr).read()


@pytest.fixture
def fd2(tmp_path):
    """Point this process's fd 2 somewhere else for a moment (restored after the test)."""
    saved = os.dup(2)

    def point(fd: int) -> None:
        os.dup2(fd, 2)

    yield point
    os.dup2(saved, 2)
    os.close(saved)


def test_inherited_stderr_names_fd_2s_regular_file_and_nothing_else(fd2, tmp_path):
    from parsl_repro.app.bash import _inherited_stderr

    log = tmp_path / "block.err"
    with open(log, "w") as f:
        fd2(f.fileno())
    assert _inherited_stderr() == str(log)
    log.unlink()  # deleted (as pytest's capture file is): no name to give
    assert _inherited_stderr() is None
    read, write = os.pipe()
    fd2(write)
    os.close(read)
    os.close(write)
    assert _inherited_stderr() is None


def test_bash_exit_failure_keeps_parsls_signature_and_all_its_fields_across_processes():
    from parsl_repro.app.errors import RemoteExceptionWrapper
    from parsl_repro.serialize import deserialize, serialize

    text = str(BashExitFailure("a", 1, "/x/a.err"))  # Parsl's positional form, message as before
    assert text == "bash_app a failed with unix exit code 1; its stderr is in /x/a.err"
    assert BashExitFailure("a", 1).inherited_stderr is None
    error = BashExitFailure("a", 2, inherited_stderr="/x/block.sh.err")
    for copy in (pickle.loads(pickle.dumps(error)), dill.loads(dill.dumps(error)),
                 deserialize(serialize(RemoteExceptionWrapper(BashExitFailure, error, None))).get_exception()):
        assert (copy.app_name, copy.exitcode, copy.stderr_path, copy.inherited_stderr) == ("a", 2, None,
                                                                                          "/x/block.sh.err")
        assert str(copy) == str(error) and "/x/block.sh.err" in str(copy)


@pytest.mark.parametrize("value", [None, 42, ["echo", "hi"]])
def test_bash_app_returning_a_non_string_raises_bash_app_no_return(dfk, value):
    @bash_app
    def bad():
        return value

    with pytest.raises(BashAppNoReturn, match="bad"):
        bad().result(timeout=30)


def test_bad_stream_mode_raises_bad_std_stream_file(dfk, tmp_path):
    with pytest.raises(BadStdStreamFile, match="badmode"):
        echo("x", stdout=(str(tmp_path / "o"), "badmode")).result(timeout=30)


def test_missing_declared_output_raises_missing_outputs(dfk, tmp_path):
    @bash_app
    def forgets(outputs=()):
        return "true"

    declared = File(str(tmp_path / "never-written.txt"))
    fut = forgets(outputs=[declared])
    with pytest.raises(MissingOutputs, match="never-written.txt"):
        fut.result(timeout=30)
    assert isinstance(fut.outputs[0].exception(), MissingOutputs)


def test_outputs_are_data_futures_that_downstream_apps_wait_on(dfk, tmp_path):
    @bash_app
    def write(text, outputs=()):
        return f"sleep 0.2; echo {text} > {outputs[0]}"

    @python_app
    def read(inputs=()):
        return open(inputs[0].filepath).read().strip()

    produced = write("payload", outputs=[File(str(tmp_path / "p.txt"))])
    assert read(inputs=[produced.outputs[0]]).result(timeout=30) == "payload"


def test_failed_producer_fails_consumer_with_dependency_error(dfk, tmp_path):
    produced = exit_with(3)

    @python_app
    def consume(x):
        return x

    error = consume(produced).exception(timeout=30)
    assert isinstance(error, DependencyError) and f"task {produced.tid}" in str(error)


def test_bash_walltime_kills_the_command_and_raises_app_timeout(dfk, tmp_path):
    marker = tmp_path / "still-running"

    @bash_app
    def slow(walltime=None):
        return f"sleep 3; touch {marker}"

    start = time.monotonic()
    with pytest.raises(AppTimeout, match="slow"):
        slow(walltime=0.3).result(timeout=30)
    assert time.monotonic() - start < 2.5
    time.sleep(3.2)
    assert not marker.exists(), "the timed-out command kept running"


def test_formatting_with_keyword_defaults(dfk, tmp_path):
    @bash_app
    def greet(name="world", stdout=None):
        return f"echo hello {name}"

    out = str(tmp_path / "g.out")
    greet(stdout=out).result()
    assert open(out).read() == "hello world\n"
