"""Channels against a real sshd on loopback (scripts/sshd.sh) and this machine: commands, files,
host-key policies, credentials, prompts at a real terminal, and the errors that name their cause.

root logs in with the server's client key; the local user ``parslrepro`` with its password (typed
at a pty, given by a prompt function, or sent as an OAuth access token) or the same key.
"""
from __future__ import annotations

import os
import pathlib
import pty
import select
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from parsl_repro.channels import (
    LocalChannel,
    OAuthSSHChannel,
    SSHChannel,
    SSHInteractiveLoginChannel,
)
from parsl_repro.channels.errors import AuthException, BadHostKeyException, FileCopyException, FileExists, SSHException
from parsl_repro.errors import ConfigurationError

REPO = pathlib.Path(__file__).resolve().parent.parent


def _password(sshd: dict[str, Any]) -> str:
    return pathlib.Path(sshd["password_file"]).read_text().strip()


def _site(sshd: dict[str, Any], user: str) -> str:
    return f"{user}@{sshd['host']}:{sshd['port']}"


def _keygen(path: pathlib.Path, key_type: str = "ed25519") -> pathlib.Path:
    """A fresh private key at ``path`` (its public half at ``path.pub``)."""
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(path)], check=True)
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def root(sshd: dict[str, Any], no_leaks: None) -> Iterator[SSHChannel]:
    """root on the test sshd by key, host key checked against its known_hosts; closed after."""
    channel = SSHChannel(sshd["host"], username="root", port=sshd["port"], key_filename=sshd["root_key"],
                         host_keys_filename=sshd["known_hosts"])
    yield channel
    channel.close()


@pytest.fixture
def user(sshd: dict[str, Any], no_leaks: None) -> Iterator[SSHChannel]:
    """The unprivileged test user by key; closed after."""
    channel = SSHChannel(sshd["host"], username=sshd["user"], port=sshd["port"], key_filename=sshd["user_key"],
                         host_keys_filename=sshd["known_hosts"])
    yield channel
    channel.close()


# --- SSHChannel: commands ------------------------------------------------------------------------
def test_ssh_execute_wait_returns_exit_code_stdout_and_stderr(root: SSHChannel) -> None:
    assert root.execute_wait("echo out; echo err >&2; exit 3") == (3, "out\n", "err\n")
    assert root.execute_wait("whoami") == (0, "root\n", "")


def test_ssh_execute_wait_sets_channel_and_call_envs(sshd: dict[str, Any], no_leaks: None) -> None:
    channel = SSHChannel(sshd["host"], username="root", port=sshd["port"], key_filename=sshd["root_key"],
                         host_keys_filename=sshd["known_hosts"], envs={"CHANNEL_VAR": "from channel"})
    try:
        code, out, _ = channel.execute_wait('echo "$CHANNEL_VAR|$CALL_VAR"', envs={"CALL_VAR": "it's $HOME; `x`"})
    finally:
        channel.close()
    assert (code, out) == (0, "from channel|it's $HOME; `x`\n")


def test_ssh_execute_wait_walltime_abandons_a_sleeping_command(root: SSHChannel) -> None:
    root.connect()
    started = time.monotonic()
    code, _, _ = root.execute_wait("sleep 8", walltime=1)
    assert code == -1
    assert time.monotonic() - started < 5


def test_ssh_execute_wait_walltime_is_total_not_per_read(root: SSHChannel) -> None:
    root.connect()
    started = time.monotonic()
    code, out, _ = root.execute_wait("for i in $(seq 100); do echo tick; sleep 0.2; done", walltime=1.5)
    assert code == -1
    assert time.monotonic() - started < 5
    assert out.startswith("tick\n")  # what it printed before the walltime is kept


def test_ssh_execute_wait_reads_a_large_stderr_with_stdout(root: SSHChannel) -> None:
    code, out, err = root.execute_wait("head -c 3000000 /dev/zero | tr '\\0' x >&2; echo done", walltime=60)
    assert (code, out, len(err)) == (0, "done\n", 3000000)


