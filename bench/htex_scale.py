"""HighThroughputExecutor at scale, simulated: one real interchange, hundreds of simulated pools.

Nothing here runs a task. The interchange is the real one, started as the executor starts it
(``python -m parsl_repro.executors.high_throughput.interchange`` fed one JSON settings line on
stdin, CurveZMQ certificates from ``curvezmq.create_certificates``). The worker pools are
simulated: ``--managers`` (500) zmq DEALER clients spread over ``--processes`` (4) processes
(one zmq context and one poller per process) that speak the pool's side of
``protocol.py``: REGISTER with ``--workers-per-manager`` (64) workers and that capacity,
HEARTBEAT every ``--heartbeat-period``, and every TASKS batch answered at once with a RESULTS
batch (same task ids, status OK, ``META.pack(start, pid)``, ``serialize(None)`` as payload).

Two modes, each in its own subprocess (this file's hidden ``--worker`` mode):

* ``raw``: this process speaks the executor's side directly, over the executor's end of the
  socket pair the interchange is started with (HELLO, TASKS batches of ``--batch`` tasks,
  reading RESULTS), sending every task as fast as the socket takes it, like the executor's I/O
  thread. It measures the interchange alone.
* ``kernel``: the real path. ``parsl_repro.load`` a Config with one HighThroughputExecutor
  whose ``LocalProvider(init_blocks=0, min_blocks=0, max_blocks=0)`` starts no pool; the
  simulated pools connect to its worker port with its certificates, and ``--tasks`` no-op
  ``python_app`` calls go through the kernel, the executor, the interchange and back, with the
  provenance store on (its default SQLite file and writer process).

Measured: tasks/s end to end (first send to last result) and as seen at the client (first to
last result, the best 1-second rate, the longest pause between results); the interchange
process's peak RSS (``VmHWM``) and CPU time, split by thread (its Python loop vs libzmq's I/O
thread, which does the CurveZMQ encryption); in ``kernel`` mode also the kernel process's CPU
by thread and its memory (with what one ``gc.collect()`` frees once every task is done), the
provenance writer process's CPU, the store's size before and after (bytes per task), the
writer's rate (rows of ``status`` sampled every second), and how long ``cleanup()`` waits for
it to drain. CPU seconds per task do not depend on what else the machine runs; tasks/s do.

Only the standard library, pyzmq and psutil. Every process started is recorded by pid and
checked at the end: the run fails if one is left.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import queue
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_PYTHON = BENCH_DIR.parent / ".venv" / "bin" / "python"
RESULT_PREFIX = "HTEX_SCALE_RESULT "
READY_PREFIX = "SIM_READY "
STATS_PREFIX = "SIM_STATS "
MODES = ("raw", "kernel")
INTERCHANGE_MODULE = "parsl_repro.executors.high_throughput.interchange"


def _noop() -> None:
    return None


def _progress(message: str) -> None:
    print(f"[htex_scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Simulated worker pools: the hidden --simulate mode, one process per group.
# --------------------------------------------------------------------------


def simulate_main(args: argparse.Namespace) -> int:
    """Run ``args.count`` simulated pools until each is told STOP or stdin closes."""
    import zmq

    from parsl_repro import curvezmq
    from parsl_repro.executors.high_throughput import protocol as p
    from parsl_repro.serialize import serialize

    result_payload = serialize(None)
    pid = os.getpid()
    meta_pack = p.META.pack
    context = curvezmq.ClientContext(args.cert_dir)
    poller = zmq.Poller()
    stdin_fd = sys.stdin.fileno()
    poller.register(stdin_fd, zmq.POLLIN)
    sockets: list[Any] = []
    for index in range(args.first, args.first + args.count):
        uid = f"sim-{index:05d}"
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, uid.encode())
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"tcp://{args.address}:{args.port}")
        sock.send_multipart([p.REGISTER, p.dumps({
            "uid": uid, "hostname": f"simhost-{index:05d}", "block_id": str(args.block),
            "worker_count": args.workers_per_manager, "prefetch_capacity": 0,
            "capacity": args.workers_per_manager, "pid": pid,
            "cpu_count": args.workers_per_manager, "total_memory": 256 * 2**30, "python_version": "3.11",
            "protocol": p.PROTOCOL_VERSION, "parsl_repro_version": "simulated"})])
        poller.register(sock, zmq.POLLIN)
        sockets.append(sock)
    stats = {"managers": args.count, "registered": 0, "rejected": 0, "tasks": 0, "batches": 0, "max_batch": 0,
             "heartbeats_sent": 0, "heartbeats_received": 0, "stops_received": 0, "ended_by": "stop"}
    live = set(sockets)
    next_heartbeat = time.monotonic() + args.heartbeat_period
    tasks_tag, results_tag, ok = p.TASKS, p.RESULTS, p.OK
    try:
        while live:
            for item, _ in poller.poll(1000):
                if item == stdin_fd:
                    if not os.read(stdin_fd, 4096):
                        stats["ended_by"] = "stdin closed"
                        live.clear()
                        break
                    continue
                sock = item
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    tag = frames[0]
                    if tag == tasks_tag:
                        meta = meta_pack(time.time(), pid)
                        out = [results_tag]
                        for task_id in frames[1::2]:
                            out += (task_id, ok, meta, result_payload)
                        sock.send_multipart(out)
                        n = (len(frames) - 1) // 2
                        stats["tasks"] += n
                        stats["batches"] += 1
                        stats["max_batch"] = max(stats["max_batch"], n)
                    elif tag == p.HEARTBEAT:
                        stats["heartbeats_received"] += 1
                    elif tag == p.REGISTERED:
                        stats["registered"] += 1
                        if stats["registered"] == args.count:
                            print(READY_PREFIX + json.dumps({"block": args.block}), flush=True)
                    elif tag in (p.STOP, p.REJECTED):
                        stats["stops_received" if tag == p.STOP else "rejected"] += 1
                        poller.unregister(sock)
                        live.discard(sock)
                        break
            now = time.monotonic()
            if now >= next_heartbeat:
                next_heartbeat = now + args.heartbeat_period
                for sock in live:
                    sock.send_multipart([p.HEARTBEAT])
                    stats["heartbeats_sent"] += 1
    finally:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats["cpu_s"] = usage.ru_utime + usage.ru_stime
        stats["maxrss_bytes"] = usage.ru_maxrss * 1024
        context.destroy(linger=0)
        print(STATS_PREFIX + json.dumps(stats), flush=True)
    return 0


class SimulatedPools:
    """The processes that simulate the pools: started, awaited until every pool registered,
    then finished (given a moment to receive the interchange's STOP, then told by closing stdin)."""

    def __init__(self, args: argparse.Namespace, address: str, port: int, cert_dir: str | None,
                 pid_file: str | None) -> None:
        self.args = args
        self.address = address
        self.port = port
        self.cert_dir = cert_dir
        self.pid_file = pid_file
        self.procs: list[subprocess.Popen] = []
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        self.stats: list[dict[str, Any]] = []
        self._readers: list[threading.Thread] = []

    def start(self, timeout: float) -> float:
        """Start the processes; return once every pool has registered (seconds taken)."""
        args = self.args
        started = time.perf_counter()
        groups = _split(args.managers, args.processes)
        first = 0
        for block, count in enumerate(groups):
            cmd = [sys.executable, str(Path(__file__).resolve()), "--simulate", "--address", self.address,
                   "--port", str(self.port), "--first", str(first), "--count", str(count),
                   "--block", str(block), "--workers-per-manager", str(args.workers_per_manager),
                   "--heartbeat-period", str(args.heartbeat_period)]
            if self.cert_dir:
                cmd += ["--cert-dir", self.cert_dir]
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
            _record_pid(self.pid_file, proc.pid)
            self.procs.append(proc)
            reader = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
            reader.start()
            self._readers.append(reader)
            first += count
        ready = 0
        deadline = time.monotonic() + timeout
        while ready < len(self.procs):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"only {ready} of {len(self.procs)} simulated pool processes had all their pools "
                                   f"registered after {timeout:.0f} s") from None
            if line is None:
                raise RuntimeError("a simulated pool process ended before its pools registered (see stderr)")
            if line.startswith(READY_PREFIX):
                ready += 1
        return time.perf_counter() - started

    def watch(self, sampler: Sampler) -> None:
        for block, proc in enumerate(self.procs):
            sampler.watch(f"pools-{block}", proc.pid)

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self.lines.put(raw.decode(errors="replace"))
        self.lines.put(None)  # this process ended

    def finish(self, grace: float = 5.0) -> list[dict[str, Any]]:
        """Wait ``grace`` s for the processes to end on STOP, then close their stdin; kill leftovers."""
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs:
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for reader in self._readers:
            reader.join(5)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None and line.startswith(STATS_PREFIX):
                self.stats.append(json.loads(line[len(STATS_PREFIX):]))
        for proc in self.procs:
            if proc.stdout is not None:
                proc.stdout.close()
        return self.stats


