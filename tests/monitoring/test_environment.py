"""Run-environment capture: script digest, real git repositories, installed packages, argv redaction."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pickle
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from parsl_repro.monitoring import environment
from parsl_repro.monitoring.environment import (
    RunEnvironment,
    capture_environment,
    installed_packages,
    packages_digest,
    redact_argv,
    script_of_main,
)


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch, tmp_path):
    """Git sees no user or system configuration and never looks for a repository above tmp_path."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(name, raising=False)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=test@example.com", "-c", "user.name=Test", "-c", "init.defaultBranch=main",
         "-C", str(repo), *args],
        capture_output=True, check=True, timeout=30,
    )
    return done.stdout.decode()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repository with one commit holding script.py and data.txt."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "script.py").write_text("print('hello')\n")
    (path / "data.txt").write_text("one\ntwo\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first")
    return path


def script_in(directory: Path, text: str = "print('hi')\n") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "script.py"
    script.write_text(text)
    return script


# --- script ------------------------------------------------------------------------------------------

def test_script_sha256_matches_hashlib_of_the_file(tmp_path):
    script = script_in(tmp_path / "outside", "import os\nprint(os.getcwd())\n")
    env = capture_environment(str(script))
    assert env.script_path == str(script)
    assert env.script_sha256 == hashlib.sha256(script.read_bytes()).hexdigest()


def test_relative_script_path_is_made_absolute(tmp_path, monkeypatch):
    script = script_in(tmp_path / "outside")
    monkeypatch.chdir(script.parent)
    assert capture_environment("script.py").script_path == str(script)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_script_leaves_its_digest_none(tmp_path, kind):
    path = tmp_path / "nowhere.py"
    if kind == "directory":
        path.mkdir()
    env = capture_environment(str(path))
    assert env.script_path == str(path)
    assert env.script_sha256 is None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_script_without_read_permission_leaves_its_digest_none(tmp_path):
    script = script_in(tmp_path / "outside")
    script.chmod(0)
    try:
        assert capture_environment(str(script)).script_sha256 is None
    finally:
        script.chmod(0o644)


def test_script_of_main_is_the_main_modules_file_only_when_it_is_a_real_file(tmp_path, monkeypatch):
    fake = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", fake)
    assert script_of_main() is None  # python -c / interactive: no __file__
    fake.__file__ = str(tmp_path / "gone.py")
    assert script_of_main() is None
    fake.__file__ = str(tmp_path / "archive.zip" / "__main__.py")
    assert script_of_main() is None
    script = script_in(tmp_path / "outside")
    fake.__file__ = str(script)
    assert script_of_main() == str(script)


# --- git ---------------------------------------------------------------------------------------------

def test_clean_committed_repository(repo):
    env = capture_environment(str(repo / "script.py"))
    assert env.git_commit == git(repo, "rev-parse", "HEAD").strip()
    assert env.git_dirty is False
    assert env.git_diff_sha256 is None
    assert env.git_repository == os.path.realpath(repo)


def test_script_in_a_subdirectory_reports_the_top_level(repo):
    script = script_in(repo / "pkg" / "sub")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "sub")
    env = capture_environment(str(script))
    assert env.git_repository == os.path.realpath(repo)
    assert env.git_commit == git(repo, "rev-parse", "HEAD").strip()
    assert env.git_dirty is False


def test_modified_tracked_file_is_dirty_and_the_digest_follows_the_change(repo):
    script = str(repo / "script.py")
    (repo / "data.txt").write_text("one\nTWO\n")
    first = capture_environment(script)
    assert first.git_dirty is True
    assert first.git_diff_sha256 == hashlib.sha256(git(repo, "diff", "HEAD").encode()).hexdigest()
    assert first.git_commit == git(repo, "rev-parse", "HEAD").strip()

    assert capture_environment(script).git_diff_sha256 == first.git_diff_sha256  # same change, same digest

    (repo / "data.txt").write_text("one\nthree\n")
    second = capture_environment(script)
    assert second.git_dirty is True
    assert second.git_diff_sha256 not in (None, first.git_diff_sha256)

    (repo / "data.txt").write_text("one\ntwo\n")  # back to the committed bytes, only the mtime differs
    restored = capture_environment(script)
    assert restored.git_dirty is False
    assert restored.git_diff_sha256 is None


def test_staged_change_is_dirty(repo):
    (repo / "data.txt").write_text("staged\n")
    git(repo, "add", "data.txt")
    env = capture_environment(str(repo / "script.py"))
    assert env.git_dirty is True and env.git_diff_sha256 is not None


def test_untracked_files_do_not_make_the_repository_dirty(repo):
    (repo / "notes.txt").write_text("scratch\n")
    assert capture_environment(str(repo / "script.py")).git_dirty is False


