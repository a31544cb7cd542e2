"""Sites reached over SSH, and several sites in one run, against real servers on loopback.

The "remote" login node is this machine's own sshd (scripts/sshd.sh, a real OpenSSH server on
127.0.0.1) and its scheduler the real single-node Slurm cluster of scripts/slurm.sh: the channel,
the scheduler commands, the remote interchange, its CurveZMQ relay over TCP and the worker pools
are all real; only the distance is missing.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
import time

import pytest

import parsl_repro
from parsl_repro import python_app
from parsl_repro.channels import SSHChannel
from parsl_repro.channels.errors import SSHException
from parsl_repro.config import Config
from parsl_repro.errors import ConfigurationError
from parsl_repro.executors import HighThroughputExecutor, ThreadPoolExecutor
from parsl_repro.executors.errors import BadStateException
from parsl_repro.launchers import SimpleLauncher
from parsl_repro.providers import LocalProvider, SlurmProvider

VENV_BIN = os.path.dirname(sys.executable)
WORKER_INIT = f"export PATH={VENV_BIN}:$PATH"  # the "remote" side finds this checkout's parsl_repro


def _channel(sshd, tmp_path, **extra):
    return SSHChannel(sshd["host"], port=sshd["port"], username="root", key_filename=sshd["root_key"],
                      host_keys_filename=sshd["known_hosts"], script_dir=str(tmp_path / "remote" / "scripts"),
                      **extra)


@python_app
def double(x):
    import os
    return 2 * x, os.environ.get("JOBNAME", "")  # the block's script exports its job name


def _only_this_runs_keys_get_through(executor, tmp_path):
    """The remote interchange's TCP port is CurveZMQ: a client with other keys, or none, fails
    the handshake there (and so never reaches the link)."""
    import zmq

    from parsl_repro import curvezmq
    from parsl_repro.executors.high_throughput.launch import _connect_and_handshake

    other_keys = curvezmq.create_certificates(tmp_path / "intruder")
    for cert_dir in (other_keys, None, executor.cert_dir):  # the last: the run's own keys do get through
        context = curvezmq.ClientContext(cert_dir)
        sock = context.socket(zmq.PAIR)
        try:
            if cert_dir == executor.cert_dir:
                _connect_and_handshake(executor, sock, executor._remote.url)
            else:
                with pytest.raises(BadStateException, match="handshake"):
                    _connect_and_handshake(executor, sock, executor._remote.url)
        finally:
            sock.close(linger=0)
            context.destroy(linger=0)


def _blocks(run_dir):
    db = sqlite3.connect(os.path.join(os.path.dirname(run_dir), "provenance.db"))
    try:
        return db.execute("SELECT block_id, status, job_id, provider, host, script_sha256 FROM block "
                          "ORDER BY timestamp").fetchall()
    finally:
        db.close()


def test_an_interchange_started_over_ssh_serves_pools_started_over_ssh(sshd, tmp_path, no_leaks):
    """LocalProvider blocks on the channel's host and the interchange there, reached over TCP
    with CurveZMQ through the relay: tasks run, the remote files are where they should be, and
    the block's record names its provider, host and submit script."""
    executor = HighThroughputExecutor(label="site", address="127.0.0.1", max_workers_per_node=2,
                                      heartbeat_period=1, heartbeat_threshold=5,
                                      provider=LocalProvider(channel=_channel(sshd, tmp_path),
                                                             worker_init="echo chatter from worker_init\n"
                                                                         + WORKER_INIT))
    run_dir = str(tmp_path / "runinfo")
    with parsl_repro.load(Config(executors=[executor], run_dir=run_dir)) as dfk:
        results = [f.result(timeout=120) for f in [double(i) for i in range(10)]]
        assert [r[0] for r in results] == [2 * i for i in range(10)]
        assert all(job.startswith("parsl.site.block-0.") for _, job in results)  # run by the SSH-started block
        assert executor.interchange_proc.pid == "remote" and executor._remote.thread.is_alive()
        _only_this_runs_keys_get_through(executor, tmp_path)
        assert double(21).result(timeout=60)[0] == 42  # the link is untouched by those attempts
        remote_dir = executor.remote_dir
        run_dir = dfk.run_dir
        certificates = os.path.join(remote_dir, "certificates")
        assert sorted(os.listdir(certificates)) == ["client.key", "client.key_secret", "server.key",
                                                    "server.key_secret"]
        assert all(os.stat(os.path.join(certificates, f)).st_mode & 0o077 == 0 for f in os.listdir(certificates))
    assert remote_dir.startswith(str(tmp_path / "remote"))
    assert os.path.exists(os.path.join(remote_dir, "interchange.log"))
    with open(os.path.join(remote_dir, "interchange.stderr")) as f:  # worker_init's output, kept out of the answer
        assert "chatter from worker_init" in f.read()
    rows = _blocks(run_dir)
    assert rows and {r[3] for r in rows} == {"LocalProvider local"} and {r[4] for r in rows} == {"127.0.0.1"}
    [local_script] = [p for p in os.listdir(os.path.join(run_dir, "submit_scripts")) if p.endswith(".sh")]
    with open(os.path.join(run_dir, "submit_scripts", local_script), "rb") as f:
        assert {r[5] for r in rows} == {hashlib.sha256(f.read()).hexdigest()}
    with open(tmp_path / "remote" / "scripts" / local_script, "rb") as f:  # the copy the host ran
        assert hashlib.sha256(f.read()).hexdigest() == rows[0][5]
    deadline = time.monotonic() + 20  # the interchange stopped when the session's input closed
    while executor.interchange_proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert executor.interchange_proc.poll() == 0
    assert not os.path.exists(certificates)  # the run's keys do not outlive it on the host
    assert executor.provider.channel._client is None  # the SSH connection was closed at cleanup