def _split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _record_pid(pid_file: str | None, pid: int) -> None:
    if pid_file:
        with open(pid_file, "a") as f:
            f.write(f"{pid}\n")


def _summarize_pools(stats: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("managers", "registered", "rejected", "tasks", "batches", "heartbeats_sent", "heartbeats_received",
            "stops_received")
    summary: dict[str, Any] = {k: sum(s.get(k, 0) for s in stats) for k in keys}
    summary["max_batch"] = max((s.get("max_batch", 0) for s in stats), default=0)
    summary["cpu_s"] = sum(s.get("cpu_s", 0.0) for s in stats)
    summary["processes"] = len(stats)
    summary["ended_by"] = sorted({s.get("ended_by", "?") for s in stats})
    return summary


# --------------------------------------------------------------------------
# Measuring processes from outside: RSS, peak RSS, CPU by thread.
# --------------------------------------------------------------------------


def _peak_rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _thread_group(pid: int, tid: int, names: dict[int, str]) -> str:
    if tid in names:
        return names[tid]
    if tid == pid:
        return "main"
    try:
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            comm = f.read().strip()
    except OSError:
        return "other"
    return "zmq-io" if comm.startswith("ZMQbg/IO") else "other"


def snapshot(proc: Any, thread_names: dict[int, str] | None = None) -> dict[str, Any] | None:
    """RSS, peak RSS and CPU (user+system, total and by thread group) of a psutil.Process."""
    import psutil

    try:
        with proc.oneshot():
            cpu = proc.cpu_times()
            rss = proc.memory_info().rss
            threads = proc.threads()
    except psutil.Error:
        return None
    by_group: dict[str, float] = {}
    for t in threads:
        group = _thread_group(proc.pid, t.id, thread_names or {})
        by_group[group] = by_group.get(group, 0.0) + t.user_time + t.system_time
    return {"rss": rss, "peak_rss": _peak_rss(proc.pid) or rss, "cpu_s": cpu.user + cpu.system,
            "cpu_by_thread_s": by_group}


class Sampler:
    """Samples watched processes (and optional extra probes) every ``interval`` s on a thread,
    keeping each one's last snapshot and peak RSS, so that a process's figures survive its exit."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.procs: dict[str, Any] = {}
        self.thread_names: dict[str, dict[int, str]] = {}
        self.last: dict[str, dict[str, Any]] = {}
        self.probes: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="htex-scale-sampler", daemon=True)
        self._lock = threading.Lock()

    def watch(self, name: str, pid: int, thread_names: dict[int, str] | None = None) -> None:
        import psutil

        with self._lock:
            self.procs[name] = psutil.Process(pid)
            if thread_names is not None:
                self.thread_names[name] = thread_names
        self.sample()

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def sample(self) -> None:
        with self._lock:
            for name, proc in self.procs.items():
                snap = snapshot(proc, self.thread_names.get(name))
                if snap is not None:
                    before = self.last.get(name, {}).get("peak_rss", 0)
                    snap["peak_rss"] = max(snap["peak_rss"], before)
                    self.last[name] = snap
            for probe in self.probes:
                probe()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class Timeline:
    """(time, completed) pairs; the best rate over any ``window`` seconds."""

    def __init__(self) -> None:
        self.points: list[tuple[float, int]] = []

    def add(self, t: float, completed: int) -> None:
        self.points.append((t, completed))

    def best_rate(self, window: float = 1.0) -> float:
        """The highest rate over any span of at least ``window`` seconds (the shortest such span)."""
        best, j = 0.0, 0
        points = self.points
        for i in range(len(points)):
            while j + 1 < i and points[i][0] - points[j + 1][0] >= window:
                j += 1
            span = points[i][0] - points[j][0]
            if span >= window:
                best = max(best, (points[i][1] - points[j][1]) / span)
        return best


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    import psutil

    times = psutil.cpu_times()
    total = sum(times)
    return total - times.idle - getattr(times, "iowait", 0.0), total


def machine_figures(before: tuple[float, float], after: tuple[float, float], ours_cpu_s: float) -> dict[str, float]:
    """How busy the machine was during the run, and how much of that was not this benchmark: on a
    shared machine, other load stretches every wall-clock figure (CPU per task stays put)."""
    busy = after[0] - before[0]
    return {"busy": busy / max(1e-9, after[1] - before[1]), "busy_core_s": busy, "ours_core_s": ours_cpu_s,
            "others_core_s": max(0.0, busy - ours_cpu_s)}


def cpu_between(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], prefix: str) -> float:
    """CPU seconds used between two Sampler snapshots by the processes whose name starts with ``prefix``."""
    return sum(snap.get("cpu_s", 0.0) - before.get(name, {}).get("cpu_s", 0.0)
               for name, snap in after.items() if name.startswith(prefix))


# --------------------------------------------------------------------------
# raw mode: the interchange alone, driven by a client speaking the executor's side.
# --------------------------------------------------------------------------


class InterchangeProcess:
    """The interchange started as ``HighThroughputExecutor._start_interchange`` starts it: given
    one end of a socket pair, whose other end (``client``) this benchmark drives as the executor."""

    def __init__(self, cert_dir: str | None, logdir: str, args: argparse.Namespace, pid_file: str | None) -> None:
        self.client, self._theirs = socket.socketpair()
        self.settings = {
            "client_fd": self._theirs.fileno(),
            "cert_dir": cert_dir, "loopback_address": "127.0.0.1", "worker_bind_address": "127.0.0.1",
            "worker_port": None, "worker_port_range": (54000, 55000), "interchange_port_range": (55000, 56000),
            "heartbeat_period": args.heartbeat_period, "heartbeat_threshold": args.heartbeat_threshold,
            "logdir": logdir, "debug": False,
        }
        self.command = interchange_command(args.profile_interchange)
        self.pid_file = pid_file
        self.proc: subprocess.Popen | None = None
        self.worker_port = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
                                     start_new_session=True, pass_fds=(self._theirs.fileno(),))
        self._theirs.close()
        _record_pid(self.pid_file, self.proc.pid)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(self.settings) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the interchange exited with status {self.proc.wait(10)} before binding its ports; "
                               f"see {self.settings['logdir']}/interchange.log")
        self.worker_port = json.loads(line)["worker_port"]

    def stop(self, timeout: float = 30.0) -> int | None:
        """Close its stdin (how the executor says goodbye) and wait; kill it if it does not exit."""
        proc = self.proc
        if proc is None:
            return None
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        return code


def interchange_command(profile_path: str | None) -> list[str]:
    if profile_path:
        return [sys.executable, "-m", "cProfile", "-o", os.path.abspath(profile_path), "-m", INTERCHANGE_MODULE]
    return [sys.executable, "-m", INTERCHANGE_MODULE]


def drive_raw(client: socket.socket, args: argparse.Namespace, payload: bytes) -> dict[str, Any]:
    """Send ``args.tasks`` tasks in TASKS batches over the executor's end of the interchange's
    socket pair and read every result; the client's figures."""
    import select

    from parsl_repro.executors.high_throughput import protocol as p

    n, batch, window = args.tasks, args.batch, args.window
    stream = p.FrameStream(client)
    stream.send([p.HELLO, p.dumps({"label": "htex_scale"})])
    seen = bytearray(n)
    duplicates = failed = received = sent = messages_in = 0
    pack_id = p.pack_id
    timeline = Timeline()
    poller = select.poll()
    poller.register(stream.fd, select.POLLIN)
    start = time.perf_counter()
    first_result = last_result = sent_all = longest_gap = 0.0
    last_progress = next_mark = start
    next_report = start + 10
    try:
        while received < n:
            want_send = sent < n and (window <= 0 or sent - received < window) and not stream.pending
            poller.modify(stream.fd, select.POLLIN | (select.POLLOUT if want_send or stream.pending else 0))
            ready = dict(poller.poll(1000)).get(stream.fd, 0)
            now = time.perf_counter()
            if ready & (select.POLLIN | select.POLLHUP):
                before = received
                try:
                    messages = stream.receive()
                except EOFError:
                    raise RuntimeError(f"the interchange closed its link after {received:,} results") from None
                for frames in messages:
                    if frames[0] != p.RESULTS:
                        continue
                    messages_in += 1
                    for task_frame in frames[2::5]:
                        task_id = int.from_bytes(task_frame, "big")
                        if seen[task_id]:
                            duplicates += 1
                        seen[task_id] = 1
                    failed += sum(1 for status in frames[3::5] if status != p.OK)
                    received += (len(frames) - 1) // 5
                now = time.perf_counter()
                if received > before:
                    if first_result:
                        longest_gap = max(longest_gap, now - last_result)
                    else:
                        first_result = now
                    last_result = last_progress = now
            if ready & select.POLLOUT:
                stream.flush()
            if want_send and ready & select.POLLOUT:
                count = min(batch, n - sent)
                frames = [p.TASKS]
                for task_id in range(sent, sent + count):
                    frames += (pack_id(task_id), payload)
                stream.send(frames)
                sent += count
                last_progress = now
                if sent == n:
                    sent_all = now
            if now >= next_mark:
                timeline.add(now, received)
                next_mark = now + 0.25
            if now >= next_report:
                next_report = now + 10
                _progress(f"raw: {received:,} of {n:,} results, {sent:,} sent, {received / (now - start):,.0f} tasks/s")
            if now - last_progress > args.stall_timeout:
                raise RuntimeError(f"stalled: {received:,} of {n:,} results after {now - start:.0f} s "
                                   f"({sent:,} sent), none for {args.stall_timeout:.0f} s")
        timeline.add(time.perf_counter(), received)
        stream.send([p.STOP])
        deadline = time.monotonic() + 5
        while stream.pending and time.monotonic() < deadline:
            select.select([], [stream.fd], [], 0.1)
            stream.flush()
    finally:
        client.close()
    return {
        "sent": sent, "received": received, "failed": failed, "duplicates": duplicates,
        "missing": n - sum(seen), "result_messages": messages_in,
        "send_s": sent_all - start, "first_result_s": first_result - start, "last_result_s": last_result - start,
        "end_to_end_tasks_per_s": n / (last_result - start),
        "client_tasks_per_s": (n - 1) / (last_result - first_result) if last_result > first_result else None,
        "best_1s_tasks_per_s": timeline.best_rate(1.0), "longest_gap_s": longest_gap,
    }


def run_raw(args: argparse.Namespace) -> dict[str, Any]:
    from parsl_repro import curvezmq
    from parsl_repro.serialize import pack_res_spec_apply_message

    payload = pack_res_spec_apply_message(_noop, (), {}, {})
    result: dict[str, Any] = {"mode": "raw", "payload_bytes": len(payload)}
    with tempfile.TemporaryDirectory(prefix="htex-scale-raw-") as tmp:
        cert_dir = None if args.unencrypted else curvezmq.create_certificates(tmp)
        interchange = InterchangeProcess(cert_dir, tmp, args, args.pid_file)
        pools: SimulatedPools | None = None
        sampler = Sampler()
        try:
            interchange.start()
            assert interchange.proc is not None
            sampler.watch("interchange", interchange.proc.pid)
            sampler.start()
            pools = SimulatedPools(args, "127.0.0.1", interchange.worker_port, cert_dir, args.pid_file)
            result["register_s"] = pools.start(args.register_timeout)
            _progress(f"raw: {args.managers} simulated pools registered in {result['register_s']:.1f} s")
            pools.watch(sampler)
            before = {name: dict(snap) for name, snap in sampler.last.items()}
            busy_before, usage_before = machine_busy(), resource.getrusage(resource.RUSAGE_SELF)
            result["client"] = drive_raw(interchange.client, args, payload)
            usage_after = resource.getrusage(resource.RUSAGE_SELF)
            busy_after = machine_busy()
            sampler.sample()
            after = {name: dict(snap) for name, snap in sampler.last.items()}
            client_cpu = (usage_after.ru_utime + usage_after.ru_stime - usage_before.ru_utime - usage_before.ru_stime)
            result["client"]["cpu_s"] = client_cpu
            result["pools_cpu_s"] = cpu_between(before, after, "pools-")
            result["interchange"] = _interchange_figures(before["interchange"], after["interchange"], args.tasks)
            result["machine"] = machine_figures(busy_before, busy_after, client_cpu + result["pools_cpu_s"]
                                                + result["interchange"]["cpu_s"])
        finally:
            sampler.stop()
            result["interchange_exit"] = interchange.stop()
            if pools is not None:
                result["pools"] = _summarize_pools(pools.finish())
    return result


def _interchange_figures(before: dict[str, Any], after: dict[str, Any], tasks: int) -> dict[str, Any]:
    """The interchange's CPU during the run (after minus before) and its peak RSS."""
    cpu = after.get("cpu_s", 0.0) - before.get("cpu_s", 0.0)
    threads = {k: v - before.get("cpu_by_thread_s", {}).get(k, 0.0)
               for k, v in after.get("cpu_by_thread_s", {}).items()}
    return {"peak_rss": after.get("peak_rss"), "rss_before": before.get("rss"), "cpu_s": cpu,
            "cpu_us_per_task": cpu / tasks * 1e6, "cpu_by_thread_s": threads,
            "main_thread_us_per_task": threads.get("main", 0.0) / tasks * 1e6}


# --------------------------------------------------------------------------
# kernel mode: the real path, parsl_repro.load() with a HighThroughputExecutor.
# --------------------------------------------------------------------------


class Completion:
    """A done-callback counting finished futures (run on the executor's I/O thread)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.done = 0
        self.failed = 0
        self.first = 0.0
        self.last = 0.0
        self.longest_gap = 0.0
        self.first_error: BaseException | None = None
        self.all_done = threading.Event()

    def __call__(self, future: Any) -> None:
        now = time.perf_counter()
        error = future.exception()
        if error is not None:
            self.failed += 1
            self.first_error = self.first_error or error
        if not self.done:
            self.first = now
        else:
            self.longest_gap = max(self.longest_gap, now - self.last)
        self.last = now
        self.done += 1
        if self.done == self.n:
            self.all_done.set()


class FullCollections:
    """Times the garbage collector's full (generation 2) collections while installed: each one
    holds the interpreter lock, so the executor's I/O thread reads no results meanwhile."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self.durations.append(time.perf_counter() - self._started)
            self._started = 0.0

    def install(self) -> FullCollections:
        gc.callbacks.append(self)
        return self

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


class StoreProbe:
    """Reads ``max(status.id)`` (rows written so far) from the SQLite store once a second."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.timeline = Timeline()
        self._next = 0.0

    def __call__(self) -> None:
        now = time.perf_counter()
        if now < self._next:
            return
        self._next = now + 1.0
        rows = self.read()
        if rows is not None:
            self.timeline.add(now, rows)

    def read(self) -> int | None:
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
            try:
                return int(conn.execute("SELECT coalesce(max(id), 0) FROM status").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.Error:
            return None


def _thread_role(name: str) -> str:
    """A kernel-process thread's name without its per-run suffix (``htex-io-<label>``...)."""
    for role in ("htex-io", "provenance-shipper", "provenance-writer", "htex-scale-sampler", "job-status"):
        if name.startswith(role):
            return role
    return "other"


def _store_bytes(run_dir: str) -> int:
    base = os.path.join(run_dir, "provenance.db")
    return sum(os.path.getsize(base + s) for s in ("", "-wal", "-shm") if os.path.exists(base + s))


def run_kernel(args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    import parsl_repro
    from parsl_repro.config import Config
    from parsl_repro.executors import HighThroughputExecutor
    from parsl_repro.providers import LocalProvider

    n = args.tasks
    result: dict[str, Any] = {"mode": "kernel"}
    me = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="htex-scale-kernel-") as tmp:
        run_dir = os.path.join(tmp, "runinfo")
        htex = HighThroughputExecutor(
            label="htex_scale", provider=LocalProvider(init_blocks=0, min_blocks=0, max_blocks=0),
            heartbeat_period=args.heartbeat_period, heartbeat_threshold=args.heartbeat_threshold,
            encrypted=not args.unencrypted, interchange_launch_cmd=interchange_command(args.profile_interchange))
        config = Config(executors=[htex], run_dir=run_dir)
        sampler = Sampler()
        full_gcs = FullCollections()
        pools: SimulatedPools | None = None
        dfk = None
        t = time.perf_counter()
        dfk = parsl_repro.load(config)
        try:
            result["load_s"] = time.perf_counter() - t
            assert htex.interchange_proc is not None
            _record_pid(args.pid_file, htex.interchange_proc.pid)
            writer = [c for c in me.children() if "parsl_repro.monitoring.shipping" in " ".join(c.cmdline())]
            for proc in writer:
                _record_pid(args.pid_file, proc.pid)
            sampler.watch("interchange", htex.interchange_proc.pid)
            if writer:
                sampler.watch("writer", writer[0].pid)
            probe = StoreProbe(os.path.join(run_dir, "provenance.db"))
            sampler.probes.append(probe)
            pools = SimulatedPools(args, htex.loopback_address, htex.worker_port, htex.cert_dir, args.pid_file)
            result["register_s"] = pools.start(args.register_timeout)
            deadline = time.monotonic() + args.register_timeout
            while len(htex.connected_managers()) < args.managers:
                if time.monotonic() > deadline:
                    raise TimeoutError("the executor does not see every simulated pool")
                time.sleep(0.1)
            _progress(f"kernel: {args.managers} simulated pools registered in {result['register_s']:.1f} s")
            pools.watch(sampler)
            noop = parsl_repro.python_app(_noop)
            noop().result(60)  # warm: the app, the store's app row, the first round trip
            store_before = _store_bytes(run_dir)
            rows_before = probe.read() or 0
            thread_names = {th.native_id: _thread_role(th.name) for th in threading.enumerate()
                            if th.native_id is not None}
            thread_names[me.pid] = "main (submit)"
            sampler.watch("kernel", me.pid, thread_names)
            sampler.start()
            before = {name: dict(snap) for name, snap in sampler.last.items()}
            completion = Completion(n)
            timeline = Timeline()
            busy_before = machine_busy()
            full_gcs.install()
            start = time.perf_counter()
            for _ in range(n):
                noop().add_done_callback(completion)
            submitted = time.perf_counter()
            _progress(f"kernel: {n:,} tasks submitted in {submitted - start:.1f} s; {completion.done:,} done")
            last_seen, last_change = completion.done, time.perf_counter()
            while not completion.all_done.wait(0.25):
                now = time.perf_counter()
                timeline.add(now, completion.done)
                if completion.done != last_seen:
                    last_seen, last_change = completion.done, now
                elif now - last_change > args.stall_timeout:
                    raise RuntimeError(f"stalled: {completion.done:,} of {n:,} tasks done, none for "
                                       f"{args.stall_timeout:.0f} s")
                if len(timeline.points) % 40 == 0:
                    _progress(f"kernel: {completion.done:,} of {n:,} done, "
                              f"{completion.done / (now - start):,.0f} tasks/s")
            timeline.add(time.perf_counter(), completion.done)
            full_gcs.remove()
            busy_after = machine_busy()
            sampler.sample()
            after = {name: dict(snap) for name, snap in sampler.last.items()}
            result["pools_cpu_s"] = cpu_between(before, after, "pools-")
            result["machine"] = machine_figures(busy_before, busy_after, cpu_between(before, after, ""))
            rows_at_last = probe.read() or 0
            end = completion.last
            result["client"] = {
                "received": completion.done, "failed": completion.failed,
                "first_error": repr(completion.first_error) if completion.first_error else None,
                "submit_s": submitted - start, "submit_tasks_per_s": n / (submitted - start),
                "first_result_s": completion.first - start, "last_result_s": end - start,
                "end_to_end_tasks_per_s": n / (end - start),
                "client_tasks_per_s": (n - 1) / (end - completion.first) if end > completion.first else None,
                "best_1s_tasks_per_s": timeline.best_rate(1.0), "longest_gap_s": completion.longest_gap,
            }
            result["interchange"] = _interchange_figures(before.get("interchange", {}), after.get("interchange", {}), n)
            kernel_before, kernel_after = before.get("kernel", {}), after.get("kernel", {})
            result["kernel_process"] = {
                "cpu_s": kernel_after.get("cpu_s", 0.0) - kernel_before.get("cpu_s", 0.0),
                "peak_rss": kernel_after.get("peak_rss"), "rss_at_last_result": kernel_after.get("rss"),
                "full_collections": len(full_gcs.durations),
                "longest_full_collection_s": max(full_gcs.durations, default=0.0),
                "cpu_by_thread_s": {k: v - kernel_before.get("cpu_by_thread_s", {}).get(k, 0.0)
                                    for k, v in kernel_after.get("cpu_by_thread_s", {}).items()},
            }
            # every task is final and forgotten by now: what a full collection still finds is garbage
            # that the kernel's raised GC thresholds (dataflow/gc_tuning.py) had left in memory
            t = time.perf_counter()
            result["kernel_process"]["unreachable_after_run"] = gc.collect()
            result["kernel_process"]["gc_collect_s"] = time.perf_counter() - t
            result["kernel_process"]["rss_after_collect"] = me.memory_info().rss
            clean_start = time.perf_counter()
            dfk.cleanup()
            dfk = None
            clean_end = time.perf_counter()
            sampler.stop()
            rows_final = probe.read() or 0
            store_after = _store_bytes(run_dir)
            writer_after = sampler.last.get("writer", {})
            writer_before = before.get("writer", {})
            status_rows = rows_final - rows_before
            result["store"] = _store_figures(store_before, store_after, status_rows, rows_at_last - rows_before,
                                             probe.timeline, writer_before, writer_after, n, start, clean_start,
                                             clean_end)
        finally:
            full_gcs.remove()
            sampler.stop()
            if dfk is not None:
                dfk.cleanup()
            if pools is not None:
                result["pools"] = _summarize_pools(pools.finish())
    return result


def _store_figures(store_before: int, store_after: int, status_rows: int, rows_at_last: int, timeline: Timeline,
                   writer_before: dict[str, Any], writer_after: dict[str, Any], n: int, start: float,
                   clean_start: float, clean_end: float) -> dict[str, Any]:
    rows_per_task = status_rows / n if n else 0.0
    written_at_last = rows_at_last / rows_per_task if rows_per_task else 0.0
    writer_cpu = writer_after.get("cpu_s", 0.0) - writer_before.get("cpu_s", 0.0)
    return {
        "bytes_before": store_before, "bytes_after": store_after,
        "bytes_per_task": (store_after - store_before) / n,
        "status_rows_per_task": rows_per_task,
        "tasks_written_at_last_result": written_at_last,
        "cleanup_s": clean_end - clean_start,
        "writer_tasks_per_s": n / (clean_end - start),
        "writer_best_1s_tasks_per_s": timeline.best_rate(1.0) / rows_per_task if rows_per_task else None,
        "writer_cpu_s": writer_cpu,
        "writer_cpu_us_per_task": writer_cpu / n * 1e6,
        "writer_peak_rss": writer_after.get("peak_rss"),
    }


# --------------------------------------------------------------------------
# Harness.
# --------------------------------------------------------------------------


def worker_main(args: argparse.Namespace) -> int:
    result = run_raw(args) if args.worker == "raw" else run_kernel(args)
    result["args"] = {"managers": args.managers, "workers_per_manager": args.workers_per_manager,
                      "tasks": args.tasks, "processes": args.processes, "batch": args.batch,
                      "window": args.window, "encrypted": not args.unencrypted,
                      "profiled": bool(args.profile_interchange)}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def run_worker(mode: str, args: argparse.Namespace, pid_file: str) -> dict[str, Any] | None:
    cmd = [args.python, str(Path(__file__).resolve()), "--worker", mode, "--pid-file", pid_file,
           "--managers", str(args.managers), "--workers-per-manager", str(args.workers_per_manager),
           "--tasks", str(args.tasks), "--processes", str(args.processes), "--batch", str(args.batch),
           "--window", str(args.window), "--heartbeat-period", str(args.heartbeat_period),
           "--heartbeat-threshold", str(args.heartbeat_threshold), "--stall-timeout", str(args.stall_timeout),
           "--register-timeout", str(args.register_timeout)]
    if args.unencrypted:
        cmd.append("--unencrypted")
    if args.profile_interchange:
        cmd += ["--profile-interchange", f"{os.path.abspath(args.profile_interchange)}.{mode}"]  # worker: other cwd
    _progress(f"{mode}: {args.managers} pools x {args.workers_per_manager} workers in {args.processes} processes, "
              f"{args.tasks:,} tasks")
    with tempfile.TemporaryDirectory(prefix="htex-scale-cwd-") as cwd:
        try:  # run from a neutral directory, as the other benchmarks do
            proc = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, text=True, cwd=cwd,
                                  timeout=args.timeout)
        except subprocess.TimeoutExpired:
            _progress(f"{mode}: timed out after {args.timeout:.0f} s")
            return None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    _progress(f"{mode}: failed (exit {proc.returncode})")
    return None