def test_capture_takes_no_index_lock(repo):
    (repo / "data.txt").write_text("changed\n")
    index = repo / ".git" / "index"
    before = index.stat().st_mtime_ns
    capture_environment(str(repo / "script.py"))
    assert index.stat().st_mtime_ns == before  # GIT_OPTIONAL_LOCKS=0: git did not rewrite the index
    assert not (repo / ".git" / "index.lock").exists()


def test_directory_outside_any_repository_gives_none_git_fields(tmp_path):
    env = capture_environment(str(script_in(tmp_path / "outside")))
    assert (env.git_commit, env.git_dirty, env.git_diff_sha256, env.git_repository) == (None, None, None, None)


def test_repository_without_commits_has_no_commit(tmp_path):
    path = tmp_path / "empty"
    path.mkdir()
    git(path, "init", "-q")
    env = capture_environment(str(script_in(path)))
    assert env.git_repository == os.path.realpath(path)
    assert (env.git_commit, env.git_dirty, env.git_diff_sha256) == (None, None, None)


def test_without_a_script_the_working_directory_is_used(repo, monkeypatch):
    monkeypatch.setattr(environment, "script_of_main", lambda: None)
    monkeypatch.chdir(repo)
    env = capture_environment()
    assert env.script_path is None and env.script_sha256 is None
    assert env.cwd == str(repo)
    assert env.git_commit == git(repo, "rev-parse", "HEAD").strip()


def test_missing_git_leaves_git_fields_none(repo, monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    env = capture_environment(str(repo / "script.py"))
    assert (env.git_commit, env.git_dirty, env.git_diff_sha256, env.git_repository) == (None, None, None, None)
    assert env.script_sha256 is not None


def test_hanging_git_is_killed_at_the_timeout(repo, monkeypatch, tmp_path):
    fake = tmp_path / "slow-bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\nsleep 30\n")  # sh waits for a child that also holds the pipes
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    env = capture_environment(str(repo / "script.py"), git_timeout=0.3)
    assert time.monotonic() - started < 5
    assert (env.git_commit, env.git_dirty, env.git_diff_sha256, env.git_repository) == (None, None, None, None)


def test_git_location_variables_do_not_redirect_the_lookup(repo, tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    env = capture_environment(str(repo / "script.py"))
    monkeypatch.delenv("GIT_DIR")
    assert env.git_repository == os.path.realpath(repo)
    assert env.git_commit == git(repo, "rev-parse", "HEAD").strip()


# --- packages ----------------------------------------------------------------------------------------

def test_packages_include_pytest_sorted_and_unique():
    packages = installed_packages()
    assert ("pytest", importlib.metadata.version("pytest")) in packages
    assert list(packages) == sorted(packages)
    names = [name for name, _ in packages]
    assert len(names) == len(set(names))
    assert all(name == name.lower() and "_" not in name and "." not in name for name in names)
    assert installed_packages() is packages  # cached per process


def test_packages_digest_is_stable_and_follows_the_list():
    packages = installed_packages()
    digest = packages_digest(packages)
    assert packages_digest(installed_packages()) == digest
    assert capture_environment().packages_digest == digest
    assert packages_digest(reversed(packages)) == digest  # order does not matter
    expected = "".join(f"{name}=={version}\n" for name, version in sorted(packages))
    assert digest == hashlib.sha256(expected.encode()).hexdigest()

    assert packages_digest(packages + (("not-a-real-package", "1.0"),)) != digest
    assert packages_digest(packages[1:]) != digest
    bumped = tuple((name, version + ".post1" if name == "pytest" else version) for name, version in packages)
    assert packages_digest(bumped) != digest


def test_packages_digest_normalises_names():
    assert packages_digest([("Typing_Extensions", "4.8")]) == packages_digest([("typing-extensions", "4.8")])


# --- argv --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run.py", "--password", "hunter2", "-n", "4"], ["run.py", "--password", "***", "-n", "4"]),
        (["run.py", "--token=abc", "--secret", "s", "--key", "k"], ["run.py", "--token=***", "--secret", "***",
                                                                      "--key", "***"]),
        (["run.py", "--api-key", "k", "--db_password=p", "--accessToken", "t"],
         ["run.py", "--api-key", "***", "--db_password=***", "--accessToken", "***"]),
        (["run.py", "DB_PASSWORD=p", "GITHUB_TOKEN=t", "aws_secret_access_key=s", "MODE=fast"],
         ["run.py", "DB_PASSWORD=***", "GITHUB_TOKEN=***", "aws_secret_access_key=***", "MODE=fast"]),
        (["run.py", "--max-tokens", "100", "--tokenizer", "bert", "--key-column", "id", "--monkey", "m"],
         ["run.py", "--max-tokens", "100", "--tokenizer", "bert", "--key-column", "id", "--monkey", "m"]),
        (["run.py", "--db", "postgres://alice:pw@db.example/x", "--url=https://h.example/a:b@c"],
         ["run.py", "--db", "postgres://alice:***@db.example/x", "--url=https://h.example/a:b@c"]),
        (["run.py", "--password"], ["run.py", "--password"]),
        (["run.py", "input.txt", "-v"], ["run.py", "input.txt", "-v"]),
    ],
)
def test_argv_redaction(argv, expected):
    assert redact_argv(argv) == tuple(expected)