def test_ssh_execute_no_wait_echoes_stdin_until_terminated(root: SSHChannel) -> None:
    proc = root.execute_no_wait("cat")
    proc.stdin.write(b"hello over ssh\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"hello over ssh\n"
    assert proc.poll() is None
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert proc.poll() == 0


def test_ssh_close_then_reconnects_on_next_use(root: SSHChannel) -> None:
    assert root.close() is False  # never connected
    assert root.execute_wait("echo one")[1] == "one\n"
    assert root.close() is True
    assert root.close() is False
    assert root.execute_wait("echo two")[1] == "two\n"
    assert root.isdir("/tmp")


# --- SSHChannel: files ---------------------------------------------------------------------------
def test_ssh_push_and_pull_keep_content_and_mode_and_make_dirs(root: SSHChannel, tmp_path: pathlib.Path) -> None:
    source = tmp_path / "local" / "job.sh"
    source.parent.mkdir()
    source.write_bytes(b"#!/bin/bash\necho hi\n\x00\xff")
    source.chmod(0o751)
    remote_dir = tmp_path / "remote" / "a" / "b"
    pushed = root.push_file(str(source), str(remote_dir))
    assert pushed == str(remote_dir / "job.sh")
    assert root.execute_wait(f"stat -c %a {pushed}")[1] == "751\n"
    assert pathlib.Path(pushed).read_bytes() == source.read_bytes()

    root.execute_wait(f"chmod 604 {pushed}")
    pulled = root.pull_file(pushed, str(tmp_path / "back" / "c"))
    assert pulled == str(tmp_path / "back" / "c" / "job.sh")
    assert pathlib.Path(pulled).read_bytes() == source.read_bytes()
    assert stat.S_IMODE(os.stat(pulled).st_mode) == 0o604


def test_ssh_pull_of_a_missing_file_names_host_and_path(root: SSHChannel, tmp_path: pathlib.Path,
                                                        sshd: dict[str, Any]) -> None:
    with pytest.raises(FileCopyException) as info:
        root.pull_file(str(tmp_path / "nowhere.txt"), str(tmp_path / "into"))
    message = str(info.value)
    assert _site(sshd, "root") in message and "nowhere.txt" in message
    assert not (tmp_path / "into" / "nowhere.txt").exists()  # no empty copy left behind


def test_ssh_makedirs_isdir_and_abspath(root: SSHChannel, tmp_path: pathlib.Path) -> None:
    nested = tmp_path / "x" / "y" / "z"
    assert not root.isdir(str(nested))
    root.makedirs(str(nested), exist_ok=False)
    assert root.isdir(str(nested)) and nested.is_dir()
    root.makedirs(str(nested), exist_ok=True)
    with pytest.raises(FileExists, match="z"):
        root.makedirs(str(nested), exist_ok=False)
    (tmp_path / "file").write_text("")
    assert not root.isdir(str(tmp_path / "file"))

    assert root.abspath("/tmp/../tmp//q") == "/tmp/q"
    assert root.abspath("not/made/yet") == "/root/not/made/yet"  # parents need not exist
    assert root.abspath("~/d") == "/root/d"
    assert root.abspath("~") == root.abspath(".") == "/root"


def test_ssh_default_script_dir_is_made_under_the_home_dir(user: SSHChannel) -> None:
    assert user.execute_wait("rm -rf ~/.parsl_repro ~/given_scripts")[0] == 0
    assert user.script_dir == "/home/parslrepro/.parsl_repro/submit_scripts"
    assert user.isdir(user.script_dir)
    assert user.execute_wait("stat -c %a ~/.parsl_repro/submit_scripts")[1] == "700\n"

    user.script_dir = "given_scripts/deeper"
    assert user.script_dir == "/home/parslrepro/given_scripts/deeper"
    assert user.execute_wait("test -d ~/given_scripts/deeper")[0] == 0


# --- SSHChannel: host keys -----------------------------------------------------------------------
def test_ssh_unknown_host_key_is_rejected_by_default(sshd: dict[str, Any], tmp_path: pathlib.Path,
                                                     no_leaks: None) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    channel = SSHChannel(sshd["host"], username="root", port=sshd["port"], key_filename=sshd["root_key"],
                         host_keys_filename=str(known_hosts))
    with pytest.raises(BadHostKeyException) as info:
        channel.execute_wait("true")
    message = str(info.value)
    assert _site(sshd, "root") in message
    assert "not known" in message and "ssh-ed25519 SHA256:" in message and str(known_hosts) in message
    assert known_hosts.read_text() == ""  # nothing recorded


def _other_key_line(sshd: dict[str, Any], tmp_path: pathlib.Path, key_type: str) -> str:
    public = _keygen(tmp_path / f"other_{key_type}", key_type).with_suffix(".pub").read_text().split()
    return f"[{sshd['host']}]:{sshd['port']} {public[0]} {public[1]}\n"


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa"])
@pytest.mark.parametrize("kind", [SSHChannel, SSHInteractiveLoginChannel])
def test_ssh_changed_host_key_is_rejected_even_with_accept_new(sshd: dict[str, Any], tmp_path: pathlib.Path,
                                                               key_type: str, kind: type[SSHChannel],
                                                               no_leaks: None) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(_other_key_line(sshd, tmp_path, key_type))
    before = known_hosts.read_text()
    channel = kind(sshd["host"], username=sshd["user"], port=sshd["port"], password=_password(sshd),
                   host_keys_filename=str(known_hosts), known_hosts_policy="accept-new")
    with pytest.raises(BadHostKeyException) as info:
        channel.connect()
    message = str(info.value)
    assert _site(sshd, sshd["user"]) in message
    assert "host key changed" in message and "ssh-keygen -R" in message
    assert known_hosts.read_text() == before


@pytest.mark.parametrize("kind", [SSHChannel, SSHInteractiveLoginChannel])
def test_ssh_accept_new_records_the_host_key(sshd: dict[str, Any], tmp_path: pathlib.Path,
                                             kind: type[SSHChannel], no_leaks: None) -> None:
    known_hosts = tmp_path / "made" / "known_hosts"
    channel = kind(sshd["host"], username=sshd["user"], port=sshd["port"], password=_password(sshd),
                   host_keys_filename=str(known_hosts), known_hosts_policy="accept-new")
    try:
        assert channel.execute_wait("whoami")[1] == "parslrepro\n"
    finally:
        channel.close()
    assert known_hosts.read_text() == pathlib.Path(sshd["known_hosts"]).read_text()

    strict = kind(sshd["host"], username=sshd["user"], port=sshd["port"], password=_password(sshd),
                  host_keys_filename=str(known_hosts))
    try:
        assert strict.execute_wait("whoami")[1] == "parslrepro\n"
    finally:
        strict.close()
    assert known_hosts.read_text().count("\n") == 1


def test_ssh_accept_new_appends_on_a_line_of_its_own(sshd: dict[str, Any], tmp_path: pathlib.Path,
                                                     no_leaks: None) -> None:
    known_hosts = tmp_path / "known_hosts"
    unrelated = _other_key_line(sshd, tmp_path, "ed25519").replace(f"[{sshd['host']}]:{sshd['port']}", "elsewhere")
    known_hosts.write_text(unrelated.rstrip("\n"))  # no final newline
    channel = SSHChannel(sshd["host"], username="root", port=sshd["port"], key_filename=sshd["root_key"],
                         host_keys_filename=str(known_hosts), known_hosts_policy="accept-new")
    try:
        channel.connect()
    finally:
        channel.close()
    assert known_hosts.read_text() == unrelated + pathlib.Path(sshd["known_hosts"]).read_text()


# --- SSHChannel: connections and credentials -----------------------------------------------------
def test_ssh_refused_connection_says_refused(sshd: dict[str, Any], no_leaks: None) -> None:
    port = _closed_port()
    for kind in (SSHChannel, SSHInteractiveLoginChannel):
        channel = kind("127.0.0.1", username="root", port=port, key_filename=sshd["root_key"],
                       host_keys_filename=sshd["known_hosts"])
        with pytest.raises(SSHException) as info:
            channel.execute_wait("true")
        assert f"root@127.0.0.1:{port}" in str(info.value) and "refused" in str(info.value)


def test_ssh_wrong_password_raises_auth_exception(sshd: dict[str, Any], no_leaks: None) -> None:
    channel = SSHChannel(sshd["host"], username=sshd["user"], port=sshd["port"], password="not-the-password",
                         host_keys_filename=sshd["known_hosts"])
    with pytest.raises(AuthException) as info:
        channel.execute_wait("true")
    message = str(info.value)
    assert _site(sshd, sshd["user"]) in message and "refused the login of parslrepro with the password" in message
    assert "not-the-password" not in message


def test_ssh_password_login_works(sshd: dict[str, Any], no_leaks: None) -> None:
    channel = SSHChannel(sshd["host"], username=sshd["user"], port=sshd["port"], password=_password(sshd),
                         host_keys_filename=sshd["known_hosts"])
    try:
        assert channel.execute_wait("whoami; pwd") == (0, "parslrepro\n/home/parslrepro\n", "")
    finally:
        channel.close()


def test_ssh_wrong_key_raises_auth_exception(sshd: dict[str, Any], tmp_path: pathlib.Path, no_leaks: None) -> None:
    wrong = _keygen(tmp_path / "wrong_key")
    channel = SSHChannel(sshd["host"], username="root", port=sshd["port"], key_filename=str(wrong),
                         host_keys_filename=sshd["known_hosts"])
    with pytest.raises(AuthException) as info:
        channel.execute_wait("true")
    assert _site(sshd, "root") in str(info.value) and f"key {wrong}" in str(info.value)


def test_ssh_skip_auth_refused_names_the_missing_credentials(sshd: dict[str, Any], no_leaks: None) -> None:
    channel = SSHChannel(sshd["host"], username="root", port=sshd["port"], skip_auth=True,
                         host_keys_filename=sshd["known_hosts"])
    with pytest.raises(AuthException, match=r"root@127\.0\.0\.1:\d+: the host refused the login of root with "
                                            r"no credentials \(skip_auth=True\)"):
        channel.execute_wait("true")


def test_ssh_unknown_known_hosts_policy_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="known_hosts_policy.*'trust-all'"):
        SSHChannel("h", known_hosts_policy="trust-all")


