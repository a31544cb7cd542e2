"""Workflow scripts that fill the dashboard tests' stores as users fill theirs: real runs, run as
scripts in a subprocess. Each is written into a directory and run there; the store is that
directory's runinfo/provenance.db, or $PARSL_REPRO_PROVENANCE_URL."""

THREADS = r'''
import sys
import parsl_repro as parsl
from parsl_repro import bash_app, join_app, python_app
from parsl_repro.config import Config
from parsl_repro.data_provider.files import File
from parsl_repro.executors import ThreadPoolExecutor


@python_app(cache=True)
def square(x):
    return x * x


@python_app
def total(*xs):
    return sum(xs)


@bash_app
def write(message, outputs=()):
    return f"echo {message} > {outputs[0]}"


@python_app
def count_chars(inputs=()):
    with open(inputs[0]) as f:
        return len(f.read())


@python_app
def explode(x):
    raise ValueError(f"bad value {x}: the input was rejected")


@python_app
def after(x):
    return x + 1


@python_app
def shout(text):
    return text.upper()


@join_app
def fan(n):
    return total(*[square(i) for i in range(n)])


@bash_app
def noisy(stderr="noisy.err"):
    return "echo 'disk quota exceeded on /scratch' >&2; exit 3"


config = Config(executors=[ThreadPoolExecutor(max_threads=4, label="threads")], retries=1, reuse_from_store=True)
with parsl.load(config):
    futures = [square(i) for i in range(5)]
    futures.append(total(*futures[:5]))
    written = write("hello", outputs=[File("hello.txt")])
    futures += [written, count_chars(inputs=[written.outputs[0]])]
    failed = explode(7)
    futures += [failed, after(failed), after(after(failed))]
    futures += [shout("<script>alert(1)</script>"), fan(3), noisy()]
    for future in futures:
        try:
            future.result()
        except Exception:
            pass
print("done")
'''
"""Python, bash and join apps, a file written then read, a failure retried once and the two tasks
that depended on it, a bash failure with stderr, an argument holding markup. ``fan``'s squares are
memo hits of the run's own; run twice, the second run's are hits of the first's
(``reuse_from_store``)."""

HTEX = r'''
import time
import parsl_repro as parsl
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.executors import HighThroughputExecutor
from parsl_repro.monitoring import MonitoringHub
from parsl_repro.providers import LocalProvider


@python_app
def burn(seconds, megabytes):
    import time
    held = bytearray(megabytes << 20)
    start = time.process_time()
    total = 0
    while time.process_time() - start < seconds:
        total += sum(range(10_000))
    return total + len(held)


@python_app
def crash():
    import os
    os._exit(9)


config = Config(executors=[HighThroughputExecutor(label="htex", max_workers_per_node=2, heartbeat_period=1,
                                                  heartbeat_threshold=4,
                                                  provider=LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1))],
                monitoring=MonitoringHub(resource_monitoring_interval=0.2), strategy_period=0.2)
with parsl.load(config):
    done = [burn(0.6, 16 * (i + 1)) for i in range(4)]
    for future in done:
        future.result()
    try:
        crash().result()
    except Exception:
        pass
print("done")
'''
"""Tasks in worker processes with resource samples, a node, a block and a worker that died."""

SLOW = r'''
import sys
import time
import parsl_repro as parsl
from parsl_repro import python_app
from parsl_repro.config import Config
from parsl_repro.executors import ThreadPoolExecutor

@python_app
def step(i, pause):
    import time
    time.sleep(pause)
    return i

n, pause = int(sys.argv[1]), float(sys.argv[2])
with parsl.load(Config(executors=[ThreadPoolExecutor(max_threads=2)])):
    print("started", flush=True)
    futures = [step(i, pause) for i in range(n)]
    for future in futures:
        future.result()
print("done")
'''
"""``n`` tasks of ``pause`` seconds, two at a time: killed mid-run, or watched live."""