def test_slurm_through_an_ssh_channel_with_its_interchange_on_the_login_node(sshd, slurm_conf, tmp_path):
    """sbatch, squeue and scancel run over SSH; the batch script is copied to the channel's
    script_dir; pools in Slurm jobs connect to the interchange on the login node."""
    channel = _channel(sshd, tmp_path, envs={"SLURM_CONF": slurm_conf})
    provider = SlurmProvider(partition="debug", exclusive=False, walltime="00:10:00", launcher=SimpleLauncher(),
                             channel=channel, worker_init=WORKER_INIT)
    executor = HighThroughputExecutor(label="cluster", address="127.0.0.1", max_workers_per_node=2,
                                      heartbeat_period=1, heartbeat_threshold=5, provider=provider)
    started = time.monotonic()
    with parsl_repro.load(Config(executors=[executor], run_dir=str(tmp_path / "runinfo"))) as dfk:
        first = double(21).result(timeout=180)
        elapsed = time.monotonic() - started
        assert first[0] == 42
        [job_id] = provider.resources
        assert job_id.isdigit()
        code, out, _ = channel.execute_wait(f"squeue --noheader --format=%i --job {job_id}", 10)
        assert code == 0 and out.split() == [job_id]
        scripts = os.listdir(tmp_path / "remote" / "scripts")
        assert any(name.startswith("parsl.cluster.block-0") for name in scripts)
        run_dir = dfk.run_dir
    print(f"load() to first result through Slurm over SSH: {elapsed:.2f} s")
    deadline = time.monotonic() + 30  # cancelled at cleanup, over the channel
    while time.monotonic() < deadline:
        code, out, _ = channel.execute_wait(f"squeue --noheader --format=%i --job {job_id}", 10)
        if job_id not in out.split():
            break
        time.sleep(0.5)
    assert job_id not in out.split()
    channel.close()
    assert {r[3] for r in _blocks(run_dir)} == {"SlurmProvider slurm"}