def test_ssh_channel_construction_touches_no_network(no_leaks: None, tmp_path: pathlib.Path) -> None:
    with socket.socket() as listener:  # a server that accepts but never speaks
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        started = time.monotonic()
        silent = SSHChannel("127.0.0.1", username="someone", port=port, connect_timeout=0.5,
                            host_keys_filename=str(tmp_path / "kh"))
        bogus = SSHChannel("no-such-host.invalid", username="someone", host_keys_filename=str(tmp_path / "kh"))
        prompting = SSHInteractiveLoginChannel("127.0.0.1", port=port, prompt=lambda q: pytest.fail(f"asked {q!r}"))
        oauth = OAuthSSHChannel("127.0.0.1", port=port, access_token=lambda: pytest.fail("token fetched"))
        assert time.monotonic() - started < 0.5
        assert select.select([listener], [], [], 0.2)[0] == []  # nobody connected
        assert not (tmp_path / "kh").exists()

        with pytest.raises(SSHException, match=r"someone@no-such-host\.invalid: unknown host name"):
            bogus.execute_wait("true")
        started = time.monotonic()
        with pytest.raises(SSHException, match=rf"someone@127\.0\.0\.1:{port}: port {port} accepted the "
                                               r"connection but the SSH handshake did not finish within 0\.5 s"):
            silent.execute_wait("true")
        assert time.monotonic() - started < 5
        for channel in (prompting, oauth):
            channel.close()