def reap(pid_file: str, since: float) -> list[int]:
    """Kill (by pid) any process this run started that is still alive; return their pids."""
    import psutil

    left = []
    try:
        pids = [int(x) for x in Path(pid_file).read_text().split()]
    except OSError:
        return []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() < since - 1 or proc.status() == psutil.STATUS_ZOMBIE:
                continue  # a reused pid, or already dead
        except psutil.Error:
            continue
        left.append(pid)
        try:
            proc.kill()
            proc.wait(5)
        except psutil.Error:
            pass
    return left


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.0f} MB"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def print_report(results: dict[str, dict[str, Any] | None], left: list[int]) -> None:
    for mode, r in results.items():
        print()
        if r is None:
            print(f"== {mode}: FAILED (see stderr)")
            continue
        a, c, ic, pools = r["args"], r["client"], r["interchange"], r.get("pools", {})
        title = "interchange alone, driven by a simulated executor" if mode == "raw" else \
            "full kernel: load(Config(HighThroughputExecutor)), python_app no-ops, store on"
        print(f"== {mode}: {title}")
        print(f"   {a['managers']} simulated pools x {a['workers_per_manager']} workers ({a['processes']} processes), "
              f"{a['tasks']:,} tasks, CurveZMQ {'on' if a['encrypted'] else 'off'}"
              + (", batch " + str(a["batch"]) if mode == "raw" else "")
              + (", interchange under cProfile (figures inflated)" if a["profiled"] else ""))
        m = r["machine"]
        print(f"   pools registered in {r['register_s']:.1f} s; during the run the machine's {os.cpu_count()} cores "
              f"were {m['busy']:.0%} busy: {m['ours_core_s']:.0f} CPU s ours, {m['others_core_s']:.0f} CPU s other "
              f"processes'")
        print(f"   results: {c['received']:,} received, {c['failed']:,} failed"
              + (f", {c['duplicates']} duplicate, {c['missing']} missing" if "missing" in c else ""))
        submit = c.get("submit_s", c.get("send_s"))
        print(f"   end to end (first send -> last result): {_rate(c['end_to_end_tasks_per_s'])} tasks/s "
              f"({c['last_result_s']:.1f} s; all sent after {submit:.1f} s)")
        print(f"   at the client (first -> last result):   {_rate(c['client_tasks_per_s'])} tasks/s; "
              f"best 1 s: {_rate(c['best_1s_tasks_per_s'])} tasks/s"
              + (f"; client CPU {c['cpu_s']:.1f} s" if "cpu_s" in c else ""))
        print(f"   longest pause between results at the client: {c['longest_gap_s']:.2f} s")
        threads = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(ic["cpu_by_thread_s"].items()))
        print(f"   interchange: peak RSS {_mb(ic['peak_rss'])} (at start {_mb(ic['rss_before'])}); "
              f"CPU {ic['cpu_s']:.1f} s = {ic['cpu_us_per_task']:.1f} us/task ({threads})")
        if ic["main_thread_us_per_task"]:
            print(f"   interchange Python loop: {ic['main_thread_us_per_task']:.1f} us/task -> at most "
                  f"{1e6 / ic['main_thread_us_per_task']:,.0f} tasks/s with a core to itself")
        if pools:
            print(f"   simulated pools: {pools['tasks']:,} tasks answered in {pools['batches']:,} batches "
                  f"(largest {pools['max_batch']}); CPU {r['pools_cpu_s']:.1f} s; heartbeats "
                  f"{pools['heartbeats_sent']} sent, {pools['heartbeats_received']} received; STOP reached "
                  f"{pools['stops_received']} of {pools['managers']}; ended by {', '.join(pools['ended_by'])}")
        kp = r.get("kernel_process")
        if kp:
            threads = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(kp["cpu_by_thread_s"].items()) if v >= 0.05)
            print(f"   kernel process: CPU {kp['cpu_s']:.1f} s = {kp['cpu_s'] / a['tasks'] * 1e6:.1f} us/task "
                  f"({threads}); peak RSS {_mb(kp['peak_rss'])}")
            print(f"   kernel process: {kp['full_collections']} full garbage collections during the run, the "
                  f"longest {kp['longest_full_collection_s']:.1f} s")
            print(f"   kernel process after the run: RSS {_mb(kp['rss_at_last_result'])}; gc.collect() found "
                  f"{kp['unreachable_after_run']:,} unreachable objects in {kp['gc_collect_s']:.1f} s, RSS then "
                  f"{_mb(kp['rss_after_collect'])}")
        st = r.get("store")
        if st:
            print(f"   store: {st['bytes_before']:,} -> {st['bytes_after']:,} bytes = {st['bytes_per_task']:.0f} "
                  f"bytes/task; {st['status_rows_per_task']:.2f} status rows/task")
            print(f"   writer: {_rate(st['writer_tasks_per_s'])} tasks/s first submit -> written (best 1 s "
                  f"{_rate(st['writer_best_1s_tasks_per_s'])}); {st['tasks_written_at_last_result']:,.0f} tasks "
                  f"written at the last result; cleanup() {st['cleanup_s']:.1f} s; writer CPU {st['writer_cpu_s']:.1f}"
                  f" s = {st['writer_cpu_us_per_task']:.1f} us/task, peak RSS {_mb(st['writer_peak_rss'])}")
    print()
    print(f"processes left running at the end: {len(left)}" + (f" (killed: {left})" if left else ""))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--managers", type=int, default=500, help="simulated worker pools")
    p.add_argument("--workers-per-manager", type=int, default=64, help="workers (= capacity) per pool")
    p.add_argument("--tasks", type=int, default=1_000_000, help="no-op tasks to push through")
    p.add_argument("--processes", type=int, default=4, help="processes the simulated pools are spread over")
    p.add_argument("--batch", type=int, default=1000, help="tasks per TASKS message (raw mode's client)")
    p.add_argument("--window", type=int, default=0, help="raw mode: most tasks outstanding (0: no limit)")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    p.add_argument("--quick", action="store_true", help="50 pools and 100,000 tasks")
    p.add_argument("--unencrypted", action="store_true", help="CurveZMQ off (HTEX encrypted=False)")
    p.add_argument("--heartbeat-period", type=float, default=30.0)
    p.add_argument("--heartbeat-threshold", type=float, default=120.0)
    p.add_argument("--stall-timeout", type=float, default=60.0, help="fail when no result arrives for this long")
    p.add_argument("--register-timeout", type=float, default=120.0)
    p.add_argument("--profile-interchange", metavar="PATH", help="run the interchange under cProfile, writing "
                   "PATH.<mode> (pstats format)")
    p.add_argument("--json", nargs="?", const="-", metavar="PATH",
                   help="write the raw results as JSON to PATH (or, with no PATH, to stdout instead of the report)")
    p.add_argument("--timeout", type=float, default=3600.0, help="per-mode timeout (s)")
    p.add_argument("--python", default=str(DEFAULT_PYTHON) if DEFAULT_PYTHON.exists() else sys.executable)
    p.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--pid-file", help=argparse.SUPPRESS)
    p.add_argument("--simulate", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--address", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--cert-dir", help=argparse.SUPPRESS)
    p.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--block", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.managers, args.tasks = 50, 100_000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.simulate:
        return simulate_main(args)
    if args.worker:
        return worker_main(args)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown mode(s): {', '.join(sorted(unknown))}")
    since = time.time()
    results: dict[str, dict[str, Any] | None] = {}
    with tempfile.TemporaryDirectory(prefix="htex-scale-") as tmp:
        pid_file = os.path.join(tmp, "pids")
        Path(pid_file).touch()
        for mode in MODES:
            if mode in modes:
                results[mode] = run_worker(mode, args, pid_file)
        left = reap(pid_file, since)
    if args.json:
        payload = json.dumps({"results": results, "processes_left": left}, indent=2)
        if args.json == "-":
            print(payload)
        else:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(payload + "\n")
    if args.json != "-":
        print_report(results, left)
    if args.profile_interchange:
        _print_profiles(args.profile_interchange, modes)
    failed = any(r is None or r["client"]["received"] != args.tasks or r["client"]["failed"]
                 for r in results.values())
    return 2 if failed or left else 0


def _print_profiles(prefix: str, modes: list[str]) -> None:
    import pstats

    for mode in modes:
        path = f"{prefix}.{mode}"
        if os.path.exists(path):
            print(f"\n== interchange profile ({mode}), top 25 by own time: {path}")
            pstats.Stats(path, stream=sys.stdout).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    sys.exit(main())