def test_capture_records_redacted_argv_and_no_environment_variables(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["run.py", "--token", "tok-123", "out.csv"])
    monkeypatch.setenv("SOME_SECRET_VALUE", "env-secret-456")
    env = capture_environment()
    assert env.argv == ("run.py", "--token", "***", "out.csv")
    dumped = json.dumps(env.as_dict())
    assert "tok-123" not in dumped and "env-secret-456" not in dumped


# --- the record --------------------------------------------------------------------------------------

def test_as_dict_is_json_ready_and_round_trips(repo):
    env = capture_environment(str(repo / "script.py"))
    data = json.loads(json.dumps(env.as_dict()))
    assert set(data) == {f for f in RunEnvironment.__dataclass_fields__}
    assert RunEnvironment.from_dict(data) == env
    assert env.python_version == ".".join(map(str, sys.version_info[:3]))
    assert env.python_executable == sys.executable
    assert env.user and env.host and env.platform


def test_capture_from_a_script_run_in_a_subprocess(repo, tmp_path):
    script = repo / "tool" / "record.py"
    script.parent.mkdir()
    script.write_text(
        "import json\n"
        "from parsl_repro.monitoring.environment import capture_environment\n"
        "print(json.dumps(capture_environment().as_dict()))\n"
    )
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "tool")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, str(script), "--password", "pw-789", "input.txt"],
        cwd=elsewhere, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["script_path"] == str(script)
    assert data["script_sha256"] == hashlib.sha256(script.read_bytes()).hexdigest()
    assert data["argv"] == [str(script), "--password", "***", "input.txt"]
    assert data["cwd"] == str(elsewhere)
    assert data["git_repository"] == os.path.realpath(repo)
    assert data["git_commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert data["git_dirty"] is False
    assert ["pytest", importlib.metadata.version("pytest")] in data["packages"]


def test_capture_under_python_c_has_no_script(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c",
         "import json; from parsl_repro.monitoring.environment import capture_environment; "
         "print(json.dumps(capture_environment().as_dict()))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["script_path"] is None and data["script_sha256"] is None
    assert data["git_repository"] is None  # tmp_path is outside any repository (GIT_CEILING_DIRECTORIES)


# --- a run's pending environment ---------------------------------------------------------------------

def test_pending_environment_reads_what_may_change_at_once_and_captures_the_rest_once(repo, monkeypatch):
    script = repo / "script.py"
    monkeypatch.setattr(environment, "script_of_main", lambda: str(script))
    monkeypatch.setattr(sys, "argv", [str(script), "--password", "pw"])
    monkeypatch.chdir(repo)
    calls = []
    real = environment.installed_packages
    monkeypatch.setattr(environment, "installed_packages", lambda path=None: calls.append(path) or real(path))
    pending = environment.PendingEnvironment()
    assert calls == []  # nothing slow yet
    monkeypatch.setattr(sys, "argv", ["changed.py"])  # what the run does later is not the record
    monkeypatch.chdir(repo.parent)
    captured = dict(pending)
    assert pending["git_commit"] == git(repo, "rev-parse", "HEAD").strip() and len(pending) == len(captured)
    assert calls == [tuple(sys.path)]  # once, along the path the run had
    assert captured == capture_environment(str(script)).as_dict() | {"argv": [str(script), "--password", "***"],
                                                                      "cwd": str(repo)}


def test_pending_environment_pickled_unread_is_captured_where_it_is_read(repo, monkeypatch):
    monkeypatch.setattr(environment, "script_of_main", lambda: str(repo / "script.py"))
    unread = pickle.loads(pickle.dumps(environment.PendingEnvironment()))
    assert isinstance(unread, environment.PendingEnvironment)  # crosses as what it read at once
    read = environment.PendingEnvironment()
    assert type(pickle.loads(pickle.dumps(read.resolve()))) is dict
    assert type(pickle.loads(pickle.dumps(read))) is dict  # once read, a plain dict
    assert dict(unread) == dict(read)