def test_ssh_peer_closing_before_the_greeting_is_named(no_leaks: None, tmp_path: pathlib.Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        channel = SSHChannel("127.0.0.1", username="someone", port=port, connect_timeout=5,
                             host_keys_filename=str(tmp_path / "kh"))

        def close_at_once() -> None:
            conn, _ = listener.accept()
            conn.close()

        closer = threading.Thread(target=close_at_once, name="close-at-once")
        closer.start()
        with pytest.raises(SSHException, match=rf"port {port} closed the connection before the SSH handshake"):
            channel.execute_wait("true")
        closer.join()


# --- SSHInteractiveLoginChannel --------------------------------------------------------------------
_CHILD = """
import sys
from parsl_repro.channels import SSHInteractiveLoginChannel
channel = SSHInteractiveLoginChannel(sys.argv[1], username=sys.argv[2], port=int(sys.argv[3]),
                                     host_keys_filename=sys.argv[4])
print("constructed", flush=True)
code, out, err = channel.execute_wait("whoami")
channel.close()
print("RESULT", code, out.strip(), flush=True)
"""


def _read_until(fd: int, transcript: bytearray, wanted: bytes | None, timeout: float) -> None:
    """Read the pty into ``transcript`` until it holds ``wanted`` (None: until the child closes it)."""
    deadline = time.monotonic() + timeout
    while wanted is None or wanted not in transcript:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise AssertionError(f"never saw {wanted or 'the end'!r} on the terminal; it showed {bytes(transcript)!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        if not chunk and wanted is None:
            return
        if not chunk:
            raise AssertionError(f"the terminal closed before {wanted!r}; it showed {bytes(transcript)!r}")
        transcript += chunk


def test_ssh_interactive_login_asks_for_the_password_at_the_terminal(sshd: dict[str, Any]) -> None:
    password = _password(sshd)
    args = [sys.executable, "-c", _CHILD, sshd["host"], sshd["user"], str(sshd["port"]), sshd["known_hosts"]]
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty, where getpass asks
        try:
            os.chdir(REPO)
            os.execv(sys.executable, args)
        finally:
            os._exit(127)
    transcript = bytearray()
    try:
        _read_until(fd, transcript, b"constructed", 60)
        _read_until(fd, transcript, b"password: ", 30)
        assert f"{_site(sshd, sshd['user'])} password: ".encode() in transcript
        os.write(fd, password.encode() + b"\n")
        _read_until(fd, transcript, None, 30)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert b"RESULT 0 parslrepro" in transcript
    assert password.encode() not in transcript  # getpass turned echo off
    assert os.waitstatus_to_exitcode(status) == 0


def test_ssh_interactive_login_with_a_prompt_function(sshd: dict[str, Any], no_leaks: None) -> None:
    questions: list[str] = []

    def prompt(question: str) -> str:
        questions.append(question)
        return _password(sshd)

    channel = SSHInteractiveLoginChannel(sshd["host"], username=sshd["user"], port=sshd["port"],
                                         host_keys_filename=sshd["known_hosts"], prompt=prompt)
    assert questions == []  # nothing asked before the channel is used
    try:
        assert channel.execute_wait("whoami")[1] == "parslrepro\n"
        assert channel.execute_wait("whoami")[1] == "parslrepro\n"
    finally:
        channel.close()
    assert questions == [f"{_site(sshd, sshd['user'])} password: "]  # once per connection


def test_ssh_interactive_login_falls_back_from_a_refused_key_to_the_prompt(sshd: dict[str, Any],
                                                                            tmp_path: pathlib.Path,
                                                                            no_leaks: None) -> None:
    channel = SSHInteractiveLoginChannel(sshd["host"], username=sshd["user"], port=sshd["port"],
                                         key_filename=str(_keygen(tmp_path / "wrong_key")),
                                         host_keys_filename=sshd["known_hosts"], prompt=lambda q: _password(sshd))
    try:
        assert channel.execute_wait("whoami")[1] == "parslrepro\n"
    finally:
        channel.close()


def test_ssh_interactive_login_with_the_key_asks_nothing(sshd: dict[str, Any], no_leaks: None) -> None:
    channel = SSHInteractiveLoginChannel(sshd["host"], username=sshd["user"], port=sshd["port"],
                                         key_filename=sshd["user_key"], host_keys_filename=sshd["known_hosts"],
                                         prompt=lambda q: pytest.fail(f"asked {q!r}"))
    try:
        assert channel.execute_wait("whoami")[1] == "parslrepro\n"
    finally:
        channel.close()


def test_ssh_interactive_login_wrong_answer_raises_auth_exception(sshd: dict[str, Any], no_leaks: None) -> None:
    channel = SSHInteractiveLoginChannel(sshd["host"], username=sshd["user"], port=sshd["port"],
                                         host_keys_filename=sshd["known_hosts"], prompt=lambda q: "wrong-answer")
    with pytest.raises(AuthException) as info:
        channel.execute_wait("true")
    message = str(info.value)
    assert _site(sshd, sshd["user"]) in message and "answers of the prompt function" in message
    assert "wrong-answer" not in message


def test_ssh_interactive_login_answers_keyboard_interactive_questions_as_the_server_words_them(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, no_leaks: None) -> None:
    """A second real sshd that offers keyboard-interactive (through PAM) and not the password
    method, as sites asking for a one-time code do: the question is PAM's, passed on as asked."""
    from tests.sshd_server import SshServer

    monkeypatch.setenv("SSHD_KEYBOARD_INTERACTIVE", "1")
    server = SshServer(tmp_path / "kbd")
    info = server.start()
    try:
        asked: list[str] = []
        channel = SSHInteractiveLoginChannel(info["host"], username=info["user"], port=info["port"],
                                             host_keys_filename=info["known_hosts"],
                                             prompt=lambda q: asked.append(q) or _password(info))
        try:
            assert channel.execute_wait("whoami") == (0, "parslrepro\n", "")
        finally:
            channel.close()
        assert asked == [f"{_site(info, info['user'])} Password: "]
        with open(tmp_path / "kbd" / "sshd.log") as log:
            assert "Accepted keyboard-interactive/pam for parslrepro" in log.read()
    finally:
        server.stop()


def test_a_refused_login_is_remembered_and_never_asked_again(sshd: dict[str, Any], no_leaks: None) -> None:
    """A site whose login failed must not prompt again at every block poll: the channel raises
    the same error at once."""
    asked = []
    channel = SSHInteractiveLoginChannel(sshd["host"], username=sshd["user"], port=sshd["port"],
                                         host_keys_filename=sshd["known_hosts"],
                                         prompt=lambda q: asked.append(q) or "wrong-answer")
    with pytest.raises(AuthException) as first:
        channel.execute_wait("true")
    with pytest.raises(AuthException) as second:
        channel.push_file(__file__, "/tmp")
    assert second.value is first.value and len(asked) == 1


# --- OAuthSSHChannel -------------------------------------------------------------------------------
def test_oauth_ssh_logs_in_with_an_access_token_string(sshd: dict[str, Any], no_leaks: None) -> None:
    channel = OAuthSSHChannel(sshd["host"], username=sshd["user"], port=sshd["port"],
                              access_token=_password(sshd), host_keys_filename=sshd["known_hosts"])
    try:
        assert channel.execute_wait("whoami") == (0, "parslrepro\n", "")
    finally:
        channel.close()


def test_oauth_ssh_calls_the_token_function_only_when_connecting(sshd: dict[str, Any], no_leaks: None) -> None:
    calls = []

    def token() -> str:
        calls.append(1)
        return _password(sshd)

    channel = OAuthSSHChannel(sshd["host"], username=sshd["user"], port=sshd["port"], access_token=token,
                              host_keys_filename=sshd["known_hosts"])
    assert calls == []
    try:
        assert channel.execute_wait("whoami")[1] == "parslrepro\n"
        assert channel.execute_wait("whoami")[1] == "parslrepro\n"
    finally:
        channel.close()
    assert calls == [1]


def test_oauth_ssh_wrong_token_raises_auth_exception(sshd: dict[str, Any], no_leaks: None) -> None:
    channel = OAuthSSHChannel(sshd["host"], username=sshd["user"], port=sshd["port"], access_token="expired-token",
                              host_keys_filename=sshd["known_hosts"])
    with pytest.raises(AuthException) as info:
        channel.execute_wait("true")
    message = str(info.value)
    assert _site(sshd, sshd["user"]) in message and "OAuth access token" in message
    assert "expired-token" not in message


def test_oauth_ssh_without_token_or_oauth_ssh_package_raises_auth_exception(
        sshd: dict[str, Any], monkeypatch: pytest.MonkeyPatch, no_leaks: None) -> None:
    monkeypatch.setitem(sys.modules, "oauth_ssh", None)  # not importable, installed or not
    channel = OAuthSSHChannel(sshd["host"], username=sshd["user"], port=sshd["port"],
                              host_keys_filename=sshd["known_hosts"])
    with pytest.raises(AuthException) as info:
        channel.execute_wait("true")
    message = str(info.value)
    assert _site(sshd, sshd["user"]) in message
    assert "no access_token was given" in message and "oauth_ssh package" in message


# --- repr --------------------------------------------------------------------------------------------
def test_channel_reprs_never_show_secrets() -> None:
    channels = [
        SSHChannel("h", username="u", password="pw-secret-1"),
        SSHInteractiveLoginChannel("h", username="u", password="pw-secret-1"),
        OAuthSSHChannel("h", username="u", access_token="pw-secret-1"),
        OAuthSSHChannel("h", username="u", access_token=lambda: "pw-secret-1"),
    ]
    for channel in channels:
        text = repr(channel)
        assert "pw-secret-1" not in text and "***" in text and "'h'" in text, text
    assert "***" not in repr(SSHChannel("h", username="u"))


# --- LocalChannel --------------------------------------------------------------------------------------
def test_local_execute_wait_returns_exit_code_output_and_envs(tmp_path: pathlib.Path) -> None:
    channel = LocalChannel(userhome=str(tmp_path), envs={"CHANNEL_VAR": "from channel"})
    assert channel.execute_wait("echo out; echo err >&2; exit 3") == (3, "out\n", "err\n")
    assert channel.execute_wait('echo "$CHANNEL_VAR|$CALL_VAR|$PWD"', envs={"CALL_VAR": "x y"}) \
        == (0, f"from channel|x y|{tmp_path}\n", "")
    assert channel.is_local and channel.close() is False


def _processes_running(cmdline: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if pathlib.Path(f"/proc/{entry}/cmdline").read_bytes() == cmdline:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def test_local_execute_wait_walltime_kills_the_command_and_its_children(tmp_path: pathlib.Path) -> None:
    channel = LocalChannel(userhome=str(tmp_path))
    started = time.monotonic()
    code, out, _ = channel.execute_wait("echo before; sleep 31.25; echo after", walltime=0.5)
    assert (code, out) == (-1, "before\n")
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while _processes_running(b"sleep\x0031.25\x00") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_running(b"sleep\x0031.25\x00") == []


def test_local_execute_no_wait_echoes_stdin_until_terminated(tmp_path: pathlib.Path) -> None:
    proc = LocalChannel(userhome=str(tmp_path)).execute_no_wait("cat; true")
    proc.stdin.write(b"hello here\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"hello here\n"
    assert proc.poll() is None
    proc.terminate()
    assert proc.wait(timeout=10) in (0, -15)  # its input ended, or SIGTERM came first
    proc.stdout.close()


def test_local_execute_no_wait_kill_ends_the_command_and_its_children(tmp_path: pathlib.Path) -> None:
    proc = LocalChannel(userhome=str(tmp_path)).execute_no_wait("sleep 32.25; true")
    assert proc.returncode is None
    proc.kill()
    assert proc.wait(timeout=10) == -9 and proc.returncode == -9
    deadline = time.monotonic() + 5
    while _processes_running(b"sleep\x0032.25\x00") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_running(b"sleep\x0032.25\x00") == []
    proc.stdin.close()
    proc.stdout.close()


def test_local_files_keep_content_and_mode_and_relative_paths_start_at_userhome(tmp_path: pathlib.Path,
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(tmp_path)
    channel = LocalChannel(userhome=str(home))
    source = tmp_path / "job.sh"
    source.write_text("echo hi\n")
    source.chmod(0o751)

    pushed = channel.push_file("job.sh", "scripts/deep")
    assert pushed == str(home / "scripts" / "deep" / "job.sh")
    assert pathlib.Path(pushed).read_text() == "echo hi\n" and stat.S_IMODE(os.stat(pushed).st_mode) == 0o751
    pulled = channel.pull_file("scripts/deep/job.sh", "back")
    assert pulled == str(tmp_path / "back" / "job.sh")
    assert stat.S_IMODE(os.stat(pulled).st_mode) == 0o751

    assert channel.abspath("a/b") == str(home / "a" / "b")
    assert not channel.isdir("a/b")
    channel.makedirs("a/b")
    assert channel.isdir("a/b") and (home / "a" / "b").is_dir()
    with pytest.raises(FileExists):
        channel.makedirs("a/b")
    channel.makedirs("a/b", exist_ok=True)
    with pytest.raises(FileCopyException, match="localhost: could not copy"):
        channel.pull_file("missing.txt", "back")


def test_local_script_dir_is_unset_until_given(tmp_path: pathlib.Path) -> None:
    channel = LocalChannel(userhome=str(tmp_path))
    assert channel.script_dir is None
    channel.script_dir = str(tmp_path / "submit_scripts")
    assert channel.script_dir == str(tmp_path / "submit_scripts")