def test_an_unreachable_site_fails_its_own_tasks_and_the_others_go_on(sshd, tmp_path, caplog):
    """Three sites: threads, a reachable SSH site, and one whose port refuses connections. The
    run loads; tasks pinned to the dead site fail naming the host and the cause."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    dead = SSHChannel("127.0.0.1", port=closed_port, username="root", key_filename=sshd["root_key"],
                      host_keys_filename=sshd["known_hosts"])
    config = Config(run_dir=str(tmp_path / "runinfo"), executors=[
        ThreadPoolExecutor(label="laptop"),
        HighThroughputExecutor(label="alive", address="127.0.0.1", max_workers_per_node=1, heartbeat_period=1,
                               provider=LocalProvider(channel=_channel(sshd, tmp_path), worker_init=WORKER_INIT)),
        HighThroughputExecutor(label="dead", address="127.0.0.1", provider=LocalProvider(channel=dead)),
    ])

    @python_app(executors=["laptop"])
    def here(x):
        return x + 1

    @python_app(executors=["alive"])
    def there(x):
        return x * 10

    @python_app(executors=["dead"])
    def nowhere(x):
        return x

    with parsl_repro.load(config):
        lost = nowhere(1)
        assert there(here(1)).result(timeout=120) == 20
        with pytest.raises(SSHException) as caught:
            lost.result(timeout=60)
    assert str(caught.value).startswith(f"root@127.0.0.1:{closed_port}: the connection to port {closed_port} was "
                                        f"refused (is sshd running there?)")
    assert any(r.levelname == "ERROR" and "Site dead" in r.getMessage() and "refused" in r.getMessage()
               for r in caplog.records)


def test_the_multisite_example_runs_across_the_laptop_and_a_slurm_cluster_over_ssh(sshd, slurm_conf, tmp_path):
    """examples/multisite.py as a user runs it, against the loopback sshd and Slurm."""
    from tests.test_examples import run_example

    out = run_example("multisite.py", tmp_path, "--host", sshd["host"], "--port", str(sshd["port"]),
                      "--user", "root", "--key", sshd["root_key"], "--known-hosts", sshd["known_hosts"],
                      "--partition", "debug", "--address", "127.0.0.1", "--worker-init", WORKER_INIT,
                      "--slurm-conf", slurm_conf, "-n", "5")
    assert "Sum of squares 1..5: 55" in out
    results = sorted((tmp_path / "multisite-work").glob("result-*.txt"))
    assert [int(p.read_text().split()[0]) for p in results] == [1, 4, 9, 16, 25]
    db = sqlite3.connect(tmp_path / "runinfo" / "provenance.db")
    executors = dict(db.execute("SELECT task_func_name, group_concat(DISTINCT executor) FROM task "
                                "GROUP BY task_func_name").fetchall())
    assert executors == {"write_parameters": "laptop", "simulate": "cluster", "total": "laptop"}
    assert {row[0] for row in db.execute("SELECT provider FROM block")} == {"SlurmProvider slurm"}
    # the pools that joined, with their site and block (block ids repeat across sites)
    assert set(db.execute("SELECT DISTINCT executor_label, block_id FROM node")) == {("cluster", "0")}


def test_a_remote_interchange_that_cannot_start_is_a_clear_error_and_leaves_nothing_behind(sshd, tmp_path,
                                                                                          no_leaks):
    executor = HighThroughputExecutor(label="broken", address="127.0.0.1", interchange_launch_cmd=["false"],
                                      provider=LocalProvider(channel=_channel(sshd, tmp_path), init_blocks=0))
    with pytest.raises(BadStateException) as caught:
        parsl_repro.load(Config(executors=[executor], run_dir=str(tmp_path / "runinfo")))
    message = str(caught.value)
    assert "on 127.0.0.1 did not start: it exited with status 1 before binding its ports" in message
    assert "interchange.stderr" in message
    assert executor.provider.channel._client is None  # closed: no SSH thread left (no_leaks checks too)


def test_an_unencrypted_executor_on_a_remote_channel_is_refused_at_construction(sshd, tmp_path):
    with pytest.raises(ConfigurationError, match="field 'encrypted' must be True"):
        HighThroughputExecutor(label="open", encrypted=False, provider=LocalProvider(channel=_channel(sshd, tmp_path)))


def test_a_site_password_reaches_neither_the_store_nor_the_logs(sshd, tmp_path):
    """The config (with its channels) is logged and recorded; its password must not be."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    secret = "pw-" + os.urandom(8).hex()
    config = Config(run_dir=str(tmp_path / "runinfo"), executors=[
        ThreadPoolExecutor(label="laptop"),
        HighThroughputExecutor(label="guarded", address="127.0.0.1", provider=LocalProvider(channel=SSHChannel(
            "127.0.0.1", port=closed_port, username="parslrepro", password=secret,
            host_keys_filename=sshd["known_hosts"]))),
    ])

    @python_app(executors=["laptop"])
    def one():
        return 1

    with parsl_repro.load(config):
        assert one().result(timeout=60) == 1
    written = [p for p in (tmp_path / "runinfo").rglob("*") if p.is_file()]
    assert any(p.name == "provenance.db" for p in written) and any(p.name == "parsl.log" for p in written)
    for path in written:
        assert secret.encode() not in path.read_bytes(), path


def test_losing_the_ssh_connection_mid_run_fails_that_sites_tasks_with_a_message(sshd, tmp_path):
    """The session that holds the remote interchange ends (as when the network drops): the
    interchange sees its input close and stops, and the site's outstanding tasks fail saying so
    instead of waiting for ever."""
    executor = HighThroughputExecutor(label="fragile", address="127.0.0.1", max_workers_per_node=1,
                                      heartbeat_period=1, heartbeat_threshold=5,
                                      provider=LocalProvider(channel=_channel(sshd, tmp_path), worker_init=WORKER_INIT))

    @python_app
    def slow():
        import time
        time.sleep(120)

    with parsl_repro.load(Config(executors=[executor], run_dir=str(tmp_path / "runinfo"))):
        assert double(1).result(timeout=120)[0] == 2
        pending = slow()
        executor._remote.proc.kill()  # the session is gone
        with pytest.raises(BadStateException) as caught:
            pending.result(timeout=60)
    assert "interchange of executor fragile" in str(caught.value)


def test_a_laptop_and_two_sites_over_ssh_in_one_run(sshd, slurm_conf, tmp_path):
    """Threads here, one site whose blocks are processes on the SSH host and one whose blocks are
    Slurm jobs submitted over SSH, each with its own remote interchange: a file made on one site
    is read on the other, and every try, block and pool is recorded with its site."""
    from parsl_repro import File

    campus = HighThroughputExecutor(label="campus", address="127.0.0.1", max_workers_per_node=1,
                                    heartbeat_period=1, heartbeat_threshold=5,
                                    provider=LocalProvider(channel=_channel(sshd, tmp_path / "campus"),
                                                           worker_init=WORKER_INIT))
    cluster = HighThroughputExecutor(label="cluster", address="127.0.0.1", max_workers_per_node=1,
                                     heartbeat_period=1, heartbeat_threshold=5,
                                     provider=SlurmProvider(partition="debug", exclusive=False, walltime="00:10:00",
                                                            launcher=SimpleLauncher(), worker_init=WORKER_INIT,
                                                            channel=_channel(sshd, tmp_path / "cluster",
                                                                             envs={"SLURM_CONF": slurm_conf})))

    @python_app(executors=["campus"])
    def make(path, outputs=()):
        with open(outputs[0].filepath, "w") as f:
            f.write("21\n")

    @python_app(executors=["cluster"])
    def use(inputs=()):
        import os
        with open(inputs[0].filepath) as f:
            return int(f.read()) * 2, os.environ.get("SLURM_JOB_ID")

    @python_app(executors=["laptop"])
    def report(pair):
        return f"{pair[0]} from job {pair[1]}"

    data = File(str(tmp_path / "shared.txt"))
    config = Config(executors=[ThreadPoolExecutor(label="laptop"), campus, cluster],
                    run_dir=str(tmp_path / "runinfo"))
    with parsl_repro.load(config) as dfk:
        made = make(str(data), outputs=[data])
        answer = report(use(inputs=[made.outputs[0]])).result(timeout=180)
        [job_id] = cluster.provider.resources
        assert answer == f"42 from job {job_id}"
        assert campus._remote is not None and cluster._remote is not None
        assert campus._remote.url != cluster._remote.url  # one interchange per site
        run_dir = dfk.run_dir
    db = sqlite3.connect(os.path.join(os.path.dirname(run_dir), "provenance.db"))
    tries = dict(db.execute("SELECT t.task_func_name, y.task_executor FROM try y JOIN task t "
                            "ON t.run_id = y.run_id AND t.task_id = y.task_id"))
    assert tries == {"make": "campus", "use": "cluster", "report": "laptop"}
    providers = set(db.execute("SELECT DISTINCT executor_label, provider FROM block"))
    assert providers == {("campus", "LocalProvider local"), ("cluster", "SlurmProvider slurm")}
    assert {row[0] for row in db.execute("SELECT DISTINCT executor_label FROM node")} == {"campus", "cluster"}


def test_a_failed_block_on_an_ssh_host_is_reported_with_copies_of_its_output(sshd, tmp_path):
    """LocalProvider over SSH: the block's exit status comes from the host, and the error
    handler gets local copies of its output, never the host's paths (which it would open here)."""
    from parsl_repro.jobs.states import JobState

    provider = LocalProvider(channel=_channel(sshd, tmp_path), launcher=SimpleLauncher())
    provider.script_dir = str(tmp_path / "local")
    job = provider.submit("echo to stdout; echo to stderr >&2; exit 3", 1, "failing")
    deadline = time.monotonic() + 30
    while (status := provider.status([job])[0]).state is JobState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status.state is JobState.FAILED and status.exit_code == 3
    local = str(tmp_path / "local")
    assert status.stdout_path.startswith(local) and status.stderr_path.startswith(local)
    with open(status.stdout_path) as out, open(status.stderr_path) as err:
        assert "to stdout" in out.read() and "to stderr" in err.read()
    provider.channel.close()
